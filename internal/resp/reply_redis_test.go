package resp

import (
	"bytes"
	"fmt"
	"math"
	"math/rand"
	"strconv"
	"testing"
)

// hello switches a session to protocol p.
func (s *session) hello(p Proto) {
	s.t.Helper()
	if raw := s.do("HELLO", strconv.Itoa(int(p))); ReplyIsError(raw) {
		s.t.Fatalf("HELLO %d: %q", p, raw)
	}
}

// sessions returns one session per protocol, indexed by Proto.
func sessions(t *testing.T, s *redisServer) map[Proto]*session {
	out := map[Proto]*session{}
	for _, p := range []Proto{Proto2, Proto3} {
		out[p] = s.dial(t)
		out[p].hello(p)
	}
	return out
}

// checkReply compares a reply of redis-server with the builders' bytes.
func checkReply(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s: redis-server sent %q, builders give %q", what, got, want)
	}
}

func TestAppendDoubleMatchesRedis(t *testing.T) {
	s := startRedis(t)
	values := []float64{0, 1, -1, 0.1, 0.5, 1.5, 3.141, 1e-5, 1e-4, 123456,
		1e15, 1e16, 1e17, 123456789012345678, 1e21, 1e22, 5e-324, math.MaxFloat64,
		2.2250738585072014e-308, 1.0 / 3, 2.0 / 3, 100, 1e100, -1e-100, 9007199254740993,
		math.Inf(1), math.Inf(-1)}
	rng := rand.New(rand.NewSource(1))
	for len(values) < 3000 {
		f := math.Float64frombits(rng.Uint64())
		if math.IsNaN(f) {
			continue
		}
		values = append(values, f)
		values = append(values, float64(rng.Intn(1e6))/float64(1+rng.Intn(1000)))
	}
	for p, c := range sessions(t, s) {
		// One pipeline of ZADD and ZSCORE for every value.
		var req []byte
		for i, f := range values {
			member := []byte("m" + strconv.Itoa(i))
			score := strconv.FormatFloat(f, 'g', -1, 64)
			req = AppendCommand(req, [][]byte{[]byte("ZADD"), []byte("z"), []byte(score), member})
			req = AppendCommand(req, [][]byte{[]byte("ZSCORE"), []byte("z"), member})
		}
		if _, err := c.c.Write(req); err != nil {
			t.Fatal(err)
		}
		for _, f := range values {
			c.read()
			checkReply(t, fmt.Sprintf("ZSCORE of %v (RESP%d)", f, p), c.read(), AppendDouble(nil, p, f))
		}
		key, a, b := "zi"+strconv.Itoa(int(p)), 0.1, 0.2
		checkReply(t, "ZINCRBY", c.do("ZINCRBY", key, "0.1", "m"), AppendDouble(nil, p, a))
		checkReply(t, "ZINCRBY", c.do("ZINCRBY", key, "0.2", "m"), AppendDouble(nil, p, a+b))
	}
	// NaN from Lua: 0/0 on x86 has its sign bit set, and glibc prints it so.
	c := s.dial(t)
	c.hello(Proto3)
	checkReply(t, "Lua 0/0", c.do("EVAL", "return {double=0/0}", "0"), AppendDouble(nil, Proto3, math.Copysign(math.NaN(), -1)))
	checkReply(t, "Lua -0.0", c.do("EVAL", "return {double=-0.0}", "0"), AppendDouble(nil, Proto3, math.Copysign(0, -1)))
	checkReply(t, "Lua 1/0", c.do("EVAL", "return {double=1/0}", "0"), AppendDouble(nil, Proto3, math.Inf(1)))
	checkReply(t, "Lua -(0/0)", c.do("EVAL", "return {double=-(0/0)}", "0"), AppendDouble(nil, Proto3, math.NaN()))
}

