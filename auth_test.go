package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/internal/child"
	"github.com/redraft/redraft/internal/mux"
	"github.com/redraft/redraft/internal/resp"
)

// newAuthFrontEnd serves a front end without Raft (newTestFrontEnd) whose
// node started with password as --requirepass.
func newAuthFrontEnd(t *testing.T, password string) (*frontEnd, string) {
	t.Helper()
	return newTestFrontEnd(t, func(s *frontEnd) { s.fsm.setStartupConfig(password, 0) })
}

// startRedis runs a real redis-server with args on a free loopback port,
// for comparison.
func startRedis(t *testing.T, args ...string) string {
	t.Helper()
	path, err := child.FindServer("")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(path, append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exchange sends each request on one connection in turn, reads until the
// replies stop (or the connection closes) and returns the transcript.
func exchange(t *testing.T, addr string, requests []string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	var out strings.Builder
	for _, req := range requests {
		c.Write([]byte(req))
		b, err := readAvailable(c, r)
		out.Write(b)
		if err == io.EOF {
			out.WriteString("<closed>")
			break
		}
		out.WriteString("|")
	}
	return out.String()
}

// readAvailable reads what the server sends: it waits up to 500 ms for a
// first byte, then until the server is quiet for 50 ms, or the read fails.
func readAvailable(c net.Conn, r *bufio.Reader) ([]byte, error) {
	var out []byte
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if n > 0 {
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		}
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return out, nil
			}
			return out, err
		}
	}
}

// clientIDs hides HELLO's client ID, which differs between servers.
var clientIDs = regexp.MustCompile(`\$2\r\nid\r\n:\d+\r\n`)

// authScripts are exchanges whose every byte redraft must answer as
// redis-server 7.0 does; each runs on a connection of its own.
var authScripts = [][]string{
	{"PING\r\n", "GET k\r\n", "FLUSHALL\r\n", "MULTI\r\n", "SUBSCRIBE c\r\n", "CONFIG SET requirepass y\r\n"},
	{"foo\r\n", "GET\r\n", "AUTH\r\n"}, // unknown command and arity errors come before NOAUTH
	{"AUTH wrong\r\n", "AUTH x\r\n", "PING\r\n"},
	{"AUTH default x\r\n", "AUTH default wrong\r\n", "PING\r\n"}, // a failed AUTH keeps the connection authenticated
	{"AUTH nobody x\r\n", "AUTH a b c\r\n", "ECHO hi\r\n"},
	{"HELLO\r\n", "HELLO 2\r\n", "HELLO 2 SETNAME n\r\n", "HELLO 2 AUTH x\r\n", "HELLO 2 FOO\r\n", "HELLO two\r\n", "HELLO 4\r\n"},
	{"HELLO 2 AUTH default wrong\r\n", "HELLO 2 AUTH default x SETNAME conn1\r\n", "CLIENT GETNAME\r\n", "HELLO 2 SETNAME bad\\x01name\r\n"},
	{"hello 2 auth default x setname a b\r\n", "PING\r\n"}, // authenticated before the bad option
	{"HELLO 2 FOO AUTH default x\r\n", "PING\r\n", "HELLO 2 AUTH default wrong SETNAME\r\n"},
	{"HELLO 3 SETNAME early\r\n", "AUTH x\r\n", "CLIENT GETNAME\r\n", "HELLO 3 SETNAME a SETNAME b\\x01c\r\n", "CLIENT GETNAME\r\n"}, // named on the spot
	{"HELLO 3\r\n", "HELLO 3 AUTH default wrong\r\n", "HELLO 3 AUTH default x SETNAME r3\r\n", "GET k\r\n", "CLIENT GETNAME\r\n", "HELLO\r\n", "RESET\r\n", "GET k\r\n"},
	{"hello 3 auth default x setname a b\r\n", "GET k\r\n", "HELLO 3 AUTH default x FOO\r\n", "GET k\r\n"},
	{"AUTH x\r\n", "RESET\r\n", "PING\r\n", "RESET x\r\n"}, // RESET deauthenticates
	{"AUTH x\r\n", "CONFIG GET requirepass\r\n", "CONFIG GET REQUIREPASS\r\n", "CONFIG GET require*\r\n"},
	{"QUIT\r\n", "PING\r\n"},
	{"*11\r\n"},
	{"*10\r\n$4\r\nPING\r\n"},
	{"*1\r\n$16385\r\n"},
	{"*1\r\n$16384\r\n"},
	{"PING\r\nPING\r\n*11\r\n"},
	{"AUTH x\r\n*11\r\n$4\r\nECHO\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n$1\r\n6\r\n$1\r\n7\r\n$1\r\n8\r\n$1\r\n9\r\n"},
	{"AUTH x\r\n*2\r\n$4\r\nECHO\r\n$20000\r\n" + strings.Repeat("v", 20000) + "\r\n"},
	{"*2\r\n$4\r\nAUTH\r\n$1\r\nx\r\n*3\r\n$4\r\nECHO\r\n$1\r\na\r\n"},
}

