package resp

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
)

// Parse decodes raw, which must hold exactly one reply (as ReadReply returns
// it), into a Go value, by reply type:
//
//	simple string (+)               string
//	error (-), blob error (!)       ErrorValue
//	integer (:)                     int64
//	bulk string ($)                 []byte
//	array (*)                       []any
//	null ($-1, *-1, _)              nil
//	double (,)                      float64
//	boolean (#)                     bool
//	big number (()                  BigNumber
//	verbatim string (=)             Verbatim
//	map (%)                         Map
//	set (~)                         Set
//	push (>)                        Push
//	attributes (|)                  Attributed, wrapping the reply they precede
//
// Byte slices in the result share one copy of raw, never raw itself.
// Aggregates may nest MaxReplyDepth deep.
func Parse(raw []byte) (any, error) {
	p := parser{b: bytes.Clone(raw)}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	if p.i != len(p.b) {
		return nil, badReply("%d bytes after the reply", len(p.b)-p.i)
	}
	return v, nil
}

// ErrorValue is an error reply ("-" or RESP3's blob error "!"), including
// its code, such as "ERR unknown command".
type ErrorValue string

// BigNumber is a RESP3 big number, kept as its decimal text.
type BigNumber string

// Verbatim is a RESP3 verbatim string: three bytes of format ("txt", "mkd")
// and the text.
type Verbatim struct {
	Format string
	Text   []byte
}

// Map is a RESP3 map as its keys and values alternating, in reply order.
type Map []any

// Set is a RESP3 set, in reply order.
type Set []any

// Push is a RESP3 out-of-band push message.
type Push []any

// Attributed is a reply preceded by RESP3 attributes.
type Attributed struct {
	Attrs Map
	Value any
}

// parser decodes replies from b, which it may alias.
type parser struct {
	b []byte
	i int
}

// line returns the line at p.i, "\r\n" included, and moves past it.
func (p *parser) line() ([]byte, error) {
	rest := p.b[p.i:]
	nl := bytes.IndexByte(rest, '\n')
	if nl < 2 || rest[nl-1] != '\r' {
		return nil, badReply("line %q", truncate(rest))
	}
	p.i += nl + 1
	return rest[:nl+1], nil
}

// value decodes the reply at p.i.
func (p *parser) value(depth int) (any, error) {
	line, err := p.line()
	if err != nil {
		return nil, err
	}
	typ, body := line[0], line[1:len(line)-2]
	switch typ {
	case '+':
		return string(body), nil
	case '-':
		return ErrorValue(body), nil
	case ':':
		if n, ok := parseLL(body); ok {
			return n, nil
		}
		return nil, badReply("integer %q", truncate(body))
	case '_':
		if len(body) != 0 {
			return nil, badReply("null %q", truncate(body))
		}
		return nil, nil
	case '#':
		return parseBool(body)
	case ',':
		return parseDouble(body)
	case '(':
		return parseBigNumber(body)
	case '$', '!', '=':
		return p.bulk(line)
	case '*', '~', '>', '%', '|':
		return p.aggregate(line, depth)
	}
	return nil, badReply("type byte %q", typ)
}

// parseBool decodes a boolean's body.
func parseBool(body []byte) (any, error) {
	switch string(body) {
	case "t":
		return true, nil
	case "f":
		return false, nil
	}
	return nil, badReply("boolean %q", truncate(body))
}

// parseDouble decodes a double's body: a decimal number, "inf", "-inf",
// "nan" or "-nan".
func parseDouble(body []byte) (any, error) {
	switch string(body) {
	case "inf":
		return math.Inf(1), nil
	case "-inf":
		return math.Inf(-1), nil
	case "nan":
		return math.NaN(), nil
	case "-nan":
		return math.Copysign(math.NaN(), -1), nil
	}
	for _, c := range body {
		if !(c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			return nil, badReply("double %q", truncate(body))
		}
	}
	f, err := strconv.ParseFloat(string(body), 64)
	if err != nil {
		return nil, badReply("double %q", truncate(body))
	}
	return f, nil
}

// parseBigNumber decodes a big number's body: an optional '-' and digits.
func parseBigNumber(body []byte) (any, error) {
	digits := body
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 {
		return nil, badReply("big number %q", truncate(body))
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return nil, badReply("big number %q", truncate(body))
		}
	}
	return BigNumber(body), nil
}

