package resp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

func newBufReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// resp2Samples are RESP2 replies, as redis-server sends them.
var resp2Samples = []string{
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

// resp3Samples are RESP3 replies in their canonical form: AppendValue
// writes them back byte for byte.
var resp3Samples = []string{
	"_\r\n",
	"#t\r\n",
	"#f\r\n",
	",3.141\r\n",
	",0.10000000000000001\r\n",
	",-1.5e-05\r\n",
	",inf\r\n",
	",-inf\r\n",
	",nan\r\n",
	",-nan\r\n",
	"(1234567999999999999999999999999999999\r\n",
	"(-1\r\n",
	"=29\r\ntxt:This is a verbatim\nstring\r\n",
	"=4\r\nmkd:\r\n",
	"!10\r\nERR a\r\nb x\r\n",
	"%0\r\n",
	"%2\r\n$1\r\nk\r\n:1\r\n:2\r\n#f\r\n",
	"~0\r\n",
	"~2\r\n:1\r\n$1\r\nx\r\n",
	">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
	"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$4\r\nreal\r\n",
	"*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n",
	"|1\r\n+a\r\n+b\r\n|1\r\n+c\r\n+d\r\n:1\r\n",
	"%1\r\n%1\r\n~1\r\n:1\r\n>0\r\n*1\r\n_\r\n",
}

func TestReadReplyAllTypes(t *testing.T) {
	for _, s := range append(append([]string{}, resp2Samples...), resp3Samples...) {
		// Each reply followed by a sentinel: ReadReply must consume exactly one.
		br := newBufReader(s + "+NEXT\r\n")
		got, err := ReadReply(br, nil)
		if err != nil || string(got) != s {
			t.Errorf("ReadReply(%q) = %q, %v", s, got, err)
			continue
		}
		if next, err := ReadReply(br, nil); err != nil || string(next) != "+NEXT\r\n" {
			t.Errorf("%q: reply after it = %q, %v", s, next, err)
		}
		if end, err := replyEnd([]byte(s + "+NEXT\r\n")); err != nil || end != len(s) {
			t.Errorf("replyEnd(%q) = %d, %v", s, end, err)
		}
	}
}

func TestReadReplySameAsBeforeForRESP2(t *testing.T) {
	all := strings.Join(resp2Samples, "")
	oldBr, newBr := newBufReader(all), newBufReader(all)
	for range resp2Samples {
		want, err1 := oldReadRaw(oldBr, []byte("x"))
		got, err2 := ReadReply(newBr, []byte("x"))
		if err1 != nil || err2 != nil || !bytes.Equal(got, want) {
			t.Errorf("old %q, %v; new %q, %v", want, err1, got, err2)
		}
		v1, err1 := oldParseReply(want[1:])
		v2, err2 := Parse(got[1:])
		if err1 != nil || err2 != nil || !reflect.DeepEqual(v1, v2) {
			t.Errorf("%q: old parse %#v, %v; new %#v, %v", want[1:], v1, err1, v2, err2)
		}
	}
}

func TestReadReplyBigBulkAndSlowReader(t *testing.T) {
	payload := strings.Repeat("z", 200_000) // larger than the bufio buffer
	s := "*2\r\n$200000\r\n" + payload + "\r\n+" + payload + "\r\n"
	br := bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(s)), 16)
	got, err := ReadReply(br, nil)
	if err != nil || string(got) != s {
		t.Fatalf("err=%v, got %d bytes, want %d", err, len(got), len(s))
	}
}

func TestReadReplyPartialInput(t *testing.T) {
	for _, s := range append(append([]string{}, resp2Samples...), resp3Samples...) {
		for n := 0; n < len(s); n++ {
			got, err := ReadReply(newBufReader(s[:n]), []byte("keep"))
			if err == nil || string(got) != "keep" {
				t.Errorf("ReadReply(%q) (prefix of %q) = %q, %v", s[:n], s, got, err)
			}
			if n == 0 && err != io.EOF || n > 0 && err != io.ErrUnexpectedEOF {
				t.Errorf("ReadReply(%q): %v", s[:n], err)
			}
			if _, err := replyEnd([]byte(s[:n])); err == nil {
				t.Errorf("replyEnd(%q) accepted a prefix", s[:n])
			}
		}
	}
}

