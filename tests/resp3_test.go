package tests

// RESP3 (HELLO 3): the same command corpus is run on one connection to a
// bare redis-server and on one to redraft, both in RESP3, and every
// step's output (replies and pushes, in order) is compared byte for byte,
// on the leader (writes through the log, reads from its child) and on a
// follower with --follower-proxy (everything relayed to the leader). Client
// IDs and the order of set elements are normalized; nothing else is.

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// resp3Env is a 3-node cluster and a bare redis-server: n1 bootstraps at
// --consistency low, n2 is a low follower with --follower-proxy (reads
// served locally, writes relayed), n3 a medium follower with
// --follower-proxy (everything relayed).
type resp3Env struct {
	n1, n2, n3 *Node
	all        []*Node
	bare       *bareRedis
}

// startResp3Env starts the cluster and the bare server.
func startResp3Env(t *testing.T) *resp3Env {
	t.Helper()
	n1 := startNode(t, nodeOpts{Name: "n1", Consistency: "low"})
	waitLeader(t, n1)
	n2 := startNode(t, nodeOpts{Name: "n2", Consistency: "low", Join: n1.Addr, Args: []string{"--follower-proxy"}})
	n3 := startNode(t, nodeOpts{Name: "n3", Join: n1.Addr, Args: []string{"--follower-proxy"}})
	e := &resp3Env{n1: n1, n2: n2, n3: n3, all: []*Node{n1, n2, n3}, bare: startBareRedis(t)}
	waitMembers(t, e.all...)
	l := waitLeader(t, e.all...)
	eventually(t, 15*time.Second, func() error {
		_, err := l.Do("SET", "resp3:ready", "1")
		return err
	})
	return e
}

// leader is the current leader; the tests expect n1 (the node roles are
// set by its options).
func (e *resp3Env) leader(t *testing.T) *Node {
	t.Helper()
	l := waitLeader(t, e.all...)
	if l != e.n1 {
		t.Fatalf("leader is %s, not n1: the followers' roles no longer hold", l)
	}
	return l
}

// corpusStep is one command of a corpus; unordered marks a reply whose
// element order comes from a hash table.
type corpusStep struct {
	args      []string
	unordered bool
	anyInt    bool // an integer reply may differ (PUBLISH's count on a follower)
}

// cmds turns plain commands into corpus steps.
func cmds(list ...[]string) []corpusStep {
	out := make([]corpusStep, len(list))
	for i, a := range list {
		out[i] = corpusStep{args: a}
	}
	return out
}

// compareCorpus runs steps on a fresh connection to addr and to the bare
// server, in order, and reports every step whose output differs.
func compareCorpus(t *testing.T, what, addr string, bare *bareRedis, steps []corpusStep) {
	t.Helper()
	a, b := dialR(t, addr), dialR(t, bare.Addr)
	for _, st := range steps {
		got, want := a.step(st.args...), b.step(st.args...)
		g, w := normalizeAll(got.all), normalizeAll(want.all)
		if st.anyInt {
			g, w = maskInts(g), maskInts(w)
		}
		if st.unordered {
			for i := range g {
				g[i] = sortItems(g[i])
			}
			for i := range w {
				w[i] = sortItems(w[i])
			}
		}
		if !sameBytes(g, w) {
			t.Errorf("%s: %q:\n   redraft %s:%s\n   redis-server:%s", what, st.args, addr, output{all: g}, output{all: w})
		}
	}
}

func TestRESP3(t *testing.T) {
	e := startResp3Env(t)
	t.Run("Corpus", func(t *testing.T) {
		l := e.leader(t)
		for _, n := range []*Node{l, e.n3} {
			flushBoth(t, l, e.bare)
			compareCorpus(t, "RESP3 corpus", n.Addr, e.bare, resp3Corpus())
			waitApplied(t, e.all...)
		}
	})
	t.Run("FollowerReads", func(t *testing.T) { e.followerReads(t) })
	t.Run("Hostile", func(t *testing.T) { e.hostile(t) })
	t.Run("PubSub", func(t *testing.T) { e.pubSub(t) })
	t.Run("Blocking", func(t *testing.T) { e.blocking(t) })
	t.Run("OwnCommands", func(t *testing.T) { e.ownCommands(t) })
}

// flushBoth empties the cluster and the bare server, functions included.
func flushBoth(t *testing.T, l *Node, bare *bareRedis) {
	t.Helper()
	b := dialR(t, bare.Addr)
	for _, c := range [][]string{{"FLUSHALL"}, {"FUNCTION", "FLUSH"}, {"SCRIPT", "FLUSH"}} {
		if _, err := l.Do(toArgs(c)...); err != nil {
			t.Fatalf("%s: %v: %v", l, c, err)
		}
		b.do(c...)
	}
}

// toArgs converts strings for go-redis.
func toArgs(c []string) []interface{} {
	out := make([]interface{}, len(c))
	for i, s := range c {
		out[i] = s
	}
	return out
}

