package command

import "math"

// ParseInt parses b the way Redis parses an integer argument (string2ll):
// an optional minus sign, then "0" or a digit 1-9 followed by digits, within
// int64, nothing else (no plus sign, spaces, leading zeros or "-0"). It
// reports false for anything Redis would refuse.
func ParseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) >= 21 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	switch {
	case neg && v <= 1<<63:
		return -int64(v-1) - 1, true
	case !neg && v <= math.MaxInt64:
		return int64(v), true
	}
	return 0, false
}

// ParseDB parses a database index argument: an integer in [0, 16).
func ParseDB(b []byte) (int, bool) {
	n, ok := ParseInt(b)
	return int(n), ok && n >= 0 && n < 16
}
