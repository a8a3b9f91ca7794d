package main

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// newTestFrontEnd serves a front end on a loopback port, in front of a real
// child, without Raft: enough for connection handling, limits and the
// commands redraft answers itself (reads at --consistency low).
func newTestFrontEnd(t *testing.T, setup func(s *frontEnd)) (*frontEnd, string) {
	t.Helper()
	f, proc := newTestFSM(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tbl, err := loadCommandTable(proc)
	if err != nil {
		t.Fatal(err)
	}
	s := &frontEnd{
		fsm: f, cmds: tbl, child: proc, log: log,
		limits: resp.DefaultLimits(), maxClients: 10000, outputLimits: defaultOutputLimits,
		wall: wallClockMS, relay: &leaderRelay{},
	}
	s.proposer = &proposer{fsm: f}
	s.reads = &readPath{level: consistencyLow, fsm: f, proposer: s.proposer, tbl: tbl, wall: wallClockMS,
		pool: redisconn.NewPool("unix", proc.Sock(), 8)}
	if setup != nil {
		setup(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go s.clientsCron(stop)
	go s.serve(ln)
	t.Cleanup(func() {
		close(stop)
		ln.Close()
		s.closeClients(time.Second)
	})
	return s, ln.Addr().String()
}

// testConn is a raw client connection.
type testConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialTest(t *testing.T, addr string) *testConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &testConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// do sends raw bytes and reads one reply.
func (c *testConn) do(raw string) string {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(raw)); err != nil {
		c.t.Fatal(err)
	}
	return c.reply()
}

// reply reads one raw reply (within 10 s).
func (c *testConn) reply() string {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	raw, err := resp.ReadReply(c.br, nil)
	if err != nil {
		c.t.Fatalf("read reply: %v", err)
	}
	return string(raw)
}

// closedWithin reports whether the server closes the connection within d.
func (c *testConn) closedWithin(d time.Duration) bool {
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	for {
		_, err := c.br.ReadByte()
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

func TestMaxClientsRefusesWithRedisError(t *testing.T) {
	_, addr := newTestFrontEnd(t, func(s *frontEnd) { s.maxClients = 2 })
	a, b := dialTest(t, addr), dialTest(t, addr)
	if got := a.do("PING\r\n"); got != "+PONG\r\n" {
		t.Fatalf("first client: %q", got)
	}
	if got := b.do("PING\r\n"); got != "+PONG\r\n" {
		t.Fatalf("second client: %q", got)
	}
	c := dialTest(t, addr)
	if got := c.reply(); got != "-ERR max number of clients reached\r\n" {
		t.Errorf("third client got %q", got)
	}
	if !c.closedWithin(5 * time.Second) {
		t.Error("the refused client stays connected")
	}
	a.nc.Close()
	eventuallyT(t, func() bool {
		d := dialTest(t, addr)
		return d.do("PING\r\n") == "+PONG\r\n"
	})
}

func TestIdleTimeoutClosesIdleButNotSubscribedClients(t *testing.T) {
	_, addr := newTestFrontEnd(t, func(s *frontEnd) { s.idleTimeout = time.Second })
	idle, sub, busy := dialTest(t, addr), dialTest(t, addr), dialTest(t, addr)
	idle.do("PING\r\n")
	if got := sub.do("SUBSCRIBE ch\r\n"); !strings.Contains(got, "subscribe") {
		t.Fatalf("SUBSCRIBE: %q", got)
	}
	start := time.Now()
	// A client that keeps talking is never idle.
	for time.Since(start) < 2500*time.Millisecond {
		if got := busy.do("PING\r\n"); got != "+PONG\r\n" {
			t.Fatalf("an active client was closed: %q", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !idle.closedWithin(time.Second) {
		t.Error("an idle client is not closed after --timeout")
	}
	// A subscriber is exempt, as in Redis.
	if got := sub.do("PING\r\n"); !strings.Contains(got, "pong") {
		t.Errorf("the subscriber was closed as idle: %q", got)
	}
}

func TestOutputBufferLimitClosesSlowReader(t *testing.T) {
	s, addr := newTestFrontEnd(t, func(s *frontEnd) { s.outputLimits.normal = outputLimit{hard: 20 << 10} })
	c := dialTest(t, addr)
	c.do("PING\r\n") // registered
	big := strings.Repeat("x", 100<<10)
	cmd := "*2\r\n$4\r\nECHO\r\n$" + strconv.Itoa(len(big)) + "\r\n" + big + "\r\n"
	// The client sends 200 echoes of 100 KB and reads nothing. redraft
	// stops reading its requests while it does not take its replies (so
	// memory never grows with them); the reply it does not take passes the
	// 20 KB hard limit.
	go func() {
		for i := 0; i < 200; i++ {
			if _, err := c.nc.Write([]byte(cmd)); err != nil {
				return
			}
		}
	}()
	eventuallyT(t, func() bool { return s.clients.count() == 0 })
	// A client that takes its replies is not affected.
	d := dialTest(t, addr)
	small := strings.Repeat("y", 10<<10)
	for i := 0; i < 50; i++ {
		if got := d.do("ECHO " + small + "\r\n"); got != "$10240\r\n"+small+"\r\n" {
			t.Fatalf("echo %d: %d bytes", i, len(got))
		}
	}
}

func TestOutputBufferSoftLimit(t *testing.T) {
	s, addr := newTestFrontEnd(t, func(s *frontEnd) {
		s.outputLimits.normal = outputLimit{soft: 20 << 10, softFor: time.Second}
	})
	c := dialTest(t, addr)
	c.do("PING\r\n") // registered
	big := strings.Repeat("x", 100<<10)
	cmd := "*2\r\n$4\r\nECHO\r\n$" + strconv.Itoa(len(big)) + "\r\n" + big + "\r\n"
	go func() {
		for i := 0; i < 200; i++ {
			if _, err := c.nc.Write([]byte(cmd)); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	eventuallyT(t, func() bool { return s.clients.count() == 0 })
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("closed after %v, before the soft limit's second", d)
	}
}

// A subscriber that does not read is disconnected once the messages it
// does not take pass the pub/sub limit (Redis's 32 MB hard limit, enforced
// on its connection to the child), instead of growing memory.
func TestSlowSubscriberIsDisconnected(t *testing.T) {
	s, addr := newTestFrontEnd(t, nil)
	sub := dialTest(t, addr)
	if got := sub.do("SUBSCRIBE ch\r\n"); !strings.Contains(got, "subscribe") {
		t.Fatalf("SUBSCRIBE: %q", got)
	}
	pub, err := s.child.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	msg := strings.Repeat("m", 1<<20)
	eventuallyT(t, func() bool {
		if _, err := pub.Do("PUBLISH", "ch", msg); err != nil {
			t.Fatal(err)
		}
		return s.clients.count() == 0
	})
}

func TestProtocolErrorsCloseOnlyThatClient(t *testing.T) {
	_, addr := newTestFrontEnd(t, nil)
	for _, tc := range []struct{ in, want string }{
		{"*1\r\n$9223372036854775807\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"*3000000000\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"*1\r\nx\r\n", "-ERR Protocol error: expected '$', got 'x'\r\n"},
		{"SET \"k v\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
	} {
		c := dialTest(t, addr)
		if got := c.do(tc.in); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
		if !c.closedWithin(5 * time.Second) {
			t.Errorf("%q: the connection stays open", tc.in)
		}
	}
	// A negative count is ignored, as Redis does.
	c := dialTest(t, addr)
	if got := c.do("*-10\r\nPING\r\n"); got != "+PONG\r\n" {
		t.Errorf("*-10 then PING: %q", got)
	}
}

// eventuallyT polls ok every 20 ms for up to 10 s.
func eventuallyT(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
