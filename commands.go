package main

import (
	"context"
	"fmt"

	"github.com/redraft/redraft/internal/command"
	"github.com/redraft/redraft/internal/resp"
)

// This file is the command table: the one place that says, for every
// command, where it runs (kind), whether MULTI queues it, how it blocks,
// which handler answers it, and why it is refused. Rows come from the
// child's own COMMAND metadata (internal/command): "write" goes through the
// log, "readonly" is a read. specs lists the exceptions; a command with
// neither flag and no row is refused.

// commandKind says where a command is executed.
type commandKind int

const (
	kindRead    commandKind = iota // served by a child, subject to --consistency
	kindWrite                      // proposed through the Raft log
	kindLocal                      // answered by the local child, no consistency check
	kindSelf                       // answered by redraft itself (builtins.go)
	kindRefused                    // answered with an error
)

// inMulti says what a command does while a connection is in MULTI.
type inMulti int

const (
	multiDefault inMulti = iota // reads, writes and local commands are queued; kindSelf is refused
	multiQueue                  // queued (the child runs it inside the transaction)
	multiNow                    // runs at once (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET)
)

// handler answers a kindSelf command for cl.
type handler func(s *frontEnd, ctx context.Context, cl *clientConn, args [][]byte) []byte

// blockPlanner turns a blocking call into its non-blocking form.
type blockPlanner func(b *blocker, ctx context.Context, db int, args [][]byte) (*blockingPlan, []byte)

// commandSpec is one row of exceptions to the COMMAND metadata.
type commandSpec struct {
	kind      commandKind
	refusal   string       // the error for kindRefused
	multi     inMulti      // behaviour inside MULTI
	handle    handler      // kindSelf
	block     blockPlanner // blocking commands
	subscribe bool         // enters subscriber mode
	relay     relayRule    // kindSelf commands a follower relays with --follower-proxy
	noAuth    bool         // allowed before authentication (AUTH, HELLO, QUIT, RESET)
}

// relayRule says when a follower relays a kindSelf command to the leader
// with --follower-proxy (writes always go, reads unless --consistency low).
type relayRule int

const (
	relayNever  relayRule = iota
	relayAlways           // WATCH, WAIT: they concern the leader's log
	relayAsRead           // TTL reads: as reads are
)

// refused builds a refusal row with Redis's "ERR" prefix.
func refused(why string) commandSpec { return commandSpec{kind: kindRefused, refusal: "ERR " + why} }

// answeredBy builds a row for a command redraft answers itself.
func answeredBy(h handler) commandSpec { return commandSpec{kind: kindSelf, handle: h} }

// raftCommands are redraft's own commands: name and arity. The child does
// not know them, so they are added to the table.
var raftCommands = map[string]int{
	"raftaddpeer": -2, "raftremovepeer": 2, "raftleader": 1, "raftsnapshot": 1,
	"raftstate": 1, "raftstats": 1, "raftpeers": 1, "raftdigest": 1, "raftterm": 1,
	"raftbackup": 2, "raftpromote": 2, "rafttransferleader": -1,
}