// bulk decodes a bulk string, blob error or verbatim string whose length
// line was line.
func (p *parser) bulk(line []byte) (any, error) {
	n, err := bulkLen(line)
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, nil
	}
	end := p.i + int(n)
	if int64(len(p.b)-p.i) < n+2 || p.b[end] != '\r' || p.b[end+1] != '\n' {
		return nil, badReply("bulk of %d bytes cut short or not followed by CRLF", n)
	}
	data := p.b[p.i:end:end]
	p.i = end + 2
	switch line[0] {
	case '!':
		return ErrorValue(data), nil
	case '=':
		if data[3] != ':' {
			return nil, badReply("verbatim string format %q", data[:4])
		}
		return Verbatim{Format: string(data[:3]), Text: data[4:]}, nil
	}
	return data, nil
}

// aggregate decodes an array, set, push, map or attributes whose header line
// was line.
func (p *parser) aggregate(line []byte, depth int) (any, error) {
	if depth >= MaxReplyDepth {
		return nil, badReply("aggregates nested more than %d deep", MaxReplyDepth)
	}
	n, err := aggregateLen(line)
	if err != nil {
		return nil, err
	}
	typ := line[0]
	if typ == '|' {
		n-- // the reply the attributes precede is decoded below
	}
	if string(line) == "*-1\r\n" {
		return nil, nil // RESP2's null array
	}
	// Every element takes at least 3 bytes: never allocate for more than
	// the input can hold.
	if n > int64(len(p.b)-p.i)/3 {
		return nil, badReply("%d elements cannot fit in %d bytes", n, len(p.b)-p.i)
	}
	items := make([]any, n)
	for k := range items {
		if items[k], err = p.value(depth + 1); err != nil {
			return nil, err
		}
	}
	switch typ {
	case '~':
		return Set(items), nil
	case '>':
		return Push(items), nil
	case '%':
		return Map(items), nil
	case '|':
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		return Attributed{Attrs: Map(items), Value: v}, nil
	}
	return items, nil
}

// AppendValue encodes v, a value of a type Parse returns, in protocol p and
// appends it to dst. RESP2 has no equivalent for some RESP3 types; they are
// written the way redis-server writes them to a RESP2 client: nil as a null
// bulk, a double as a bulk string (see AppendDouble), a boolean as 1 or 0, a
// big number as a bulk string, a verbatim string as a bulk string of its
// text, a map as an array of keys and values, a set or push as an array, and
// attributes not at all. An ErrorValue whose text has "\r" or "\n" is a blob
// error in RESP3 and has them replaced by spaces in RESP2. AppendValue
// panics on a value of any other type.
func AppendValue(dst []byte, p Proto, v any) []byte {
	switch t := v.(type) {
	case nil:
		return AppendNullBulk(dst, p)
	case string:
		return AppendStatus(dst, t)
	case ErrorValue:
		return appendErrorValue(dst, p, t)
	case int64:
		return AppendInt(dst, t)
	case []byte:
		return AppendBulk(dst, t)
	case float64:
		return AppendDouble(dst, p, t)
	case bool:
		return AppendBool(dst, p, t)
	case BigNumber:
		return AppendBigNumber(dst, p, string(t))
	case Verbatim:
		return AppendVerbatim(dst, p, t.Format, string(t.Text))
	case []any:
		return appendValues(AppendArray(dst, len(t)), p, t)
	case Map:
		return appendValues(AppendMap(dst, p, len(t)/2), p, t[:len(t)/2*2])
	case Set:
		return appendValues(AppendSet(dst, p, len(t)), p, t)
	case Push:
		return appendValues(AppendPush(dst, p, len(t)), p, t)
	case Attributed:
		if p >= Proto3 {
			n := len(t.Attrs) / 2
			dst = appendPrefixed(dst, '|', int64(n))
			dst = appendValues(dst, p, t.Attrs[:2*n])
		}
		return AppendValue(dst, p, t.Value)
	}
	panic(fmt.Sprintf("resp.AppendValue: unsupported type %T", v))
}

// appendValues encodes each of vs.
func appendValues(dst []byte, p Proto, vs []any) []byte {
	for _, v := range vs {
		dst = AppendValue(dst, p, v)
	}
	return dst
}

// appendErrorValue encodes an error reply, as a blob error when RESP3 allows
// one and the text needs it.
func appendErrorValue(dst []byte, p Proto, e ErrorValue) []byte {
	if p >= Proto3 && bytes.ContainsAny([]byte(e), "\r\n") {
		dst = appendPrefixed(dst, '!', int64(len(e)))
		dst = append(dst, e...)
		return append(dst, '\r', '\n')
	}
	return AppendError(dst, string(e))
}

// AsString returns the text of a parsed simple string, bulk string, error,
// big number or verbatim string, and "" for any other value.
func AsString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case []byte:
		return string(t)
	case ErrorValue:
		return string(t)
	case BigNumber:
		return string(t)
	case Verbatim:
		return string(t.Text)
	}
	return ""
}
