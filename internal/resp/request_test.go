package resp

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// strArgs turns commands into strings for comparisons.
func strArgs(cmds [][][]byte) [][]string {
	out := make([][]string, len(cmds))
	for i, c := range cmds {
		out[i] = make([]string, len(c))
		for j, a := range c {
			out[i][j] = string(a)
		}
	}
	return out
}

func TestRequestReaderArgs(t *testing.T) {
	tests := []struct {
		in   string
		want [][]string
		err  string // protocol error message, "" for io.EOF
	}{
		{"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", [][]string{{"GET", "k"}}, ""},
		{"*1\r\n$0\r\n\r\n", [][]string{{""}}, ""},
		{"*-1\r\n*0\r\nPING\r\n", [][]string{{"PING"}}, ""},
		{"PING\nECHO  a\t b \r\n", [][]string{{"PING"}, {"ECHO", "a", "b"}}, ""},
		{"set \"a b\" 'c d'\n", [][]string{{"set", "a b", "c d"}}, ""},
		{`x "\x41\x4g\n\r\t\b\a\\\"\q"` + "\n", [][]string{{"x", "A" + "x4g\n\r\t\b\a\\\"q"}}, ""},
		{`x 'a\'b\n'` + "\n", [][]string{{"x", `a'b\n`}}, ""},
		{`x ab"c d"e` + "\n", nil, "unbalanced quotes in request"},
		{`x ab"c d"` + "\n", [][]string{{"x", "abc d"}}, ""},
		{"x a\vb \"\"\n", [][]string{{"x", "a\vb", ""}}, ""},
		{"*1\r\n$4\r\nPINGxx*1\r\n$1\r\nA\r\n", [][]string{{"PING"}, {"A"}}, ""},
		{"*1\r\n$3\r\nabc", nil, ""},
		{"*1\r\nx\r\n", nil, "expected '$', got 'x'"},
		{"*1\r\n\r\r\n", nil, "expected '$', got ' '"},
		{"*2\r\n$1\r\na\r\n$-1\r\n", nil, "invalid bulk length"},
		{"*3000000000\r\n", nil, "invalid multibulk length"},
		{"PING\r\n*x\r\n", [][]string{{"PING"}}, "invalid multibulk length"},
	}
	for _, tc := range tests {
		for _, chunk := range []int{1, 3, 1 << 20} {
			o := readAll([]byte(tc.in), chunk, Limits{}, "")
			got := strArgs(o.cmds)
			if len(got) == 0 {
				got = nil
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%q (reads of %d): got %q, want %q", tc.in, chunk, got, tc.want)
			}
			var pe *ProtocolError
			switch {
			case tc.err == "" && o.err != io.EOF:
				t.Errorf("%q: error %v, want EOF", tc.in, o.err)
			case tc.err != "" && (!errors.As(o.err, &pe) || pe.Msg != tc.err):
				t.Errorf("%q: error %v, want %q", tc.in, o.err, tc.err)
			}
		}
	}
}

// pipeline is a long request stream of every form, for split tests.
func pipeline() string {
	var b strings.Builder
	b.WriteString("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n")
	b.WriteString("PING\r\n\r\n*0\r\n*-1\r\n")
	b.WriteString("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n")
	b.WriteString("ECHO \"a\\x00b\" 'c d'\n")
	b.WriteString("*2\r\n$4\r\nECHO\r\n$10\r\n\r\n\r\n\x00\x00\r\n\r\n\r\n")
	b.WriteString("*2\r\n$4\r\nECHO\r\n$3000\r\n" + strings.Repeat("q", 3000) + "\r\n")
	b.WriteString("*1\r\n$3\r\nabcXY")
	b.WriteString("   GET   k   \r\n")
	return b.String()
}

func TestRequestReaderEveryByteBoundary(t *testing.T) {
	in := []byte(strings.Repeat(pipeline(), 3))
	whole := readAll(in, len(in), Limits{}, "")
	if whole.err != io.EOF || len(whole.cmds) != 24 {
		t.Fatalf("whole: %d commands, %v", len(whole.cmds), whole.err)
	}
	// One byte per read: every byte boundary is a read boundary.
	if o := readAll(in, 1, Limits{}, ""); !sameOutcome(whole, o) {
		t.Fatalf("one byte at a time: %q, %v", strArgs(o.cmds), o.err)
	}
	// Two reads split at every offset.
	for cut := 1; cut < len(in); cut++ {
		r := NewRequestReader(io.MultiReader(bytes.NewReader(in[:cut]), bytes.NewReader(in[cut:])), Limits{})
		var got [][][]byte
		var batch []Command
		var err error
		for err == nil {
			batch, err = r.ReadBatch(batch[:0], 0)
			for _, c := range batch {
				got = append(got, copyArgs(c.Args))
			}
		}
		if !sameOutcome(whole, outcome{got, err}) {
			t.Fatalf("split at %d: %d commands, %v", cut, len(got), err)
		}
	}
}

