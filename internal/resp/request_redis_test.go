package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"testing"
)

// outcome is what a RequestReader made of some input: the commands (copied)
// and the error that ended it.
type outcome struct {
	cmds [][][]byte
	err  error
}

// chunkReader returns the data in reads of at most n bytes.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.data))
	copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

// readAll runs input through a RequestReader fed chunk bytes at a time
// until it fails. password, when set, means the connection starts
// unauthenticated and becomes authenticated by "AUTH <password>".
func readAll(input []byte, chunk int, lim Limits, password string) outcome {
	r := NewRequestReader(&chunkReader{data: input, n: chunk}, lim)
	authed := password == ""
	r.SetAuthenticated(authed)
	var out outcome
	var batch []Command
	for {
		var err error
		batch, err = r.ReadBatch(batch[:0], 0)
		for _, c := range batch {
			out.cmds = append(out.cmds, copyArgs(c.Args))
			if !authed && len(c.Args) == 2 && strings.EqualFold(string(c.Args[0]), "auth") && string(c.Args[1]) == password {
				authed = true
				r.SetAuthenticated(true)
			}
		}
		if err != nil {
			out.err = err
			return out
		}
	}
}

// copyArgs deep-copies args.
func copyArgs(args [][]byte) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = bytes.Clone(a)
	}
	return out
}

// encodeForRedis encodes commands as a request stream that redis-server
// must execute exactly as the commands themselves: multibulk, except that a
// command over the unauthenticated multibulk limits, sent before AUTH, is
// written inline with every byte quoted, as that is how it reached the
// reader.
func encodeForRedis(cmds [][][]byte, password string) []byte {
	var out []byte
	authed := password == ""
	for _, args := range cmds {
		big := len(args) > unauthMaxMultibulk
		for _, a := range args {
			big = big || len(a) > unauthMaxBulk
		}
		if authed || !big {
			out = AppendCommand(out, args)
		} else {
			out = appendInline(out, args)
		}
		if !authed && len(args) == 2 && strings.EqualFold(string(args[0]), "auth") && string(args[1]) == password {
			authed = true
		}
	}
	return out
}

// appendInline writes args as an inline request, each double-quoted with
// \xHH escapes.
func appendInline(dst []byte, args [][]byte) []byte {
	for i, a := range args {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, '"')
		for _, c := range a {
			dst = fmt.Appendf(dst, "\\x%02x", c)
		}
		dst = append(dst, '"')
	}
	return append(dst, '\r', '\n')
}

// expectedReply is what redis-server should have answered to input if the
// reader is right: its replies to the commands the reader found, then the
// protocol error reply, if any.
func expectedReply(t *testing.T, s *redisServer, o outcome, password string) []byte {
	var want []byte
	if len(o.cmds) > 0 {
		want = s.exchange(t, encodeForRedis(o.cmds, password))
	}
	var pe *ProtocolError
	if errors.As(o.err, &pe) {
		want = AppendError(want, "ERR "+pe.Error())
	}
	return want
}

// requestCase is one input for the comparison with redis-server.
type requestCase struct {
	name  string
	input string
}

