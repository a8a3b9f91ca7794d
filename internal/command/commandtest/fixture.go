// Package commandtest holds a hand-written excerpt of Redis 7's COMMAND
// reply for tests that need a command table without a child.
package commandtest

import (
	"testing"

	"github.com/redraft/redraft/internal/command"
)

// Entry builds one parsed COMMAND entry the way parseReply returns it for
// Redis 7: name (bulk), arity, flags (status strings), first, last, step,
// ACL categories, tips, key specs, subcommands.
func Entry(name string, arity int, flags []string, first, last, step int, subs ...any) any {
	fl := make([]any, len(flags))
	for i, f := range flags {
		fl[i] = f
	}
	return []any{
		[]byte(name), int64(arity), fl, int64(first), int64(last), int64(step),
		[]any{"@keyspace"}, []any{}, []any{}, append([]any{}, subs...),
	}
}

// Entries is a hand-written excerpt of Redis 7's COMMAND reply,
// enough for the tests of this package.
func Entries() []any {
	w := []string{"write", "denyoom"}
	wf := []string{"write", "fast"}
	ro := []string{"readonly", "fast"}
	scr := []string{"noscript", "skip_monitor", "may_replicate", "no_mandatory_keys", "stale", "movablekeys"}
	adm := []string{"admin", "noscript", "loading", "stale"}
	return []any{
		Entry("get", 2, ro, 1, 1, 1),
		Entry("mget", -2, ro, 1, -1, 1),
		Entry("set", -3, w, 1, 1, 1),
		Entry("mset", -3, w, 1, -1, 2),
		Entry("del", -2, []string{"write"}, 1, -1, 1),
		Entry("getex", -2, wf, 1, 1, 1),
		Entry("setex", 4, w, 1, 1, 1),
		Entry("psetex", 4, w, 1, 1, 1),
		Entry("expire", -3, wf, 1, 1, 1),
		Entry("pexpire", -3, wf, 1, 1, 1),
		Entry("expireat", -3, wf, 1, 1, 1),
		Entry("pexpireat", -3, wf, 1, 1, 1),
		Entry("restore", -4, w, 1, 1, 1),
		Entry("rename", 3, []string{"write"}, 1, 2, 1),
		Entry("renamenx", 3, wf, 1, 2, 1),
		Entry("copy", -3, w, 1, 2, 1),
		Entry("move", 3, wf, 1, 1, 1),
		Entry("swapdb", 3, wf, 0, 0, 0),
		Entry("flushdb", -1, []string{"write"}, 0, 0, 0),
		Entry("flushall", -1, []string{"write"}, 0, 0, 0),
		Entry("xadd", -5, []string{"write", "denyoom", "fast"}, 1, 1, 1),
		Entry("spop", -2, wf, 1, 1, 1),
		Entry("eval", -3, scr, 0, 0, 0),
		Entry("evalsha", -3, scr, 0, 0, 0),
		Entry("eval_ro", -3, []string{"readonly", "noscript", "movablekeys"}, 0, 0, 0),
		Entry("evalsha_ro", -3, []string{"readonly", "noscript", "movablekeys"}, 0, 0, 0),
		Entry("script", -2, nil, 0, 0, 0,
			Entry("script|load", 3, []string{"noscript", "stale"}, 0, 0, 0),
			Entry("script|flush", -2, []string{"noscript"}, 0, 0, 0),
			Entry("script|exists", -3, []string{"noscript"}, 0, 0, 0),
			Entry("script|kill", 2, []string{"noscript"}, 0, 0, 0),
		),
		Entry("config", -2, nil, 0, 0, 0,
			Entry("config|get", -3, adm, 0, 0, 0),
			Entry("config|set", -4, adm, 0, 0, 0),
			Entry("config|frobnicate", 2, adm, 0, 0, 0), // no policy
		),
		Entry("client", -2, nil, 0, 0, 0,
			Entry("client|list", -2, adm, 0, 0, 0),
			Entry("client|setname", 3, []string{"noscript", "loading", "stale"}, 0, 0, 0),
			Entry("client|peek", 3, []string{"readonly"}, 0, 0, 0), // own flag wins
		),
		Entry("object", -2, nil, 0, 0, 0,
			Entry("object|encoding", 3, []string{"readonly"}, 2, 2, 1),
			Entry("object|help", 2, []string{"loading", "stale"}, 0, 0, 0),
		),
		Entry("memory", -2, nil, 0, 0, 0,
			Entry("memory|usage", -3, []string{"readonly"}, 2, 2, 1),
			Entry("memory|doctor", 2, nil, 0, 0, 0),
		),
		Entry("ping", -1, []string{"fast", "sentinel"}, 0, 0, 0),
		Entry("ttl", 2, []string{"readonly", "fast"}, 1, 1, 1),
		Entry("pttl", 2, []string{"readonly", "fast"}, 1, 1, 1),
		Entry("pexpiretime", 2, []string{"readonly", "fast"}, 1, 1, 1),
		Entry("debug", -2, []string{"admin", "noscript", "loading", "stale"}, 0, 0, 0),
		Entry("lolwut", -1, []string{"readonly", "fast"}, 0, 0, 0),
		Entry("bogus", -1, []string{"admin"}, 0, 0, 0),
		Entry("zunionstore", -4, []string{"write", "denyoom", "movablekeys"}, 1, 1, 1),
		Entry("zinterstore", -4, []string{"write", "denyoom", "movablekeys"}, 1, 1, 1),
		Entry("zunion", -3, []string{"readonly", "movablekeys"}, 0, 0, 0),
		Entry("sort", -2, []string{"write", "denyoom", "movablekeys"}, 1, 1, 1),
		Entry("sort_ro", -2, []string{"readonly", "movablekeys"}, 1, 1, 1),
		Entry("xread", -4, []string{"readonly", "blocking", "movablekeys"}, 0, 0, 0),
		Entry("xreadgroup", -7, []string{"write", "blocking", "movablekeys"}, 0, 0, 0),
		Entry("lmpop", -4, []string{"write", "movablekeys"}, 0, 0, 0),
		Entry("blmpop", -5, []string{"write", "blocking", "movablekeys"}, 0, 0, 0),
		Entry("blpop", -3, []string{"write", "blocking"}, 1, -2, 1),
		Entry("georadius", -6, []string{"write", "denyoom", "movablekeys"}, 1, 1, 1),
		Entry("sintercard", -3, []string{"readonly", "movablekeys"}, 0, 0, 0),
		Entry("publish", 3, []string{"pubsub", "loading", "stale", "fast", "may_replicate"}, 0, 0, 0),
	}
}

// Table builds a command table from Entries.
func Table(tb testing.TB) *command.Table {
	tb.Helper()
	t, err := command.NewTable(Entries())
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// Argv turns strings into command arguments.
func Argv(s ...string) [][]byte {
	out := make([][]byte, len(s))
	for i, a := range s {
		out[i] = []byte(a)
	}
	return out
}

// Strs renders arguments as strings for comparisons.
func Strs(b [][]byte) []string {
	out := make([]string, len(b))
	for i, a := range b {
		out[i] = string(a)
	}
	return out
}