func TestRequestReaderBatchAndMax(t *testing.T) {
	in := strings.Repeat("*1\r\n$4\r\nPING\r\n", 10)
	r := NewRequestReader(strings.NewReader(in), Limits{})
	b, err := r.ReadBatch(nil, 4)
	if err != nil || len(b) != 4 {
		t.Fatalf("first batch: %d, %v", len(b), err)
	}
	if r.Buffered() != len(in)-4*14 {
		t.Errorf("Buffered = %d", r.Buffered())
	}
	b, err = r.ReadBatch(b[:0], 0)
	if err != nil || len(b) != 6 {
		t.Fatalf("second batch: %d, %v", len(b), err)
	}
	if _, err = r.ReadBatch(b[:0], 0); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func TestRequestReaderUnauthenticatedOneAtATime(t *testing.T) {
	in := "AUTH pw\r\n" + "*11\r\n" + strings.Repeat("$1\r\na\r\n", 11)
	r := NewRequestReader(strings.NewReader(in), Limits{})
	r.SetAuthenticated(false)
	b, err := r.ReadBatch(nil, 0)
	if err != nil || len(b) != 1 || string(b[0].Args[0]) != "AUTH" {
		t.Fatalf("first batch: %v, %v", b, err)
	}
	r.SetAuthenticated(true)
	if b, err = r.ReadBatch(b[:0], 0); err != nil || len(b) != 1 || len(b[0].Args) != 11 {
		t.Fatalf("after AUTH: %v, %v", b, err)
	}
	// Without the AUTH taking effect, the same input fails as in Redis.
	r = NewRequestReader(strings.NewReader(in), Limits{})
	r.SetAuthenticated(false)
	r.ReadBatch(nil, 0)
	_, err = r.ReadBatch(nil, 0)
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Msg != "unauthenticated multibulk length" {
		t.Fatalf("unauthenticated: %v", err)
	}
}

func TestRequestReaderErrorAfterCommandsAndSticky(t *testing.T) {
	r := NewRequestReader(strings.NewReader("PING\r\nPING\r\n*x\r\nPING\r\n"), Limits{})
	b, err := r.ReadBatch(nil, 0)
	if err != nil || len(b) != 2 {
		t.Fatalf("batch: %d, %v", len(b), err)
	}
	for i := 0; i < 2; i++ {
		if _, err = r.ReadBatch(nil, 0); err == nil || err.Error() != "Protocol error: invalid multibulk length" {
			t.Fatalf("error: %v", err)
		}
	}
	if r.Fill() != err {
		t.Fatal("Fill after a protocol error")
	}
}

// recordingReader returns its chunks one per Read, then blocks on EOF.
type chunksReader struct{ chunks []string }

func (c *chunksReader) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	if c.chunks[0] = c.chunks[0][n:]; c.chunks[0] == "" {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

func TestRequestReaderFillKeepsArgs(t *testing.T) {
	big := strings.Repeat("x", 50000)
	cr := &chunksReader{chunks: []string{
		"*2\r\n$5\r\nBLPOP\r\n$3\r\nkey\r\n*1\r\n$4\r\nPI",
		"NG\r\n" + big, // larger than the buffer: Fill must grow it without moving the args
		big, big,
	}}
	r := NewRequestReader(cr, Limits{})
	b, err := r.ReadBatch(nil, 0)
	if err != nil || len(b) != 1 {
		t.Fatalf("batch: %v, %v", b, err)
	}
	args := b[0].Args
	// Fill runs in another goroutine while the args are read (the race
	// detector checks that they share no memory).
	done := make(chan error)
	go func() {
		for {
			if err := r.Fill(); err != nil {
				if err == io.EOF {
					err = nil
				}
				done <- err
				return
			}
		}
	}()
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
		}
		if string(args[0]) != "BLPOP" || string(args[1]) != "key" {
			t.Fatalf("args changed by Fill: %q", args)
		}
	}
	if got := r.Buffered(); got != len("*1\r\n$4\r\nPING\r\n")+3*len(big) {
		t.Errorf("Buffered = %d", got)
	}
	b, err = r.ReadBatch(b[:0], 0)
	if err != nil || len(b) != 1 || string(b[0].Args[0]) != "PING" {
		t.Fatalf("after Fill: %q, %v", b, err)
	}
	// The rest is an inline request without a newline, over the limit.
	_, err = r.ReadBatch(b[:0], 0)
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Msg != "too big inline request" {
		t.Fatalf("got %v", err)
	}
}

func TestRequestReaderFillQueryBufferLimit(t *testing.T) {
	cr := &chunksReader{chunks: []string{"*1\r\n$4\r\nPING\r\n", strings.Repeat("PING\r\n", 200), "PING\r\n"}}
	r := NewRequestReader(cr, Limits{MaxQueryBuffer: 1200})
	if b, err := r.ReadBatch(nil, 0); err != nil || len(b) != 1 {
		t.Fatalf("batch: %v %v", b, err)
	}
	if err := r.Fill(); err != nil {
		t.Fatal(err)
	}
	if err := r.Fill(); err != ErrQueryBufferLimit {
		t.Fatalf("Fill over the limit: %v", err)
	}
	if _, err := r.ReadBatch(nil, 0); err != ErrQueryBufferLimit {
		t.Fatalf("ReadBatch after the limit: %v", err)
	}
}

