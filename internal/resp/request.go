package resp

import (
	"bytes"
	"errors"
	"io"
)

// Limits bounds what a RequestReader accepts. A zero field means its default,
// which is redis-server 7.0's.
type Limits struct {
	MaxBulkLen      int64 // longest bulk argument (proto-max-bulk-len); default 512 MB
	MaxMultibulkLen int64 // largest multibulk count; default 2147483647 (INT_MAX)
	MaxInline       int   // most unparsed bytes while an inline request or a count line has no end yet (PROTO_INLINE_MAX_SIZE); default 64 KB
	MaxQueryBuffer  int64 // most unparsed bytes held (client-query-buffer-limit); default 1 GB
}

// DefaultLimits returns redis-server 7.0's default limits.
func DefaultLimits() Limits {
	return Limits{
		MaxBulkLen:      512 << 20,
		MaxMultibulkLen: 1<<31 - 1,
		MaxInline:       64 << 10,
		MaxQueryBuffer:  1 << 30,
	}
}

// withDefaults replaces zero (or negative) fields by their defaults.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBulkLen <= 0 {
		l.MaxBulkLen = d.MaxBulkLen
	}
	if l.MaxMultibulkLen <= 0 {
		l.MaxMultibulkLen = d.MaxMultibulkLen
	}
	if l.MaxInline <= 0 {
		l.MaxInline = d.MaxInline
	}
	if l.MaxQueryBuffer <= 0 {
		l.MaxQueryBuffer = d.MaxQueryBuffer
	}
	return l
}

// Redis's tighter limits for a connection that has not authenticated yet
// (networking.c, authRequired).
const (
	unauthMaxMultibulk = 10
	unauthMaxBulk      = 16384
)

// Buffer sizing of a RequestReader.
const (
	initialBufSize = 16 << 10  // like Redis's PROTO_IOBUF_LEN
	minReadSize    = 4 << 10   // never read into less free space than this
	maxIdleBufSize = 256 << 10 // a larger buffer is given back once drained
	maxIdleArgs    = 1 << 16   // larger argument tables are given back too
)

// ErrQueryBufferLimit reports a client whose unparsed input exceeds
// Limits.MaxQueryBuffer. Redis closes such a connection without a reply.
var ErrQueryBufferLimit = errors.New("resp: client query buffer limit reached")

// ProtocolError is a malformed request. Msg is redis-server's own text; the
// server replies "-ERR " + Error() and then closes the connection, as Redis
// does.
type ProtocolError struct {
	Msg string // e.g. "invalid bulk length"
}

// Error returns "Protocol error: " followed by Msg.
func (e *ProtocolError) Error() string { return "Protocol error: " + e.Msg }

// protoErr makes a *ProtocolError.
func protoErr(msg string) error { return &ProtocolError{Msg: msg} }

// Command is one client request. Its Args alias the RequestReader's buffer
// and stay valid until the next ReadBatch call.
type Command struct {
	Args [][]byte
}

// RequestReader reads client requests the way redis-server 7.0 does. It is
// not safe for concurrent use.
//
// The buffer buf holds, in order: bytes of commands already returned (before
// start), the pending command's parsed arguments and framing (start to pos),
// and unparsed input (pos to len(buf)). Redis counts only the unparsed part
// against its limits, and so does this reader.
type RequestReader struct {
	rd   io.Reader
	lim  Limits
	auth bool

	buf   []byte
	start int // first byte of the first command not yet returned
	pos   int // parse position

	// The multibulk command being parsed while pending > 0.
	pending int64 // arguments still to come
	bulk    int64 // length of the argument being read; -1 before its $ line
	spans   []int // start and end offsets in buf of its parsed arguments

	argv    [][]byte // backing array of the Args of the last batch
	scanAt  int      // pos at which findLine last looked in vain
	scanned int      // how far from scanAt it looked

	err     error // sticky: a protocol error or ErrQueryBufferLimit
	readErr error // read error to report once the data before it is used
	empties int   // consecutive empty reads
}

// NewRequestReader returns a reader of requests from r with limits l (zero
// fields take their defaults). It starts authenticated.
func NewRequestReader(r io.Reader, l Limits) *RequestReader {
	return &RequestReader{rd: r, lim: l.withDefaults(), auth: true, bulk: -1, scanAt: -1}
}

