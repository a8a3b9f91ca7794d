package resp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func newReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

var respSamples = []string{
	"+OK\r\n",
	"+\r\n",
	"-ERR unknown command 'x'\r\n",
	"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
	":0\r\n",
	":-42\r\n",
	":9223372036854775807\r\n",
	"$0\r\n\r\n",
	"$5\r\nhello\r\n",
	"$4\r\na\r\nb\r\n", // CRLF inside a bulk
	"$-1\r\n",
	"*0\r\n",
	"*-1\r\n",
	"*3\r\n:1\r\n$1\r\nx\r\n+s\r\n",
	"*2\r\n*2\r\n$1\r\na\r\n$-1\r\n*-1\r\n",
	"*1\r\n*1\r\n*1\r\n*0\r\n",
	"*4\r\n-ERR inner\r\n$-1\r\n*-1\r\n*2\r\n:1\r\n*1\r\n$3\r\nabc\r\n",
}

func TestReadRawAllTypes(t *testing.T) {
	for _, s := range respSamples {
		// Each reply followed by a sentinel: readRaw must consume exactly one.
		br := newReader(s + "+NEXT\r\n")
		got, err := ReadReply(br, nil)
		if err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		if string(got) != s {
			t.Errorf("ReadReply(%q) = %q", s, got)
		}
		next, err := ReadReply(br, nil)
		if err != nil || string(next) != "+NEXT\r\n" {
			t.Errorf("%q: reply after it = %q, %v", s, next, err)
		}
	}
}

func TestReadRawAppendsToDst(t *testing.T) {
	dst := []byte("prefix")
	got, err := ReadReply(newReader("*2\r\n$1\r\na\r\n:1\r\n"), dst)
	if err != nil || string(got) != "prefix*2\r\n$1\r\na\r\n:1\r\n" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestReadRawBigBulkAndSlowReader(t *testing.T) {
	payload := strings.Repeat("z", 200_000) // larger than the bufio buffer
	s := "*2\r\n$200000\r\n" + payload + "\r\n:7\r\n"
	// One byte per Read: every partial read must be resumed.
	br := bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(s)), 16)
	got, err := ReadReply(br, nil)
	if err != nil || string(got) != s {
		t.Fatalf("err=%v, got %d bytes, want %d", err, len(got), len(s))
	}
}

func TestReadRawPartialInput(t *testing.T) {
	for _, s := range respSamples {
		for n := 0; n < len(s); n++ {
			_, err := ReadReply(newReader(s[:n]), nil)
			if err == nil {
				t.Errorf("ReadReply(%q) (prefix of %q) succeeded", s[:n], s)
			}
		}
	}
	// A truncated bulk body is io.ErrUnexpectedEOF, a missing line io.EOF.
	if _, err := ReadReply(newReader("$5\r\nhel"), nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short bulk: %v", err)
	}
	if _, err := ReadReply(newReader(""), nil); !errors.Is(err, io.EOF) {
		t.Errorf("empty input: %v", err)
	}
}

func TestReadRawMalformed(t *testing.T) {
	for _, s := range []string{
		"\r\n",
		"x\r\n",
		"OK\r\n",
		"+OK\n", // no CR
		"$abc\r\n",
		"*abc\r\n",
		"$\r\n",
		"?5\r\n",
		"*1\r\n!x\r\n",
	} {
		if _, err := ReadReply(newReader(s), nil); err == nil {
			t.Errorf("ReadReply(%q) accepted malformed input", s)
		}
	}
}

func TestWriteCommandRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	args := [][]byte{[]byte("SET"), []byte("k\r\n"), {}, bytes.Repeat([]byte{0}, 70000)}
	WriteCommand(w, args)
	w.Flush()
	want := "*4\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$0\r\n\r\n$70000\r\n" + strings.Repeat("\x00", 70000) + "\r\n"
	if buf.String() != want {
		t.Fatalf("writeCommand wrote %q...", buf.String()[:40])
	}
	// The same bytes parse back as an array of the arguments.
	v, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	items := v.([]any)
	for i, a := range args {
		if !bytes.Equal(items[i].([]byte), a) {
			t.Errorf("arg %d differs", i)
		}
	}
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		raw  string
		want any
	}{
		{"+OK\r\n", "OK"},
		{"-ERR bad\r\n", ErrorValue("ERR bad")},
		{":-12\r\n", int64(-12)},
		{"$3\r\nabc\r\n", []byte("abc")},
		{"$0\r\n\r\n", []byte{}},
		{"$4\r\na\r\nb\r\n", []byte("a\r\nb")},
		{"$-1\r\n", nil},
		{"*-1\r\n", nil},
		{"*0\r\n", []any{}},
		{"*3\r\n:1\r\n$-1\r\n*2\r\n+x\r\n-E y\r\n", []any{int64(1), nil, []any{"x", ErrorValue("E y")}}},
	}
	for _, tc := range tests {
		got, err := Parse([]byte(tc.raw))
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.raw, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q) = %#v, want %#v", tc.raw, got, tc.want)
		}
	}
	for _, bad := range []string{"", "+OK", ":x\r\n", "$3\r\nab", "*2\r\n:1\r\n", "%1\r\n", "$x\r\n", "*x\r\n"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted malformed input", bad)
		}
	}
}