// hostileRequests are inputs whose outcome does not depend on how the bytes
// are split into reads.
func hostileRequests() []requestCase {
	long := func(n int, c string) string { return strings.Repeat(c, n) }
	return []requestCase{
		{"ping", "*1\r\n$4\r\nPING\r\n"},
		{"echo", "*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n"},
		{"set get", "*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$2\r\nv1\r\n*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n"},
		{"binary arg", "*2\r\n$4\r\nECHO\r\n$7\r\na\x00b\r\n\xff\x01\r\n"},
		{"empty arg", "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"},
		{"empty command name", "*1\r\n$0\r\n\r\n"},
		{"count -10 ignored", "*-10\r\nPING\r\n"},
		{"count 0 ignored", "*0\r\n*0\r\nPING\r\n"},
		{"count min int64 ignored", "*-9223372036854775808\r\nPING\r\n"},
		{"count -0", "*-0\r\nPING\r\n"},
		{"count leading zero", "*01\r\n$4\r\nPING\r\n"},
		{"count plus", "*+1\r\n$4\r\nPING\r\n"},
		{"count empty", "PING\r\n*\r\nPING\r\n"},
		{"count letters", "*abc\r\n"},
		{"count space", "*1 \r\n$4\r\nPING\r\n"},
		{"count INT_MAX waits", "*2147483647\r\n$4\r\nPING\r\n"},
		{"count INT_MAX+1", "*2147483648\r\n"},
		{"count int64 max", "*9223372036854775807\r\n"},
		{"count int64 overflow", "*9223372036854775808\r\n"},
		{"count 21 digits", "*000000000000000000001\r\n"},
		{"count LF only", "*1\n$4\r\nPING\r\n"},
		{"count CR then any byte", "*1\rX$4\r\nPING\r\n"},
		{"count CR at end waits", "*1\r"},
		{"count NUL waits", "*1\x00\r\n$4\r\nPING\r\n"},
		{"bulk int64 max", "*1\r\n$9223372036854775807\r\n"},
		{"bulk int64 overflow", "*1\r\n$9223372036854775808\r\n"},
		{"bulk max waits", "*1\r\n$536870912\r\n"},
		{"bulk max+1", "*1\r\n$536870913\r\n"},
		{"bulk -1", "*1\r\n$-1\r\n"},
		{"bulk -0", "*1\r\n$-0\r\n"},
		{"bulk leading zero", "*1\r\n$04\r\nPING\r\n"},
		{"bulk empty length", "*1\r\n$\r\n"},
		{"bulk letters", "*1\r\n$x\r\n"},
		{"bulk NUL in length waits", "*1\r\n$4\x00\r\nPING\r\n"},
		{"expected $ got letter", "*1\r\nfoo\r\n"},
		{"expected $ got colon", "*1\r\n:1\r\n"},
		{"expected $ got CR", "*1\r\n\r\n"},
		{"expected $ got LF", "*1\r\n\n\r\n"},
		{"expected $ got 0xff", "*1\r\n\xff\r\n"},
		{"expected $ got star", "*2\r\n$4\r\nECHO\r\n*1\r\n"},
		{"bulk trailer unchecked", "*1\r\n$4\r\nPINGXY*1\r\n$4\r\nPING\r\n"},
		{"bulk cut short", "*2\r\n$4\r\nECHO\r\n$5\r\nab"},
		{"command then error", "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$-5\r\n"},
		{"old server panic", "*1\r\n$9223372036854775807\r\n"},
		{"too big mbulk count", "*1" + long(70000, "1")},
		{"too big bulk count", "*1\r\n$1" + long(70000, "0")},
		{"too big mbulk count after NUL", "*1\x00\r\n" + long(70000, "x")},
		{"inline ping", "PING\r\n"},
		{"inline LF only", "PING\nPING\n"},
		{"inline mixed pipeline", "PING\r\n*1\r\n$4\r\nPING\r\nECHO x\n"},
		{"inline empty lines", "\r\n\n  \r\n\t\nPING\n"},
		{"inline CR CR LF", "ECHO a\r\r\n"},
		{"inline CR inside quotes", "ECHO \"a\rb\"\r\n"},
		{"inline double quotes", "ECHO \"hello world\"\r\n"},
		{"inline escapes", "ECHO \"\\n\\r\\t\\b\\a\\\\\\\"\\q\"\r\n"},
		{"inline hex", "ECHO \"\\x41\\x4g\\xZZ\\x4\"\r\n"},
		{"inline hex at end", "ECHO \"\\x4\"\r\n"},
		{"inline single quotes", "ECHO 'a\\'b \\n'\r\n"},
		{"inline quotes inside quotes", "ECHO 'a\"b' \"a'b\"\r\n"},
		{"inline quote mid-token", "ECHO ab\"c d\"\r\n"},
		{"inline empty quoted", "ECHO \"\"\r\n"},
		{"inline empty command", "\"\"\r\n"},
		{"inline unbalanced after quote", "ECHO \"a\"b\r\n"},
		{"inline unterminated", "ECHO \"abc\r\n"},
		{"inline unterminated single", "ECHO 'abc\r\n"},
		{"inline backslash at end", "ECHO \"a\\\r\n"},
		{"inline single unbalanced", "ECHO a'b c'd\r\n"},
		{"inline vtab in token", "ECHO a\vb\r\n"},
		{"inline vtab leading", "\vECHO x\r\n"},
		{"inline vtab after quote", "ECHO \"a\"\v\r\n"},
		{"inline formfeed after quote", "ECHO \"a\"\f x\r\n"},
		{"inline tabs", "ECHO\ta\r\n"},
		{"inline NUL waits", "PING\x00\r\n"},
		{"inline 0xff", "ECHO \xff\xfe\r\n"},
		{"inline CR without LF waits", "PING\r"},
		{"inline many args", "ECHO " + long(30, "a ") + "\r\n"},
		{"inline 64K ok", "ECHO " + long(65000, "a") + "\r\n"},
		{"too big inline", long(70000, "a")},
		{"too big inline after NUL", "PING\x00\n" + long(70000, "a")},
		{"error after inline", "PING\r\nECHO \"x\r\n"},
	}
}