func TestReadReplyMalformed(t *testing.T) {
	for _, s := range []string{
		"\r\n", "x\r\n", "OK\r\n", "+OK\n", "$abc\r\n", "*abc\r\n", "$\r\n", "?5\r\n",
		"*1\r\n!x\r\n", "$-2\r\n", "*-2\r\n", "%-1\r\n", "~-1\r\n", "$+1\r\nx\r\n", "*-0\r\n",
		"$3\r\nabcde\r\n", "_x\r\n", "#x\r\n", "#\r\n", "=3\r\ntxt\r\n", "*?\r\n", "$?\r\n",
		"$1073741825\r\n", "*4294967296\r\n", "*1234567890123456789\r\n",
	} {
		_, err := ReadReply(newBufReader(s+strings.Repeat("+x\r\n", 8)), nil)
		if !errors.Is(err, ErrBadReply) {
			t.Errorf("ReadReply(%q): %v", s, err)
		}
		if _, err := replyEnd([]byte(s)); err == nil {
			t.Errorf("replyEnd(%q) accepted it", s)
		}
	}
}

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestReadReplyMemoryFollowsInput(t *testing.T) {
	for _, s := range []string{
		"$1073741824\r\nabc",
		"*4294967295\r\n" + strings.Repeat("*4294967295\r\n", 1000),
		"+" + strings.Repeat("x", 100000),
	} {
		n := allocated(func() {
			if _, err := ReadReply(bufio.NewReaderSize(strings.NewReader(s), 4096), nil); err == nil {
				t.Errorf("%.20q accepted", s)
			}
		})
		if n > uint64(4*len(s)+256<<10) {
			t.Errorf("%.20q: %d bytes allocated for %d bytes of input", s, n, len(s))
		}
	}
}

func TestReadReplyDeepNesting(t *testing.T) {
	deep := strings.Repeat("*1\r\n", 100000) + ":1\r\n"
	got, err := ReadReply(newBufReader(deep), nil)
	if err != nil || len(got) != len(deep) {
		t.Fatalf("deep reply: %d bytes, %v", len(got), err)
	}
	if _, err := Parse(got); !errors.Is(err, ErrBadReply) {
		t.Fatalf("Parse of a too deep reply: %v", err)
	}
	ok := strings.Repeat("*1\r\n", MaxReplyDepth) + ":1\r\n"
	if _, err := Parse([]byte(ok)); err != nil {
		t.Fatalf("Parse at the depth limit: %v", err)
	}
}

func TestParse(t *testing.T) {
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
		{"_\r\n", nil},
		{"#t\r\n", true},
		{",1.5\r\n", 1.5},
		{",-inf\r\n", math.Inf(-1)},
		{"(123\r\n", BigNumber("123")},
		{"=7\r\ntxt:abc\r\n", Verbatim{Format: "txt", Text: []byte("abc")}},
		{"!3\r\nE\nx\r\n", ErrorValue("E\nx")},
		{"%1\r\n+k\r\n:1\r\n", Map{"k", int64(1)}},
		{"~1\r\n:1\r\n", Set{int64(1)}},
		{">1\r\n:1\r\n", Push{int64(1)}},
		{"|1\r\n+a\r\n+b\r\n:1\r\n", Attributed{Attrs: Map{"a", "b"}, Value: int64(1)}},
	}
	for _, tc := range tests {
		got, err := Parse([]byte(tc.raw))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q) = %#v, %v; want %#v", tc.raw, got, err, tc.want)
		}
	}
	if v, err := Parse([]byte(",nan\r\n")); err != nil || !math.IsNaN(v.(float64)) || math.Signbit(v.(float64)) {
		t.Errorf("nan: %v %v", v, err)
	}
	if v, err := Parse([]byte(",-nan\r\n")); err != nil || !math.IsNaN(v.(float64)) || !math.Signbit(v.(float64)) {
		t.Errorf("-nan: %v %v", v, err)
	}
	for _, bad := range []string{"", "+OK", ":x\r\n", "$3\r\nab", "*2\r\n:1\r\n", "%1\r\n", "$x\r\n", "*x\r\n",
		":1\r\n:2\r\n", ":01\r\n", ",abc\r\n", ",0x1p3\r\n", ",1_0\r\n", "(1.5\r\n", "(\r\n", "#x\r\n", "_1\r\n",
		"=5\r\ntxt_a\r\n", "*3\r\n", "$3\r\nabcXY"} {
		if v, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted malformed input: %#v", bad, v)
		}
	}
}

