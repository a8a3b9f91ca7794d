package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// respConn is a pipelining RESP2 connection to the child redis-server that
// hands back every reply as its raw bytes, so replies reach clients byte for
// byte (redigo folds nil arrays and nil bulks together, which would not).
type respConn struct {
	nc net.Conn
	br *bufio.Reader
	bw *bufio.Writer
	db int // database currently selected on this connection
}

// dialChild connects to the child's unix socket.
func dialChild(sock string) (*respConn, error) {
	nc, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial redis-server at %s: %w", sock, err)
	}
	return &respConn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), bw: bufio.NewWriterSize(nc, 64<<10)}, nil
}

// Close closes the connection.
func (c *respConn) Close() error { return c.nc.Close() }

// send buffers one command.
func (c *respConn) send(args [][]byte) {
	writeCommand(c.bw, args)
}

// sendStrings buffers one command given as strings.
func (c *respConn) sendStrings(args ...string) {
	c.bw.WriteByte('*')
	c.bw.WriteString(strconv.Itoa(len(args)))
	c.bw.WriteString("\r\n")
	for _, a := range args {
		c.bw.WriteByte('$')
		c.bw.WriteString(strconv.Itoa(len(a)))
		c.bw.WriteString("\r\n")
		c.bw.WriteString(a)
		c.bw.WriteString("\r\n")
	}
}

// selectDB buffers a SELECT when db differs from the connection's current
// database, and returns whether a reply must be read for it.
func (c *respConn) selectDB(db int) bool {
	if c.db == db {
		return false
	}
	c.sendStrings("SELECT", strconv.Itoa(db))
	c.db = db
	return true
}

// selectNow switches to db at once (SELECT sent and answered) when the
// connection is elsewhere.
func (c *respConn) selectNow(db int) error {
	if !c.selectDB(db) {
		return nil
	}
	if err := c.flush(); err != nil {
		return err
	}
	_, err := c.readReply()
	return err
}

// flush writes the buffered commands.
func (c *respConn) flush() error {
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("write to redis-server: %w", err)
	}
	return nil
}

// do sends one command and returns its raw reply.
func (c *respConn) do(args ...string) ([]byte, error) {
	c.sendStrings(args...)
	if err := c.flush(); err != nil {
		return nil, err
	}
	return c.readReply()
}

// readReply reads one complete reply and returns a copy of its raw bytes.
func (c *respConn) readReply() ([]byte, error) {
	out, err := readRaw(c.br, nil)
	if err != nil {
		return nil, fmt.Errorf("read from redis-server: %w", err)
	}
	return out, nil
}

// writeCommand encodes args as a RESP array of bulk strings.
func writeCommand(w *bufio.Writer, args [][]byte) {
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

// errBadReply reports a malformed reply from the child.
var errBadReply = errors.New("malformed RESP reply")

// readRaw appends one complete RESP2 reply from br to dst.
func readRaw(br *bufio.Reader, dst []byte) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return dst, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return dst, errBadReply
	}
	dst = append(dst, line...)
	switch line[0] {
	case '+', '-', ':':
		return dst, nil
	case '$':
		n, err := strconv.Atoi(string(line[1 : len(line)-2]))
		if err != nil {
			return dst, errBadReply
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
			return dst, errBadReply
		}
		for i := 0; i < n; i++ {
			if dst, err = readRaw(br, dst); err != nil {
				return dst, err
			}
		}
		return dst, nil
	}
	return dst, errBadReply
}

// replyInt parses an integer reply.
func replyInt(raw []byte) (int64, bool) {
	if len(raw) < 4 || raw[0] != ':' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw[1:len(raw)-2]), 10, 64)
	return n, err == nil
}

// replyIsError reports whether raw is an error reply.
func replyIsError(raw []byte) bool { return len(raw) > 0 && raw[0] == '-' }

// replyString returns the payload of a status or bulk reply.
func replyString(raw []byte) (string, bool) {
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

// respError formats an error reply.
func respError(msg string) []byte { return []byte("-" + msg + "\r\n") }

// respInt formats an integer reply.
func respInt(n int64) []byte { return []byte(":" + strconv.FormatInt(n, 10) + "\r\n") }

// respStatus formats a status reply.
func respStatus(s string) []byte { return []byte("+" + s + "\r\n") }

// respBulk formats a bulk reply.
func respBulk(s string) []byte {
	return []byte("$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n")
}

// respOK is the +OK reply.
var respOK = []byte("+OK\r\n")

// respNullBulk is the nil bulk reply.
var respNullBulk = []byte("$-1\r\n")

// respArrayHeader formats the header of an array of n elements.
func respArrayHeader(n int) []byte { return []byte("*" + strconv.Itoa(n) + "\r\n") }

// readArrayItems splits an array reply into its elements' raw bytes.
func readArrayItems(raw []byte) ([][]byte, error) {
	br := bufio.NewReader(bytes.NewReader(raw))
	line, err := br.ReadSlice('\n')
	if err != nil || len(line) < 3 || line[0] != '*' {
		return nil, errBadReply
	}
	n, err := strconv.Atoi(string(line[1 : len(line)-2]))
	if err != nil {
		return nil, errBadReply
	}
	items := make([][]byte, 0, max(n, 0))
	for i := 0; i < n; i++ {
		item, err := readRaw(br, nil)
		if err != nil {
			return nil, err
		}
		items = append(items, item)
	}
	return items, nil
}

// respErrorValue is an error element inside a parsed reply.
type respErrorValue string

// parseReply decodes a raw reply into int64, string (status), []byte (bulk),
// respErrorValue, nil, or []any.
func parseReply(raw []byte) (any, error) {
	br := bufio.NewReader(bytes.NewReader(raw))
	return parseValue(br)
}

func parseValue(br *bufio.Reader) (any, error) {
	line, err := br.ReadSlice('\n')
	if err != nil || len(line) < 3 {
		return nil, errBadReply
	}
	body := string(line[1 : len(line)-2])
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return respErrorValue(body), nil
	case ':':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			return nil, errBadReply
		}
		return n, nil
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, errBadReply
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
			return nil, errBadReply
		}
		if n < 0 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = parseValue(br); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, errBadReply
}

// asString renders a parsed status or bulk value as a string.
func asString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case []byte:
		return string(t)
	case respErrorValue:
		return string(t)
	}
	return ""
}
