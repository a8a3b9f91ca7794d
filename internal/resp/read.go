package resp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Bounds on replies read from a peer, so that a broken or hostile one cannot
// make a reader allocate without limit, overflow a counter or recurse
// without end.
const (
	// MaxReplyBulk is the longest bulk string, verbatim string, blob error or
	// simple line accepted in a reply: twice the largest value redis-server
	// stores with its default proto-max-bulk-len.
	MaxReplyBulk = 1 << 30
	// MaxReplyCount is the largest element count of one aggregate.
	MaxReplyCount = 1<<32 - 1
	// MaxReplyDepth is how deeply Parse lets aggregates nest. ReadReply keeps
	// no per-level state and needs no such bound.
	MaxReplyDepth = 512
)

// maxPending bounds ReadReply's count of values still to read.
const maxPending = 1 << 62

// ErrBadReply reports a malformed reply. Errors returned for one wrap it.
var ErrBadReply = errors.New("malformed RESP reply")

// badReply wraps ErrBadReply with what was wrong.
func badReply(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadReply}, args...)...)
}

// ReadReply reads one complete reply, RESP2 or RESP3, from br and appends its
// raw bytes to dst. Attributes ("|") are part of the reply that follows
// them. A push message (">") is returned like any reply; telling it from the
// reply expected is the caller's business. Streamed RESP3 aggregates ("*?",
// "$?"), which redis-server never sends, are malformed.
//
// Only framing is checked: lengths and counts, "\r\n" after every line and
// bulk, "_" and "#" lines; the payload of ":", ",", "(", "+" and "-" lines is
// not (Parse checks it). Memory grows only with the bytes actually read.
//
// At the end of input it returns io.EOF if no byte of the reply had been
// read, else io.ErrUnexpectedEOF; other read errors come back unchanged.
// On any error dst is returned without the partial reply.
func ReadReply(br *bufio.Reader, dst []byte) ([]byte, error) {
	start := len(dst)
	out, err := readReply(br, dst)
	if err != nil {
		if err == io.EOF && len(out) > start {
			err = io.ErrUnexpectedEOF
		}
		return dst[:start], err
	}
	return out, nil
}

// readReply does ReadReply's work; it counts the values still to read
// instead of recursing, so nesting costs nothing.
func readReply(br *bufio.Reader, dst []byte) ([]byte, error) {
	for todo := int64(1); todo > 0; todo-- {
		lineStart := len(dst)
		var err error
		if dst, err = readLine(br, dst); err != nil {
			return dst, err
		}
		line := dst[lineStart:]
		switch line[0] {
		case '+', '-', ':':
			continue // the most common replies first
		case '$':
			if n, ok := quickLen(line); ok {
				if dst, err = readBulkBody(br, dst, n); err != nil {
					return dst, err
				}
				continue
			}
		case '*':
			if n, ok := quickLen(line); ok && todo < maxPending {
				todo += n
				continue
			}
		}
		n, err := valueExtent(line)
		switch {
		case err != nil:
			return dst, err
		case isAggregate(line[0]):
			if todo += n; todo > maxPending {
				return dst, badReply("too many elements")
			}
		case n >= 0:
			if dst, err = readBulkBody(br, dst, n); err != nil {
				return dst, err
			}
		}
	}
	return dst, nil
}

