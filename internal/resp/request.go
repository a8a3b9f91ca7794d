package resp

import (
	"bytes"
	"errors"
	"io"
	"strconv"
)

// Limits are Redis's protocol limits for client requests.
type Limits struct {
	MaxBulkLen      int64 // proto-max-bulk-len
	MaxMultibulkLen int64 // largest argument count
	MaxInline       int   // longest inline request or count line
	MaxQueryBuffer  int64 // client-query-buffer-limit
}

// DefaultLimits are redis-server 7.0's defaults.
func DefaultLimits() Limits {
	return Limits{MaxBulkLen: 512 << 20, MaxMultibulkLen: 1<<31 - 1, MaxInline: 64 << 10, MaxQueryBuffer: 1 << 30}
}

// Command is one client request.
type Command struct{ Args [][]byte }

// ProtocolError is a malformed request. The server replies
// "-ERR Protocol error: <Msg>" and closes the connection, as Redis does.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "Protocol error: " + e.Msg }

// ErrQueryBufferLimit means a client sent more unprocessed bytes than
// client-query-buffer-limit; Redis closes such a connection without a reply.
var ErrQueryBufferLimit = errors.New("client query buffer limit reached")

// RequestReader reads client requests (multibulk or inline).
type RequestReader struct {
	rd     io.Reader
	lim    Limits
	buf    []byte
	start  int // first unparsed byte
	authed bool
	err    error // sticky read error
}

// NewRequestReader reads from r with limits l.
func NewRequestReader(r io.Reader, l Limits) *RequestReader {
	return &RequestReader{rd: r, lim: l, authed: true}
}

// SetAuthenticated switches between Redis's limits before authentication
// (at most 10 arguments of at most 16384 bytes) and the normal ones.
func (r *RequestReader) SetAuthenticated(ok bool) { r.authed = ok }

// Buffered is the number of received bytes not yet returned as commands.
func (r *RequestReader) Buffered() int { return len(r.buf) - r.start }

// ReadBatch blocks until at least one complete command has been read, then
// also returns every further command already complete in the buffer (up to
// max), without blocking again. Args alias the reader's buffer and stay
// valid until the next ReadBatch call.
func (r *RequestReader) ReadBatch(dst []Command, max int) ([]Command, error) {
	r.compact()
	for {
		for len(dst) < max {
			cmd, ok, err := r.parse()
			if err != nil {
				return dst, err
			}
			if !ok {
				break
			}
			if cmd.Args != nil {
				dst = append(dst, cmd)
			}
		}
		if len(dst) > 0 {
			return dst, nil
		}
		if err := r.Fill(); err != nil {
			return dst, err
		}
	}
}

// Fill reads once from the underlying reader, appending to the buffer; it
// never moves bytes that returned Args may reference.
func (r *RequestReader) Fill() error {
	if r.err != nil {
		return r.err
	}
	if int64(r.Buffered()) > r.lim.MaxQueryBuffer {
		return ErrQueryBufferLimit
	}
	if cap(r.buf)-len(r.buf) < 4096 {
		nb := make([]byte, len(r.buf), 2*cap(r.buf)+16<<10)
		copy(nb, r.buf)
		r.buf = nb
	}
	n, err := r.rd.Read(r.buf[len(r.buf):cap(r.buf)])
	r.buf = r.buf[:len(r.buf)+n]
	if err != nil && n == 0 {
		if ne, ok := err.(interface{ Timeout() bool }); !ok || !ne.Timeout() {
			r.err = err // a deadline can be lifted; anything else stays
		}
		return err
	}
	return nil
}

// compact drops parsed bytes; only called when no Args are outstanding.
func (r *RequestReader) compact() {
	if r.start == 0 {
		return
	}
	n := copy(r.buf, r.buf[r.start:])
	r.buf = r.buf[:n]
	r.start = 0
}

// parse tries to parse one command from the buffer. ok is false when more
// bytes are needed; a command with nil Args was consumed but is empty.
func (r *RequestReader) parse() (Command, bool, error) {
	b := r.buf[r.start:]
	if len(b) == 0 {
		return Command{}, false, nil
	}
	if b[0] == '*' {
		return r.parseMultibulk(b)
	}
	return r.parseInline(b)
}

