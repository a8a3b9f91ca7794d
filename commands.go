package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// commandKind says where a command is executed.
type commandKind int

const (
	kindRead    commandKind = iota // served by a child, subject to --consistency
	kindWrite                      // proposed through the Raft log
	kindLocal                      // answered by this node (child or proxy), no consistency check
	kindRefused                    // answered with an error
	kindProxy                      // handled by the proxy itself (connection state, RAFT*)
)

// commandInfo is one row of the command table.
type commandInfo struct {
	name        string // lower case; subcommands as "config|get"
	arity       int
	first, last int
	step        int
	movable     bool
	blocking    bool
	denyOOM     bool
	kind        commandKind
	refusal     string // error text for kindRefused
	subs        map[string]*commandInfo
}

// policy is an explicit exception to the metadata classification.
type policy struct {
	kind    commandKind
	refusal string
}

// refusedBecause builds a refusal policy with Redis's "ERR" prefix.
func refusedBecause(why string) policy { return policy{kindRefused, "ERR " + why} }

// policies is the short list of exceptions to COMMAND metadata. Everything
// flagged "write" goes through the log, everything "readonly" is a read; a
// command with neither flag must be listed here or it is refused.
var policies = map[string]policy{
	// Connection state lives in the proxy and never enters the log.
	"ping": {kind: kindProxy}, "echo": {kind: kindProxy}, "select": {kind: kindProxy},
	"quit": {kind: kindProxy}, "reset": {kind: kindProxy}, "auth": {kind: kindProxy},
	"hello": {kind: kindProxy}, "client": {kind: kindProxy},
	"multi": {kind: kindProxy}, "exec": {kind: kindProxy}, "discard": {kind: kindProxy},
	"watch":   {kind: kindProxy},
	"unwatch": {kind: kindProxy},
	"info":    {kind: kindProxy},
	// Deadlines are shifted inside the child; these are answered from it.
	"ttl": {kind: kindProxy}, "pttl": {kind: kindProxy},
	"expiretime": {kind: kindProxy}, "pexpiretime": {kind: kindProxy},
	// Harmless server introspection answered by the local child.
	"command": {kind: kindLocal}, "time": {kind: kindLocal}, "lastsave": {kind: kindLocal},
	"config|get": {kind: kindLocal}, "config|help": {kind: kindLocal},
	"slowlog": {kind: kindLocal}, "latency": {kind: kindLocal}, "memory": {kind: kindLocal},
	"lolwut": {kind: kindLocal}, "script|exists": {kind: kindProxy},
	"script|help":    {kind: kindLocal},
	"function|stats": {kind: kindLocal}, "function|help": {kind: kindLocal},
	"object|help": {kind: kindLocal},
	// Changes to scripts and functions reach every child through the log.
	"script|load": {kind: kindWrite}, "script|flush": {kind: kindWrite},
	"eval": {kind: kindWrite}, "evalsha": {kind: kindWrite},
	// Replication, persistence and cluster management belong to Raft here.
	"replicaof":    refusedBecause("REPLICAOF is not supported: replication is done by Raft (see RAFTADDPEER)"),
	"slaveof":      refusedBecause("SLAVEOF is not supported: replication is done by Raft (see RAFTADDPEER)"),
	"sync":         refusedBecause("SYNC is not supported: replication is done by Raft"),
	"psync":        refusedBecause("PSYNC is not supported: replication is done by Raft"),
	"replconf":     refusedBecause("REPLCONF is not supported: replication is done by Raft"),
	"failover":     refusedBecause("FAILOVER is not supported: leadership is decided by Raft"),
	"cluster":      refusedBecause("This instance has cluster support disabled"),
	"readonly":     refusedBecause("This instance has cluster support disabled"),
	"readwrite":    refusedBecause("This instance has cluster support disabled"),
	"asking":       refusedBecause("This instance has cluster support disabled"),
	"debug":        refusedBecause("DEBUG is not supported by redraft"),
	"shutdown":     refusedBecause("SHUTDOWN is not supported: stop the redraft process instead"),
	"monitor":      refusedBecause("MONITOR is not supported by redraft"),
	"migrate":      refusedBecause("MIGRATE is not supported by redraft"),
	"save":         refusedBecause("SAVE is not supported: durability comes from the Raft log (see RAFTSNAPSHOT)"),
	"bgsave":       refusedBecause("BGSAVE is not supported: durability comes from the Raft log (see RAFTSNAPSHOT)"),
	"bgrewriteaof": refusedBecause("BGREWRITEAOF is not supported: durability comes from the Raft log"),
	"module":       refusedBecause("MODULE is not supported by redraft"),
	"acl":          refusedBecause("ACL is not supported by redraft"),
	"role":         refusedBecause("ROLE is not supported: use RAFTSTATE"),
	"sort":         {kind: kindWrite}, // may STORE; SORT_RO is the read form
	// Pub/Sub: PUBLISH is applied on every node, subscriptions are local.
	"publish": {kind: kindWrite}, "spublish": {kind: kindWrite},
	"subscribe": {kind: kindProxy}, "psubscribe": {kind: kindProxy}, "ssubscribe": {kind: kindProxy},
	"unsubscribe": {kind: kindProxy}, "punsubscribe": {kind: kindProxy}, "sunsubscribe": {kind: kindProxy},
	"pubsub":        {kind: kindLocal},
	"wait":          {kind: kindProxy},
	"waitaof":       refusedBecause("WAITAOF is not supported: durability comes from the Raft log"),
	"fcall":         {kind: kindWrite},
	"function":      {kind: kindLocal},
	"function|list": {kind: kindProxy},
	"function|load": {kind: kindWrite}, "function|delete": {kind: kindWrite},
	"function|flush": {kind: kindWrite}, "function|restore": {kind: kindWrite},
	"script|debug": refusedBecause("SCRIPT DEBUG is not supported by redraft"),
	"config|set":   {kind: kindWrite}, // only replicatedConfig parameters; see configSetAllowed
	// A script must run to completion on every node, or nodes diverge.
	"script|kill":   refusedBecause("SCRIPT KILL is not supported by redraft: a script must run to completion on every node"),
	"function|kill": refusedBecause("FUNCTION KILL is not supported by redraft: a function must run to completion on every node"),
	// PFCOUNT caches the cardinality inside the value: applied everywhere so
	// every node holds the same bytes.
	"pfcount": {kind: kindWrite},
	// Hash-field expiry (Redis 7.4+) would expire fields by each child's clock.
	"hexpire":          refusedBecause("HEXPIRE is not supported by redraft: hash-field expiry is not replicated deterministically"),
	"hpexpire":         refusedBecause("HPEXPIRE is not supported by redraft: hash-field expiry is not replicated deterministically"),
	"hexpireat":        refusedBecause("HEXPIREAT is not supported by redraft: hash-field expiry is not replicated deterministically"),
	"hpexpireat":       refusedBecause("HPEXPIREAT is not supported by redraft: hash-field expiry is not replicated deterministically"),
	"hsetex":           refusedBecause("HSETEX is not supported by redraft: hash-field expiry is not replicated deterministically"),
	"hgetex":           refusedBecause("HGETEX is not supported by redraft: hash-field expiry is not replicated deterministically"),
	"config|resetstat": refusedBecause("CONFIG RESETSTAT is not supported by redraft"),
	"config|rewrite":   refusedBecause("CONFIG REWRITE is not supported by redraft"),
	"xreadgroup":       {kind: kindWrite},
	"xautoclaim":       {kind: kindWrite},
	"xclaim":           {kind: kindWrite},
}