func TestRequestReaderMatchesRedis(t *testing.T) {
	s := startRedis(t)
	for _, tc := range hostileRequests() {
		t.Run(tc.name, func(t *testing.T) {
			compareWithRedis(t, s, []byte(tc.input), Limits{}, "")
		})
	}
}

// compareWithRedis checks that the reader's outcome on input, whatever the
// read sizes, is redis-server's.
func compareWithRedis(t *testing.T, s *redisServer, input []byte, lim Limits, password string) {
	t.Helper()
	got := s.exchange(t, input)
	rng := rand.New(rand.NewSource(int64(len(input))))
	chunks := []int{len(input) + 1, 1, 2, 3, 7, 1 + rng.Intn(64), 16 << 10, 4096 + rng.Intn(40000)}
	o := readAll(input, chunks[0], lim, password)
	want := expectedReply(t, s, o, password)
	if !bytes.Equal(got, want) {
		t.Fatalf("input %q\nredis-server sent %q\nreader gives %q (commands %q, error %v)",
			trunc(input), trunc(got), trunc(want), o.cmds, o.err)
	}
	for _, n := range chunks[1:] {
		if n > 64 && len(input) > 4<<20 {
			continue
		}
		if o2 := readAll(input, n, lim, password); !sameOutcome(o, o2) {
			t.Fatalf("input %q in reads of %d bytes: commands %q, error %v; in one read: %q, %v",
				trunc(input), n, o2.cmds, o2.err, o.cmds, o.err)
		}
	}
}

// sameOutcome compares two outcomes.
func sameOutcome(a, b outcome) bool {
	if len(a.cmds) != len(b.cmds) || fmt.Sprint(a.err) != fmt.Sprint(b.err) {
		return false
	}
	for i := range a.cmds {
		if len(a.cmds[i]) != len(b.cmds[i]) {
			return false
		}
		for j := range a.cmds[i] {
			if !bytes.Equal(a.cmds[i][j], b.cmds[i][j]) {
				return false
			}
		}
	}
	return true
}

// trunc shortens b for a failure message.
func trunc(b []byte) []byte {
	if len(b) > 200 {
		return append(b[:100:100], "..."...)
	}
	return b
}

func TestRequestReaderMatchesRedisUnauthenticated(t *testing.T) {
	const pw = "s3cret"
	s := startRedis(t, "--requirepass", pw)
	bulk := func(n int) string { return fmt.Sprintf("*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n", n, strings.Repeat("x", n)) }
	args := func(n int) string {
		return fmt.Sprintf("*%d\r\n$4\r\nECHO\r\n", n) + strings.Repeat("$1\r\na\r\n", n-1)
	}
	for _, tc := range []requestCase{
		{"10 args", args(10)},
		{"11 args", args(11)},
		{"bulk 16384", bulk(16384)},
		{"bulk 16385", bulk(16385)},
		{"inline has no limit", "ECHO " + strings.Repeat("a ", 20) + "\r\n"},
		{"auth then 11 args", "AUTH " + pw + "\r\n" + args(11)},
		{"auth then big bulk", "*2\r\n$4\r\nAUTH\r\n$6\r\n" + pw + "\r\n" + bulk(20000)},
		{"wrong auth then 11 args", "AUTH nope\r\n" + args(11)},
		{"count 11 after a command", "PING\r\n*11\r\n"},
		{"negative count", "*-20\r\nPING\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			compareWithRedis(t, s, []byte(tc.input), Limits{}, pw)
		})
	}
}

