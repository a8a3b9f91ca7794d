package resp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// fuzzLimits are small, so that fuzzing reaches every limit.
var fuzzLimits = Limits{MaxInline: 64, MaxBulkLen: 1 << 12, MaxQueryBuffer: 1 << 14}

// FuzzRequestReader checks that no input makes the reader panic or hold
// memory out of proportion to the input, that the commands it returns
// re-encode to bytes it parses back identically, and that the outcome does
// not depend on read sizes (unless a length limit was hit, which in Redis
// too depends on them).
func FuzzRequestReader(f *testing.F) {
	for _, tc := range hostileRequests() {
		if len(tc.input) < 4096 {
			f.Add([]byte(tc.input), uint8(0), false)
		}
	}
	f.Add([]byte(pipeline()), uint8(3), false)
	f.Add([]byte("AUTH x\r\n*11\r\n"), uint8(1), true)
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, unauth bool) {
		whole := fuzzRead(t, data, len(data)+1, unauth)
		split := fuzzRead(t, data, int(chunk)%17+1, unauth)
		if !hitLimit(whole.err) && !hitLimit(split.err) && !sameOutcome(whole, split) {
			t.Fatalf("whole: %q, %v; in reads of %d: %q, %v", whole.cmds, whole.err, int(chunk)%17+1, split.cmds, split.err)
		}
		enc := encodeForRedis(whole.cmds, "")
		again := readAll(enc, len(enc)+1, Limits{}, "")
		if again.err != io.EOF || !sameOutcome(outcome{whole.cmds, io.EOF}, again) {
			t.Fatalf("commands %q re-encoded as %q parse as %q, %v", whole.cmds, enc, again.cmds, again.err)
		}
	})
}

// hitLimit reports an error that depends on how input was split into reads.
func hitLimit(err error) bool {
	var pe *ProtocolError
	if errors.Is(err, ErrQueryBufferLimit) {
		return true
	}
	return errors.As(err, &pe) && (pe.Msg == "too big inline request" ||
		pe.Msg == "too big mbulk count string" || pe.Msg == "too big bulk count string")
}

// fuzzRead is readAll with fuzzLimits, alternating batch sizes and Fill,
// checking after every call that memory stays in proportion to the input.
func fuzzRead(t *testing.T, data []byte, chunk int, unauth bool) outcome {
	r := NewRequestReader(&chunkReader{data: data, n: chunk}, fuzzLimits)
	r.SetAuthenticated(!unauth)
	bound := max(initialBufSize, 4*(len(data)+minReadSize))
	var out outcome
	var batch []Command
	filled := false
	for i := 0; ; i++ {
		var err error
		batch = batch[:0]
		if i%5 == 4 && !filled {
			// As for a blocked client: reads more, parses nothing.
			if err = r.Fill(); err == io.EOF {
				filled, err = true, nil // ReadBatch still returns what is buffered
			}
		}
		if err == nil {
			batch, err = r.ReadBatch(batch[:0], i%3)
		}
		for _, c := range batch {
			out.cmds = append(out.cmds, copyArgs(c.Args))
		}
		if cap(r.buf) > bound || len(r.spans) > 2*len(data)+2 || len(r.argv) > len(data)+1 {
			t.Fatalf("memory: buffer %d, spans %d, args %d for %d bytes", cap(r.buf), len(r.spans), len(r.argv), len(data))
		}
		if err != nil {
			out.err = err
			return out
		}
	}
}

// FuzzReadReply checks that no input makes the reply reader, the parser or
// the helpers panic, that the reader and the parser agree on where a reply
// ends, and that parsed replies re-encode stably in both protocols.
func FuzzReadReply(f *testing.F) {
	for _, s := range resp2Samples {
		f.Add([]byte(s))
	}
	for _, s := range resp3Samples {
		f.Add([]byte(s))
	}
	f.Add([]byte("*2\r\n$-1\r\n%1\r\n|1\r\n+a\r\n+b\r\n,1e+300\r\n(-0\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		raw, err := ReadReply(bufio.NewReaderSize(bytes.NewReader(data), 16), nil)
		end, endErr := replyEnd(data)
		if (err == nil) != (endErr == nil) || err == nil && (end != len(raw) || !bytes.HasPrefix(data, raw)) {
			t.Fatalf("ReadReply: %d bytes, %v; replyEnd: %d, %v", len(raw), err, end, endErr)
		}
		ReplyInt(data)
		ReplyString(data)
		ReplyIsError(data)
		ReplyIsNull(data)
		ArrayItems(data)
		if v, err := Parse(data); err == nil && endErr != nil {
			t.Fatalf("Parse accepted %q (%#v) that ReadReply refuses: %v", data, v, endErr)
		}
		if err != nil {
			return
		}
		v, err := Parse(raw)
		if err != nil {
			return // framing is fine, but a payload is not (":x")
		}
		for _, p := range []Proto{Proto2, Proto3} {
			enc := AppendValue(nil, p, v)
			v2, err := Parse(enc)
			if err != nil {
				t.Fatalf("RESP%d encoding %q of %q does not parse: %v", p, enc, raw, err)
			}
			if enc2 := AppendValue(nil, p, v2); !bytes.Equal(enc, enc2) {
				t.Fatalf("RESP%d encoding of %q unstable: %q then %q", p, raw, enc, enc2)
			}
			if _, err := ArrayItems(enc); err != nil && isAggregate(enc[0]) && enc[0] != '|' {
				t.Fatalf("ArrayItems(%q): %v", enc, err)
			}
		}
	})
}
