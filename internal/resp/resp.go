// Package resp reads and writes the Redis serialization protocol: raw
// replies as they come from a server, a small parser for the replies
// redraft inspects, and builders for the replies redraft writes itself.
package resp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ErrMalformed reports a reply that does not follow the protocol.
var ErrMalformed = errors.New("malformed RESP reply")

// ReadReply appends one complete reply from br to dst and returns it, raw.
func ReadReply(br *bufio.Reader, dst []byte) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return dst, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return dst, ErrMalformed
	}
	dst = append(dst, line...)
	switch line[0] {
	case '+', '-', ':':
		return dst, nil
	case '$':
		n, err := strconv.Atoi(string(line[1 : len(line)-2]))
		if err != nil {
			return dst, ErrMalformed
		}
		if n < 0 {
			return dst, nil
		}
		start := len(dst)
		dst = append(dst, make([]byte, n+2)...)
		if _, err := io.ReadFull(br, dst[start:]); err != nil {
			return dst, err
		}
		return dst, nil
	case '*':
		n, err := strconv.Atoi(string(line[1 : len(line)-2]))
		if err != nil {
			return dst, ErrMalformed
		}
		for i := 0; i < n; i++ {
			if dst, err = ReadReply(br, dst); err != nil {
				return dst, err
			}
		}
		return dst, nil
	}
	return dst, ErrMalformed
}

// WriteCommand encodes args as a RESP array of bulk strings.
func WriteCommand(w *bufio.Writer, args [][]byte) {
	w.WriteByte('*')
	w.WriteString(strconv.Itoa(len(args)))
	w.WriteString("\r\n")
	for _, a := range args {
		w.WriteByte('$')
		w.WriteString(strconv.Itoa(len(a)))
		w.WriteString("\r\n")
		w.Write(a)
		w.WriteString("\r\n")
	}
}

// WriteStrings encodes args, given as strings, like WriteCommand.
func WriteStrings(w *bufio.Writer, args ...string) {
	w.WriteByte('*')
	w.WriteString(strconv.Itoa(len(args)))
	w.WriteString("\r\n")
	for _, a := range args {
		w.WriteByte('$')
		w.WriteString(strconv.Itoa(len(a)))
		w.WriteString("\r\n")
		w.WriteString(a)
		w.WriteString("\r\n")
	}
}

// Int parses an integer reply.
func Int(raw []byte) (int64, bool) {
	if len(raw) < 4 || raw[0] != ':' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw[1:len(raw)-2]), 10, 64)
	return n, err == nil
}

// IsError reports whether raw is an error reply.
func IsError(raw []byte) bool { return len(raw) > 0 && raw[0] == '-' }

// IsNil reports whether raw is a nil bulk or a nil array.
func IsNil(raw []byte) bool {
	return string(raw) == "*-1\r\n" || string(raw) == "$-1\r\n"
}

// Text returns the payload of a status, error or bulk reply.
func Text(raw []byte) (string, bool) {
	if len(raw) < 3 {
		return "", false
	}
	switch raw[0] {
	case '+', '-':
		return string(raw[1 : len(raw)-2]), true
	case '$':
		i := bytes.IndexByte(raw, '\n')
		if i < 0 || raw[1] == '-' {
			return "", false
		}
		return string(raw[i+1 : len(raw)-2]), true
	}
	return "", false
}

// ArrayItems splits an array reply into its elements' raw bytes (none for a
// nil array).
func ArrayItems(raw []byte) ([][]byte, error) {
	br := bufio.NewReader(bytes.NewReader(raw))
	line, err := br.ReadSlice('\n')
	if err != nil || len(line) < 3 || line[0] != '*' {
		return nil, ErrMalformed
	}
	n, err := strconv.Atoi(string(line[1 : len(line)-2]))
	if err != nil {
		return nil, ErrMalformed
	}
	items := make([][]byte, 0, max(min(n, 1024), 0))
	for i := 0; i < n; i++ {
		item, err := ReadReply(br, nil)
		if err != nil {
			return nil, err
		}
		items = append(items, item)
	}
	return items, nil
}

// ErrorValue is an error element inside a parsed reply.
type ErrorValue string

// Parse decodes a raw reply into int64, string (status), []byte (bulk),
// ErrorValue, nil, or []any.
func Parse(raw []byte) (any, error) {
	br := bufio.NewReader(bytes.NewReader(raw))
	return parseValue(br)
}

func parseValue(br *bufio.Reader) (any, error) {
	line, err := br.ReadSlice('\n')
	if err != nil || len(line) < 3 {
		return nil, ErrMalformed
	}
	body := string(line[1 : len(line)-2])
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return ErrorValue(body), nil
	case ':':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			return nil, ErrMalformed
		}
		return n, nil
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, ErrMalformed
		}
		if n < 0 {
			return nil, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(br, b); err != nil {
			return nil, err
		}
		return b[:n], nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, ErrMalformed
		}
		if n < 0 {
			return nil, nil
		}
		out := make([]any, 0, min(n, 1024))
		for i := 0; i < n; i++ {
			v, err := parseValue(br)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, ErrMalformed
}

// AsString renders a parsed status, error or bulk value as a string.
func AsString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case []byte:
		return string(t)
	case ErrorValue:
		return string(t)
	}
	return ""
}

// AsInt returns a parsed integer value, 0 for anything else.
func AsInt(v any) int64 {
	n, _ := v.(int64)
	return n
}

// Encode renders a parsed reply as RESP2.
func Encode(dst []byte, v any) []byte {
	switch t := v.(type) {
	case nil:
		return append(dst, NullBulk...)
	case int64:
		return append(dst, Integer(t)...)
	case string:
		return append(dst, Status(t)...)
	case ErrorValue:
		return append(dst, Error(string(t))...)
	case []byte:
		dst = append(dst, '$')
		dst = strconv.AppendInt(dst, int64(len(t)), 10)
		dst = append(dst, "\r\n"...)
		dst = append(dst, t...)
		return append(dst, "\r\n"...)
	case []any:
		dst = append(dst, ArrayHeader(len(t))...)
		for _, e := range t {
			dst = Encode(dst, e)
		}
		return dst
	}
	panic(fmt.Sprintf("resp.Encode: unexpected %T", v))
}

// Error formats an error reply.
func Error(msg string) []byte { return []byte("-" + msg + "\r\n") }

// Integer formats an integer reply.
func Integer(n int64) []byte { return []byte(":" + strconv.FormatInt(n, 10) + "\r\n") }

// Status formats a status reply.
func Status(s string) []byte { return []byte("+" + s + "\r\n") }

// Bulk formats a bulk reply.
func Bulk(s string) []byte {
	return []byte("$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n")
}

// ArrayHeader formats the header of an array of n elements.
func ArrayHeader(n int) []byte { return []byte("*" + strconv.Itoa(n) + "\r\n") }

// Bool formats a boolean as Redis's RESP2 integer 1 or 0.
func Bool(b bool) []byte {
	if b {
		return []byte(":1\r\n")
	}
	return []byte(":0\r\n")
}

// Fixed replies.
var (
	OK        = []byte("+OK\r\n")
	NullBulk  = []byte("$-1\r\n")
	NullArray = []byte("*-1\r\n")
)
