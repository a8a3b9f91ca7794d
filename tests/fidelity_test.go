package tests

// Redis fidelity: commands redraft rewrites, intercepts or answers itself,
// sent with good and hostile arguments to a redraft cluster and to a bare
// redis-server in the same order; the replies must be the same bytes.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// fidelityEnv is a 3-node cluster and a bare redis-server.
type fidelityEnv struct {
	nodes []*Node
	bare  *bareRedis
}

func TestFidelity(t *testing.T) {
	env := &fidelityEnv{nodes: startCluster(t, 3, nodeOpts{Consistency: "low"}), bare: startBareRedis(t)}
	t.Run("RewrittenCommands", env.rewrittenCommands)
	t.Run("BlockedXReadGroup", env.blockedXReadGroup)
	t.Run("XAddAfterFutureID", env.xaddAfterFutureID)
	t.Run("ScriptCacheStaysSmall", env.scriptCacheStaysSmall)
	t.Run("ServerCommands", env.serverCommands)
	t.Run("BlockedClientShows", env.blockedClientShows)
	t.Run("ResetLeavesSubscriberMode", env.resetLeavesSubscriberMode)
	t.Run("NoMultiCommands", env.noMultiCommands)
	t.Run("MaxmemoryOnEveryNode", env.maxmemoryOnEveryNode)
}

// maxmemoryOnEveryNode: CONFIG SET maxmemory is the cluster's write limit,
// set through the log; every node reports it and refuses writes over it.
func (e *fidelityEnv) maxmemoryOnEveryNode(t *testing.T) {
	l := e.leader(t)
	sDo(t, l, "CONFIG", "SET", "maxmemory", "1kb")
	defer l.MustDo("CONFIG", "SET", "maxmemory", "0")
	for _, n := range e.nodes {
		eventually(t, 15*time.Second, func() error {
			v, err := n.Do("CONFIG", "GET", "maxmemory")
			if fmt.Sprint(v) != "[maxmemory 1024]" {
				return fmt.Errorf("%s: CONFIG GET maxmemory = %v, %v", n, v, err)
			}
			return nil
		})
	}
	sErr(t, l, "OOM command not allowed when used memory > 'maxmemory'.", "SET", "mm:k", "v")
	v, err := l.Do("DEL", "mm:k")
	sCheck(t, err == nil && v == int64(0), "DEL (no new memory) over the limit: %v, %v", v, err)
}

func (e *fidelityEnv) leader(t *testing.T) *Node {
	t.Helper()
	return waitLeader(t, e.nodes...)
}