// noPasswordScripts run against servers without a password.
var noPasswordScripts = [][]string{
	{"AUTH x\r\n", "AUTH default anything\r\n", "AUTH nobody x\r\n", "PING\r\n"},
	{"HELLO 2 AUTH default anything\r\n", "HELLO 2 AUTH someone x\r\n"},
	{"*11\r\n$4\r\nECHO\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n$1\r\n6\r\n$1\r\n7\r\n$1\r\n8\r\n$1\r\n9\r\n", "RESET\r\n", "PING\r\n"},
	{"CONFIG GET requirepass\r\n"},
}

// Every authentication path and error reply, byte for byte against a real
// redis-server 7.0 with the same password, including whether and when the
// connection closes.
func TestAuthMatchesRedis(t *testing.T) {
	for _, tc := range []struct {
		password string
		scripts  [][]string
	}{
		{"x", authScripts},
		{"", noPasswordScripts},
	} {
		var args []string
		if tc.password != "" {
			args = []string{"--requirepass", tc.password}
		}
		redis := startRedis(t, args...)
		_, ours := newAuthFrontEnd(t, tc.password)
		for _, script := range tc.scripts {
			want := clientIDs.ReplaceAllString(exchange(t, redis, unescape(script)), "<id>")
			got := clientIDs.ReplaceAllString(exchange(t, ours, unescape(script)), "<id>")
			if got != want {
				t.Errorf("password %q, %q:\n got %q\nwant %q", tc.password, script, got, want)
			}
		}
	}
}

// unescape turns the \x01 written in a script into the byte.
func unescape(script []string) []string {
	out := make([]string, len(script))
	for i, s := range script {
		out[i] = strings.ReplaceAll(s, `\x01`, "\x01")
	}
	return out
}

// The password in force is the replicated one once CONFIG SET requirepass
// has been applied: connections authenticated before stay so, new ones
// need the new password, and a password removed lets everyone in.
func TestAuthFollowsReplicatedPassword(t *testing.T) {
	s, addr := newAuthFrontEnd(t, "old")
	before := exchangeStart(t, addr, "AUTH old\r\n")
	s.fsm.held.set(map[string]string{"requirepass": "new"})
	if got := exchange(t, addr, []string{"AUTH old\r\n", "AUTH new\r\n"}); got != "-WRONGPASS invalid username-password pair or user is disabled.\r\n|+OK\r\n|" {
		t.Errorf("after the change: %q", got)
	}
	if got := before("PING\r\n"); got != "+PONG\r\n" {
		t.Errorf("a connection authenticated before the change: %q", got)
	}
	s.fsm.held.set(map[string]string{"requirepass": ""})
	if got := exchange(t, addr, []string{"PING\r\n"}); got != "+PONG\r\n|" {
		t.Errorf("no password: %q", got)
	}
}

// exchangeStart opens a connection, sends first, and returns a function
// that sends one more request on it and returns the reply.
func exchangeStart(t *testing.T, addr, first string) func(string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := bufio.NewReader(c)
	send := func(req string) string {
		c.Write([]byte(req))
		b, _ := readAvailable(c, r)
		return string(b)
	}
	if got := send(first); got != "+OK\r\n" {
		t.Fatalf("%q: %q", first, got)
	}
	return send
}