// parseReply and readRaw agree on where every sample reply ends.
func TestParseReplyAcceptsWhatReadRawReads(t *testing.T) {
	for _, s := range respSamples {
		raw, err := ReadReply(newReader(s), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(raw); err != nil {
			t.Errorf("Parse(%q): %v", raw, err)
		}
	}
}

func TestReadArrayItems(t *testing.T) {
	items, err := ArrayItems([]byte("*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n-ERR x\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{":1\r\n", "*2\r\n$1\r\na\r\n$-1\r\n", "-ERR x\r\n"}
	if !reflect.DeepEqual(strs(items), want) {
		t.Errorf("items = %q, want %q", strs(items), want)
	}
	if items, err := ArrayItems([]byte("*0\r\n")); err != nil || len(items) != 0 {
		t.Errorf("empty array: %q %v", items, err)
	}
	if items, err := ArrayItems([]byte("*-1\r\n")); err != nil || len(items) != 0 {
		t.Errorf("nil array: %q %v", items, err)
	}
	for _, bad := range []string{"", ":1\r\n", "*2\r\n:1\r\n", "*x\r\n"} {
		if _, err := ArrayItems([]byte(bad)); err == nil {
			t.Errorf("ArrayItems(%q) accepted malformed input", bad)
		}
	}
}

func TestReplyHelpers(t *testing.T) {
	if n, ok := Int([]byte(":123\r\n")); !ok || n != 123 {
		t.Errorf("replyInt = %d %v", n, ok)
	}
	if n, ok := Int([]byte(":-2\r\n")); !ok || n != -2 {
		t.Errorf("Int(-2) = %d %v", n, ok)
	}
	for _, bad := range []string{"", ":\r\n", "+1\r\n", "$1\r\n1\r\n", ":x\r\n"} {
		if _, ok := Int([]byte(bad)); ok {
			t.Errorf("Int(%q) ok", bad)
		}
	}
	if !IsError([]byte("-ERR\r\n")) || IsError([]byte("+OK\r\n")) || IsError(nil) {
		t.Error("replyIsError")
	}
	for raw, want := range map[string]string{"+OK\r\n": "OK", "-ERR x\r\n": "ERR x", "$3\r\nabc\r\n": "abc", "$0\r\n\r\n": ""} {
		if got, ok := Text([]byte(raw)); !ok || got != want {
			t.Errorf("Text(%q) = %q %v", raw, got, ok)
		}
	}
	for _, bad := range []string{"$-1\r\n", ":1\r\n", "*0\r\n", "", "+"} {
		if got, ok := Text([]byte(bad)); ok {
			t.Errorf("Text(%q) = %q, ok", bad, got)
		}
	}
	if string(Error("ERR x")) != "-ERR x\r\n" || string(Integer(-5)) != ":-5\r\n" ||
		string(Status("PONG")) != "+PONG\r\n" || string(Bulk("")) != "$0\r\n\r\n" ||
		string(Bulk("a\r\nb")) != "$4\r\na\r\nb\r\n" || string(ArrayHeader(3)) != "*3\r\n" {
		t.Error("reply formatters")
	}
	if AsString("s") != "s" || AsString([]byte("b")) != "b" || AsString(ErrorValue("e")) != "e" || AsString(int64(1)) != "" {
		t.Error("asString")
	}
}

func BenchmarkReadRaw(b *testing.B) {
	// A pipeline of typical replies: status, int, bulk, nested array, nil.
	one := "+OK\r\n:12345\r\n$10\r\nvalue-xxxx\r\n*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n*-1\r\n$-1\r\n"
	const perRound = 6
	data := strings.Repeat(one, 64)
	rd := strings.NewReader(data)
	br := bufio.NewReaderSize(rd, 64<<10)
	dst := make([]byte, 0, 256)
	b.SetBytes(int64(len(one)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < perRound; j++ {
			var err error
			if dst, err = ReadReply(br, dst[:0]); err != nil {
				rd.Reset(data)
				br.Reset(rd)
				if dst, err = ReadReply(br, dst[:0]); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}

// strs renders byte slices as strings for comparisons.
func strs(b [][]byte) []string {
	out := make([]string, len(b))
	for i, x := range b {
		out[i] = string(x)
	}
	return out
}