// raftCommands are redraft's own commands, answered by the proxy.
var raftCommands = map[string]bool{
	"raftaddpeer": true, "raftremovepeer": true, "raftleader": true, "raftsnapshot": true,
	"raftstate": true, "raftstats": true, "raftpeers": true, "raftdigest": true,
}

// commandTable is built from the child's own COMMAND reply.
type commandTable struct {
	byName map[string]*commandInfo
}

// loadCommandTable asks the child for COMMAND and classifies every entry.
func loadCommandTable(c *respConn) (*commandTable, error) {
	raw, err := c.do("COMMAND")
	if err != nil {
		return nil, err
	}
	v, err := parseReply(raw)
	if err != nil {
		return nil, fmt.Errorf("parse COMMAND reply: %w", err)
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("unexpected COMMAND reply")
	}
	t := &commandTable{byName: make(map[string]*commandInfo, len(list))}
	for _, item := range list {
		info := parseCommandInfo(item, nil)
		if info != nil {
			t.byName[info.name] = info
		}
	}
	return t, nil
}

// parseCommandInfo decodes one COMMAND entry (and its subcommands). A
// subcommand without a policy of its own or a write/readonly flag inherits
// its container's policy.
func parseCommandInfo(item any, parent *policy) *commandInfo {
	fields, ok := item.([]any)
	if !ok || len(fields) < 6 {
		return nil
	}
	name := strings.ToLower(asString(fields[0]))
	info := &commandInfo{name: name}
	info.arity = int(asInt(fields[1]))
	info.first, info.last, info.step = int(asInt(fields[3])), int(asInt(fields[4])), int(asInt(fields[5]))
	write, readonly := false, false
	if flags, ok := fields[2].([]any); ok {
		for _, f := range flags {
			switch asString(f) {
			case "write":
				write = true
			case "readonly":
				readonly = true
			case "movablekeys":
				info.movable = true
			case "blocking":
				info.blocking = true
			case "denyoom":
				info.denyOOM = true
			}
		}
	}
	switch {
	case write:
		info.kind = kindWrite
	case readonly:
		info.kind = kindRead
	default:
		info.kind = kindRefused
		info.refusal = fmt.Sprintf("ERR command '%s' is not supported by redraft", strings.ReplaceAll(name, "|", " "))
	}
	p, hasPolicy := policies[name]
	if !hasPolicy && parent != nil && !write && !readonly {
		p, hasPolicy = *parent, true
	}
	if hasPolicy {
		info.kind, info.refusal = p.kind, p.refusal
	}
	if len(fields) > 9 {
		if subs, ok := fields[9].([]any); ok && len(subs) > 0 {
			info.subs = make(map[string]*commandInfo, len(subs))
			for _, s := range subs {
				var inherit *policy
				if hasPolicy {
					inherit = &p
				}
				if sub := parseCommandInfo(s, inherit); sub != nil {
					info.subs[sub.name] = sub
				}
			}
		}
	}
	return info
}

