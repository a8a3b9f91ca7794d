package resp

// Today's RESP2 client helpers from redraft's resp.go, kept verbatim as the
// reference for compatibility tests and benchmarks.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

var errOldBadReply = errors.New("malformed RESP reply")

func oldReadRaw(br *bufio.Reader, dst []byte) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return dst, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return dst, errOldBadReply
	}
	dst = append(dst, line...)
	switch line[0] {
	case '+', '-', ':':
		return dst, nil
	case '$':
		n, err := strconv.Atoi(string(line[1 : len(line)-2]))
		if err != nil {
			return dst, errOldBadReply
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
			return dst, errOldBadReply
		}
		for i := 0; i < n; i++ {
			if dst, err = oldReadRaw(br, dst); err != nil {
				return dst, err
			}
		}
		return dst, nil
	}
	return dst, errOldBadReply
}

func oldParseReply(raw []byte) (any, error) {
	br := bufio.NewReader(bytes.NewReader(raw))
	return oldParseValue(br)
}

func oldParseValue(br *bufio.Reader) (any, error) {
	line, err := br.ReadSlice('\n')
	if err != nil || len(line) < 3 {
		return nil, errOldBadReply
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
			return nil, errOldBadReply
		}
		return n, nil
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, errOldBadReply
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
			return nil, errOldBadReply
		}
		if n < 0 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = oldParseValue(br); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, errOldBadReply
}