func TestAppendBuildersMatchRedis(t *testing.T) {
	s := startRedis(t, "--enable-debug-command", "yes")
	for p, c := range sessions(t, s) {
		name := func(what string) string { return fmt.Sprintf("%s (RESP%d)", what, p) }
		c.do("DEL", "h", "st", "k")
		checkReply(t, name("SET"), c.do("SET", "k", "v"), AppendStatus(nil, "OK"))
		checkReply(t, name("unknown command"), c.do("NOPE", "x"),
			AppendError(nil, "ERR unknown command 'NOPE', with args beginning with: 'x' "))
		checkReply(t, name("EXISTS"), c.do("EXISTS", "k", "k", "missing"), AppendInt(nil, 2))
		checkReply(t, name("GET"), c.do("GET", "k"), AppendBulkString(nil, "v"))
		checkReply(t, name("GET missing"), c.do("GET", "missing"), AppendNullBulk(nil, p))
		checkReply(t, name("BLPOP timeout"), c.do("BLPOP", "missing", "0.01"), AppendNullArray(nil, p))
		checkReply(t, name("LRANGE"), c.do("LRANGE", "missing", "0", "-1"), AppendArray(nil, 0))

		c.do("HSET", "h", "f", "v")
		want := AppendMap(nil, p, 1)
		want = AppendBulkString(want, "f")
		checkReply(t, name("HGETALL"), c.do("HGETALL", "h"), AppendBulkString(want, "v"))
		c.do("SADD", "st", "a")
		checkReply(t, name("SMEMBERS"), c.do("SMEMBERS", "st"), AppendBulkString(AppendSet(nil, p, 1), "a"))

		info := c.do("INFO", "keyspace")
		text, ok := ReplyString(info)
		if !ok || len(text) < 10 {
			t.Fatalf("INFO: %q", info)
		}
		checkReply(t, name("INFO"), info, AppendVerbatim(nil, p, "txt", text))

		checkReply(t, name("DEBUG PROTOCOL double"), c.do("DEBUG", "PROTOCOL", "double"), AppendDouble(nil, p, 3.141))
		checkReply(t, name("DEBUG PROTOCOL bignum"), c.do("DEBUG", "PROTOCOL", "bignum"),
			AppendBigNumber(nil, p, "1234567999999999999999999999999999999"))
		checkReply(t, name("DEBUG PROTOCOL null"), c.do("DEBUG", "PROTOCOL", "null"), AppendNullBulk(nil, p))
		checkReply(t, name("DEBUG PROTOCOL true"), c.do("DEBUG", "PROTOCOL", "true"), AppendBool(nil, p, true))
		checkReply(t, name("DEBUG PROTOCOL false"), c.do("DEBUG", "PROTOCOL", "false"), AppendBool(nil, p, false))
		checkReply(t, name("DEBUG PROTOCOL verbatim"), c.do("DEBUG", "PROTOCOL", "verbatim"),
			AppendVerbatim(nil, p, "txt", "This is a verbatim\nstring"))
		want = AppendSet(nil, p, 3)
		for j := int64(0); j < 3; j++ {
			want = AppendInt(want, j)
		}
		checkReply(t, name("DEBUG PROTOCOL set"), c.do("DEBUG", "PROTOCOL", "set"), want)
		want = AppendMap(nil, p, 3)
		for j := int64(0); j < 3; j++ {
			want = AppendBool(AppendInt(want, j), p, j == 1)
		}
		checkReply(t, name("DEBUG PROTOCOL map"), c.do("DEBUG", "PROTOCOL", "map"), want)

		sub := s.dial(t)
		sub.hello(p)
		want = AppendPush(nil, p, 3)
		want = AppendBulkString(AppendBulkString(want, "subscribe"), "ch")
		checkReply(t, name("SUBSCRIBE"), sub.do("SUBSCRIBE", "ch"), AppendInt(want, 1))
		c.do("PUBLISH", "ch", "hi")
		want = AppendPush(nil, p, 3)
		want = AppendBulkString(AppendBulkString(AppendBulkString(want, "message"), "ch"), "hi")
		checkReply(t, name("message"), sub.read(), want)
	}
}