func (r *RequestReader) parseInline(b []byte) (Command, bool, error) {
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		if len(b) > r.lim.MaxInline {
			return Command{}, false, &ProtocolError{"too big inline request"}
		}
		return Command{}, false, nil
	}
	line := b[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	r.start += nl + 1
	args, err := SplitArgs(line)
	if err != nil {
		return Command{}, false, &ProtocolError{"unbalanced quotes in request"}
	}
	return Command{Args: args}, true, nil
}

// countLine reads "<prefix><digits>\r\n" at b; ok false means incomplete.
func (r *RequestReader) countLine(b []byte, tooBig string) (n int64, size int, ok bool, err error) {
	cr := bytes.IndexByte(b, '\r')
	if cr < 0 || cr+1 >= len(b) {
		if len(b) > r.lim.MaxInline {
			return 0, 0, false, &ProtocolError{tooBig}
		}
		return 0, 0, false, nil
	}
	if cr > r.lim.MaxInline {
		return 0, 0, false, &ProtocolError{tooBig}
	}
	n, perr := strconv.ParseInt(string(b[1:cr]), 10, 64)
	if perr != nil {
		n = -1 << 62
	}
	return n, cr + 2, true, nil
}

func (r *RequestReader) parseMultibulk(b []byte) (Command, bool, error) {
	n, size, ok, err := r.countLine(b, "too big mbulk count string")
	if err != nil || !ok {
		return Command{}, false, err
	}
	if n == -1<<62 || n > r.lim.MaxMultibulkLen {
		return Command{}, false, &ProtocolError{"invalid multibulk length"}
	}
	if n <= 0 {
		r.start += size
		return Command{}, true, nil
	}
	if !r.authed && n > 10 {
		return Command{}, false, &ProtocolError{"unauthenticated multibulk length"}
	}
	pos := size
	args := make([][]byte, 0, min(n, 1024))
	for i := int64(0); i < n; i++ {
		if pos >= len(b) {
			return Command{}, false, nil
		}
		if b[pos] != '$' {
			return Command{}, false, &ProtocolError{"expected '$', got '" + string(b[pos]) + "'"}
		}
		ln, lsize, ok, err := r.countLine(b[pos:], "too big bulk count string")
		if err != nil || !ok {
			return Command{}, false, err
		}
		if ln < 0 || ln > r.lim.MaxBulkLen {
			return Command{}, false, &ProtocolError{"invalid bulk length"}
		}
		if !r.authed && ln > 16384 {
			return Command{}, false, &ProtocolError{"unauthenticated bulk length"}
		}
		pos += lsize
		if int64(len(b)-pos) < ln+2 {
			return Command{}, false, nil
		}
		args = append(args, b[pos:pos+int(ln):pos+int(ln)])
		pos += int(ln) + 2
	}
	r.start += pos
	return Command{Args: args}, true, nil
}

// SplitArgs splits an inline request as Redis's sdssplitargs does: spaces
// separate arguments; "…" with \n \r \t \b \a \\ \" and \xHH escapes and
// '…' with \' are quoted arguments, which must be followed by a space or
// the end.
func SplitArgs(line []byte) ([][]byte, error) {
	var args [][]byte
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i >= len(line) {
			return args, nil
		}
		var cur []byte
		inDQ, inSQ := false, false
		for done := false; !done; {
			switch {
			case inDQ:
				if i >= len(line) {
					return nil, errors.New("unbalanced quotes")
				}
				c := line[i]
				switch {
				case c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
					cur = append(cur, hexVal(line[i+2])<<4|hexVal(line[i+3]))
					i += 3
				case c == '\\' && i+1 < len(line):
					i++
					cur = append(cur, unescape(line[i]))
				case c == '"':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return nil, errors.New("unbalanced quotes")
					}
					done = true
				default:
					cur = append(cur, c)
				}
			case inSQ:
				if i >= len(line) {
					return nil, errors.New("unbalanced quotes")
				}
				c := line[i]
				switch {
				case c == '\\' && i+1 < len(line) && line[i+1] == '\'':
					i++
					cur = append(cur, '\'')
				case c == '\'':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return nil, errors.New("unbalanced quotes")
					}
					done = true
				default:
					cur = append(cur, c)
				}
			default:
				if i >= len(line) {
					done = true
					break
				}
				switch c := line[i]; {
				case isSpace(c):
					done = true
				case c == '"':
					inDQ = true
				case c == '\'':
					inSQ = true
				default:
					cur = append(cur, c)
				}
			}
			if i < len(line) {
				i++
			}
		}
		if cur == nil {
			cur = []byte{}
		}
		args = append(args, cur)
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f' || c == 0
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}
