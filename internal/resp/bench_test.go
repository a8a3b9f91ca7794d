package resp

import (
	"bufio"
	"strings"
	"testing"

	"github.com/tidwall/redcon"
)

// benchPipelines are request streams of pipelined commands, looped by the
// benchmarks: RequestReader and redcon's Reader read the same bytes.
var benchPipelines = []struct {
	name string
	cmd  string // one round; the stream repeats it
	n    int    // commands in cmd
}{
	{"SET_GET", "*3\r\n$3\r\nSET\r\n$8\r\nkey:0001\r\n$10\r\nvalue-xxxx\r\n*2\r\n$3\r\nGET\r\n$8\r\nkey:0001\r\n", 2},
	{"SET_1KB", "*3\r\n$3\r\nSET\r\n$8\r\nkey:0001\r\n$1024\r\n" + strings.Repeat("v", 1024) + "\r\n", 1},
	{"inline_GET", "GET key:0001\r\n", 1},
}

// segmentReader serves the same segment over and over, one Read never
// crossing from one copy into the next: like a client that sends pipelines
// of segment, each arriving in one piece (or as much of it as fits).
type segmentReader struct {
	seg []byte
	off int
}

func (s *segmentReader) Read(p []byte) (int, error) {
	n := copy(p, s.seg[s.off:])
	s.off = (s.off + n) % len(s.seg)
	return n, nil
}

// BenchmarkRequestReader reads pipelines of 50 rounds; ns/op is per
// command. The redcon sub-benchmarks read the same stream with redcon's
// Reader.
func BenchmarkRequestReader(b *testing.B) {
	for _, bp := range benchPipelines {
		data := []byte(strings.Repeat(bp.cmd, 50))
		b.Run(bp.name+"/resp", func(b *testing.B) {
			r := NewRequestReader(&segmentReader{seg: data}, Limits{})
			var batch []Command
			b.SetBytes(int64(len(bp.cmd) / bp.n))
			b.ReportAllocs()
			b.ResetTimer()
			for n := 0; n < b.N; {
				var err error
				if batch, err = r.ReadBatch(batch[:0], 0); err != nil {
					b.Fatal(err)
				}
				n += len(batch)
			}
		})
		b.Run(bp.name+"/redcon", func(b *testing.B) {
			r := redcon.NewReader(&segmentReader{seg: data})
			b.SetBytes(int64(len(bp.cmd) / bp.n))
			b.ReportAllocs()
			b.ResetTimer()
			for n := 0; n < b.N; {
				cmds, err := r.ReadCommands()
				if err != nil {
					b.Fatal(err)
				}
				n += len(cmds)
			}
		})
	}
}

// benchReplies is a pipeline of typical RESP2 replies: status, integer,
// bulk, nested array, nulls.
const benchReplies = "+OK\r\n:12345\r\n$10\r\nvalue-xxxx\r\n*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n*-1\r\n$-1\r\n"

// benchRepliesCount is the number of replies in benchReplies.
const benchRepliesCount = 6

// BenchmarkReadReply compares ReadReply with the RESP2 reader it replaces;
// ns/op is per round of benchRepliesCount replies.
func BenchmarkReadReply(b *testing.B) {
	for _, impl := range []struct {
		name string
		read func(*bufio.Reader, []byte) ([]byte, error)
	}{{"resp", ReadReply}, {"before", oldReadRaw}} {
		b.Run(impl.name, func(b *testing.B) {
			br := bufio.NewReaderSize(&loopReader{data: []byte(strings.Repeat(benchReplies, 64))}, 64<<10)
			dst := make([]byte, 0, 256)
			b.SetBytes(int64(len(benchReplies)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := 0; j < benchRepliesCount; j++ {
					var err error
					if dst, err = impl.read(br, dst[:0]); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkParse compares Parse with the RESP2 parser it replaces on a
// SCAN-like reply.
func BenchmarkParse(b *testing.B) {
	raw := AppendBulkString(AppendArray(nil, 2), "17")
	raw = AppendArray(raw, 10)
	for i := 0; i < 10; i++ {
		raw = AppendBulkString(raw, "key:000"+string(rune('0'+i)))
	}
	for _, impl := range []struct {
		name  string
		parse func([]byte) (any, error)
	}{{"resp", Parse}, {"before", oldParseReply}} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := impl.parse(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendReplies builds a typical mix of replies.
func BenchmarkAppendReplies(b *testing.B) {
	dst := make([]byte, 0, 1024)
	val := []byte("value-xxxx")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		dst = AppendStatus(dst[:0], "OK")
		dst = AppendBulk(dst, val)
		dst = AppendInt(dst, int64(i))
		dst = AppendMap(dst, Proto3, 1)
		dst = AppendBulk(AppendBulk(dst, val), val)
		dst = AppendDouble(dst, Proto3, 1.5)
		dst = AppendNullBulk(dst, Proto2)
	}
}
