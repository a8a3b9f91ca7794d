package resp

import (
	"math"
	"strconv"
)

// Proto is a protocol version: Proto2 (RESP2) or Proto3 (RESP3, after
// HELLO 3). Any value below Proto3, the zero value included, means RESP2.
type Proto int

// The protocol versions.
const (
	Proto2 Proto = 2
	Proto3 Proto = 3
)

// appendPrefixed appends prefix, n and "\r\n".
func appendPrefixed(dst []byte, prefix byte, n int64) []byte {
	dst = append(dst, prefix)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '\r', '\n')
}

// appendLine appends prefix, s with every "\r" and "\n" replaced by a space
// (as Redis's addReplyErrorFormat does, so the reply stays one line), and
// "\r\n".
func appendLine(dst []byte, prefix byte, s string) []byte {
	dst = append(dst, prefix)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return append(dst, '\r', '\n')
}

// AppendStatus appends the status reply "+s".
func AppendStatus(dst []byte, s string) []byte { return appendLine(dst, '+', s) }

// AppendError appends the error reply "-msg"; msg starts with its code, as in
// "ERR unknown command" or "WRONGTYPE ...".
func AppendError(dst []byte, msg string) []byte { return appendLine(dst, '-', msg) }

// AppendInt appends the integer reply ":n".
func AppendInt(dst []byte, n int64) []byte { return appendPrefixed(dst, ':', n) }

// AppendBulk appends b as a bulk string.
func AppendBulk(dst, b []byte) []byte {
	dst = appendPrefixed(dst, '$', int64(len(b)))
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// AppendBulkString appends s as a bulk string.
func AppendBulkString(dst []byte, s string) []byte {
	dst = appendPrefixed(dst, '$', int64(len(s)))
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendNullBulk appends Redis's null reply where a string was expected
// (GET of a missing key): "$-1" in RESP2, "_" in RESP3.
func AppendNullBulk(dst []byte, p Proto) []byte {
	if p >= Proto3 {
		return append(dst, "_\r\n"...)
	}
	return append(dst, "$-1\r\n"...)
}

// AppendNullArray appends Redis's null reply where an array was expected
// (a BLPOP timeout): "*-1" in RESP2, "_" in RESP3.
func AppendNullArray(dst []byte, p Proto) []byte {
	if p >= Proto3 {
		return append(dst, "_\r\n"...)
	}
	return append(dst, "*-1\r\n"...)
}

// AppendArray appends the header of an array of n elements.
func AppendArray(dst []byte, n int) []byte { return appendPrefixed(dst, '*', int64(n)) }

// AppendMap appends the header of a map of n key-value pairs: "%n" in RESP3,
// an array of 2n elements in RESP2.
func AppendMap(dst []byte, p Proto, n int) []byte {
	if p >= Proto3 {
		return appendPrefixed(dst, '%', int64(n))
	}
	return appendPrefixed(dst, '*', 2*int64(n))
}

// AppendSet appends the header of a set of n elements: "~n" in RESP3, an
// array in RESP2.
func AppendSet(dst []byte, p Proto, n int) []byte {
	if p >= Proto3 {
		return appendPrefixed(dst, '~', int64(n))
	}
	return appendPrefixed(dst, '*', int64(n))
}

// AppendPush appends the header of an out-of-band push message of n
// elements (Pub/Sub messages, invalidations): ">n" in RESP3, an array in
// RESP2.
func AppendPush(dst []byte, p Proto, n int) []byte {
	if p >= Proto3 {
		return appendPrefixed(dst, '>', int64(n))
	}
	return appendPrefixed(dst, '*', int64(n))
}

// AppendDouble appends f as redis-server 7.0's addReplyDouble does (ZSCORE,
// ZINCRBY, ...): in RESP3 the double type ",<f>", in RESP2 a bulk string.
// The number is printed like C's "%.17g"; infinities are "inf" and "-inf",
// and NaN is "nan" or, with its sign bit set, "-nan" (glibc's spelling; a
// NaN computed on x86, such as Lua's 0/0, has the sign bit set).
//
// INCRBYFLOAT and HINCRBYFLOAT reply with a plain bulk string in both
// protocols, formatted from a long double; that is not this function.
func AppendDouble(dst []byte, p Proto, f float64) []byte {
	if p >= Proto3 {
		dst = append(dst, ',')
		dst = appendDoubleText(dst, f)
		return append(dst, '\r', '\n')
	}
	var num [32]byte
	text := appendDoubleText(num[:0], f)
	return AppendBulk(dst, text)
}

// appendDoubleText appends f formatted as by C's printf("%.17g"), with
// Redis's spellings of infinities and glibc's of NaN.
func appendDoubleText(dst []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	case math.IsNaN(f):
		if math.Signbit(f) {
			return append(dst, "-nan"...)
		}
		return append(dst, "nan"...)
	}
	// Go's %g with a precision picks the exponent form under the same rule as
	// C (exponent < -4 or >= precision), drops trailing zeros likewise and
	// prints at least two exponent digits: the output is C's.
	return strconv.AppendFloat(dst, f, 'g', 17, 64)
}

// AppendBool appends a boolean: "#t"/"#f" in RESP3, the integers 1 and 0 in
// RESP2.
func AppendBool(dst []byte, p Proto, b bool) []byte {
	switch {
	case p >= Proto3 && b:
		return append(dst, "#t\r\n"...)
	case p >= Proto3:
		return append(dst, "#f\r\n"...)
	case b:
		return append(dst, ":1\r\n"...)
	}
	return append(dst, ":0\r\n"...)
}

// AppendBigNumber appends the decimal integer num as a big number: "(num" in
// RESP3, a bulk string in RESP2.
func AppendBigNumber(dst []byte, p Proto, num string) []byte {
	if p >= Proto3 {
		return appendLine(dst, '(', num)
	}
	return AppendBulkString(dst, num)
}

// AppendVerbatim appends a verbatim string such as INFO's reply: in RESP3
// "=<len>\r\n<fmt>:<text>" where fmt is format cut or padded with spaces to
// three bytes ("txt", "mkd"), in RESP2 a bulk string of text.
func AppendVerbatim(dst []byte, p Proto, format, text string) []byte {
	if p < Proto3 {
		return AppendBulkString(dst, text)
	}
	dst = appendPrefixed(dst, '=', int64(len(text))+4)
	for i := 0; i < 3; i++ {
		c := byte(' ')
		if i < len(format) {
			c = format[i]
		}
		dst = append(dst, c)
	}
	dst = append(dst, ':')
	dst = append(dst, text...)
	return append(dst, '\r', '\n')
}

// AppendCommand appends args as a request: a multibulk array of bulk
// strings, the form redis-server and RequestReader parse. To write into a
// bufio.Writer without a copy: w.Write(AppendCommand(w.AvailableBuffer(), args)).
func AppendCommand(dst []byte, args [][]byte) []byte {
	dst = appendPrefixed(dst, '*', int64(len(args)))
	for _, a := range args {
		dst = AppendBulk(dst, a)
	}
	return dst
}