// SetAuthenticated sets whether the connection has authenticated. While it
// has not, Redis's tighter limits apply (at most 10 arguments and 16384-byte
// bulks in a multibulk request), and ReadBatch returns one command at a time
// so that an AUTH can take effect before the next request is parsed, as in
// Redis.
func (r *RequestReader) SetAuthenticated(ok bool) { r.auth = ok }

// Buffered returns the number of bytes read from the underlying reader and
// not yet returned as part of a command, including a partial command.
func (r *RequestReader) Buffered() int { return len(r.buf) - r.start }

// ReadBatch blocks until at least one complete command has been read, then
// also returns every further command that is already complete in the buffer
// (up to max in all; max <= 0 means no limit), without blocking again. The
// commands are appended to dst. Requests Redis ignores (an empty inline line,
// a multibulk count <= 0) produce no command.
//
// Args alias the reader's buffer: the bytes they reference are never
// overwritten until the next ReadBatch call, which also reuses the Args
// slices themselves.
//
// Errors: a *ProtocolError or ErrQueryBufferLimit (both final), or the
// underlying reader's error, unchanged. Commands completed before an error
// are returned first, with a nil error; the error comes with the next call.
func (r *RequestReader) ReadBatch(dst []Command, max int) ([]Command, error) {
	if r.err != nil {
		return dst, r.err
	}
	r.reclaim()
	n0 := len(dst)
	for {
		var err error
		dst, err = r.parse(dst, n0, max)
		if err != nil {
			r.err = err
			if len(dst) > n0 {
				return dst, nil
			}
			return dst, err
		}
		if len(dst) > n0 {
			return dst, nil
		}
		if r.readErr != nil {
			err, r.readErr = r.readErr, nil
			return dst, err
		}
		if err := r.read(true); err != nil {
			if err == ErrQueryBufferLimit {
				return dst, err
			}
			r.readErr = err // parse what came with it first
		}
	}
}

// Fill reads once more from the underlying reader into the buffer, appending
// only: it never moves or overwrites bytes that Args from the last ReadBatch
// reference. It parses nothing, so a connection whose client is blocked can
// keep reading, as Redis does, to notice the client leaving. Like Redis, it
// fails with ErrQueryBufferLimit once the unparsed input exceeds
// Limits.MaxQueryBuffer. A read error is returned as is; bytes read with it
// are kept.
//
// Fill touches no byte that Args of the last batch reference, so it may run
// in another goroutine while those are in use, though never at the same time
// as another method of the reader.
func (r *RequestReader) Fill() error {
	if r.err != nil {
		return r.err
	}
	if r.readErr != nil {
		err := r.readErr
		r.readErr = nil
		return err
	}
	return r.read(false)
}

// reclaim releases what the last batch held: the start of the buffer and,
// when it has grown large and is now nearly empty, the buffer itself.
func (r *RequestReader) reclaim() {
	r.argv = r.argv[:0]
	if cap(r.argv) > maxIdleArgs {
		r.argv = nil
	}
	if r.pending == 0 && cap(r.spans) > 2*maxIdleArgs {
		r.spans = nil
	}
	live := len(r.buf) - r.start
	switch {
	case live == 0 && cap(r.buf) <= maxIdleBufSize:
		r.shift(r.start)
		r.buf = r.buf[:0]
	case cap(r.buf) > maxIdleBufSize && live <= initialBufSize/2:
		r.relocate(initialBufSize)
	}
}

// read reads once from the underlying reader into the free end of the buffer,
// making room first (moving data only when canMove), and enforces
// MaxQueryBuffer.
func (r *RequestReader) read(canMove bool) error {
	r.makeRoom(canMove)
	end := len(r.buf)
	n, err := r.rd.Read(r.buf[end:cap(r.buf)])
	if n < 0 || n > cap(r.buf)-end {
		return errors.New("resp: reader returned an invalid count")
	}
	r.buf = r.buf[:end+n]
	if int64(len(r.buf)-r.pos) > r.lim.MaxQueryBuffer {
		r.err = ErrQueryBufferLimit
		return r.err
	}
	if n == 0 && err == nil {
		if r.empties++; r.empties >= 100 {
			return io.ErrNoProgress
		}
		return nil
	}
	r.empties = 0
	return err
}

