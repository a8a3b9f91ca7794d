package resp

import "math"

// maxNumberLen mirrors Redis's LONG_STR_SIZE: string2ll refuses strings of
// 21 bytes or more.
const maxNumberLen = 21

// parseLL parses a signed decimal integer with the rules of Redis's
// string2ll: an optional '-', no '+', no leading zeros, no "-0", digits only,
// fewer than 21 bytes, and the value must fit in an int64.
func parseLL(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) >= maxNumberLen {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	if b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > math.MaxUint64/10 || v*10 > math.MaxUint64-d {
			return 0, false
		}
		v = v*10 + d
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return int64(-v), true // -(1<<63) wraps to math.MinInt64, as wanted
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// scanCount reads the positive count or length on a line that starts with a
// type byte, in the common shape "[1-9][0-9]*\r" or "0\r" followed by at
// least one more byte. It returns the value and the offset just past the
// line, or ok=false when the line is not in that shape (the caller then
// takes the general path, which knows every error case).
func scanCount(b []byte) (n int64, next int, ok bool) {
	i := 1
	for ; i < len(b) && i < 19; i++ { // at most 18 digits: no overflow
		c := b[i]
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	digits := i - 1
	if digits == 0 || i+1 >= len(b) || b[i] != '\r' || (b[1] == '0' && digits > 1) {
		return 0, 0, false
	}
	return n, i + 2, true
}
