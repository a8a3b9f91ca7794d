package tests

// A byte-exact RESP connection for the RESP3 and tracking tests: it keeps
// every reply as the bytes the server sent, tells push messages from
// replies, and brackets each step with a PING whose echo marks the end of
// the step's output (the server answers in order, so what comes before the
// echo is the step's output).

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/internal/resp"
)

// rconn is one raw connection whose replies are kept as bytes.
type rconn struct {
	t      testing.TB
	addr   string
	c      net.Conn
	r      *bufio.Reader
	serial int
	// inMulti is set between a MULTI the server accepted and EXEC,
	// DISCARD or RESET: a PING would be queued, so steps read one reply.
	inMulti bool
	// closed is set once QUIT was sent.
	closed bool
	// pushes are push messages read while waiting for something else, in
	// arrival order, not yet taken.
	pushes [][]byte
}

// dialR opens an rconn to addr, closed at the end of t.
func dialR(t testing.TB, addr string) *rconn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rconn{t: t, addr: addr, c: c, r: bufio.NewReader(c)}
}

// write sends commands without reading anything.
func (rc *rconn) write(cmds ...[]string) {
	rc.t.Helper()
	var b []byte
	for _, args := range cmds {
		bs := make([][]byte, len(args))
		for i, a := range args {
			bs[i] = []byte(a)
		}
		b = resp.AppendCommand(b, bs)
	}
	rc.writeRaw(b)
}

// writeRaw sends bytes as they are.
func (rc *rconn) writeRaw(b []byte) {
	rc.t.Helper()
	_ = rc.c.SetWriteDeadline(time.Now().Add(cmdTimeout))
	if _, err := rc.c.Write(b); err != nil {
		rc.t.Fatalf("%s: write: %v", rc.addr, err)
	}
}

// next reads one reply or push, as bytes, within timeout.
func (rc *rconn) next(timeout time.Duration) ([]byte, error) {
	_ = rc.c.SetReadDeadline(time.Now().Add(timeout))
	return resp.ReadReply(rc.r, nil)
}

// isPush reports whether raw is a RESP3 push message, or a message a RESP2
// subscriber receives.
func isPush(raw []byte) bool {
	return len(raw) > 0 && raw[0] == '>' ||
		bytes.HasPrefix(raw, []byte("*3\r\n$7\r\nmessage\r\n")) || bytes.HasPrefix(raw, []byte("*4\r\n$8\r\npmessage\r\n"))
}

// do sends one command and returns its reply; pushes that arrive first are
// kept in rc.pushes.
func (rc *rconn) do(args ...string) []byte {
	rc.t.Helper()
	rc.write(args)
	return rc.reply()
}

// reply reads the next reply that is not a push.
func (rc *rconn) reply() []byte {
	rc.t.Helper()
	for {
		raw, err := rc.next(15 * time.Second)
		if err != nil {
			rc.t.Fatalf("%s: reading a reply: %v", rc.addr, err)
		}
		if !isPush(raw) {
			return raw
		}
		rc.pushes = append(rc.pushes, raw)
	}
}

// output is what a connection received during one step: replies and pushes
// in arrival order (all), and the pushes alone.
type output struct {
	all    [][]byte
	pushes [][]byte
}

// String shows the output for failure messages.
func (o output) String() string {
	var b bytes.Buffer
	for _, raw := range o.all {
		fmt.Fprintf(&b, "\n      %q", raw)
	}
	return b.String()
}

// step sends args followed by a marked PING and returns everything that
// came before the PING's echo (pushes held earlier included).
//
// Inside MULTI (and for MULTI itself) the PING would be queued, so the
// step is the one reply (and the pushes before it); EXEC, DISCARD and
// RESET end that and sync again.
func (rc *rconn) step(args ...string) output {
	rc.t.Helper()
	if len(args) == 0 {
		return rc.sync()
	}
	rc.write(args)
	name := strings.ToLower(args[0])
	if name == "quit" {
		rc.closed = true
		return output{all: [][]byte{rc.reply()}}
	}
	if !rc.inMulti && name != "multi" {
		return rc.afterReplies(name, 1)
	}
	raw := rc.reply()
	var o output
	for _, p := range rc.pushes {
		o.all = append(o.all, p)
		o.pushes = append(o.pushes, p)
	}
	rc.pushes = nil
	o.all = append(o.all, raw)
	switch {
	case name == "multi" && string(raw) == "+OK\r\n":
		rc.inMulti = true
	case rc.inMulti && (name == "exec" || name == "discard" || name == "reset"):
		rc.inMulti = false
		after := rc.sync()
		o.all = append(o.all, after.all...)
		o.pushes = append(o.pushes, after.pushes...)
	}
	return o
}

// pipeline sends several commands at once (CLIENT CACHING and the command
// it is for) and returns everything before the echo of a PING sent after
// them.
func (rc *rconn) pipeline(cmds ...[]string) output {
	rc.t.Helper()
	rc.write(cmds...)
	return rc.afterReplies("", len(cmds))
}