// commandSpecs is the table of exceptions, by lower-case name (subcommands
// as "config|get"). It is built by a function because handlers refer back
// to the table.
func commandSpecs() map[string]commandSpec {
	hashFieldTTL := "is not supported by redraft: hash-field expiry is not replicated deterministically"
	specs := map[string]commandSpec{
		// Connection state lives in the front end and never enters the log.
		"ping":   {kind: kindSelf, handle: (*frontEnd).ping, multi: multiQueue},
		"echo":   {kind: kindSelf, handle: (*frontEnd).echo, multi: multiQueue},
		"select": {kind: kindSelf, handle: (*frontEnd).selectDB, multi: multiQueue},
		"quit":   {kind: kindSelf, handle: (*frontEnd).quit, multi: multiNow, noAuth: true},
		"reset":  {kind: kindSelf, handle: (*frontEnd).reset, multi: multiNow, noAuth: true},
		"auth":   {kind: kindSelf, handle: (*frontEnd).auth, noAuth: true},
		"hello":  {kind: kindSelf, handle: (*frontEnd).hello, noAuth: true, multi: multiQueue}, // in MULTI: runs at EXEC (resp3.go)
		"client": answeredBy((*frontEnd).client),
		// Transactions: MULTI queues in the front end, EXEC proposes once.
		"multi":   {kind: kindSelf, handle: (*frontEnd).multi, multi: multiNow},
		"exec":    {kind: kindSelf, handle: (*frontEnd).exec, multi: multiNow},
		"discard": {kind: kindSelf, handle: (*frontEnd).discard, multi: multiNow},
		"watch":   {kind: kindSelf, handle: (*frontEnd).watch, multi: multiNow, relay: relayAlways},
		"unwatch": {kind: kindSelf, handle: (*frontEnd).unwatchCommand},
		"info":    {kind: kindSelf, handle: (*frontEnd).info, multi: multiQueue},
		"wait":    {kind: kindSelf, handle: (*frontEnd).wait, relay: relayAlways},
		// Deadlines are shifted inside the child; these are answered from it.
		"ttl":         {kind: kindSelf, handle: (*frontEnd).ttl, multi: multiQueue, relay: relayAsRead},
		"pttl":        {kind: kindSelf, handle: (*frontEnd).ttl, multi: multiQueue, relay: relayAsRead},
		"expiretime":  {kind: kindSelf, handle: (*frontEnd).ttl, multi: multiQueue, relay: relayAsRead},
		"pexpiretime": {kind: kindSelf, handle: (*frontEnd).ttl, multi: multiQueue, relay: relayAsRead},
		// Harmless server introspection answered by the local child.
		"command": {kind: kindLocal}, "time": {kind: kindLocal}, "lastsave": answeredBy((*frontEnd).lastSave),
		"pfselftest": {kind: kindLocal},
		"config|get": {kind: kindSelf, handle: (*frontEnd).configGet, multi: multiQueue}, "config|help": {kind: kindLocal},
		"slowlog": {kind: kindLocal}, "latency": {kind: kindLocal}, "memory": {kind: kindLocal},
		"lolwut": {kind: kindLocal}, "script|exists": answeredBy((*frontEnd).scriptExists),
		"script|help":    {kind: kindLocal},
		"function|stats": {kind: kindLocal}, "function|help": {kind: kindLocal},
		"object|help": {kind: kindLocal},
		// Changes to scripts and functions reach every child through the log.
		"script|load": {kind: kindWrite}, "script|flush": {kind: kindWrite},
		"eval": {kind: kindWrite}, "evalsha": {kind: kindWrite},
		// Replication, persistence and cluster management belong to Raft here.
		"replicaof": refused("REPLICAOF is not supported: replication is done by Raft (see RAFTADDPEER)"),
		"slaveof":   refused("SLAVEOF is not supported: replication is done by Raft (see RAFTADDPEER)"),
		// SYNC and PSYNC send a backup (redis-cli --rdb), nothing more.
		"sync":         answeredBy((*frontEnd).syncCommand),
		"psync":        answeredBy((*frontEnd).syncCommand),
		"replconf":     answeredBy((*frontEnd).replconf),
		"failover":     refused("FAILOVER is not supported: leadership is decided by Raft"),
		"cluster":      answeredBy((*frontEnd).clusterCommand), // cluster.go: --cluster-mode
		"readonly":     answeredBy((*frontEnd).readOnlyCommand),
		"readwrite":    answeredBy((*frontEnd).readOnlyCommand),
		"asking":       answeredBy((*frontEnd).asking),
		"debug":        refused("DEBUG is not supported by redraft"),
		"shutdown":     refused("SHUTDOWN is not supported: stop the redraft process instead"),
		"monitor":      answeredBy((*frontEnd).monitor),
		"migrate":      refused("MIGRATE is not supported by redraft"),
		"save":         answeredBy((*frontEnd).save),
		"bgsave":       answeredBy((*frontEnd).save),
		"bgrewriteaof": refused("BGREWRITEAOF is not supported: durability comes from the Raft log"),
		"module":       refused("MODULE is not supported by redraft"),
		"acl":          refused("ACL is not supported by redraft"),
		"role":         refused("ROLE is not supported: use RAFTSTATE"),
		"sort":         {kind: kindWrite}, // may STORE; SORT_RO is the read form
		// Pub/Sub: PUBLISH is applied on every node, subscriptions are local.
		"publish": {kind: kindWrite}, "spublish": {kind: kindWrite},
		"subscribe":     {kind: kindSelf, handle: (*frontEnd).subscribe, subscribe: true},
		"psubscribe":    {kind: kindSelf, handle: (*frontEnd).subscribe, subscribe: true},
		"ssubscribe":    {kind: kindSelf, handle: (*frontEnd).subscribe, subscribe: true},
		"unsubscribe":   answeredBy((*frontEnd).unsubscribe),
		"punsubscribe":  answeredBy((*frontEnd).unsubscribe),
		"sunsubscribe":  answeredBy((*frontEnd).unsubscribe),
		"pubsub":        {kind: kindLocal},
		"waitaof":       refused("WAITAOF is not supported: durability comes from the Raft log"),
		"fcall":         {kind: kindWrite},
		"function":      {kind: kindLocal},
		"function|list": {kind: kindSelf, handle: (*frontEnd).functionList, relay: relayAsRead},
		"function|load": {kind: kindWrite}, "function|delete": {kind: kindWrite},
		"function|flush": {kind: kindWrite}, "function|restore": {kind: kindWrite},
		"script|debug": refused("SCRIPT DEBUG is not supported by redraft"),
		"config|set":   {kind: kindSelf, handle: (*frontEnd).configSet, multi: multiQueue, relay: relayAlways},
		// A script is killed through the log (scriptwatch.go).
		"script|kill":   answeredBy((*frontEnd).scriptKill),
		"function|kill": answeredBy((*frontEnd).scriptKill),
		// PFCOUNT caches the cardinality inside the value: applied everywhere so
		// every node holds the same bytes.
		"pfcount": {kind: kindWrite},
		// Hash-field expiry (Redis 7.4+) would expire fields by each child's clock.
		"hexpire":          refused("HEXPIRE " + hashFieldTTL),
		"hpexpire":         refused("HPEXPIRE " + hashFieldTTL),
		"hexpireat":        refused("HEXPIREAT " + hashFieldTTL),
		"hpexpireat":       refused("HPEXPIREAT " + hashFieldTTL),
		"hsetex":           refused("HSETEX " + hashFieldTTL),
		"hgetex":           refused("HGETEX " + hashFieldTTL),
		"config|resetstat": refused("CONFIG RESETSTAT is not supported by redraft"),
		"config|rewrite":   refused("CONFIG REWRITE is not supported by redraft"),
		"xreadgroup":       {kind: kindWrite, block: (*blocker).planXRead},
		"xread":            {kind: kindRead, block: (*blocker).planXRead},
		"xautoclaim":       {kind: kindWrite},
		"xclaim":           {kind: kindWrite},
		// Blocking commands wait in the front end (blocking.go).
		"blpop": {kind: kindWrite, block: planPop}, "brpop": {kind: kindWrite, block: planPop},
		"bzpopmin": {kind: kindWrite, block: planPop}, "bzpopmax": {kind: kindWrite, block: planPop},
		"brpoplpush": {kind: kindWrite, block: planMove}, "blmove": {kind: kindWrite, block: planMove},
		"blmpop": {kind: kindWrite, block: planMPop}, "bzmpop": {kind: kindWrite, block: planMPop},
	}
	for name := range raftCommands {
		specs[name] = answeredBy((*frontEnd).raftCommand)
	}
	specs["raftbackup"] = answeredBy((*frontEnd).raftBackup)
	return specs
}

