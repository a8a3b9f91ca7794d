package main

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/redraft/redraft/internal/resp"
)

// replicatedConfig lists the CONFIG SET parameters that are safe to apply on
// every node through the log and are carried in snapshots: they change
// encodings, notifications and diagnostics, never which data a node holds.
// Everything else (memory limits, persistence, networking) is a per-node
// concern and refused.
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

// configSetRefused returns "" when every parameter of CONFIG SET args may be
// replicated, else the first one that may not.
func configSetRefused(args [][]byte) string {
	for i := 2; i < len(args); i += 2 {
		name := strings.ToLower(string(args[i]))
		ok := name == requirePassParam
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

// requirePassParam is the one CONFIG parameter redraft holds itself rather
// than the child: the client password. Were it set in the child, redraft's
// own connections to the child would need AUTH.
const requirePassParam = "requirepass"

// requirePass is the client password. A value set through the log (CONFIG
// SET requirepass) replaces, on every node, the --requirepass the node
// started with, and is carried in snapshots. The front end reads it for
// every AUTH; the apply path writes it. Safe for concurrent use.
type requirePass struct {
	startup    string                 // --requirepass
	replicated atomic.Pointer[string] // set through the log; nil: never
}

// get is the password clients must give ("" for none).
func (p *requirePass) get() string {
	if v := p.replicated.Load(); v != nil {
		return *v
	}
	return p.startup
}

// set records a value applied from the log.
func (p *requirePass) set(v string) { p.replicated.Store(&v) }

// fromLog is the value set through the log, if any (for snapshots).
func (p *requirePass) fromLog() (string, bool) {
	if v := p.replicated.Load(); v != nil {
		return *v, true
	}
	return "", false
}

// forget drops the value set through the log (before a snapshot restore).
func (p *requirePass) forget() { p.replicated.Store(nil) }

// planConfigSet splits CONFIG SET args into what the child runs and the
// requirepass value redraft keeps (nil when not set). A CONFIG SET of
// requirepass alone leaves nothing for the child: child is nil then.
func planConfigSet(args [][]byte) (child [][]byte, password *string) {
	if len(args)%2 != 0 {
		return args, nil // a syntax error, which the child reports
	}
	child = args[:2:2]
	for i := 2; i+1 < len(args); i += 2 {
		if strings.EqualFold(string(args[i]), requirePassParam) {
			v := string(args[i+1])
			password = &v
			continue
		}
		child = append(child, args[i], args[i+1])
	}
	if len(child) == 2 {
		return nil, password
	}
	return child, password
}

// configSetMalformed returns Redis's error for a CONFIG SET whose
// arguments do not pair up or name a parameter twice, or nil. The child
// never sees requirepass, so redraft checks these itself.
func configSetMalformed(args [][]byte) []byte {
	if len(args)%2 != 0 {
		return resp.Error("ERR syntax error")
	}
	seen := make(map[string]bool, len(args)/2)
	for i := 2; i < len(args); i += 2 {
		name := strings.ToLower(string(args[i]))
		if seen[name] {
			return resp.Error(fmt.Sprintf("ERR CONFIG SET failed (possibly related to argument '%s') - duplicate parameter", args[i]))
		}
		seen[name] = true
	}
	return nil
}

// withRequirePass puts password into a CONFIG GET reply (the child holds
// no password and reports requirepass as ""), keeping the child's order
// and the parameter name as the reply spells it.
func withRequirePass(raw []byte, password string) []byte {
	items, err := resp.ArrayItems(raw)
	if err != nil || len(items)%2 != 0 {
		return raw
	}
	changed := false
	for i := 0; i+1 < len(items); i += 2 {
		name, ok := resp.ReplyString(items[i])
		if ok && strings.EqualFold(name, requirePassParam) {
			items[i+1] = resp.Bulk(password)
			changed = true
		}
	}
	if !changed {
		return raw
	}
	out := resp.ArrayHeader(len(items))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}