func TestParseCopiesRaw(t *testing.T) {
	raw := []byte("*2\r\n$3\r\nabc\r\n=7\r\ntxt:xyz\r\n")
	v, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		raw[i] = '!'
	}
	items := v.([]any)
	if string(items[0].([]byte)) != "abc" || string(items[1].(Verbatim).Text) != "xyz" {
		t.Fatalf("values changed with raw: %q", items)
	}
}

func TestAppendValueRoundTrip(t *testing.T) {
	for _, s := range resp3Samples {
		v, err := Parse([]byte(s))
		if err != nil {
			t.Errorf("Parse(%q): %v", s, err)
			continue
		}
		if got := AppendValue(nil, Proto3, v); string(got) != s {
			t.Errorf("AppendValue(Parse(%q)) = %q", s, got)
		}
	}
	for _, s := range resp2Samples {
		v, err := Parse([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		want := strings.ReplaceAll(s, "*-1", "$-1") // a parsed null is written as a null bulk
		if got := AppendValue(nil, Proto2, v); string(got) != want {
			t.Errorf("AppendValue(Parse(%q)) = %q", s, got)
		}
	}
}

func TestAppendValueRESP2(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{nil, "$-1\r\n"},
		{true, ":1\r\n"},
		{false, ":0\r\n"},
		{1.5, "$3\r\n1.5\r\n"},
		{math.Inf(1), "$3\r\ninf\r\n"},
		{BigNumber("123"), "$3\r\n123\r\n"},
		{Verbatim{"txt", []byte("hi")}, "$2\r\nhi\r\n"},
		{Map{"a", int64(1)}, "*2\r\n+a\r\n:1\r\n"},
		{Set{int64(1)}, "*1\r\n:1\r\n"},
		{Push{[]byte("m")}, "*1\r\n$1\r\nm\r\n"},
		{Attributed{Attrs: Map{"a", "b"}, Value: int64(7)}, ":7\r\n"},
		{ErrorValue("ERR a\r\nb"), "-ERR a  b\r\n"},
	}
	for _, tc := range tests {
		if got := AppendValue(nil, Proto2, tc.v); string(got) != tc.want {
			t.Errorf("AppendValue(%#v) = %q, want %q", tc.v, got, tc.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("AppendValue of an int did not panic")
		}
	}()
	AppendValue(nil, Proto2, 1)
}

func TestReplyHelpers(t *testing.T) {
	if n, ok := ReplyInt([]byte(":123\r\n")); !ok || n != 123 {
		t.Errorf("ReplyInt = %d %v", n, ok)
	}
	if n, ok := ReplyInt([]byte("|1\r\n+a\r\n+b\r\n:-2\r\n")); !ok || n != -2 {
		t.Errorf("ReplyInt(attributed -2) = %d %v", n, ok)
	}
	for _, bad := range []string{"", ":\r\n", "+1\r\n", "$1\r\n1\r\n", ":x\r\n", ":1", "|1\r\n"} {
		if _, ok := ReplyInt([]byte(bad)); ok {
			t.Errorf("ReplyInt(%q) ok", bad)
		}
	}
	if !ReplyIsError([]byte("-ERR\r\n")) || !ReplyIsError([]byte("!1\r\nx\r\n")) || ReplyIsError([]byte("+OK\r\n")) || ReplyIsError(nil) {
		t.Error("ReplyIsError")
	}
	for _, s := range []string{"$-1\r\n", "*-1\r\n", "_\r\n"} {
		if !ReplyIsNull([]byte(s)) {
			t.Errorf("ReplyIsNull(%q) false", s)
		}
	}
	if ReplyIsNull([]byte("*0\r\n")) || ReplyIsNull([]byte("$0\r\n\r\n")) {
		t.Error("ReplyIsNull of empty values")
	}
	for raw, want := range map[string]string{"+OK\r\n": "OK", "-ERR x\r\n": "ERR x", "$3\r\nabc\r\n": "abc",
		"$0\r\n\r\n": "", "!3\r\nE x\r\n": "E x", "=6\r\ntxt:ab\r\n": "ab"} {
		if got, ok := ReplyString([]byte(raw)); !ok || got != want {
			t.Errorf("ReplyString(%q) = %q %v", raw, got, ok)
		}
	}
	for _, bad := range []string{"$-1\r\n", ":1\r\n", "*0\r\n", "", "+", "$5\r\n", "$5\r\nab\r\n", "_\r\n"} {
		if got, ok := ReplyString([]byte(bad)); ok {
			t.Errorf("ReplyString(%q) = %q, ok", bad, got)
		}
	}
	if AsString("s") != "s" || AsString([]byte("b")) != "b" || AsString(ErrorValue("e")) != "e" ||
		AsString(int64(1)) != "" || AsString(Verbatim{"txt", []byte("v")}) != "v" || AsString(BigNumber("9")) != "9" {
		t.Error("AsString")
	}
}

func TestArrayItems(t *testing.T) {
	items, err := ArrayItems([]byte("*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n-ERR x\r\n"))
	want := []string{":1\r\n", "*2\r\n$1\r\na\r\n$-1\r\n", "-ERR x\r\n"}
	if err != nil || !reflect.DeepEqual(byteStrings(items), want) {
		t.Errorf("items = %q, %v; want %q", items, err, want)
	}
	items, err = ArrayItems([]byte("|1\r\n+a\r\n+b\r\n%1\r\n+k\r\n~1\r\n_\r\n"))
	if want := []string{"+k\r\n", "~1\r\n_\r\n"}; err != nil || !reflect.DeepEqual(byteStrings(items), want) {
		t.Errorf("map items = %q, %v", items, err)
	}
	for _, empty := range []string{"*0\r\n", "*-1\r\n", "_\r\n", "~0\r\n"} {
		if items, err := ArrayItems([]byte(empty)); err != nil || len(items) != 0 {
			t.Errorf("ArrayItems(%q) = %q %v", empty, items, err)
		}
	}
	for _, bad := range []string{"", ":1\r\n", "*2\r\n:1\r\n", "*x\r\n", "*1\r\n:1\r\n:2\r\n", "$1\r\na\r\n"} {
		if _, err := ArrayItems([]byte(bad)); err == nil {
			t.Errorf("ArrayItems(%q) accepted malformed input", bad)
		}
	}
	// Appending to an item never overwrites the next one.
	items, _ = ArrayItems([]byte("*2\r\n:1\r\n:2\r\n"))
	_ = append(items[0], 'X')
	if string(items[1]) != ":2\r\n" {
		t.Error("append to an item overwrote the next")
	}
}

// byteStrings converts for comparisons.
func byteStrings(b [][]byte) []string {
	out := make([]string, len(b))
	for i, x := range b {
		out[i] = string(x)
	}
	return out
}

func TestBulkAsDouble(t *testing.T) {
	for raw, want := range map[string]string{"$3\r\n2.5\r\n": ",2.5\r\n", "$3\r\ninf\r\n": ",inf\r\n", "$4\r\n-inf\r\n": ",-inf\r\n",
		"$19\r\n0.10000000000000001\r\n": ",0.10000000000000001\r\n", "$1\r\n7\r\n": ",7\r\n"} {
		if got, ok := BulkAsDouble([]byte(raw)); !ok || string(got) != want {
			t.Errorf("BulkAsDouble(%q) = %q %v, want %q", raw, got, ok, want)
		}
	}
	for _, bad := range []string{"$0\r\n\r\n", "$-1\r\n", ":1\r\n", "$3\r\nabc\r\n", "+2.5\r\n", ""} {
		if got, ok := BulkAsDouble([]byte(bad)); ok {
			t.Errorf("BulkAsDouble(%q) = %q, ok", bad, got)
		}
	}
}

func TestRebuild(t *testing.T) {
	for raw, items := range map[string][]string{
		"*2\r\n:1\r\n:2\r\n":             {":3\r\n"},
		"%1\r\n+k\r\n+v\r\n":             {"+a\r\n", "+b\r\n", "+c\r\n", "+d\r\n"},
		"~1\r\n+x\r\n":                   {"+y\r\n", "+z\r\n"},
		">1\r\n+x\r\n":                   {},
		"|1\r\n+a\r\n+b\r\n*1\r\n:1\r\n": {":9\r\n"},
	} {
		in := make([][]byte, len(items))
		for i, it := range items {
			in[i] = []byte(it)
		}
		got := Rebuild([]byte(raw), in)
		typ := skipAttributes([]byte(raw))[0]
		n := len(items)
		if typ == '%' {
			n /= 2
		}
		want := string(typ) + strconv.Itoa(n) + "\r\n" + strings.Join(items, "")
		if string(got) != want {
			t.Errorf("Rebuild(%q, %q) = %q, want %q", raw, items, got, want)
		}
	}
}