// A follower's relay stream (an authenticated peer stream) needs no AUTH.
func TestAuthRelayStreamIsAuthenticated(t *testing.T) {
	s, _ := newAuthFrontEnd(t, "x")
	a, b := net.Pipe()
	defer b.Close()
	s.conns.Add(1)
	go s.serveConn(&mux.PeerConn{Conn: a})
	b.SetDeadline(time.Now().Add(5 * time.Second))
	b.Write([]byte("*1\r\n$4\r\nPING\r\n"))
	got := make([]byte, 7)
	if _, err := io.ReadFull(b, got); err != nil || string(got) != "+PONG\r\n" {
		t.Fatalf("relay stream: %q %v", got, err)
	}
}

// CONFIG SET requirepass goes through the log, never reaches the child,
// takes effect only with the rest of its CONFIG SET, and is carried in
// snapshots; CONFIG GET inside MULTI sees it.
func TestFSMRequirePass(t *testing.T) {
	f, proc := newTestFSM(t)
	f.setStartupConfig("flag", 0)
	r := applyCmds(t, f, testT, entryCmd{Args: argv("CONFIG", "SET", "requirepass", "p1")})
	if string(r[0]) != "+OK\r\n" || f.requirePass() != "p1" {
		t.Fatalf("CONFIG SET requirepass: %q, password %q", r[0], f.requirePass())
	}
	childConn, err := proc.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer childConn.Close()
	if raw, _ := childConn.Do("CONFIG", "GET", "requirepass"); string(raw) != "*2\r\n$11\r\nrequirepass\r\n$0\r\n\r\n" {
		t.Fatalf("the child got a password: %q", raw)
	}
	// All or nothing with the other parameters.
	r = applyCmds(t, f, testT, entryCmd{Args: argv("CONFIG", "SET", "requirepass", "p2", "notify-keyspace-events", "bogus")})
	if !resp.ReplyIsError(r[0]) || f.requirePass() != "p1" {
		t.Fatalf("a failed CONFIG SET changed the password: %q, %q", r[0], f.requirePass())
	}
	r = applyCmds(t, f, testT, entryCmd{Args: argv("CONFIG", "SET", "slowlog-max-len", "200", "requirepass", "p3")})
	if string(r[0]) != "+OK\r\n" || f.requirePass() != "p3" {
		t.Fatalf("CONFIG SET with another parameter: %q, %q", r[0], f.requirePass())
	}
	// Malformed ones are answered as Redis answers them, without effect.
	for args, want := range map[string]string{
		"CONFIG SET requirepass a b":             "-ERR syntax error\r\n",
		"CONFIG SET requirepass a REQUIREPASS b": "-ERR CONFIG SET failed (possibly related to argument 'REQUIREPASS') - duplicate parameter\r\n",
	} {
		r = applyCmds(t, f, testT, entryCmd{Args: argv(strings.Fields(args)...)})
		if string(r[0]) != want || f.requirePass() != "p3" {
			t.Errorf("%s: %q (password %q), want %q", args, r[0], f.requirePass(), want)
		}
	}
	// Inside MULTI, in order.
	r = applyCmds(t, f, testT, tx(argv("CONFIG", "SET", "requirepass", "p4"), argv("CONFIG", "GET", "requirepass")))
	if string(r[0]) != "*2\r\n+OK\r\n*2\r\n$11\r\nrequirepass\r\n$2\r\np4\r\n" {
		t.Fatalf("MULTI CONFIG SET/GET: %q", r[0])
	}
	if raw, _ := childConn.Do("CONFIG", "GET", "requirepass"); !strings.HasSuffix(string(raw), "$0\r\n\r\n") {
		t.Fatalf("the child got a password from a transaction: %q", raw)
	}
	// Carried in a snapshot, and gone after restoring one without it.
	snapshotRoundTrip(t, f)
	if f.requirePass() != "p4" {
		t.Fatalf("after restoring the snapshot: %q", f.requirePass())
	}
	g, _ := newTestFSM(t)
	g.setStartupConfig("flag", 0)
	snap := takeSnapshot(t, g)
	f.held.set(map[string]string{"requirepass": "p5"})
	if err := f.Restore(io.NopCloser(strings.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if f.requirePass() != "flag" {
		t.Fatalf("a snapshot taken before any CONFIG SET requirepass left %q", f.requirePass())
	}
}

// takeSnapshot persists a snapshot of f into a string.
func takeSnapshot(t *testing.T, f *fsm) string {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memorySink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	return sink.String()
}

// snapshotRoundTrip takes a snapshot of f and restores f from it.
func snapshotRoundTrip(t *testing.T, f *fsm) {
	t.Helper()
	s := takeSnapshot(t, f)
	f.held.forget()
	if err := f.Restore(io.NopCloser(strings.NewReader(s))); err != nil {
		t.Fatal(err)
	}
}

// memorySink is a raft.SnapshotSink in memory.
type memorySink struct{ strings.Builder }

func (s *memorySink) ID() string    { return "test" }
func (s *memorySink) Cancel() error { return nil }
func (s *memorySink) Close() error  { return nil }

// configSetMalformed, planConfigSet and withHeld on their own.
func TestConfigHelpers(t *testing.T) {
	for _, tc := range []struct {
		args string
		want string
	}{
		{"CONFIG SET requirepass a", ""},
		{"CONFIG SET requirepass a maxmemory 1", ""},
		{"CONFIG SET requirepass", "-ERR syntax error\r\n"},
		{"CONFIG SET a 1 b 2 A 3", "-ERR CONFIG SET failed (possibly related to argument 'A') - duplicate parameter\r\n"},
	} {
		if got := configSetMalformed(argv(strings.Fields(tc.args)...)); string(got) != tc.want {
			t.Errorf("%s: %q, want %q", tc.args, got, tc.want)
		}
	}
	child, held, bad := planConfigSet(argv("CONFIG", "SET", "RequirePass", "s", "slowlog-max-len", "5", "MAXMEMORY", "2mb"))
	if bad != nil || fmt.Sprint(held) != "map[maxmemory:2097152 requirepass:s]" || fmt.Sprintf("%s", child) != "[CONFIG SET slowlog-max-len 5]" {
		t.Errorf("planConfigSet: %q %v %q", child, held, bad)
	}
	if _, _, bad := planConfigSet(argv("CONFIG", "SET", "maxmemory", "lots")); string(bad) != "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value\r\n" {
		t.Errorf("planConfigSet of a bad memory value: %q", bad)
	}
	h := newHeldConfig()
	h.set(map[string]string{"requirepass": "pw"})
	in := "*4\r\n$11\r\nREQUIREPASS\r\n$0\r\n\r\n$10\r\nmasterauth\r\n$0\r\n\r\n"
	if got := string(withHeld([]byte(in), h)); got != "*4\r\n$11\r\nREQUIREPASS\r\n$2\r\npw\r\n$10\r\nmasterauth\r\n$0\r\n\r\n" {
		t.Errorf("withHeld: %q", got)
	}
	if got := string(withHeld([]byte("-ERR x\r\n"), h)); got != "-ERR x\r\n" {
		t.Errorf("withHeld of an error: %q", got)
	}
}

// TestCanonicalMemoryAsRedis: maxmemory values read as redis-server 7.0
// reads them (CONFIG SET then CONFIG GET on a bare one).
func TestCanonicalMemoryAsRedis(t *testing.T) {
	for in, want := range map[string]string{
		"": "0", "b": "0", "1b": "1", "100mb": "104857600", "1GB": "1073741824", "1k": "1000", "1K": "1000", "1kb": "1024",
		"5": "5", "05": "5", "18446744073709551615": "18446744073709551615", "18446744073709551616": "18446744073709551615",
		"17179869184gb": "0", "9223372036854775808": "9223372036854775808",
	} {
		if got, ok := canonicalMemory(in); !ok || got != want {
			t.Errorf("canonicalMemory(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"-1", "+5", " 5", "abc", "1.5mb", "5 mb", "1tb", "mbb"} {
		if got, ok := canonicalMemory(in); ok {
			t.Errorf("canonicalMemory(%q) = %q; Redis refuses it", in, got)
		}
	}
}
