package resp

import "bytes"

// Helpers that look into a raw reply (as ReadReply returns it) without
// decoding all of it. Leading RESP3 attributes are skipped.

// ReplyInt returns the value of an integer reply.
func ReplyInt(raw []byte) (int64, bool) {
	raw = skipAttributes(raw)
	if len(raw) < 4 || raw[0] != ':' || !endsLine(raw) {
		return 0, false
	}
	return parseLL(raw[1 : len(raw)-2])
}

// ReplyIsError reports whether raw is an error reply ("-" or RESP3's "!").
func ReplyIsError(raw []byte) bool {
	raw = skipAttributes(raw)
	return len(raw) > 0 && (raw[0] == '-' || raw[0] == '!')
}

// ReplyIsNull reports whether raw is a null reply: RESP2's "$-1" or "*-1",
// or RESP3's "_".
func ReplyIsNull(raw []byte) bool {
	raw = skipAttributes(raw)
	switch string(raw) {
	case "$-1\r\n", "*-1\r\n", "_\r\n":
		return true
	}
	return false
}

// ReplyString returns the text of a simple string, error, bulk string,
// blob error or verbatim string reply (without the verbatim format). It
// reports false for a null or any other reply.
func ReplyString(raw []byte) (string, bool) {
	raw = skipAttributes(raw)
	if len(raw) < 3 || !endsLine(raw) {
		return "", false
	}
	switch raw[0] {
	case '+', '-':
		return string(raw[1 : len(raw)-2]), true
	case '$', '!', '=':
		nl := bytes.IndexByte(raw, '\n')
		if nl < 2 || raw[nl-1] != '\r' || raw[1] == '-' || nl+1 > len(raw)-2 {
			return "", false
		}
		body := raw[nl+1 : len(raw)-2]
		if n, err := bulkLen(raw[:nl+1]); err != nil || n != int64(len(body)) {
			return "", false
		}
		if raw[0] == '=' {
			body = body[4:]
		}
		return string(body), true
	}
	return "", false
}

// endsLine reports whether raw ends in "\r\n".
func endsLine(raw []byte) bool {
	return raw[len(raw)-2] == '\r' && raw[len(raw)-1] == '\n'
}

// ArrayItems splits an array, set, push or map reply into the raw bytes of
// its elements (a map's keys and values alternate). A null reply has none.
// The items alias raw; raw must hold exactly one reply.
func ArrayItems(raw []byte) ([][]byte, error) {
	raw = skipAttributes(raw)
	if ReplyIsNull(raw) {
		return [][]byte{}, nil
	}
	nl := bytes.IndexByte(raw, '\n')
	if nl < 2 || raw[nl-1] != '\r' {
		return nil, badReply("not an aggregate")
	}
	switch raw[0] {
	case '*', '~', '>', '%':
	default:
		return nil, badReply("not an aggregate: %q", truncate(raw))
	}
	n, err := aggregateLen(raw[:nl+1])
	if err != nil {
		return nil, err
	}
	i := nl + 1
	items := make([][]byte, 0, min(n, int64(len(raw)-i)/3))
	for ; n > 0; n-- {
		end, err := replyEnd(raw[i:])
		if err != nil {
			return nil, err
		}
		items = append(items, raw[i:i+end:i+end])
		i += end
	}
	if i != len(raw) {
		return nil, badReply("%d bytes after the reply", len(raw)-i)
	}
	return items, nil
}

// skipAttributes returns raw past any leading RESP3 attributes, or raw
// itself when they are malformed.
func skipAttributes(raw []byte) []byte {
	for len(raw) > 0 && raw[0] == '|' {
		end, err := attributesEnd(raw)
		if err != nil {
			return raw
		}
		raw = raw[end:]
	}
	return raw
}

// attributesEnd returns the length of the attributes at the start of raw.
func attributesEnd(raw []byte) (int, error) {
	nl := bytes.IndexByte(raw, '\n')
	if nl < 2 || raw[nl-1] != '\r' {
		return 0, badReply("attributes line")
	}
	n, err := aggregateLen(raw[:nl+1])
	if err != nil {
		return 0, err
	}
	i := nl + 1
	for n--; n > 0; n-- { // the last one is the reply they precede
		end, err := replyEnd(raw[i:])
		if err != nil {
			return 0, err
		}
		i += end
	}
	return i, nil
}

// replyEnd returns the length of the complete reply at the start of b. It
// accepts exactly what ReadReply accepts.
func replyEnd(b []byte) (int, error) {
	i, todo := 0, int64(1)
	for todo > 0 {
		rest := b[i:]
		nl := bytes.IndexByte(rest, '\n')
		if nl < 2 || rest[nl-1] != '\r' {
			return 0, badReply("line %q", truncate(rest))
		}
		line := rest[:nl+1]
		i += nl + 1
		todo--
		n, err := valueExtent(line)
		if err != nil {
			return 0, err
		}
		if isAggregate(line[0]) {
			if todo += n; todo > maxPending {
				return 0, badReply("too many elements")
			}
			continue
		}
		if n >= 0 {
			if int64(len(b)-i)-2 < n || b[i+int(n)] != '\r' || b[i+int(n)+1] != '\n' {
				return 0, badReply("bulk cut short or not followed by CRLF")
			}
			i += int(n) + 2
		}
	}
	return i, nil
}

// isAggregate reports whether typ starts an aggregate (or attributes).
func isAggregate(typ byte) bool {
	switch typ {
	case '*', '~', '>', '%', '|':
		return true
	}
	return false
}

// valueExtent checks one reply line and returns, for an aggregate, how many
// values follow it; for a bulk, its length; otherwise -1.
func valueExtent(line []byte) (int64, error) {
	switch line[0] {
	case '+', '-', ':', ',', '(':
		return -1, nil
	case '_':
		if len(line) != 3 {
			return 0, badReply("null %q", line)
		}
		return -1, nil
	case '#':
		if len(line) != 4 || (line[1] != 't' && line[1] != 'f') {
			return 0, badReply("boolean %q", line)
		}
		return -1, nil
	case '$', '!', '=':
		return bulkLen(line)
	case '*', '~', '>', '%', '|':
		return aggregateLen(line)
	}
	return 0, badReply("type byte %q", line[0])
}

// BulkAsDouble turns a bulk string holding a double as redis-server
// prints it for RESP2 ("%.17g", "inf", "-inf") into the RESP3 double with
// the same text, which is what redis-server prints for RESP3. ok is false
// when raw is not a bulk string of a number.
func BulkAsDouble(raw []byte) (out []byte, ok bool) {
	if len(raw) == 0 || raw[0] != '$' {
		return nil, false
	}
	text, ok := ReplyString(raw)
	if !ok {
		return nil, false
	}
	if _, err := parseDouble([]byte(text)); err != nil || text == "" {
		return nil, false
	}
	return append(append([]byte{','}, text...), '\r', '\n'), true
}

// Rebuild writes items (raw replies, as ArrayItems returns them) under a
// header of the same type as the aggregate raw: an array, set or push of
// len(items) elements, or a map of len(items)/2 pairs.
func Rebuild(raw []byte, items [][]byte) []byte {
	raw = skipAttributes(raw)
	typ := byte('*')
	if len(raw) > 0 {
		typ = raw[0]
	}
	n := len(items)
	if typ == '%' {
		n /= 2
	}
	size := 16
	for _, it := range items {
		size += len(it)
	}
	out := appendPrefixed(make([]byte, 0, size), typ, int64(n))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}