// afterReplies reads n replies (and the pushes before them), then syncs:
// the PING is sent only once the replies are in, because Redis sends some
// pushes (BCAST invalidations) when it is done with everything it has
// read, which a PING sent at once would be part of. The subscribe family
// has no reply in RESP3 (only pushes), so it only syncs.
func (rc *rconn) afterReplies(name string, n int) output {
	rc.t.Helper()
	if strings.HasSuffix(name, "subscribe") {
		return rc.sync()
	}
	var o output
	for i := 0; i < n; i++ {
		raw := rc.reply()
		for _, p := range rc.pushes {
			o.all = append(o.all, p)
			o.pushes = append(o.pushes, p)
		}
		rc.pushes = nil
		o.all = append(o.all, raw)
	}
	rest := rc.sync()
	o.all = append(o.all, rest.all...)
	o.pushes = append(o.pushes, rest.pushes...)
	return o
}

// sync sends a marked PING and returns everything before its echo.
func (rc *rconn) sync() output {
	rc.t.Helper()
	rc.serial++
	mark := fmt.Sprintf("sync-%d-%d", rc.serial, time.Now().UnixNano())
	rc.write([]string{"PING", mark})
	var o output
	for _, p := range rc.pushes {
		o.all = append(o.all, p)
		o.pushes = append(o.pushes, p)
	}
	rc.pushes = nil
	for {
		raw, err := rc.next(15 * time.Second)
		if err != nil {
			rc.t.Fatalf("%s: reading until %s: %v (so far:%s)", rc.addr, mark, err, o)
		}
		if !isPush(raw) && bytes.Contains(raw, []byte(mark)) {
			return o
		}
		o.all = append(o.all, raw)
		if isPush(raw) {
			o.pushes = append(o.pushes, raw)
		}
	}
}

// waitPushes reads until n pushes have arrived (counting those kept), or
// timeout; it returns them and whatever else came meanwhile.
func (rc *rconn) waitPushes(n int, timeout time.Duration) (pushes, others [][]byte, err error) {
	pushes = rc.pushes
	rc.pushes = nil
	deadline := time.Now().Add(timeout)
	for len(pushes) < n {
		left := time.Until(deadline)
		if left <= 0 {
			return pushes, others, fmt.Errorf("%s: %d of %d pushes within %v: %q", rc.addr, len(pushes), n, timeout, pushes)
		}
		raw, err := rc.next(left)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			continue
		}
		if err != nil {
			return pushes, others, fmt.Errorf("%s: %w", rc.addr, err)
		}
		if isPush(raw) {
			pushes = append(pushes, raw)
		} else {
			others = append(others, raw)
		}
	}
	return pushes, others, nil
}

// clientID is the connection's CLIENT ID.
func (rc *rconn) clientID() string {
	rc.t.Helper()
	raw := rc.do("CLIENT", "ID")
	n, ok := resp.ReplyInt(raw)
	if !ok {
		rc.t.Fatalf("%s: CLIENT ID: %q", rc.addr, raw)
	}
	return strconv.FormatInt(n, 10)
}

// idField matches a client ID inside HELLO's map (RESP2 or RESP3).
var idField = regexp.MustCompile(`\$2\r\nid\r\n:\d+\r\n`)

// normalize makes a reply comparable across servers: client IDs in
// HELLO's reply are blanked, and the elements of every set (whose order
// depends on the server's hash seed) are sorted.
func normalize(raw []byte) []byte {
	raw = normalizeIDs(raw)
	return sortSets(raw)
}

// sortSets sorts the elements of every RESP3 set inside raw.
func sortSets(raw []byte) []byte {
	if len(raw) == 0 || !bytes.ContainsAny(raw[:1], "*~%>") {
		return raw
	}
	items, err := resp.ArrayItems(raw)
	if err != nil || len(items) == 0 {
		return raw
	}
	out := make([][]byte, len(items))
	for i, it := range items {
		out[i] = sortSets(it)
	}
	if raw[0] == '~' {
		slices.SortFunc(out, bytes.Compare)
	}
	return resp.Rebuild(raw, out)
}

// sortItems sorts the elements of an aggregate reply: a map's pairs by key,
// an array's or set's elements (for replies whose order comes from a hash
// table, such as CONFIG GET with a pattern, or SMEMBERS in RESP2).
func sortItems(raw []byte) []byte {
	items, err := resp.ArrayItems(raw)
	if err != nil || len(raw) == 0 {
		return raw
	}
	if raw[0] != '%' {
		slices.SortFunc(items, bytes.Compare)
		return resp.Rebuild(raw, items)
	}
	pairs := make([][2][]byte, 0, len(items)/2)
	for i := 0; i+1 < len(items); i += 2 {
		pairs = append(pairs, [2][]byte{items[i], items[i+1]})
	}
	slices.SortFunc(pairs, func(a, b [2][]byte) int { return bytes.Compare(a[0], b[0]) })
	out := make([][]byte, 0, len(items))
	for _, p := range pairs {
		out = append(out, p[0], p[1])
	}
	return resp.Rebuild(raw, out)
}

// normalizeAll normalizes each of raws.
func normalizeAll(raws [][]byte) [][]byte {
	out := make([][]byte, len(raws))
	for i, r := range raws {
		out[i] = normalize(r)
	}
	return out
}

// sameBytes reports whether two lists of replies are equal.
func sameBytes(a, b [][]byte) bool {
	return slices.EqualFunc(a, b, bytes.Equal)
}

// normalizeIDs blanks client IDs in HELLO's replies within raw.
func normalizeIDs(raw []byte) []byte {
	return idField.ReplaceAllLiteral(raw, []byte("$2\r\nid\r\n:ID\r\n"))
}