func asInt(v any) int64 {
	n, _ := v.(int64)
	return n
}

// lookup finds the row for args, resolving container commands to their
// subcommand. It returns nil for unknown commands.
func (t *commandTable) lookup(args [][]byte) *commandInfo {
	var buf [32]byte
	var info *commandInfo
	if len(args[0]) <= len(buf) {
		// Lower-case into a stack buffer: the map lookup with string(b)
		// does not allocate.
		b := buf[:len(args[0])]
		for i, c := range args[0] {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			b[i] = c
		}
		info = t.byName[string(b)]
	}
	if info == nil || info.subs == nil || len(args) < 2 {
		return info
	}
	if sub := info.subs[info.name+"|"+lower(args[1])]; sub != nil {
		return sub
	}
	return info
}

// lower returns b in lower case as a string.
func lower(b []byte) string {
	for _, c := range b {
		if c >= 'A' && c <= 'Z' {
			return string(bytes.ToLower(b))
		}
	}
	return string(b)
}

// arityOK checks the argument count the way Redis does.
func (c *commandInfo) arityOK(n int) bool {
	if c.arity >= 0 {
		return n == c.arity
	}
	return n >= -c.arity
}

// arityError is Redis's wording for a wrong argument count.
func (c *commandInfo) arityError() string {
	return fmt.Sprintf("ERR wrong number of arguments for '%s' command", c.name)
}

// unknownCommandError is Redis's wording for an unknown command: the name
// and at most 128 bytes of arguments, with CR and LF turned into spaces so
// the error stays one line.
func unknownCommandError(args [][]byte) string {
	var b strings.Builder
	for _, a := range args[1:] {
		room := 128 - b.Len()
		if room <= 0 {
			break
		}
		if len(a) > room {
			a = a[:room]
		}
		fmt.Fprintf(&b, "'%s' ", a)
	}
	name := args[0]
	if len(name) > 128 {
		name = name[:128]
	}
	msg := fmt.Sprintf("ERR unknown command '%s', with args beginning with: %s", name, b.String())
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
}

// xreadStreamsAt returns the position of the STREAMS keyword of XREAD or
// XREADGROUP (skipping the options before it) and whether BLOCK was given.
func xreadStreamsAt(args [][]byte) (streams int, block bool) {
	for i := 1; i < len(args); i++ {
		switch strings.ToLower(string(args[i])) {
		case "streams":
			return i, block
		case "block":
			block = true
			i++
		case "count":
			i++
		case "group":
			i += 2
		}
	}
	return -1, block
}