// commandInfo is one resolved row: COMMAND's metadata and its spec.
type commandInfo struct {
	*command.Info
	commandSpec
}

// commandTable resolves a command to its row.
type commandTable struct {
	meta *command.Table
	rows map[*command.Info]*commandInfo
}

// newCommandTable combines the child's metadata with the spec rows.
func newCommandTable(meta *command.Table) *commandTable {
	for name, arity := range raftCommands {
		meta.Add(&command.Info{Name: name, Arity: arity, Unmonitored: true})
	}
	t := &commandTable{meta: meta, rows: make(map[*command.Info]*commandInfo)}
	specs := commandSpecs()
	meta.All(func(info *command.Info) { t.resolve(info, specs, nil) })
	return t
}

// resolve gives info its row: its own spec, else its flags, else its
// container's spec, else a refusal; then does the same for subcommands.
func (t *commandTable) resolve(info *command.Info, specs map[string]commandSpec, parent *commandSpec) {
	spec, ok := specs[info.Name]
	switch {
	case ok:
	case info.Write:
		spec = commandSpec{kind: kindWrite}
	case info.ReadOnly:
		spec = commandSpec{kind: kindRead}
	case parent != nil:
		spec = *parent
	default:
		spec = refused(fmt.Sprintf("command '%s' is not supported by redraft", info.DisplayName()))
	}
	t.rows[info] = &commandInfo{Info: info, commandSpec: spec}
	var inherit *commandSpec
	if ok || parent != nil {
		inherit = &spec
	}
	for _, sub := range info.Subs {
		t.resolve(sub, specs, inherit)
	}
}

