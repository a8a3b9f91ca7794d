package resp

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestRealRepliesRoundTrip reads many kinds of redis-server replies in both
// protocols with ReadReply, decodes them with Parse, and checks that
// AppendValue writes them back byte for byte.
func TestRealRepliesRoundTrip(t *testing.T) {
	s := startRedis(t, "--enable-debug-command", "yes")
	setup := s.dial(t)
	for _, cmd := range [][]string{
		{"SET", "str", "value"}, {"SET", "num", "41"}, {"HSET", "h", "a", "1", "b", "2"},
		{"SADD", "set", "x", "y"}, {"ZADD", "z", "1.5", "a", "0.1", "b", "inf", "c"},
		{"RPUSH", "list", "a", "b", "c"}, {"XADD", "st", "1-1", "f", "v"},
		{"XGROUP", "CREATE", "st", "g", "0"}, {"XREADGROUP", "GROUP", "g", "c", "STREAMS", "st", ">"},
		{"FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('f', function() return 1 end)"},
	} {
		if raw := setup.do(cmd...); ReplyIsError(raw) {
			t.Fatalf("%q: %q", cmd, raw)
		}
	}
	commands := [][]string{
		{"PING"}, {"ECHO", "a\r\nb"}, {"GET", "str"}, {"GET", "missing"}, {"INCR", "num"},
		{"INCRBYFLOAT", "num", "0.5"}, {"HGETALL", "h"}, {"HRANDFIELD", "missing", "2"}, {"SMEMBERS", "set"},
		{"SISMEMBER", "set", "x"}, {"ZRANGE", "z", "0", "-1", "WITHSCORES"}, {"ZSCORE", "z", "a"},
		{"ZSCORE", "z", "c"}, {"ZPOPMIN", "missing"}, {"LRANGE", "list", "0", "-1"}, {"LPOS", "list", "b"},
		{"XRANGE", "st", "-", "+"}, {"XINFO", "STREAM", "st", "FULL"}, {"XPENDING", "st", "g"},
		{"CONFIG", "GET", "maxmemory*"}, {"COMMAND", "INFO", "GET", "SET"}, {"COMMAND", "DOCS", "SET"},
		{"INFO", "server"}, {"CLIENT", "INFO"}, {"MEMORY", "STATS"}, {"FUNCTION", "LIST"},
		{"OBJECT", "ENCODING", "str"}, {"SCAN", "0", "COUNT", "100"}, {"TYPE", "h"}, {"TTL", "str"},
		{"EVAL", "return {1, {2, {3, 'x'}}, redis.status_reply('S'), redis.error_reply('E')}", "0"},
		{"EVAL", "redis.setresp(3); return redis.call('HGETALL', KEYS[1])", "1", "h"},
		{"EVAL", "return {double=2.5}", "0"}, {"EVAL", "return {big_number='123'}", "0"},
		{"NOPE"}, {"LPUSH", "str", "x"}, {"SET", "str", "value", "GET"}, {"EXISTS", "str", "h"},
		{"DEBUG", "PROTOCOL", "string"}, {"DEBUG", "PROTOCOL", "integer"}, {"DEBUG", "PROTOCOL", "double"},
		{"DEBUG", "PROTOCOL", "bignum"}, {"DEBUG", "PROTOCOL", "null"}, {"DEBUG", "PROTOCOL", "array"},
		{"DEBUG", "PROTOCOL", "set"}, {"DEBUG", "PROTOCOL", "map"}, {"DEBUG", "PROTOCOL", "attrib"},
		{"DEBUG", "PROTOCOL", "verbatim"}, {"DEBUG", "PROTOCOL", "true"}, {"DEBUG", "PROTOCOL", "false"},
	}
	for _, p := range []Proto{Proto2, Proto3} {
		c := s.dial(t)
		roundTrip(t, p, "HELLO", c.do("HELLO", fmt.Sprint(int(p))))
		for _, cmd := range commands {
			roundTrip(t, p, strings.Join(cmd, " "), c.do(cmd...))
		}
		if p == Proto3 {
			roundTrip(t, p, "DEBUG PROTOCOL push", c.do("DEBUG", "PROTOCOL", "push"))
			roundTrip(t, p, "reply after the push", c.read())
			checkTrackingPush(t, s, c)
		}
		// RESP2's null array decodes to nil, written back as a null bulk.
		raw := c.do("BLPOP", "missing", "0.01")
		if v, err := Parse(raw); err != nil || v != nil || !ReplyIsNull(raw) {
			t.Errorf("BLPOP timeout (RESP%d): %q, %#v, %v", p, raw, v, err)
		}
	}
}

// roundTrip checks that raw decodes and encodes back to itself, and that
// ArrayItems and replyEnd agree with it.
func roundTrip(t *testing.T, p Proto, what string, raw []byte) {
	t.Helper()
	v, err := Parse(raw)
	if err != nil {
		t.Errorf("%s (RESP%d): Parse(%q): %v", what, p, trunc(raw), err)
		return
	}
	if got := AppendValue(nil, p, v); !bytes.Equal(got, raw) {
		t.Errorf("%s (RESP%d): redis-server sent %q, AppendValue wrote %q", what, p, trunc(raw), trunc(got))
	}
	if end, err := replyEnd(raw); err != nil || end != len(raw) {
		t.Errorf("%s (RESP%d): replyEnd = %d, %v", what, p, end, err)
	}
	if strings.ContainsRune("*%~>", rune(skipAttributes(raw)[0])) {
		items, err := ArrayItems(raw)
		var joined []byte
		for _, it := range items {
			joined = append(joined, it...)
		}
		if err != nil || !bytes.HasSuffix(raw, joined) {
			t.Errorf("%s (RESP%d): ArrayItems: %v", what, p, err)
		}
	}
}

// checkTrackingPush turns on client tracking on c (RESP3), changes a key it
// read from another connection, and checks the invalidation push.
func checkTrackingPush(t *testing.T, s *redisServer, c *session) {
	t.Helper()
	c.do("CLIENT", "TRACKING", "ON")
	c.do("GET", "tracked")
	s.do(t, "SET", "tracked", "1")
	raw := c.read()
	want := AppendPush(nil, Proto3, 2)
	want = AppendBulkString(want, "invalidate")
	want = AppendBulkString(AppendArray(want, 1), "tracked")
	checkReply(t, "invalidation", raw, want)
	roundTrip(t, Proto3, "invalidation", raw)
}
