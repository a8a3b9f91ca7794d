package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redraft/redraft/internal/metrics"
	"github.com/redraft/redraft/internal/mux"
	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// newTestFrontEnd serves a front end on a loopback port, in front of a real
// child, without Raft: enough for connection handling, limits and the
// commands redraft answers itself (reads at --consistency low).
func newTestFrontEnd(t testing.TB, setup func(s *frontEnd)) (*frontEnd, string) {
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
		wall: wallClockMS, relay: &leaderRelay{}, metrics: metrics.New(),
	}
	s.proposer = &proposer{fsm: f}
	s.reads = &readPath{level: consistencyLow, fsm: f, proposer: s.proposer, wall: wallClockMS,
		pool: redisconn.NewPool("unix", proc.Sock(), 8), lanes: redisconn.NewShared("unix", proc.Sock(), readLanes),
		pool3: redisconn.NewPoolWith("unix", proc.Sock(), 8, "HELLO", "3"), lanes3: redisconn.NewSharedWith("unix", proc.Sock(), readLanes, "HELLO", "3")}
	t.Cleanup(s.reads.lanes.Close)
	t.Cleanup(s.reads.lanes3.Close)
	s.tracker = newTracker(&s.clients, proc.Dial, log)
	if setup != nil {
		setup(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	s.tracker.stopWith(stop)
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

// newTestNode runs a whole one-node redraft in the test process: a real
// child, Raft with an in-memory log on a loopback port, and the front end
// served on that port, as runNode wires them. It returns the front end and
// the address, and records panics recovered while serving clients.
func newTestNode(t testing.TB, opts *options) (*frontEnd, string, *panicLog) {
	t.Helper()
	f, proc := newTestFSM(t)
	panics := &panicLog{}
	log := slog.New(panics.handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts == nil {
		opts = &options{consistency: consistencyMedium, maxClients: 10000, outputLimits: defaultOutputLimits,
			queryBufferLimit: 1 << 30, protoMaxBulkLen: 512 << 20}
	}
	opts.advertise, opts.backend, opts.durability = ln.Addr().String(), "inmem", "high"
	opts.snapshotThreshold, opts.trailingLogs, opts.snapshotInterval = 1<<20, 1<<20, time.Hour
	dir := t.TempDir()
	sec, err := newSecurity(opts, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	m := mux.New(ln, log, sec.muxOptions())
	go m.Serve()
	obs := metrics.New()
	n, _, err := startNode(opts, dir, f, mux.NewStreamLayer(m, ln.Addr(), sec.dialer()), sec.identity, obs, log)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := loadCommandTable(proc)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(opts, n, f, proc, tbl, sec.dialer(), obs, log)
	stop := make(chan struct{})
	go s.proposer.run(stop)
	go s.proposer.sweepLoop(stop)
	go s.clientsCron(stop)
	go s.scripts.run(stop)
	s.tracker.stopWith(stop)
	go s.serve(m.Clients())
	t.Cleanup(func() { stopNode(s, n, m, stop, log); ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.waitReady(ctx); err != nil {
		t.Fatalf("no leader: %v", err)
	}
	return s, ln.Addr().String(), panics
}

// panicLog is a log handler that keeps the panics the front end recovers.
type panicLog struct {
	mu     sync.Mutex
	panics []string
}

func (p *panicLog) handler() slog.Handler { return &panicHandler{p} }

// list returns the panics seen so far.
func (p *panicLog) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.panics...)
}

type panicHandler struct{ p *panicLog }

func (h *panicHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *panicHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		var b strings.Builder
		b.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool {
			b.WriteString(" " + a.Key + "=" + a.Value.String())
			return true
		})
		h.p.mu.Lock()
		h.p.panics = append(h.p.panics, b.String())
		h.p.mu.Unlock()
	}
	return nil
}
func (h *panicHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *panicHandler) WithGroup(string) slog.Handler      { return h }

func TestTestNodeServesWrites(t *testing.T) {
	_, addr, _ := newTestNode(t, nil)
	c := dialTest(t, addr)
	if got := c.do("SET k v\r\n"); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	if got := c.do("GET k\r\n"); got != "$1\r\nv\r\n" {
		t.Fatalf("GET: %q", got)
	}
}

// FuzzFrontEnd sends any bytes to a node's client port: the node never
// panics and still answers PING on a new connection.
func FuzzFrontEnd(f *testing.F) {
	for _, seed := range []string{
		"PING\r\n", "*1\r\n$4\r\nPING\r\n", "*1\r\n$9223372036854775807\r\n", "*-10\r\n", "*3000000000\r\n",
		"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "SET k v\r\nGET k\r\nDEL k\r\n", "MULTI\r\nSET a 1\r\nEXEC\r\n",
		"SUBSCRIBE c\r\nPING\r\nGET x\r\nQUIT\r\n", "\"unbalanced\r\n", "*1\r\n$2\r\nab\r\n\x00\x01\x02",
		"BLPOP l 0.01\r\n", "CLIENT SETNAME x\r\nCLIENT LIST\r\nINFO\r\n", "EVAL \"return redis.call('set','k','v')\" 0\r\n",
		"WATCH k\r\nMULTI\r\nINCR k\r\nEXEC\r\n", "HELLO 3\r\nAUTH x\r\nRESET\r\n", "RAFTSTATS\r\nRAFTDIGEST\r\n",
	} {
		f.Add([]byte(seed))
	}
	_, addr, panics := newTestNode(f, nil)
	f.Fuzz(func(t *testing.T, in []byte) {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = nc.Write(in)
		_ = nc.(*net.TCPConn).CloseWrite() // the server sees the end of the requests
		_, _ = io.Copy(io.Discard, nc)     // until it closes
		nc.Close()
		if p := panics.list(); len(p) > 0 {
			t.Fatalf("the front end panicked on %q: %s", in, p[0])
		}
		c := dialTest(t, addr)
		if got := c.do("PING\r\n"); got != "+PONG\r\n" {
			t.Fatalf("after %q, PING answers %q", in, got)
		}
	})
}