// lookup finds the row for args, nil for an unknown command.
func (t *commandTable) lookup(args [][]byte) *commandInfo {
	info := t.meta.Lookup(args)
	if info == nil {
		return nil
	}
	return t.rows[info]
}

// isBlockingCall reports whether this invocation would block in Redis.
func (ci *commandInfo) isBlockingCall(args [][]byte) bool {
	return ci.block != nil && command.IsBlockingCall(ci.Info, args)
}

// queueable reports whether MULTI queues the command (rather than
// refusing it or running it at once).
func (ci *commandInfo) queueable() bool {
	switch ci.multi {
	case multiQueue:
		return true
	case multiNow:
		return false
	}
	return ci.kind != kindSelf
}

// check runs the checks every command passes before it runs, whether sent
// directly, queued in MULTI or relayed to the leader: unknown command, wrong
// arity, refused, Redis Cluster's redirection (cluster mode), out of memory,
// what Redis Cluster refuses (cluster mode), CONFIG SET of a per-node
// parameter. It returns the error reply, or nil. cl is nil for a
// connection that must authenticate first (only the first two apply).
func (s *frontEnd) check(cl *clientConn, ci *commandInfo, args [][]byte) []byte {
	switch {
	case ci == nil:
		return resp.Error(command.UnknownCommandError(args))
	case !ci.ArityOK(len(args)):
		return resp.Error(ci.ArityError())
	case ci.kind == kindRefused:
		return resp.Error(ci.refusal)
	}
	if reply := s.clusterRedirect(cl, ci, args); reply != nil {
		return reply
	}
	if ci.DenyOOM && s.overMemory() {
		return resp.Error("OOM command not allowed when used memory > 'maxmemory'.")
	}
	return s.clusterRefusal(ci, args)
}

// route says where one command goes.
type route int

const (
	routeError      route = iota // check failed; the reply is the error
	routeWrite                   // into the log
	routeRead                    // to a child connection, after --consistency
	routeLocal                   // to a child connection, no check
	routeSelf                    // answered by a handler
	routeBlock                   // a blocking call: waits in the front end
	routeSubscribe               // enters subscriber mode
	routeRelay                   // sent to the leader (--follower-proxy)
	routeRelayBlock              // a blocking call sent to the leader, which waits
)

// route classifies one invocation for cl; a failed check routes to the
// error. With --follower-proxy, a follower relays what it may not serve.
func (s *frontEnd) route(cl *clientConn, ci *commandInfo, args [][]byte) route {
	if s.check(cl, ci, args) != nil {
		return routeError
	}
	if s.relay.active() && s.leaderOnly(cl, ci, args) {
		if ci.isBlockingCall(args) {
			return routeRelayBlock // the leader's front end does the waiting
		}
		return routeRelay
	}
	switch {
	case ci.isBlockingCall(args):
		return routeBlock
	case ci.subscribe:
		return routeSubscribe
	case ci.kind == kindWrite:
		return routeWrite
	case ci.kind == kindRead:
		return routeRead
	case ci.kind == kindLocal:
		return routeLocal
	}
	return routeSelf
}

// leaderOnly reports whether only the leader may serve this invocation for
// cl: writes, reads above the connection's read level (--consistency, or
// low after READONLY), and the commands redraft answers itself that concern
// the leader (their relay rule). A follower relays these to the leader with
// --follower-proxy, and answers them with -MOVED in cluster mode.
func (s *frontEnd) leaderOnly(cl *clientConn, ci *commandInfo, args [][]byte) bool {
	low := s.reads.forClient(cl).level == consistencyLow
	switch {
	case ci.isBlockingCall(args):
		return !(ci.kind == kindRead && low)
	case ci.subscribe:
		return false
	case ci.kind == kindWrite:
		return true
	case ci.kind == kindRead:
		return !low
	case ci.kind == kindLocal:
		return false
	}
	return ci.relay == relayAlways || (ci.relay == relayAsRead && !low)
}
