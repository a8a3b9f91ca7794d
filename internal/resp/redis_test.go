package resp

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// redisServer is a redis-server this test started on a loopback port.
type redisServer struct {
	addr string
}

// startRedis starts a redis-server on a free loopback port with its files in
// a TempDir, waits until it answers, and stops it when the test ends. It
// skips the test when redis-server is not installed.
func startRedis(t testing.TB, args ...string) *redisServer {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	dir := t.TempDir()
	for attempt := 0; attempt < 5; attempt++ {
		port := freePort(t)
		all := append([]string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir,
			"--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log"),
		}, args...)
		cmd := exec.Command(path, all...)
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if waitReady(addr, exited) {
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			return &redisServer{addr: addr}
		}
		cmd.Process.Kill() // ours; gone already if the port was taken
		<-exited
	}
	t.Fatal("redis-server did not start")
	return nil
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitReady polls addr until it answers PING, the process exits or a
// deadline passes.
func waitReady(addr string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			select {
			case <-exited:
				return false
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write([]byte("PING\r\n"))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err == nil && (line == "+PONG\r\n" || line[0] == '-') {
			return true
		}
	}
	return false
}

// exchange sends input on a new connection, half-closes it, and returns
// every byte the server sent until it closed the connection. The half-close
// makes the outcome deterministic: the server processes all the input it
// accepts, replies, and then sees the end of input and closes. A server that
// closes first (protocol error, limit) does so on its own.
func (s *redisServer) exchange(t testing.TB, input []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		c.Write(input) // fails when the server closed early: that is an outcome
		c.(*net.TCPConn).CloseWrite()
	}()
	out, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("reading from redis-server: %v", err)
	}
	return out
}

// isReset reports a connection reset: a server that closes with input
// unread resets the connection, after the bytes it sent.
func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// do sends one command on a new connection and returns the raw reply.
func (s *redisServer) do(t testing.TB, args ...string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var req []byte
	bargs := make([][]byte, len(args))
	for i, a := range args {
		bargs[i] = []byte(a)
	}
	req = AppendCommand(req, bargs)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	raw, err := ReadReply(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// session is one connection to redis-server that sends requests and reads
// their replies one by one.
type session struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

// dial opens a session.
func (s *redisServer) dial(t testing.TB) *session {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &session{t: t, c: c, br: bufio.NewReader(c)}
}

// do sends one command and returns its raw reply.
func (s *session) do(args ...string) []byte {
	s.t.Helper()
	bargs := make([][]byte, len(args))
	for i, a := range args {
		bargs[i] = []byte(a)
	}
	if _, err := s.c.Write(AppendCommand(nil, bargs)); err != nil {
		s.t.Fatal(err)
	}
	return s.read()
}

// read reads one raw reply.
func (s *session) read() []byte {
	s.t.Helper()
	raw, err := ReadReply(s.br, nil)
	if err != nil {
		s.t.Fatalf("read reply: %v", err)
	}
	return raw
}