func TestRequestReaderDataWithError(t *testing.T) {
	// Data and an error in the same Read: the commands come first.
	r := NewRequestReader(iotest.DataErrReader(strings.NewReader("PING\r\nPING\r\n")), Limits{})
	b, err := r.ReadBatch(nil, 0)
	if err != nil || len(b) != 2 {
		t.Fatalf("batch: %d, %v", len(b), err)
	}
	if _, err = r.ReadBatch(b[:0], 0); err != io.EOF {
		t.Fatalf("then: %v", err)
	}
	// A non-EOF error is returned as is.
	boom := errors.New("boom")
	r = NewRequestReader(iotest.ErrReader(boom), Limits{})
	if _, err = r.ReadBatch(nil, 0); err != boom {
		t.Fatalf("got %v", err)
	}
}

func TestRequestReaderNoProgress(t *testing.T) {
	r := NewRequestReader(emptyReader{}, Limits{})
	if _, err := r.ReadBatch(nil, 0); err != io.ErrNoProgress {
		t.Fatalf("got %v", err)
	}
}

// emptyReader always returns 0, nil.
type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

// TestRequestReaderMemoryFollowsInput checks that huge announced counts and
// lengths do not allocate: memory follows the bytes received.
func TestRequestReaderMemoryFollowsInput(t *testing.T) {
	for _, in := range []string{
		"*2147483647\r\n",
		"*1\r\n$536870912\r\n",
		"*2147483647\r\n" + strings.Repeat("$0\r\n\r\n", 1000),
		"*1\r\n$9223372036854775807\r\n",
	} {
		allocs := testing.AllocsPerRun(5, func() {
			r := NewRequestReader(strings.NewReader(in), Limits{})
			r.ReadBatch(nil, 0)
		})
		r := NewRequestReader(strings.NewReader(in), Limits{})
		r.ReadBatch(nil, 0)
		if cap(r.buf) > 2*len(in)+initialBufSize+minReadSize {
			t.Errorf("%.20q: buffer of %d bytes", in, cap(r.buf))
		}
		if allocs > 20 {
			t.Errorf("%.20q: %v allocations", in, allocs)
		}
	}
}

func TestRequestReaderBufferShrinks(t *testing.T) {
	big := "*2\r\n$4\r\nECHO\r\n$1000000\r\n" + strings.Repeat("b", 1000000) + "\r\n"
	r := NewRequestReader(strings.NewReader(big+"PING\r\n"), Limits{})
	b, err := r.ReadBatch(nil, 1)
	if err != nil || len(b[0].Args[1]) != 1000000 {
		t.Fatal(err)
	}
	b, err = r.ReadBatch(b[:0], 0)
	if err != nil || string(b[0].Args[0]) != "PING" {
		t.Fatal(err)
	}
	r.ReadBatch(b[:0], 0)
	if cap(r.buf) > maxIdleBufSize {
		t.Errorf("buffer still %d bytes", cap(r.buf))
	}
}

// loopReader serves data over and over.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], l.data[l.off:])
		n += k
		l.off = (l.off + k) % len(l.data)
	}
	return n, nil
}

func TestRequestReaderSteadyStateAllocs(t *testing.T) {
	data := []byte(strings.Repeat("*3\r\n$3\r\nSET\r\n$6\r\nkey:01\r\n$10\r\nvalue-xxxx\r\nGET key:01\r\n", 50))
	r := NewRequestReader(&loopReader{data: data}, Limits{})
	var batch []Command
	for i := 0; i < 100; i++ {
		batch, _ = r.ReadBatch(batch[:0], 0)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		batch, _ = r.ReadBatch(batch[:0], 0)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch", allocs)
	}
}

func TestRequestReaderArgsCannotGrowIntoBuffer(t *testing.T) {
	r := NewRequestReader(strings.NewReader("*2\r\n$1\r\na\r\n$1\r\nb\r\n"), Limits{})
	b, _ := r.ReadBatch(nil, 0)
	_ = append(b[0].Args[0], 'X') // must copy, not overwrite "\r\n$1..."
	_ = append(b[0].Args, nil)
	if string(b[0].Args[1]) != "b" || len(b[0].Args) != 2 {
		t.Fatalf("append through Args changed the command: %q", b[0].Args)
	}
}

func TestParseLL(t *testing.T) {
	good := map[string]int64{"0": 0, "1": 1, "-1": -1, "9223372036854775807": 1<<63 - 1,
		"-9223372036854775808": -1 << 63, "2147483647": 1<<31 - 1}
	for s, want := range good {
		if n, ok := parseLL([]byte(s)); !ok || n != want {
			t.Errorf("parseLL(%q) = %d, %v", s, n, ok)
		}
	}
	for _, s := range []string{"", "-", "-0", "00", "01", "+1", " 1", "1 ", "9223372036854775808",
		"-9223372036854775809", "18446744073709551616", "99999999999999999999", "1a", "0x1"} {
		if n, ok := parseLL([]byte(s)); ok {
			t.Errorf("parseLL(%q) = %d, accepted", s, n)
		}
	}
}