// isBlockingCall reports whether this invocation would block in Redis.
func isBlockingCall(info *commandInfo, args [][]byte) bool {
	if !info.blocking {
		return false
	}
	switch info.name {
	case "xread", "xreadgroup":
		_, block := xreadStreamsAt(args)
		return block
	}
	return true
}

// commandKeys returns the key arguments of args, using the key range from
// COMMAND and explicit parsers for commands whose keys move.
func commandKeys(info *commandInfo, args [][]byte) [][]byte {
	switch info.name {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		return numKeysAt(args, 2)
	case "zunionstore", "zinterstore", "zdiffstore":
		keys := numKeysAt(args, 2)
		if len(args) > 1 {
			keys = append([][]byte{args[1]}, keys...)
		}
		return keys
	case "zunion", "zinter", "zdiff", "sintercard", "zintercard", "lmpop", "zmpop":
		return numKeysAt(args, 1)
	case "blmpop", "bzmpop":
		return numKeysAt(args, 2)
	case "sort", "sort_ro":
		keys := [][]byte{}
		if len(args) > 1 {
			keys = append(keys, args[1])
		}
		for i := 2; i+1 < len(args); i++ {
			if strings.EqualFold(string(args[i]), "store") {
				keys = append(keys, args[i+1])
			}
		}
		return keys
	case "xread", "xreadgroup":
		if i, _ := xreadStreamsAt(args); i > 0 {
			rest := args[i+1:]
			return rest[:len(rest)/2]
		}
		return nil
	case "georadius", "georadiusbymember":
		keys := [][]byte{}
		if len(args) > 1 {
			keys = append(keys, args[1])
		}
		for i := 2; i+1 < len(args); i++ {
			if s := string(args[i]); strings.EqualFold(s, "store") || strings.EqualFold(s, "storedist") {
				keys = append(keys, args[i+1])
			}
		}
		return keys
	}
	if info.first <= 0 {
		return nil
	}
	last := info.last
	if last < 0 {
		last = len(args) + last
	}
	step := max(info.step, 1)
	var keys [][]byte
	for i := info.first; i <= last && i < len(args); i += step {
		keys = append(keys, args[i])
	}
	return keys
}

// numKeysAt reads a numkeys argument at position pos and returns that many
// keys after it.
func numKeysAt(args [][]byte, pos int) [][]byte {
	if len(args) <= pos {
		return nil
	}
	n, err := strconv.Atoi(string(args[pos]))
	if err != nil || n < 0 || pos+1+n > len(args) {
		return nil
	}
	return args[pos+1 : pos+1+n]
}

// replicatedConfig lists the CONFIG SET parameters (glob patterns) that are
// safe to apply on every node through the log and are carried in snapshots:
// they change encodings, notifications and diagnostics, never which data a
// node holds. Everything else (memory limits, persistence, networking) is a
// per-node concern and refused.
var replicatedConfig = []string{
	"notify-keyspace-events",
	"hash-max-listpack-entries", "hash-max-listpack-value", "hash-max-ziplist-entries", "hash-max-ziplist-value",
	"list-max-listpack-size", "list-max-ziplist-size", "list-compress-depth",
	"set-max-intset-entries", "set-max-listpack-entries", "set-max-listpack-value",
	"zset-max-listpack-entries", "zset-max-listpack-value", "zset-max-ziplist-entries", "zset-max-ziplist-value",
	"stream-node-max-bytes", "stream-node-max-entries", "hll-sparse-max-bytes",
	"slowlog-log-slower-than", "slowlog-max-len", "latency-monitor-threshold",
	"lfu-log-factor", "lfu-decay-time", "busy-reply-threshold", "lua-time-limit",
}

// configSetAllowed returns "" when every parameter of CONFIG SET may be
// replicated, else the first one that may not.
func configSetAllowed(args [][]byte) string {
	for i := 2; i < len(args); i += 2 {
		name := strings.ToLower(string(args[i]))
		ok := false
		for _, p := range replicatedConfig {
			if p == name {
				ok = true
				break
			}
		}
		if !ok {
			return name
		}
	}
	return ""
}