// quickLen parses the length on a "$" or "*" line of up to 9 digits, the
// common case; ok is false for anything else.
func quickLen(line []byte) (int64, bool) {
	digits := line[1 : len(line)-2]
	if len(digits) == 0 || len(digits) > 9 {
		return 0, false
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// readLine appends one line ending in "\r\n" to dst. A line longer than
// br's buffer is gathered piece by piece, up to MaxReplyBulk.
func readLine(br *bufio.Reader, dst []byte) ([]byte, error) {
	start := len(dst)
	frag, err := br.ReadSlice('\n')
	dst = append(dst, frag...)
	for err == bufio.ErrBufferFull {
		if len(dst)-start > MaxReplyBulk {
			return dst, badReply("line longer than %d bytes", MaxReplyBulk)
		}
		frag, err = br.ReadSlice('\n')
		dst = append(dst, frag...)
	}
	if err != nil {
		return dst, err
	}
	if line := dst[start:]; len(line) < 3 || line[len(line)-2] != '\r' {
		return dst, badReply("line %q", truncate(line))
	}
	return dst, nil
}

// truncate shortens b for an error message.
func truncate(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// replyLen parses the length or count on a reply line (type byte, digits,
// "\r\n"): decimal digits, or -1.
func replyLen(line []byte) (int64, error) {
	if len(line) < 3 {
		return 0, badReply("line %q", line)
	}
	body := line[1 : len(line)-2]
	if len(body) == 2 && body[0] == '-' && body[1] == '1' {
		return -1, nil // the only negative length RESP has
	}
	if len(body) == 0 || len(body) > 18 {
		return 0, badReply("length %q", truncate(line))
	}
	var n int64
	for _, c := range body {
		if c < '0' || c > '9' {
			return 0, badReply("length %q", truncate(line))
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// bulkLen parses the length line of a bulk string ("$"), blob error ("!") or
// verbatim string ("="). It returns -1 for RESP2's null bulk "$-1".
func bulkLen(line []byte) (int64, error) {
	n, err := replyLen(line)
	switch {
	case err != nil:
		return 0, err
	case n == -1 && line[0] == '$':
		return -1, nil
	case n < 0 || n > MaxReplyBulk:
		return 0, badReply("length %q", truncate(line))
	case line[0] == '=' && n < 4:
		return 0, badReply("verbatim string without a format")
	}
	return n, nil
}

// aggregateLen returns how many values follow an aggregate's header line:
// n for an array, set or push, 2n for a map or attribute (whose own reply
// follows too, so "|" adds one more), 0 for RESP2's null array "*-1".
func aggregateLen(line []byte) (int64, error) {
	n, err := replyLen(line)
	switch {
	case err != nil:
		return 0, err
	case n == -1 && line[0] == '*':
		return 0, nil
	case n < 0 || n > MaxReplyCount:
		return 0, badReply("count %q", truncate(line))
	}
	switch line[0] {
	case '%':
		return 2 * n, nil
	case '|':
		return 2*n + 1, nil
	}
	return n, nil
}

// readBulkBody appends the n bytes of a bulk's body and the "\r\n" after
// them. A body already buffered is copied at once; a larger one is read in
// pieces that grow with what has arrived, never at once from the announced
// length.
func readBulkBody(br *bufio.Reader, dst []byte, n int64) ([]byte, error) {
	left := int(n) + 2
	if left <= br.Buffered() {
		body, _ := br.Peek(left)
		dst = append(dst, body...)
		br.Discard(left)
	} else {
		var err error
		if dst, err = readBulkPieces(br, dst, left); err != nil {
			return dst, err
		}
	}
	if dst[len(dst)-2] != '\r' || dst[len(dst)-1] != '\n' {
		return dst, badReply("bulk not followed by CRLF")
	}
	return dst, nil
}

// readBulkPieces appends the next left bytes of br, growing dst by at most
// what it already holds of them (and 64 KB) at a time.
func readBulkPieces(br *bufio.Reader, dst []byte, left int) ([]byte, error) {
	bodyStart := len(dst)
	for left > 0 {
		chunk := left
		if grown := len(dst) - bodyStart; chunk > 64<<10 && chunk > grown {
			chunk = max(64<<10, grown)
		}
		at := len(dst)
		dst = slices.Grow(dst, chunk)[:at+chunk]
		got, err := io.ReadFull(br, dst[at:])
		dst = dst[:at+got]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return dst, err
		}
		left -= chunk
	}
	return dst, nil
}