// resp3Corpus is the command corpus: every reply type of RESP3, from
// writes, reads, transactions, scripts and blocking commands, with hostile
// arguments, switching protocols on the way.
func resp3Corpus() []corpusStep {
	steps := cmds(
		// The handshake and its mistakes.
		[]string{"HELLO", "3"}, []string{"HELLO"}, []string{"HELLO", "4"}, []string{"HELLO", "1"}, []string{"HELLO", "0"},
		[]string{"HELLO", "-3"}, []string{"HELLO", "abc"}, []string{"HELLO", "3.0"}, []string{"HELLO", " 3"}, []string{"HELLO", "03"},
		[]string{"HELLO", "9223372036854775808"}, []string{"HELLO", ""}, []string{"HELLO", "3", "BOGUS"},
		[]string{"HELLO", "3", "AUTH"}, []string{"HELLO", "3", "AUTH", "default"}, []string{"HELLO", "3", "AUTH", "default", "anything"},
		[]string{"HELLO", "3", "AUTH", "nobody", "x"}, []string{"HELLO", "3", "SETNAME"}, []string{"HELLO", "3", "SETNAME", "bad name"},
		[]string{"HELLO", "3", "SETNAME", "bad\nname"}, []string{"HELLO", "3", "SETNAME", "r3", "BOGUS"}, []string{"CLIENT", "GETNAME"},
		[]string{"HELLO", "3", "SETNAME", "r3client"}, []string{"CLIENT", "GETNAME"}, []string{"HELLO", "3", "SETNAME", ""}, []string{"CLIENT", "GETNAME"},
		[]string{"HELLO", "3", "AUTH", "default", "pw", "SETNAME", "both"}, []string{"CLIENT", "GETNAME"},
		[]string{"HELLO", "2"}, []string{"CLIENT", "GETNAME"}, []string{"GET", "missing"}, []string{"HELLO", "3"}, []string{"GET", "missing"},
		// Connection commands in RESP3.
		[]string{"PING"}, []string{"PING", "x"}, []string{"ECHO", "a\r\nb"}, []string{"SELECT", "1"}, []string{"GET", "k"}, []string{"SELECT", "0"},
		[]string{"CLIENT", "SETNAME", "n"}, []string{"CLIENT", "GETNAME"},
		[]string{"CLIENT", "NO-EVICT", "on"}, []string{"CLIENT", "GETREDIR"}, []string{"CLIENT", "TRACKINGINFO"},
		[]string{"CLIENT", "CACHING", "yes"}, []string{"CLIENT", "TRACKING"}, []string{"CLIENT", "TRACKING", "maybe"},
		[]string{"CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a", "PREFIX", "ab"}, []string{"CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"},
		[]string{"CLIENT", "TRACKING", "on", "BCAST", "OPTIN"}, []string{"CLIENT", "TRACKING", "on", "PREFIX", "a"},
		[]string{"CLIENT", "TRACKING", "on", "REDIRECT", "abc"}, []string{"CLIENT", "TRACKING", "on", "REDIRECT", "999999"},
		[]string{"CLIENT", "TRACKING", "on", "REDIRECT"}, []string{"CLIENT", "TRACKING", "on", "BOGUS"},
		[]string{"CLIENT", "TRACKING", "on", "OPTIN"}, []string{"CLIENT", "TRACKINGINFO"}, []string{"CLIENT", "CACHING", "yes"},
		[]string{"CLIENT", "TRACKINGINFO"}, []string{"CLIENT", "CACHING", "no"}, []string{"CLIENT", "CACHING", "maybe"},
		[]string{"CLIENT", "TRACKING", "on", "OPTOUT"}, []string{"CLIENT", "TRACKING", "on", "BCAST"}, []string{"CLIENT", "GETREDIR"},
		[]string{"CLIENT", "TRACKING", "off"}, []string{"CLIENT", "TRACKINGINFO"}, []string{"CLIENT", "GETREDIR"},
		[]string{"CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a", "PREFIX", "b", "NOLOOP"}, []string{"CLIENT", "TRACKINGINFO"},
		[]string{"CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "abc"}, []string{"CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "c"},
		[]string{"CLIENT", "TRACKINGINFO"}, []string{"CLIENT", "TRACKING", "off"},
		[]string{"COMMAND", "COUNT"}, []string{"COMMAND", "INFO", "get", "nosuch"}, []string{"COMMAND", "DOCS", "get"},
		[]string{"COMMAND", "GETKEYS", "set", "a", "b"}, []string{"COMMAND", "GETKEYSANDFLAGS", "lmove", "a", "b", "left", "right"},
		[]string{"COMMAND", "GETKEYS", "get"}, []string{"CONFIG", "GET", "maxmemory"}, []string{"CONFIG", "GET", "requirepass"},
		[]string{"CONFIG", "GET", "hash-max-listpack-entries"}, []string{"CONFIG", "GET", "nosuch"},
		// Strings, bitmaps, counters.
		[]string{"SET", "k", "v"}, []string{"GET", "k"}, []string{"GET", "missing"}, []string{"MGET", "k", "missing"},
		[]string{"SET", "k", "v2", "GET"}, []string{"SET", "new", "v", "GET"}, []string{"SET", "k", "v", "NX"}, []string{"SETNX", "k", "v"},
		[]string{"GETDEL", "new"}, []string{"GETDEL", "new"}, []string{"GETEX", "k", "PERSIST"}, []string{"GETEX", "missing"},
		[]string{"APPEND", "k", "xyz"}, []string{"STRLEN", "k"}, []string{"GETRANGE", "k", "1", "-2"}, []string{"SETRANGE", "k", "1", "AB"},
		[]string{"INCR", "n"}, []string{"INCRBY", "n", "9223372036854775806"}, []string{"INCR", "n"}, []string{"DECRBY", "n", "1"},
		[]string{"INCRBYFLOAT", "f", "1.5"}, []string{"INCRBYFLOAT", "f", "1e300"}, []string{"INCRBYFLOAT", "f", "inf"},
		[]string{"MSETNX", "m1", "1", "m2", "2"}, []string{"MSETNX", "m1", "1", "m3", "3"},
		[]string{"SET", "a", "ohmytext"}, []string{"SET", "b", "mynewtext"}, []string{"LCS", "a", "b"}, []string{"LCS", "a", "b", "LEN"},
		[]string{"LCS", "a", "b", "IDX", "MINMATCHLEN", "2", "WITHMATCHLEN"},
		[]string{"SETBIT", "bits", "7", "1"}, []string{"GETBIT", "bits", "7"}, []string{"BITCOUNT", "bits"}, []string{"BITPOS", "bits", "1"},
		[]string{"BITFIELD", "bf", "INCRBY", "u8", "0", "300", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "300", "GET", "u8", "0"},
		[]string{"BITFIELD_RO", "bf", "GET", "u8", "0"}, []string{"BITFIELD", "bf"},
		// Lists.
		[]string{"RPUSH", "l", "a", "b", "c", "b"}, []string{"LRANGE", "l", "0", "-1"}, []string{"LPOS", "l", "b", "COUNT", "0"},
		[]string{"LPOS", "l", "zz"}, []string{"LPOP", "l", "2"}, []string{"LPOP", "nolist", "2"}, []string{"LPOP", "nolist"},
		[]string{"LINDEX", "l", "9"}, []string{"LMPOP", "2", "nolist", "l", "RIGHT", "COUNT", "1"}, []string{"LMPOP", "1", "nolist", "LEFT"},
		[]string{"LMOVE", "l", "l2", "LEFT", "RIGHT"}, []string{"LINSERT", "l2", "BEFORE", "c", "x"}, []string{"LRANGE", "l2", "0", "-1"},
		[]string{"RPOPLPUSH", "nolist", "l2"}, []string{"LPUSHX", "nolist", "a"},
		// Hashes.
		[]string{"HSET", "h", "f1", "v1", "f2", "v2"}, []string{"HGETALL", "h"}, []string{"HGETALL", "missing"}, []string{"HGET", "h", "nof"},
		[]string{"HMGET", "h", "f1", "nof"}, []string{"HKEYS", "h"}, []string{"HVALS", "h"}, []string{"HEXISTS", "h", "f1"},
		[]string{"HINCRBYFLOAT", "h", "fl", "2.5"}, []string{"HINCRBY", "h", "f1", "1"}, []string{"HSTRLEN", "h", "f2"},
		[]string{"HSET", "h1", "only", "one"}, []string{"HRANDFIELD", "h1"}, []string{"HRANDFIELD", "h1", "1", "WITHVALUES"},
		[]string{"HRANDFIELD", "h1", "-2", "WITHVALUES"}, []string{"HRANDFIELD", "missing", "1", "WITHVALUES"}, []string{"HSCAN", "h1", "0"},
		[]string{"HSETNX", "h", "f1", "x"}, []string{"HDEL", "h", "f2", "nof"},
		// Sets.
		[]string{"SADD", "s", "x", "y", "z"}, []string{"SMEMBERS", "s"}, []string{"SMEMBERS", "missing"}, []string{"SISMEMBER", "s", "x"},
		[]string{"SMISMEMBER", "s", "x", "q"}, []string{"SADD", "s2", "y", "q"}, []string{"SINTER", "s", "s2"}, []string{"SUNION", "s", "s2"},
		[]string{"SDIFF", "s", "s2"}, []string{"SINTERCARD", "2", "s", "s2"}, []string{"SINTERSTORE", "s3", "s", "s2"},
		[]string{"SADD", "s1", "one"}, []string{"SPOP", "s1", "1"}, []string{"SPOP", "s1", "1"}, []string{"SPOP", "s1"},
		[]string{"SADD", "s1", "one"}, []string{"SRANDMEMBER", "s1"}, []string{"SRANDMEMBER", "s1", "3"}, []string{"SRANDMEMBER", "missing", "3"},
		[]string{"SSCAN", "s1", "0"}, []string{"SMOVE", "s", "s1", "x"}, []string{"SCARD", "s1"}, []string{"SADD", "ints", "1", "2", "3"},
		[]string{"SMEMBERS", "ints"}, []string{"SPOP", "missing", "2"},
		// Sorted sets: doubles, infinities, nulls.
		[]string{"ZADD", "z", "1.5", "a", "2", "b", "1e20", "c", "-0.1", "d"}, []string{"ZSCORE", "z", "a"}, []string{"ZSCORE", "z", "nope"},
		[]string{"ZSCORE", "missing", "a"}, []string{"ZMSCORE", "z", "a", "nope", "c"}, []string{"ZINCRBY", "z", "0.1", "a"},
		[]string{"ZRANGE", "z", "0", "-1", "WITHSCORES"}, []string{"ZRANGE", "z", "0", "-1"}, []string{"ZREVRANGE", "z", "0", "1", "WITHSCORES"},
		[]string{"ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES", "LIMIT", "1", "2"}, []string{"ZRANK", "z", "b"}, []string{"ZRANK", "z", "nope"},
		[]string{"ZADD", "z", "INCR", "1", "e"}, []string{"ZADD", "z", "NX", "INCR", "1", "e"}, []string{"ZADD", "z", "XX", "CH", "3", "e"},
		[]string{"ZADD", "zi", "+inf", "p", "-inf", "m"}, []string{"ZRANGE", "zi", "0", "-1", "WITHSCORES"}, []string{"ZSCORE", "zi", "p"},
		[]string{"ZINCRBY", "zi", "-inf", "p"}, []string{"ZPOPMIN", "z"}, []string{"ZPOPMIN", "z", "2"}, []string{"ZPOPMAX", "missing"},
		[]string{"ZPOPMAX", "missing", "2"}, []string{"ZMPOP", "2", "missing", "z", "MAX", "COUNT", "1"}, []string{"ZMPOP", "1", "missing", "MIN"},
		[]string{"ZADD", "z1", "7", "only"}, []string{"ZRANDMEMBER", "z1"}, []string{"ZRANDMEMBER", "z1", "1", "WITHSCORES"},
		[]string{"ZRANDMEMBER", "z1", "-2", "WITHSCORES"}, []string{"ZUNION", "2", "z", "z1", "WITHSCORES"}, []string{"ZINTER", "2", "z", "z1"},
		[]string{"ZDIFF", "2", "z", "z1", "WITHSCORES"}, []string{"ZSCAN", "z1", "0"}, []string{"ZCOUNT", "z", "-inf", "+inf"},
		[]string{"ZADD", "zl", "0", "a", "0", "b"}, []string{"ZRANGEBYLEX", "zl", "-", "+"}, []string{"ZLEXCOUNT", "zl", "[a", "[b"},
		[]string{"ZUNIONSTORE", "zs", "2", "z", "z1", "WEIGHTS", "2", "0.5"}, []string{"ZRANGE", "zs", "0", "-1", "WITHSCORES"},
		[]string{"ZADD", "z", "nan", "x"}, []string{"ZADD", "z", "1", "a", "2"}, []string{"ZINCRBY", "zi", "inf", "m"},
		// HyperLogLog and geo.
		[]string{"PFADD", "hll", "a", "b", "c"}, []string{"PFCOUNT", "hll"}, []string{"PFMERGE", "hll2", "hll"}, []string{"PFCOUNT", "hll2", "hll"},
		[]string{"GEOADD", "geo", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"},
		[]string{"GEOPOS", "geo", "Palermo", "nowhere"}, []string{"GEODIST", "geo", "Palermo", "Catania", "km"}, []string{"GEODIST", "geo", "Palermo", "nowhere"},
		[]string{"GEOHASH", "geo", "Palermo", "nowhere"}, []string{"GEOSEARCH", "geo", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "WITHDIST", "WITHCOORD", "WITHHASH", "ASC"},
		[]string{"GEORADIUS", "geo", "15", "37", "200", "km", "WITHDIST", "ASC"}, []string{"GEOSEARCHSTORE", "geo2", "geo", "FROMMEMBER", "Palermo", "BYBOX", "400", "400", "km", "ASC"},
		// Streams.
		[]string{"XADD", "st", "1-1", "f", "v"}, []string{"XADD", "st", "2-1", "f2", "v2", "f3", "v3"}, []string{"XRANGE", "st", "-", "+"},
		[]string{"XREVRANGE", "st", "+", "-", "COUNT", "1"}, []string{"XREAD", "STREAMS", "st", "0"}, []string{"XREAD", "STREAMS", "st", "missing", "0", "0"},
		[]string{"XREAD", "COUNT", "1", "STREAMS", "missing", "0"}, []string{"XLEN", "st"}, []string{"XINFO", "STREAM", "st"},
		[]string{"XINFO", "STREAM", "st", "FULL"}, []string{"XGROUP", "CREATE", "st", "g", "0"}, []string{"XINFO", "GROUPS", "st"},
		[]string{"XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "st", ">"}, []string{"XREADGROUP", "GROUP", "g", "c", "STREAMS", "st", ">"},
		[]string{"XREADGROUP", "GROUP", "g", "c", "STREAMS", "st", ">"}, []string{"XREADGROUP", "GROUP", "g", "c", "STREAMS", "st", "0"},
		[]string{"XPENDING", "st", "g"}, []string{"XACK", "st", "g", "1-1"}, []string{"XCLAIM", "st", "g", "c2", "0", "2-1", "JUSTID"},
		[]string{"XAUTOCLAIM", "st", "g", "c3", "0", "0-0", "JUSTID"}, []string{"XAUTOCLAIM", "st", "g", "c3", "0", "0-0"},
		[]string{"XCLAIM", "st", "g", "c2", "0", "2-1"}, []string{"XDEL", "st", "1-1"}, []string{"XSETID", "st", "5-0"}, []string{"XTRIM", "st", "MAXLEN", "0"},
		[]string{"XREADGROUP", "GROUP", "g", "c", "STREAMS", "missing", ">"},
		// Keys.
		[]string{"EXISTS", "k", "missing"}, []string{"TYPE", "st"}, []string{"TYPE", "missing"}, []string{"OBJECT", "ENCODING", "k"},
		[]string{"OBJECT", "ENCODING", "missing"}, []string{"EXPIRE", "k", "100"}, []string{"TTL", "k"}, []string{"PERSIST", "k"}, []string{"PTTL", "k"},
		[]string{"EXPIRETIME", "missing"}, []string{"RENAME", "k", "k2"}, []string{"COPY", "k2", "k3"}, []string{"KEYS", "k3"}, []string{"KEYS", "nomatch*"},
		[]string{"SCAN", "0", "MATCH", "k3", "COUNT", "1000"}, []string{"SORT", "l2", "ALPHA"}, []string{"SORT_RO", "l2", "ALPHA", "LIMIT", "0", "1"},
		[]string{"UNLINK", "k3", "missing"}, []string{"DEL", "k2"}, []string{"DBSIZE"},
		// Errors.
		[]string{"NOSUCHCOMMAND", "x"}, []string{"GET"}, []string{"GET", "a", "b"}, []string{"HGET", "l2", "x"}, []string{"SET", "k", "v", "EX", "0"},
		[]string{"LRANGE", "l2", "x", "y"},
		// Transactions, with protocol switches inside.
		[]string{"MULTI"}, []string{"GET", "a"}, []string{"HGETALL", "h"}, []string{"ZSCORE", "z", "b"}, []string{"HELLO", "2"},
		[]string{"HGETALL", "h"}, []string{"ZSCORE", "z", "b"}, []string{"GET", "missing"}, []string{"HELLO", "3"}, []string{"SMEMBERS", "s2"}, []string{"EXEC"},
		[]string{"HGETALL", "h"}, []string{"MULTI"}, []string{"HELLO", "2"}, []string{"EXEC"}, []string{"HGETALL", "h"}, []string{"HELLO", "3"},
		[]string{"MULTI"}, []string{"HELLO", "5"}, []string{"HELLO", "3", "SETNAME", "intx"}, []string{"GET", "missing"}, []string{"EXEC"}, []string{"CLIENT", "GETNAME"},
		[]string{"MULTI"}, []string{"SET", "t", "1"}, []string{"INCR", "a"}, []string{"LPOP", "nolist"}, []string{"BLPOP", "nolist", "0"}, []string{"EXEC"},
		[]string{"MULTI"}, []string{"GET"}, []string{"EXEC"}, []string{"EXEC"}, []string{"DISCARD"},
		[]string{"MULTI"}, []string{"GET", "t"}, []string{"PTTL", "t"}, []string{"HGETALL", "h"}, []string{"EXEC"},
		[]string{"WATCH", "t"}, []string{"SET", "t", "2"}, []string{"MULTI"}, []string{"GET", "t"}, []string{"EXEC"},
		[]string{"WATCH", "t"}, []string{"MULTI"}, []string{"GET", "t"}, []string{"HGETALL", "h"}, []string{"EXEC"},
		[]string{"MULTI"}, []string{"MULTI"}, []string{"WATCH", "x"}, []string{"DISCARD"}, []string{"UNWATCH"},
		// Scripts: RESP2 conversions, redis.setresp(3), every Lua type.
		[]string{"EVAL", "return redis.call('HGETALL', KEYS[1])", "1", "h"},
		[]string{"EVAL", "redis.setresp(3); return redis.call('HGETALL', KEYS[1])", "1", "h"},
		[]string{"EVAL", "redis.setresp(3); return redis.call('ZSCORE', KEYS[1], 'b')", "1", "z"},
		[]string{"EVAL", "redis.setresp(3); return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')", "1", "z"},
		[]string{"EVAL", "redis.setresp(3); return redis.call('SMEMBERS', KEYS[1])", "1", "s2"},
		[]string{"EVAL", "redis.setresp(3); return redis.call('SINTER', KEYS[1], KEYS[2])", "2", "s", "s2"},
		[]string{"EVAL", "redis.setresp(3); return redis.call('GET', 'missing')", "0"},
		[]string{"EVAL", "redis.setresp(3); return redis.call('EXISTS', KEYS[1]) == 1", "1", "h"},
		[]string{"EVAL", "redis.setresp(3); local r = redis.call('HGETALL', KEYS[1]); return type(r.map)", "1", "h"},
		[]string{"EVAL", "redis.setresp(3); return redis.call('XINFO', 'STREAM', KEYS[1])", "1", "st"},
		[]string{"EVAL", "redis.setresp(3); return redis.call('TTL', KEYS[1])", "1", "h"},
		[]string{"EVAL", "return redis.call('ZSCORE', KEYS[1], 'b')", "1", "z"},
		[]string{"EVAL", "return {double=3.14}", "0"}, []string{"EVAL", "return {big_number='123456789012345678901234567890'}", "0"},
		[]string{"EVAL", "return {verbatim_string={format='txt', string='hi'}}", "0"}, []string{"EVAL", "return {map={a=1}}", "0"},
		[]string{"EVAL", "return {set={a=true}}", "0"}, []string{"EVAL", "return true", "0"}, []string{"EVAL", "return false", "0"},
		[]string{"EVAL", "return nil", "0"}, []string{"EVAL", "return {1, 'two', {3}}", "0"}, []string{"EVAL", "return 3.99", "0"},
		[]string{"EVAL", "return redis.status_reply('fine')", "0"}, []string{"EVAL", "return redis.error_reply('MY bad')", "0"},
		[]string{"EVAL", "return redis.setresp(4)", "0"}, []string{"EVAL", "return redis.pcall('NOSUCH')", "0"},
		[]string{"EVAL", "redis.setresp(3); return redis.pcall('HGET', KEYS[1], 'x')", "1", "l2"},
		[]string{"EVAL", "return +", "0"}, []string{"EVAL", "redis.setresp(2); return redis.call('HGETALL', KEYS[1])", "1", "h"},
		[]string{"EVAL_RO", "redis.setresp(3); return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')", "1", "z"},
		[]string{"EVAL_RO", "return redis.call('SET', KEYS[1], 'x')", "1", "k"},
		[]string{"SCRIPT", "LOAD", "redis.setresp(3); return redis.call('HGETALL', KEYS[1])"},
		[]string{"EVALSHA", "f4d8a8d3d8c1e8e0a2c0d1ac5db3a5ecbe0bd8a9", "0"},
		[]string{"FUNCTION", "LOAD", "#!lua name=r3lib\nredis.register_function('r3f', function(keys) redis.setresp(3); return redis.call('HGETALL', keys[1]) end)"},
		[]string{"FUNCTION", "LOAD", "#!lua name=r3rolib\nredis.register_function{function_name='r3ro', callback=function(keys) redis.setresp(3); return redis.call('ZSCORE', keys[1], 'b') end, flags={'no-writes'}}"},
		[]string{"FCALL", "r3f", "1", "h"}, []string{"FCALL_RO", "r3ro", "1", "z"}, []string{"FCALL", "r3ro", "1", "z"}, []string{"FCALL_RO", "r3f", "1", "h"},
		[]string{"FUNCTION", "DELETE", "r3rolib"}, []string{"FUNCTION", "LIST"}, []string{"FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "r3"},
		[]string{"FUNCTION", "DELETE", "r3lib"},
		// Blocking commands that need not wait, and ones that time out.
		[]string{"RPUSH", "bl", "a", "b", "c", "d"}, []string{"BLPOP", "nolist", "bl", "0"}, []string{"BRPOP", "bl", "0"},
		[]string{"BLPOP", "nolist", "0.01"}, []string{"BRPOPLPUSH", "nolist", "x", "0.01"}, []string{"BLMOVE", "bl", "bl2", "LEFT", "RIGHT", "0"},
		[]string{"BLMOVE", "nolist", "bl2", "LEFT", "RIGHT", "0.01"}, []string{"BLMPOP", "0", "2", "nolist", "bl2", "LEFT", "COUNT", "5"},
		[]string{"BLMPOP", "0.01", "1", "nolist", "LEFT"}, []string{"ZADD", "bz", "1", "a", "2", "b", "3", "c"}, []string{"BZPOPMIN", "nolist", "bz", "0"},
		[]string{"BZPOPMAX", "bz", "0"}, []string{"BZPOPMIN", "nolist", "0.01"}, []string{"BZMPOP", "0", "1", "bz", "MIN", "COUNT", "3"},
		[]string{"BZMPOP", "0.01", "1", "bz", "MAX"}, []string{"XREAD", "BLOCK", "10", "STREAMS", "st", "$"},
		[]string{"XADD", "bst", "1-1", "f", "v"}, []string{"XREAD", "BLOCK", "0", "STREAMS", "bst", "0"}, []string{"XGROUP", "CREATE", "bst", "g", "0"},
		[]string{"XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "bst", ">"}, []string{"XREADGROUP", "GROUP", "g", "c", "BLOCK", "10", "STREAMS", "bst", ">"},
		[]string{"BLPOP", "nolist", "-1"}, []string{"BLPOP", "nolist", "abc"},
		// Back to RESP2 for the same replies, then RESP3 again.
		[]string{"HELLO", "2"}, []string{"HGETALL", "h"}, []string{"ZSCORE", "z", "b"}, []string{"SINTER", "s", "s2"}, []string{"GET", "missing"},
		[]string{"XREAD", "STREAMS", "missing", "0"}, []string{"EVAL", "redis.setresp(3); return redis.call('HGETALL', KEYS[1])", "1", "h"},
		[]string{"BLPOP", "nolist", "0.01"}, []string{"HELLO", "3"}, []string{"RESET"}, []string{"GET", "missing"}, []string{"HELLO", "3"},
	)
	// Replies whose order comes from a hash table.
	for _, args := range [][]string{{"CONFIG", "GET", "maxmemory*"}, {"CONFIG", "GET", "*max-listpack*"}, {"HELLO", "2"},
		{"SMEMBERS", "s2"}, {"SUNION", "s", "s2"}, {"HELLO", "3"}, {"CONFIG", "GET", "maxmemory*"}} {
		steps = append(steps, corpusStep{args: args, unordered: true})
	}
	return steps
}

// followerReads: a follower at --consistency low answers RESP3 reads from
// its own child, in the same bytes.
func (e *resp3Env) followerReads(t *testing.T) {
	l := e.leader(t)
	flushBoth(t, l, e.bare)
	setup := cmds(
		[]string{"HSET", "h", "a", "1", "b", "2"}, []string{"SADD", "s", "x", "y"}, []string{"ZADD", "z", "1.5", "a", "inf", "b"},
		[]string{"XADD", "st", "1-1", "f", "v"}, []string{"RPUSH", "l", "a"}, []string{"SET", "k", "v"},
	)
	compareCorpus(t, "setup", l.Addr, e.bare, setup)
	waitApplied(t, e.all...)
	reads := cmds(
		[]string{"HELLO", "3"}, []string{"HGETALL", "h"}, []string{"SMEMBERS", "s"}, []string{"ZRANGE", "z", "0", "-1", "WITHSCORES"},
		[]string{"ZSCORE", "z", "b"}, []string{"XREAD", "STREAMS", "st", "0"}, []string{"XINFO", "STREAM", "st"}, []string{"GET", "missing"},
		[]string{"MULTI"}, []string{"GET", "k"}, []string{"ZSCORE", "z", "a"}, []string{"PTTL", "k"}, []string{"EXEC"},
		[]string{"EVAL_RO", "redis.setresp(3); return redis.call('HGETALL', KEYS[1])", "1", "h"},
		[]string{"XREAD", "BLOCK", "10", "STREAMS", "st", "$"}, []string{"HELLO", "2"}, []string{"HGETALL", "h"},
	)
	compareCorpus(t, "low follower reads", e.n2.Addr, e.bare, reads)
}

// hostile: input that breaks the protocol gets Redis's error in RESP3 too,
// and inline commands switch protocols as multibulk ones do.
func (e *resp3Env) hostile(t *testing.T) {
	l := e.leader(t)
	for _, n := range []*Node{l, e.n3} {
		for _, input := range []string{
			"HELLO 3\r\nGET missing\r\n",
			"hello 3 setname x\r\nclient getname\r\n",
			"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*1\r\n$a\r\n",
			"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*1\r\n%1\r\n",
			"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*1\r\n$3\r\nGETxx\r\n",
			"HELLO 3\r\nPING \"unbalanced\r\n",
			"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*-1\r\n*0\r\nPING\r\n",
		} {
			got, want := rawExchange(t, n.Addr, input), rawExchange(t, e.bare.Addr, input)
			got, want = normalizeIDs(got), normalizeIDs(want)
			if !bytes.Equal(got, want) {
				t.Errorf("%s: %q:\n   redraft      %q\n   redis-server %q", n, input, got, want)
			}
		}
	}
}

// rawExchange writes input, half-closes nothing, and reads until the
// server closes the connection or a QUIT's +OK arrives after the input.
func rawExchange(t *testing.T, addr, input string) []byte {
	t.Helper()
	rc := dialR(t, addr)
	rc.writeRaw([]byte(input + "*1\r\n$4\r\nQUIT\r\n"))
	var out []byte
	for {
		raw, err := rc.next(10 * time.Second)
		if err != nil {
			return out // closed (after a protocol error, or after QUIT)
		}
		out = append(out, raw...)
	}
}

// pubSub: a RESP3 subscriber receives pushes and keeps running ordinary
// commands; its own PUBLISH's message comes before the reply, as in Redis.
func (e *resp3Env) pubSub(t *testing.T) {
	l := e.leader(t)
	flushBoth(t, l, e.bare)
	corpus := cmds(
		[]string{"HELLO", "3"}, []string{"SUBSCRIBE", "ch1", "ch2"}, []string{"PSUBSCRIBE", "c*"}, []string{"SSUBSCRIBE", "sh"},
		[]string{"SUBSCRIBE", "ch1"}, []string{"SET", "k", "v"}, []string{"GET", "k"}, []string{"HSET", "h", "a", "1"}, []string{"HGETALL", "h"},
		[]string{"PUBLISH", "ch1", "hi"}, []string{"PUBLISH", "other", "x"}, []string{"SPUBLISH", "sh", "m"},
		[]string{"MULTI"}, []string{"GET", "k"}, []string{"HGETALL", "h"}, []string{"EXEC"},
		[]string{"EVAL", "redis.call('PUBLISH', 'ch1', 'from-script'); return 1", "0"},
		[]string{"PING"}, []string{"PING", "x"}, []string{"PUBSUB", "NUMSUB", "ch1", "nope"}, []string{"PUBSUB", "NUMPAT"},
		[]string{"CLIENT", "TRACKING", "on"}, []string{"GET", "k"}, []string{"SET", "k", "v2"}, []string{"CLIENT", "TRACKING", "off"},
		[]string{"UNSUBSCRIBE", "ch1", "nope"}, []string{"PUNSUBSCRIBE"}, []string{"GET", "k"}, []string{"UNSUBSCRIBE"},
		[]string{"SUNSUBSCRIBE"}, []string{"UNSUBSCRIBE"}, []string{"PUNSUBSCRIBE", "a", "b"}, []string{"SUNSUBSCRIBE"},
		// HELLO 2 while subscribed: RESP2 subscriber mode from then on.
		[]string{"SUBSCRIBE", "ch3"}, []string{"HELLO", "2"}, []string{"PING"}, []string{"GET", "k"}, []string{"HELLO", "3"},
		[]string{"PUBLISH", "ch3", "x"}, []string{"UNSUBSCRIBE"}, []string{"GET", "k"}, []string{"HELLO", "3"},
		[]string{"SUBSCRIBE", "ch4"}, []string{"RESET"}, []string{"GET", "k"}, []string{"PUBLISH", "ch4", "none"},
	)
	compareCorpus(t, "RESP3 Pub/Sub", l.Addr, e.bare, corpus)
	waitApplied(t, e.all...) // no message of that run is still on its way
	// PUBLISH's count is the leader's subscribers (as in Redis Cluster).
	for i := range corpus {
		if name := strings.ToLower(corpus[i].args[0]); name == "publish" || name == "spublish" {
			corpus[i].anyInt = true
		}
	}
	compareCorpus(t, "RESP3 Pub/Sub via follower", e.n3.Addr, e.bare, corpus)

	// A message published on another node reaches a RESP3 subscriber on
	// a follower as a push, while it runs ordinary commands.
	for _, n := range []*Node{e.n2, e.n3} {
		sub := dialR(t, n.Addr)
		sub.do("HELLO", "3")
		sub.step("SUBSCRIBE", "cross")
		if _, err := l.Do("PUBLISH", "cross", "m1"); err != nil {
			t.Fatalf("PUBLISH: %v", err)
		}
		pushes, _, err := sub.waitPushes(1, 15*time.Second)
		want := ">3\r\n$7\r\nmessage\r\n$5\r\ncross\r\n$2\r\nm1\r\n"
		if err != nil || len(pushes) != 1 || string(pushes[0]) != want {
			t.Errorf("%s: pushes %q, %v; want %q", n, pushes, err, want)
		}
		if got := sub.do("GET", "k"); string(got) != "$2\r\nv2\r\n" {
			t.Errorf("%s: GET while subscribed: %q", n, got)
		}
	}
}

// blocking: a RESP3 client blocked in a command gets Redis's RESP3 reply
// when another client serves it, on redraft as on redis-server.
func (e *resp3Env) blocking(t *testing.T) {
	l := e.leader(t)
	cases := []struct {
		setup, block, wake []string
	}{
		{nil, []string{"BLPOP", "bk", "0"}, []string{"RPUSH", "bk", "a"}},
		{nil, []string{"BRPOPLPUSH", "bk", "bk2", "0"}, []string{"RPUSH", "bk", "a"}},
		{nil, []string{"BLMOVE", "bk", "bk2", "LEFT", "LEFT", "0"}, []string{"RPUSH", "bk", "a"}},
		{nil, []string{"BLMPOP", "0", "1", "bk", "RIGHT", "COUNT", "2"}, []string{"RPUSH", "bk", "a", "b", "c"}},
		{nil, []string{"BZPOPMIN", "bz", "0"}, []string{"ZADD", "bz", "2.5", "m"}},
		{nil, []string{"BZPOPMAX", "bz", "0"}, []string{"ZADD", "bz", "-inf", "m"}},
		{nil, []string{"BZMPOP", "0", "1", "bz", "MIN", "COUNT", "5"}, []string{"ZADD", "bz", "1", "a", "2", "b"}},
		{[]string{"XADD", "bs", "1-1", "f", "v"}, []string{"XREAD", "BLOCK", "0", "STREAMS", "bs", "$"}, []string{"XADD", "bs", "2-1", "g", "w"}},
		{[]string{"XGROUP", "CREATE", "bs", "grp", "$", "MKSTREAM"}, []string{"XREADGROUP", "GROUP", "grp", "c", "BLOCK", "0", "STREAMS", "bs", ">"}, []string{"XADD", "bs", "3-1", "h", "x"}},
	}
	for _, n := range []*Node{l, e.n3} {
		for _, c := range cases {
			flushBoth(t, l, e.bare)
			got := blockedReply(t, n, l, c.setup, c.block, c.wake)
			want := blockedReplyBare(t, e.bare.Addr, c.setup, c.block, c.wake)
			if !bytes.Equal(got, want) {
				t.Errorf("%s: %q woken by %q:\n   redraft      %q\n   redis-server %q", n, c.block, c.wake, got, want)
			}
		}
	}
}

// blockedReply blocks a RESP3 client of n in block, wakes it with wake
// from a client of the leader l once l counts it as blocked (a follower
// relays blocking commands to the leader, which does the waiting), and
// returns the blocked client's reply.
func blockedReply(t *testing.T, n, l *Node, setup, block, wake []string) []byte {
	t.Helper()
	b, w := dialR(t, n.Addr), dialR(t, l.Addr)
	b.do("HELLO", "3")
	if setup != nil {
		w.do(setup...)
	}
	b.write(block)
	waitBlocked(t, l.Addr, 1)
	w.do(wake...)
	return b.reply()
}

// blockedReplyBare does what blockedReply does on a bare redis-server.
func blockedReplyBare(t *testing.T, addr string, setup, block, wake []string) []byte {
	t.Helper()
	b, w := dialR(t, addr), dialR(t, addr)
	b.do("HELLO", "3")
	if setup != nil {
		w.do(setup...)
	}
	b.write(block)
	eventually(t, 10*time.Second, func() error {
		info := string(w.do("INFO", "clients"))
		if !strings.Contains(info, "blocked_clients:1\r\n") {
			return fmt.Errorf("%q not blocked yet: %s", block, info)
		}
		return nil
	})
	w.do(wake...)
	return b.reply()
}

// ownCommands: what redraft answers itself has RESP3's types: INFO,
// CLIENT INFO and CLIENT LIST are verbatim strings, RAFTSTATS a map,
// HELLO the same map as Redis's.
func (e *resp3Env) ownCommands(t *testing.T) {
	l := e.leader(t)
	for _, n := range e.all {
		c := dialR(t, n.Addr)
		hello := c.do("HELLO", "3", "SETNAME", "own")
		want := "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n"
		if !bytes.HasPrefix(hello, []byte(want)) || !bytes.Contains(hello, []byte("$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:"+c.clientID()+"\r\n")) {
			t.Errorf("%s: HELLO 3: %q", n, hello)
		}
		for _, cmd := range [][]string{{"INFO"}, {"INFO", "raft"}, {"INFO", "clients"}, {"INFO", "everything"}, {"CLIENT", "INFO"}, {"CLIENT", "LIST"}} {
			raw := c.do(cmd...)
			if !bytes.HasPrefix(raw, []byte("=")) || !bytes.Contains(raw, []byte("\r\ntxt:")) {
				t.Errorf("%s: %v is not a verbatim string: %q", n, cmd, truncate(raw))
			}
		}
		if info := c.do("CLIENT", "INFO"); !bytes.Contains(info, []byte(" name=own ")) || !bytes.Contains(info, []byte(" resp=3\n")) {
			t.Errorf("%s: CLIENT INFO: %q", n, info)
		}
		if raft := c.do("INFO", "raft"); !bytes.Contains(raft, []byte("raft_state:")) {
			t.Errorf("%s: INFO raft: %q", n, raft)
		}
		stats := c.do("RAFTSTATS")
		if !bytes.HasPrefix(stats, []byte("%")) || !bytes.Contains(stats, []byte("$13\r\napplied_index\r\n")) {
			t.Errorf("%s: RAFTSTATS is not a map: %q", n, truncate(stats))
		}
		for _, cmd := range [][]string{{"RAFTSTATE"}, {"RAFTLEADER"}, {"RAFTPEERS"}, {"RAFTDIGEST"}, {"LASTSAVE"}, {"TIME"}, {"COMMAND", "COUNT"}} {
			if raw := c.do(cmd...); bytes.HasPrefix(raw, []byte("-")) {
				t.Errorf("%s: %v: %q", n, cmd, raw)
			}
		}
		if got := c.do("RAFTLEADER"); string(got) != fmt.Sprintf("$%d\r\n%s\r\n", len(l.Addr), l.Addr) {
			t.Errorf("%s: RAFTLEADER: %q", n, got)
		}
		c.do("HELLO", "2")
		if stats := c.do("RAFTSTATS"); !bytes.HasPrefix(stats, []byte("*")) {
			t.Errorf("%s: RAFTSTATS in RESP2: %q", n, truncate(stats))
		}
	}
}

// maskInts blanks integer replies.
func maskInts(raws [][]byte) [][]byte {
	out := make([][]byte, len(raws))
	for i, r := range raws {
		out[i] = r
		if len(r) > 0 && r[0] == ':' {
			out[i] = []byte(":*\r\n")
		}
	}
	return out
}

// truncate shortens raw for a message.
func truncate(raw []byte) []byte {
	if len(raw) > 300 {
		return append(raw[:300:300], "..."...)
	}
	return raw
}