func TestRequestReaderMatchesRedisLimits(t *testing.T) {
	s := startRedis(t, "--client-query-buffer-limit", "1mb", "--proto-max-bulk-len", "2mb")
	lim := Limits{MaxQueryBuffer: 1 << 20, MaxBulkLen: 2 << 20}
	big := func(n, sent int) string {
		return fmt.Sprintf("*2\r\n$4\r\nECHO\r\n$%d\r\n", n) + strings.Repeat("z", sent)
	}
	for _, tc := range []requestCase{
		{"bulk at proto-max-bulk-len", big(2<<20, 10) + "\r\n"},
		{"bulk over proto-max-bulk-len", big(2<<20+1, 10)},
		{"query buffer over limit", big(2<<20, 1<<20+100)},
		{"query buffer under limit", big(1<<20-100, 1<<20-100) + "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			compareWithRedis(t, s, []byte(tc.input), lim, "")
		})
	}
}

// randomRequest builds a request stream from pieces of valid and broken
// syntax, then mutates a few bytes. Command names come from a harmless set
// and mutations use symbols only, so no input can run anything but ECHO,
// PING or an unknown command.
func randomRequest(rng *rand.Rand) []byte {
	words := []string{"ECHO", "PING", "x", "", "a b", "\"q\"", "it's", "\x00", "\r", "\n", "\\x41", "\xff"}
	var b []byte
	for n := rng.Intn(4) + 1; n > 0; n-- {
		switch rng.Intn(3) {
		case 0: // multibulk
			args := []string{"ECHO"}
			for k := rng.Intn(3); k > 0; k-- {
				args = append(args, words[rng.Intn(len(words))])
			}
			bargs := make([][]byte, len(args))
			for i, a := range args {
				bargs[i] = []byte(a)
			}
			b = AppendCommand(b, bargs)
		case 1: // inline, with quotes and escapes
			b = append(b, "ECHO "...)
			for k := rng.Intn(4); k > 0; k-- {
				pieces := []string{"a", " ", "\t", "\"", "'", "\\", "\\x4", "1", "\\n", "\\'", "\v", "\f", "\r"}
				b = append(b, pieces[rng.Intn(len(pieces))]...)
			}
			b = append(b, []string{"\n", "\r\n", "\r\r\n"}[rng.Intn(3)]...)
		default: // headers on their own
			b = append(b, []string{"*", "$", "*-1\r\n", "*0\r\n", "$-1\r\n", "*1\r\n", "$4\r\n", "\r\n"}[rng.Intn(8)]...)
		}
	}
	symbols := []byte("*$\r\n\x00\"'\\ 0123-+:")
	for k := rng.Intn(3); k > 0 && len(b) > 0; k-- {
		i := rng.Intn(len(b))
		switch rng.Intn(3) {
		case 0:
			b[i] = symbols[rng.Intn(len(symbols))]
		case 1:
			b = append(b[:i], b[i+1:]...)
		default:
			b = append(b[:i], append([]byte{symbols[rng.Intn(len(symbols))]}, b[i:]...)...)
		}
	}
	return b
}

func TestRequestReaderRandomAgainstRedis(t *testing.T) {
	s := startRedis(t)
	rng := rand.New(rand.NewSource(7))
	n := 400
	if testing.Short() {
		n = 50
	}
	for i := 0; i < n; i++ {
		input := randomRequest(rng)
		compareWithRedis(t, s, input, Limits{}, "")
	}
}