// rewrittenCommands runs a corpus aimed at every command redraft rewrites
// (TTLs, random choices, IDs from the clock, scripts), then checks that the
// cluster's nodes agree.
func (e *fidelityEnv) rewrittenCommands(t *testing.T) {
	l := e.leader(t)
	bare := dialAddrRaw(t, e.bare.Addr)
	bare.do(t, "FLUSHALL")
	bare.do(t, "SET", "dumpme", "payload")
	dump := strings.TrimPrefix(bare.do(t, "DUMP", "dumpme"), "$")
	bare.do(t, "FLUSHALL")
	l.MustDo("FLUSHALL")

	far := strconv.FormatInt(time.Now().Add(1000*time.Hour).Unix(), 10)
	farMS := strconv.FormatInt(time.Now().Add(1000*time.Hour).UnixMilli(), 10)
	cmds := [][]string{
		// Expiry: options, ranges, and absolute times that are already past.
		{"SET", "k", "v"},
		{"EXPIRE", "k", "100"}, {"TTL", "k"}, {"EXPIRE", "missing", "100"},
		{"EXPIRE", "k", "abc"}, {"EXPIRE", "k", "100", "NX"}, {"EXPIRE", "k", "200", "XX"},
		{"EXPIRE", "k", "50", "GT"}, {"EXPIRE", "k", "500", "LT"}, {"EXPIRE", "k", "10", "NX", "XX"},
		{"EXPIRE", "k", "10", "GT", "LT"}, {"EXPIRE", "k", "10", "bogus"}, {"EXPIRE", "k", "10", "nx"},
		{"EXPIRE", "k", "9223372036854775807"}, {"EXPIRE", "k", "-9223372036854775808"},
		{"PEXPIRE", "k", "9223372036854775807"}, {"EXPIRE", "k", "9223372036854775"},
		{"EXPIRE", "k", ""}, {"EXPIRE", "k", " 10"}, {"EXPIRE", "k", "10.5"},
		{"EXPIREAT", "k", far}, {"EXPIRETIME", "k"}, {"PEXPIREAT", "k", farMS}, {"PEXPIRETIME", "k"},
		{"PERSIST", "k"}, {"TTL", "k"}, {"PTTL", "k"}, {"EXPIRETIME", "k"}, {"TTL", "missing"}, {"PEXPIRETIME", "missing"},
		{"EXPIRE", "k", "-1"}, {"EXISTS", "k"},
		{"SET", "k", "v"}, {"PEXPIREAT", "k", "1"}, {"EXISTS", "k"},
		{"SET", "k", "v"}, {"EXPIREAT", "k", "0", "GT"}, {"EXISTS", "k"},
		{"SET", "k", "v"}, {"EXPIRE", "k", "+5"}, {"EXPIRE", "k", "05"}, {"EXPIRE", "k", "-0"}, {"PEXPIRE", "k", "1e3"},
		{"SETEX", "k", "+5", "v"}, {"SET", "k", "v", "EX", "010"}, {"GETEX", "k", "PX", "+100"}, {"SPOP", "missing", "+1"},
		{"MOVE", "k", "+1"}, {"SWAPDB", "+0", "1"}, {"COPY", "k", "k2", "DB", "01"}, {"SELECT", "+1"}, {"SELECT", "00"}, {"SET", "k", "v"},
		// SET and friends.
		{"SET", "k", "v", "EX", "0"}, {"SET", "k", "v", "EX", "-5"}, {"SET", "k", "v", "EX", "abc"},
		{"SET", "k", "v", "PX", "100", "EX", "100"}, {"SET", "k", "v", "KEEPTTL", "EX", "10"},
		{"SET", "k", "v", "EX", "9223372036854775807"}, {"SET", "k", "v", "PX", "9223372036854775807"},
		{"SET", "k", "v", "EXAT", "1"}, {"EXISTS", "k"}, {"SET", "k", "v", "PXAT", farMS}, {"PEXPIRETIME", "k"},
		{"SET", "k", "v2", "KEEPTTL", "GET"}, {"PEXPIRETIME", "k"}, {"SET", "k", "v", "NX", "GET"},
		{"SET", "k", "v", "XX", "NX"}, {"SET", "k", "v", "EX"}, {"SET", "k", "v", "ex", "10", "get"}, {"TTL", "k"},
		{"LPUSH", "list", "a"}, {"SET", "list", "v", "GET"}, {"SET", "list", "v", "EX", "10", "GET"},
		{"GETEX", "k", "EX", "0"}, {"GETEX", "k", "PERSIST", "EX", "10"}, {"GETEX", "missing", "EX", "10"},
		{"GETEX", "list", "EX", "10"}, {"GETEX", "k", "EXAT", far}, {"EXPIRETIME", "k"}, {"GETEX", "k", "PERSIST"}, {"TTL", "k"},
		{"GETEX", "k", "PX", "-1"}, {"GETEX", "k", "EX", "9223372036854775807"}, {"GETEX", "k", "bogus"},
		{"SETEX", "k", "0", "v"}, {"SETEX", "k", "-1", "v"}, {"SETEX", "k", "abc", "v"}, {"PSETEX", "k", "0", "v"},
		{"SETEX", "k", "9223372036854775807", "v"}, {"SETEX", "k", "100", "v"}, {"TTL", "k"}, {"PSETEX", "k", "100000", "v"},
		{"GETDEL", "k"}, {"GETDEL", "list"},
		// RESTORE.
		{"RESTORE", "r", "0", "garbage"}, {"RESTORE", "r", "-1", dump}, {"RESTORE", "r", "abc", dump},
		{"RESTORE", "r", "0", dump}, {"GET", "r"}, {"RESTORE", "r", "0", dump}, {"RESTORE", "r", "0", dump, "REPLACE"},
		{"RESTORE", "r", farMS, dump, "REPLACE", "ABSTTL"}, {"PEXPIRETIME", "r"},
		{"RESTORE", "r", "1", dump, "REPLACE", "ABSTTL"}, {"EXISTS", "r"},
		{"RESTORE", "r", "0", dump, "IDLETIME", "-1"}, {"RESTORE", "r", "0", dump, "FREQ", "300"},
		{"RESTORE", "r", "0", dump, "IDLETIME", "10", "FREQ", "10"}, {"RESTORE", "r", "0", dump, "bogus"},
		{"RESTORE", "r", "5000", dump, "REPLACE"}, {"TTL", "r"},
		// RENAME, COPY, MOVE, SWAPDB, FLUSH*.
		{"RENAME", "missing", "x"}, {"RENAMENX", "missing", "x"}, {"RENAME", "r", "r"}, {"RENAMENX", "r", "r"},
		{"RENAME", "r", "r2"}, {"TTL", "r2"}, {"SET", "r", "v"}, {"RENAMENX", "r", "r2"}, {"RENAMENX", "r2", "r3"},
		{"COPY", "r3", "r4", "DB", "16"}, {"COPY", "r3", "r3"}, {"COPY", "r3", "r4", "DB", "abc"},
		{"COPY", "r3", "r4"}, {"COPY", "r3", "r4"}, {"COPY", "r3", "r4", "REPLACE"}, {"TTL", "r4"},
		{"COPY", "r3", "r4", "DB", "1", "REPLACE", "bogus"}, {"COPY", "missing", "r5"}, {"COPY", "r3", "r4", "DB", "1"},
		{"MOVE", "r4", "16"}, {"MOVE", "r4", "0"}, {"MOVE", "r4", "abc"}, {"MOVE", "r4", "1"}, {"MOVE", "r4", "2"},
		{"SWAPDB", "0", "16"}, {"SWAPDB", "a", "b"}, {"SWAPDB", "0", "b"}, {"SWAPDB", "0", "-1"}, {"SWAPDB", "1", "1"},
		{"SWAPDB", "0", "1"}, {"DBSIZE"}, {"SWAPDB", "0", "1"}, {"DBSIZE"},
		{"FLUSHDB", "bogus"}, {"FLUSHALL", "bogus"}, {"FLUSHDB", "ASYNC", "SYNC"},
		// XADD.
		{"XADD", "s", "0-0", "f", "v"}, {"XADD", "s", "5-5", "f", "v"}, {"XADD", "s", "5-4", "f", "v"},
		{"XADD", "s", "5-*", "f", "v"}, {"XADD", "s", "4-*", "f", "v"}, {"XADD", "s", "badid", "f", "v"},
		{"XADD", "s", "*", "f"}, {"XADD", "s", "*", "f", "v", "g"}, {"XADD", "nostream", "NOMKSTREAM", "*", "f", "v"},
		{"XADD", "s", "MAXLEN", "abc", "*", "f", "v"}, {"XADD", "s", "MAXLEN", "-1", "*", "f", "v"},
		{"XADD", "s", "LIMIT", "5", "*", "f", "v"}, {"XADD", "s", "MAXLEN", "1", "LIMIT", "5", "*", "f", "v"},
		{"XADD", "s", "MAXLEN", "~", "10", "LIMIT", "-1", "*", "f", "v"}, {"XADD", "s", "MINID", "10-0", "MAXLEN", "1", "*", "f", "v"},
		{"XADD", "list", "*", "f", "v"}, {"XADD", "s", "18446744073709551615-18446744073709551615", "f", "v"},
		{"XADD", "s2", "18446744073709551615-18446744073709551615", "f", "v"}, {"XADD", "s2", "*", "f", "v"},
		{"XADD", "s2", "18446744073709551615-*", "f", "v"},
		{"XADD", "s", "MAXLEN", "0", "6-0", "f", "v"}, {"XLEN", "s"}, {"XADD", "s", "NOMKSTREAM", "MAXLEN", "=", "2", "7-0", "f", "v"},
		// SPOP.
		{"SPOP", "list"}, {"SPOP", "list", "1"}, {"SPOP", "missing"}, {"SPOP", "missing", "3"}, {"SPOP", "missing", "-1"},
		{"SADD", "set", "3", "1", "2"}, {"SPOP", "set", "-1"}, {"SPOP", "set", "abc"}, {"SPOP", "set", "0"},
		{"SPOP", "set", "1", "2"}, {"SPOP", "set", "10"}, {"EXISTS", "set"}, {"SADD", "set", "only"}, {"SPOP", "set"},
		{"SPOP", "set", "9223372036854775807"}, {"SRANDMEMBER", "list"}, {"SRANDMEMBER", "missing", "-5"},
		// Consumer groups.
		{"XREADGROUP", "GROUP", "g", "c", "STREAMS", "missing", ">"}, {"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"},
		{"XREADGROUP", "GROUP", "g", "c", "STREAMS", "list", ">"}, {"XGROUP", "CREATE", "s", "g", "0"},
		{"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s"}, {"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "bad"},
		{"XREADGROUP", "GROUP", "g", "c", "COUNT", "abc", "STREAMS", "s", ">"}, {"XREADGROUP", "GROUP", "g", "c", "COUNT", "-1", "STREAMS", "s", ">"},
		{"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "s2", ">"}, {"XREADGROUP", "GROUP", "g", "c", "BLOCK", "abc", "STREAMS", "s", ">"},
		{"XREADGROUP", "GROUP", "g", "c", "BLOCK", "-1", "STREAMS", "s", ">"},
		{"XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">"}, {"XREADGROUP", "GROUP", "g", "c", "NOACK", "STREAMS", "s", ">"},
		{"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "0"}, {"XREADGROUP", "GROUP", "g", "c2", "BLOCK", "10", "STREAMS", "s", ">"},
		{"XCLAIM", "s", "g", "c2", "0", "6-0", "7-0"}, {"XCLAIM", "s", "g", "c2", "0", "6-0", "JUSTID"},
		{"XCLAIM", "s", "g", "c2", "abc", "6-0"}, {"XCLAIM", "s", "g", "c2", "0", "bad"}, {"XCLAIM", "s", "nogroup", "c2", "0", "6-0"},
		{"XCLAIM", "s", "g", "c2", "0", "6-0", "IDLE", "abc"}, {"XCLAIM", "s", "g", "c2", "0", "6-0", "TIME", "-1", "JUSTID"},
		{"XCLAIM", "s", "g", "c2", "0", "6-0", "RETRYCOUNT", "-1"}, {"XCLAIM", "missing", "g", "c2", "0", "6-0"},
		{"XCLAIM", "list", "g", "c2", "0", "6-0"}, {"XCLAIM", "s", "g", "c3", "0", "6-0", "FORCE", "LASTID", "7-0", "JUSTID"},
		{"XAUTOCLAIM", "s", "g", "c", "0", "0-0", "COUNT", "10", "JUSTID"}, {"XAUTOCLAIM", "s", "g", "c", "0", "0-0"},
		{"XAUTOCLAIM", "s", "g", "c", "0", "0-0", "COUNT", "0"}, {"XAUTOCLAIM", "s", "g", "c", "abc", "0-0"},
		{"XAUTOCLAIM", "s", "g", "c", "0", "bad"}, {"XAUTOCLAIM", "s", "nogroup", "c", "0", "0-0"},
		{"XAUTOCLAIM", "missing", "g", "c", "0", "0-0"}, {"XAUTOCLAIM", "s", "g", "c", "0", "0-0", "bogus"},
		{"XAUTOCLAIM", "s", "g", "c", "0", "0-0", "COUNT", "9223372036854775807"},
		{"XPENDING", "s", "g"}, {"XINFO", "GROUPS", "s"},
		{"XAUTOCLAIM", "s", "g", "c", "0", "(0-0", "JUSTID"}, {"XAUTOCLAIM", "s", "g", "c", "0", "(18446744073709551615-18446744073709551615"},
		{"XAUTOCLAIM", "s", "g", "c", "0", "-", "COUNT", "1", "JUSTID"}, {"XAUTOCLAIM", "s", "g", "c", "0", "+"},
		{"XAUTOCLAIM", "s", "g", "c", "-5", "5", "COUNT", "576460752303423487"}, {"XAUTOCLAIM", "s", "g", "c", "0", "0-0", "COUNT", "576460752303423488"},
		{"XAUTOCLAIM", "s", "g", "c", "+5", "0-0"}, {"XAUTOCLAIM", "s", "g", "c", "0", "0-0", "COUNT"}, {"XAUTOCLAIM", "s", "g", "c", "0", "(-"},
		{"XCLAIM", "s", "g", "c4", "0", "5", "6", "JUSTID"}, {"XCLAIM", "s", "g", "c4", "-1", " 6-0", "JUSTID"},
		{"XCLAIM", "s", "g", "c4", "0", "6-0", "IDLE"}, {"XCLAIM", "s", "g", "c4", "0", "6-0", "LASTID", "bad"},
		{"XCLAIM", "s", "g", "c4", "0", "6-0", "IDLE", "-5", "TIME", "99999999999999", "RETRYCOUNT", "7", "JUSTID"}, {"XPENDING", "s", "g"},
		{"XCLAIM", "s", "g", "c4", "0", "6-*", "JUSTID"}, {"XCLAIM", "s", "g", "c4", "0", "6-0", "+1"},
		// Scripts and functions the front end rewrites.
		{"SCRIPT", "LOAD", "return +"}, {"SCRIPT", "LOAD", "return 1"}, {"SCRIPT", "LOAD"}, {"SCRIPT", "FLUSH", "bogus"},
		{"SCRIPT", "FLUSH", "ASYNC"}, {"EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"},
		{"FUNCTION", "LOAD", "bogus"}, {"FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('f', function() return redis.call('TIME')[1] + 0 > 0 end)"},
		{"FCALL", "f", "0"}, {"FCALL", "f", "-1"}, {"FCALL", "f", "abc"}, {"FCALL", "nosuch", "0"}, {"FCALL_RO", "f", "0"},
		{"FUNCTION", "RESTORE", "garbage"}, {"FUNCTION", "RESTORE", "garbage", "bogus"}, {"FUNCTION", "DELETE", "lib"},
		{"CONFIG", "SET", "notify-keyspace-events", "bogus"}, {"CONFIG", "SET", "notify-keyspace-events", "KEA"},
		{"CONFIG", "GET", "notify-keyspace-events"}, {"CONFIG", "SET", "notify-keyspace-events", ""},
		{"CONFIG", "SET", "busy-reply-threshold", "abc"}, {"CONFIG", "SET", "lua-time-limit", "-5"},
		{"CONFIG", "SET", "save", ""}, {"CONFIG", "SET", "appendonly", "no"}, {"CONFIG", "SET", "nosuch", "1"},
		{"CONFIG", "SET", "hash-max-listpack-entries", "64", "hash-max-listpack-entries", "32"},
		{"CONFIG", "SET", "hash-max-listpack-entries"}, {"CONFIG", "SET", "hash-max-listpack-entries", "abc"},
		{"CONFIG", "SET", "hash-max-listpack-entries", "128"}, {"CONFIG", "GET", "hash-max-listpack-entries"},
		{"CONFIG", "SET", "maxmemory", "100mb"}, {"CONFIG", "GET", "maxmemory"}, {"CONFIG", "SET", "maxmemory", "-1"},
		{"CONFIG", "SET", "maxmemory", "1"}, {"SET", "oom", "1"}, {"GET", "oom"}, {"CONFIG", "SET", "maxmemory", "0"}, {"SET", "oom", "1"},
		{"CONFIG", "SET", "daemonize", "no"}, {"CONFIG", "SET", "save", ""}, {"CONFIG", "SET", "save", "", "maxmemory", "0"},
	}
	sameReplies(t, "rewritten commands", l, e.bare, cmds...)
	waitSameStateAs(t, l, others(e.nodes, l)...)
}

// waitBlocked polls INFO clients at addr until blocked_clients is n.
func waitBlocked(t *testing.T, addr string, n int) {
	t.Helper()
	c := dialAddrRaw(t, addr)
	want := fmt.Sprintf("blocked_clients:%d\r\n", n)
	eventually(t, 15*time.Second, func() error {
		info := c.do(t, "INFO", "clients")
		if !strings.Contains(info, want) {
			return fmt.Errorf("%s: INFO clients has no %q:\n%s", addr, strings.TrimSpace(want), info)
		}
		return nil
	})
}

// pipelined, as the first command of then, makes blockedOutcome send the
// others in one go before reading their replies.
var pipelined = []string{"<pipelined>"}

// blockedOutcome blocks a client at addr with block, runs then from a
// second connection, and returns what the blocked client got.
func blockedOutcome(t *testing.T, addr string, setup, block []string, then ...[]string) string {
	t.Helper()
	ctl := dialAddrRaw(t, addr)
	ctl.do(t, "FLUSHALL")
	ctl.do(t, setup...)
	waiter := dialAddrRaw(t, addr)
	waiter.send(t, block...)
	waitBlocked(t, addr, 1)
	if len(then) > 0 && then[0][0] == pipelined[0] {
		for _, c := range then[1:] {
			ctl.send(t, c...)
		}
		for range then[1:] {
			ctl.reply(t, cmdTimeout)
		}
		then = nil
	}
	for _, c := range then {
		ctl.do(t, c...)
	}
	return waiter.reply(t, 15*time.Second)
}

// blockedXReadGroup: a client blocked in XREADGROUP is released with
// Redis's own error when its stream or group goes away, however it goes,
// also when the group is re-created and written to before the woken client
// looks again (in one transaction, or by the very next commands).
func (e *fidelityEnv) blockedXReadGroup(t *testing.T) {
	l := e.leader(t)
	setup := []string{"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"}
	block := []string{"XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"}
	for _, then := range [][][]string{
		{{"DEL", "s"}},
		{{"UNLINK", "s"}},
		{{"SET", "s", "x"}},
		{{"DEL", "s"}, {"LPUSH", "s", "x"}},
		{{"FLUSHALL"}},
		{{"FLUSHDB"}},
		{{"SWAPDB", "0", "1"}},
		{{"RENAME", "s", "s2"}},
		{{"XGROUP", "DESTROY", "s", "g"}},
		{{"XADD", "s", "1-1", "f", "v"}},
		{{"MULTI"}, {"DEL", "s"}, {"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"}, {"XADD", "s", "1-1", "f", "v"}, {"EXEC"}},
		{{"MULTI"}, {"XGROUP", "DESTROY", "s", "g"}, {"XGROUP", "CREATE", "s", "g", "$"}, {"XADD", "s", "1-1", "f", "v"}, {"EXEC"}},
		{{"XGROUP", "DESTROY", "s", "g"}, {"XGROUP", "CREATE", "s", "g", "0"}, {"XADD", "s", "1-1", "f", "v"}},
		{pipelined, {"XGROUP", "DESTROY", "s", "g"}, {"XGROUP", "CREATE", "s", "g", "0"}, {"XADD", "s", "1-1", "f", "v"}},
	} {
		got := blockedOutcome(t, l.Addr, setup, block, then...)
		want := blockedOutcome(t, e.bare.Addr, setup, block, then...)
		sCheck(t, got == want, "blocked XREADGROUP, then %q:\n  redraft: %s\n  redis-server: %s", then, got, want)
	}
	waitSameStateAs(t, l, others(e.nodes, l)...)
}

// xaddAfterFutureID: XADD * after an explicit ID ahead of the clock takes
// that ID's millisecond and the next sequence, on every node.
func (e *fidelityEnv) xaddAfterFutureID(t *testing.T) {
	l := e.leader(t)
	future := strconv.FormatInt(time.Now().Add(24*time.Hour).UnixMilli(), 10)
	sameReplies(t, "XADD * after a future ID", l, e.bare,
		[]string{"DEL", "fs"}, []string{"XADD", "fs", future + "-5", "f", "v"},
		[]string{"XADD", "fs", "*", "f", "v"}, []string{"XADD", "fs", "*", "f", "v"},
		[]string{"XADD", "fs", future + "-*", "f", "v"}, []string{"XRANGE", "fs", "-", "+"})
	waitSameStateAs(t, l, others(e.nodes, l)...)
}

// infoField returns one field of an INFO reply.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return v
		}
	}
	return ""
}

// scriptCacheStaysSmall: commands rewritten into scripts reuse a fixed set
// of cached scripts; arguments never become script text.
func (e *fidelityEnv) scriptCacheStaysSmall(t *testing.T) {
	l := e.leader(t)
	c := newClient(l.Addr, 0)
	defer c.Close()
	ctx, cancel := sCtx()
	defer cancel()
	round := func(from, to int) {
		t.Helper()
		p := c.Pipeline()
		for i := from; i < to; i++ {
			s := strconv.Itoa(i)
			p.SAdd(ctx, "sp:"+s, "a", "b")
			p.SPopN(ctx, "sp:"+s, 1)
			p.Expire(ctx, "sp:"+s, time.Duration(i+1)*time.Second)
			p.XAdd(ctx, &redis.XAddArgs{Stream: "xs:" + s, Values: []string{"f", s}})
			p.Eval(ctx, "return ARGV[1]", nil, s)
			p.Set(ctx, "ex:"+s, s, time.Duration(i+1)*time.Second)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatalf("pipeline: %v", err)
		}
	}
	round(0, 500)
	before := c.Info(ctx, "memory").Val()
	round(500, 10500)
	after := c.Info(ctx, "memory").Val()
	// A few internal scripts may run for the first time meanwhile (the
	// expiry sweep as keys expire); none may be made per command.
	nBefore, _ := strconv.Atoi(infoField(before, "number_of_cached_scripts"))
	nAfter, _ := strconv.Atoi(infoField(after, "number_of_cached_scripts"))
	sCheck(t, nBefore > 0 && nAfter <= nBefore+3, "cached scripts grew from %d to %d over 10k rewritten commands", nBefore, nAfter)
	lua, _ := strconv.Atoi(infoField(after, "used_memory_lua"))
	sCheck(t, lua > 0 && lua < 4<<20, "used_memory_lua after 10k rewritten commands = %d", lua)
}

// serverCommands: SAVE, BGSAVE, LASTSAVE, PFSELFTEST answer as Redis.
func (e *fidelityEnv) serverCommands(t *testing.T) {
	l := e.leader(t)
	sameReplies(t, "server commands", l, e.bare,
		[]string{"SAVE"}, []string{"PFSELFTEST"}, []string{"SAVE", "x"}, []string{"LASTSAVE", "x"})
	rc := dialAddrRaw(t, l.Addr)
	first := rc.do(t, "LASTSAVE")
	got := rc.do(t, "BGSAVE")
	sCheck(t, got == "+Background saving started" || got == "-ERR Background save already in progress", "BGSAVE = %q", got)
	eventually(t, 15*time.Second, func() error {
		if last := rc.do(t, "LASTSAVE"); last < first || !strings.HasPrefix(last, ":") {
			return fmt.Errorf("LASTSAVE went from %s to %s", first, last)
		}
		return nil
	})
	now := time.Now().Unix()
	ts, _ := strconv.ParseInt(strings.TrimPrefix(first, ":"), 10, 64)
	sCheck(t, ts > now-3600 && ts <= now+1, "LASTSAVE = %d, now %d", ts, now)
	// The snapshot SAVE took is a real one: the node's Raft stats show it.
	st, err := raftStats(l)
	sCheck(t, err == nil && st["last_snapshot_index"] != "0", "RAFTSTATS after SAVE: last_snapshot_index=%q err=%v", st["last_snapshot_index"], err)
}

// blockedClientShows: a client in BLPOP shows in INFO clients and CLIENT
// LIST the way it does in Redis.
func (e *fidelityEnv) blockedClientShows(t *testing.T) {
	for _, addr := range []string{e.leader(t).Addr, e.bare.Addr} {
		ctl := dialAddrRaw(t, addr)
		ctl.do(t, "DEL", "bl")
		waiter := dialAddrRaw(t, addr)
		waiter.do(t, "CLIENT", "SETNAME", "waiter")
		waiter.send(t, "BLPOP", "bl", "0")
		waitBlocked(t, addr, 1)
		list := ctl.do(t, "CLIENT", "LIST")
		var line string
		for _, l := range strings.Split(strings.TrimPrefix(list, "$"), "\n") {
			if strings.Contains(l, " name=waiter ") {
				line = l
			}
		}
		sCheck(t, strings.Contains(line, " flags=b ") && strings.Contains(line, " cmd=blpop "), "%s: CLIENT LIST line of a client in BLPOP: %q", addr, line)
		ctl.do(t, "LPUSH", "bl", "x")
		got := waiter.reply(t, 15*time.Second)
		sCheck(t, got == "*2 $bl $x", "%s: BLPOP released with %q", addr, got)
		waitBlocked(t, addr, 0)
	}
}

// resetLeavesSubscriberMode: RESET in subscriber mode answers +RESET and
// the connection takes normal commands again.
func (e *fidelityEnv) resetLeavesSubscriberMode(t *testing.T) {
	l := e.leader(t)
	sameReplies(t, "RESET after SUBSCRIBE", l, e.bare,
		[]string{"SUBSCRIBE", "ch"}, []string{"PSUBSCRIBE", "p*"}, []string{"GET", "x"},
		[]string{"RESET"}, []string{"PING"}, []string{"GET", "reset:x"}, []string{"CLIENT", "GETNAME"})
	sameReplies(t, "unsubscribing from everything", l, e.bare,
		[]string{"SUBSCRIBE", "a", "b"}, []string{"UNSUBSCRIBE", "a"}, []string{"GET", "x"}, []string{"UNSUBSCRIBE"},
		[]string{"GET", "x"}, []string{"PSUBSCRIBE", "p*"}, []string{"SSUBSCRIBE", "s"}, []string{"PUNSUBSCRIBE"},
		[]string{"GET", "x"}, []string{"SUNSUBSCRIBE", "s"}, []string{"GET", "x"}, []string{"UNSUBSCRIBE"},
		[]string{"PUNSUBSCRIBE", "nothing"}, []string{"SUNSUBSCRIBE"}, []string{"PING"}, []string{"SUBSCRIBE", "c"},
		[]string{"PING"}, []string{"UNSUBSCRIBE", "c", "d"}, []string{"PING"})
}

// noMultiCommands: commands Redis refuses inside MULTI are refused with
// Redis's words, and abort the transaction.
func (e *fidelityEnv) noMultiCommands(t *testing.T) {
	l := e.leader(t)
	sameReplies(t, "no_multi commands", l, e.bare,
		[]string{"MULTI"}, []string{"SAVE"}, []string{"SET", "nm", "1"}, []string{"EXEC"}, []string{"EXISTS", "nm"},
		[]string{"MULTI"}, []string{"MULTI"}, []string{"WATCH", "x"}, []string{"DISCARD"})
}