// makeRoom ensures at least minReadSize free bytes at the end of the buffer.
// With canMove it may slide the live bytes to the front; otherwise, and when
// that would not free enough, it copies them into a new, larger array and
// leaves the old one (which earlier Args may reference) untouched. Capacity
// grows with the bytes actually held, never with announced lengths.
func (r *RequestReader) makeRoom(canMove bool) {
	if r.buf == nil {
		r.buf = make([]byte, 0, initialBufSize)
		return
	}
	if cap(r.buf)-len(r.buf) >= minReadSize {
		return
	}
	live := len(r.buf) - r.start
	if canMove && r.start > 0 && live <= cap(r.buf)/2 {
		copy(r.buf, r.buf[r.start:])
		r.buf = r.buf[:live]
		r.shift(r.start)
		return
	}
	size := initialBufSize
	for size < 2*(live+minReadSize) {
		size *= 2
	}
	r.relocate(size)
}

// relocate copies the live bytes into a new array of the given capacity.
func (r *RequestReader) relocate(size int) {
	live := len(r.buf) - r.start
	nb := make([]byte, live, max(size, live+minReadSize))
	copy(nb, r.buf[r.start:])
	r.shift(r.start)
	r.buf = nb
}

// shift moves every offset d bytes towards the front.
func (r *RequestReader) shift(d int) {
	if d == 0 {
		return
	}
	r.start -= d
	r.pos -= d
	r.scanAt -= d
	for i := range r.spans {
		r.spans[i] -= d
	}
}

// parse appends the commands complete in the buffer to dst, up to max
// commands since n0 (only one while unauthenticated).
func (r *RequestReader) parse(dst []Command, n0, max int) ([]Command, error) {
	for (max <= 0 || len(dst)-n0 < max) && (r.auth || len(dst) == n0) {
		var (
			progress bool
			err      error
		)
		switch {
		case r.pending > 0:
			dst, progress, err = r.parseBulks(dst)
		case r.pos == len(r.buf):
			return dst, nil
		case r.buf[r.pos] == '*':
			progress, err = r.parseCount()
		default:
			dst, progress, err = r.parseInline(dst)
		}
		if err != nil || !progress {
			return dst, err
		}
	}
	return dst, nil
}

// findLine returns the offset from pos of the first c, or -1 when there is
// none yet or a NUL byte comes first: Redis searches its NUL-terminated query
// buffer with strchr, which stops at the first NUL. It remembers how far it
// has looked, so input that trickles in is not searched again and again.
func (r *RequestReader) findLine(c byte) int {
	b := r.buf[r.pos:]
	from := 0
	if r.scanAt == r.pos {
		from = r.scanned
		if from < len(b) && b[from] == 0 {
			return -1 // blocked for good by a NUL
		}
	}
	i := bytes.IndexByte(b[from:], c)
	end := len(b)
	if i >= 0 {
		end = from + i
	}
	if z := bytes.IndexByte(b[from:end], 0); z >= 0 {
		r.scanAt, r.scanned = r.pos, from+z
		return -1
	}
	if i >= 0 {
		return from + i
	}
	r.scanAt, r.scanned = r.pos, len(b)
	return -1
}

// countLine finds the "\r" ending the count line at the start of b, as
// processMultibulkBuffer does: the byte after "\r" must have arrived but is
// never checked. It returns the line's digits and the offset past the line;
// next == 0 means more input is needed, and tooBig that the unparsed input
// is already past MaxInline without a "\r".
func (r *RequestReader) countLine(b []byte) (digits []byte, next int, tooBig bool) {
	i := r.findLine('\r')
	if i < 0 {
		return nil, 0, len(b) > r.lim.MaxInline
	}
	if i+2 > len(b) {
		return nil, 0, false
	}
	return b[min(1, i):i], i + 2, false // i == 0 only for a bulk, refused for its missing '$'
}

// parseCount parses the "*<count>" line of a multibulk request. It reports
// whether the line was consumed. A count <= 0 is consumed and ignored.
func (r *RequestReader) parseCount() (bool, error) {
	b := r.buf[r.pos:]
	n, next, ok := scanCount(b)
	if !ok {
		digits, nx, tooBig := r.countLine(b)
		if tooBig {
			return false, protoErr("too big mbulk count string")
		}
		if nx == 0 {
			return false, nil
		}
		if n, ok = parseLL(digits); !ok {
			return false, protoErr("invalid multibulk length")
		}
		next = nx
	}
	if n > r.lim.MaxMultibulkLen {
		return false, protoErr("invalid multibulk length")
	}
	if n > unauthMaxMultibulk && !r.auth {
		return false, protoErr("unauthenticated multibulk length")
	}
	r.pos += next
	if n <= 0 {
		r.start = r.pos
		return true, nil
	}
	r.pending, r.bulk, r.spans = n, -1, r.spans[:0]
	return true, nil
}

// parseBulk parses the "$<len>" line of the next argument. It reports
// whether the line was consumed.
func (r *RequestReader) parseBulkLen() (bool, error) {
	b := r.buf[r.pos:]
	n, next, ok := scanCount(b)
	if !ok || b[0] != '$' {
		digits, nx, tooBig := r.countLine(b)
		if tooBig {
			return false, protoErr("too big bulk count string")
		}
		if nx == 0 {
			return false, nil
		}
		if b[0] != '$' {
			return false, protoErr("expected '$', got '" + string(printedByte(b[0])) + "'")
		}
		if n, ok = parseLL(digits); !ok || n < 0 {
			return false, protoErr("invalid bulk length")
		}
		next = nx
	}
	if n > r.lim.MaxBulkLen {
		return false, protoErr("invalid bulk length")
	}
	if n > unauthMaxBulk && !r.auth {
		return false, protoErr("unauthenticated bulk length")
	}
	r.pos += next
	r.bulk = n
	return true, nil
}

// printedByte is c as Redis's addReplyErrorFormat prints it: "\r" and "\n"
// become spaces so the error stays on one line; every other byte is raw.
func printedByte(c byte) []byte {
	if c == '\r' || c == '\n' {
		c = ' '
	}
	return []byte{c}
}

// parseBulks parses arguments of the pending multibulk command until it is
// complete (appending it to dst) or the buffer runs out. It reports whether
// it consumed anything.
func (r *RequestReader) parseBulks(dst []Command) ([]Command, bool, error) {
	progress := false
	for r.pending > 0 {
		if r.bulk < 0 {
			ok, err := r.parseBulkLen()
			if err != nil || !ok {
				return dst, progress, err
			}
			progress = true
		}
		// The two bytes after the data are skipped unchecked, as in Redis.
		if int64(len(r.buf)-r.pos)-2 < r.bulk {
			return dst, progress, nil
		}
		end := r.pos + int(r.bulk)
		r.spans = append(r.spans, r.pos, end)
		r.pos = end + 2
		r.bulk = -1
		r.pending--
		progress = true
	}
	first := len(r.argv)
	for i := 0; i < len(r.spans); i += 2 {
		s, e := r.spans[i], r.spans[i+1]
		r.argv = append(r.argv, r.buf[s:e:e])
	}
	r.spans = r.spans[:0]
	return r.emit(dst, first), true, nil
}

// emit appends the command made of argv[first:] to dst and marks its bytes
// as returned.
func (r *RequestReader) emit(dst []Command, first int) []Command {
	r.start = r.pos
	if len(r.argv) == first {
		return dst
	}
	n := len(r.argv)
	return append(dst, Command{Args: r.argv[first:n:n]})
}

// parseInline parses one inline request: a line ending in "\n" (or
// "\r\n"), split like Redis's sdssplitargs. It reports whether it consumed
// a line.
func (r *RequestReader) parseInline(dst []Command) ([]Command, bool, error) {
	b := r.buf[r.pos:]
	nl := r.findLine('\n')
	if nl < 0 {
		if len(b) > r.lim.MaxInline {
			return dst, false, protoErr("too big inline request")
		}
		return dst, false, nil
	}
	line := b[:nl]
	if nl > 0 && line[nl-1] == '\r' {
		line = line[:nl-1]
	}
	first := len(r.argv)
	argv, ok := splitInline(line, r.argv)
	if !ok {
		return dst, false, protoErr("unbalanced quotes in request")
	}
	r.argv = argv
	r.pos += nl + 1
	return r.emit(dst, first), true, nil
}
