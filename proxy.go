package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redraft/redraft/internal/child"
	"github.com/redraft/redraft/internal/logging"
	"github.com/redraft/redraft/internal/metrics"
	"github.com/redraft/redraft/internal/resp"
)

// frontEnd is the client front end: it reads each connection's commands,
// checks and routes them (commands.go) to the log (the proposer), to a
// child connection (reads.go), or to a handler of its own (builtins.go),
// and writes the replies. It turns the Raft layer's errors into replies.
type frontEnd struct {
	node      *raftNode
	fsm       *fsm
	proposer  *proposer
	reads     *readPath
	cmds      *commandTable
	cluster   *clusterMode // --cluster-mode (cluster.go); nil when off
	child     *child.Supervisor
	block     *blocker
	relay     *leaderRelay
	scripts   *scriptWatch
	tracker   *tracker // CLIENT TRACKING (tracking.go)
	log       *slog.Logger
	dataDir   string // absolute -dir
	backupDir string // absolute --backup-dir ("": RAFTBACKUP is refused)
	port      int    // the client port (INFO)
	metrics   commandMetrics
	monitors  monitorHub // clients in MONITOR mode (monitor.go)

	usedBytes    atomic.Int64 // child's used_memory, refreshed every 100ms
	limits       resp.Limits
	maxClients   int
	idleTimeout  time.Duration // 0: never
	outputLimits outputLimits
	now          atomic.Int64 // ms, refreshed by clientsCron: when a client was last active
	saving       atomic.Bool  // a BGSAVE runs
	lastSaveAt   atomic.Int64 // Unix seconds of the last snapshot, for LASTSAVE
	lastSnapshot uint64       // the snapshot index clientsCron saw last
	wall         func() int64 // the local clock in ms

	clients  clientRegistry
	epoch    int64 // start time in ns: makes watch IDs unique across restarts
	nextID   atomic.Int64
	conns    sync.WaitGroup // one per connection goroutine
	stopping atomic.Bool    // shutting down: connections end after their batch
}

// commandMetrics counts the commands the front end handles, by kind
// (internal/metrics; atomic counters, no lock).
type commandMetrics interface {
	Commands(k metrics.Kind, n int)
}

// maxBatch bounds how many pipelined commands are executed before their
// replies are written.
const maxBatch = 1024

// serve accepts clients from ln until it closes.
func (s *frontEnd) serve(ln net.Listener) error {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if s.clients.count() >= s.maxClients {
			go refuse(nc, "ERR max number of clients reached")
			continue
		}
		s.conns.Add(1)
		go s.serveConn(nc)
	}
}

// socketFD is the file descriptor of a TCP connection (for CLIENT LIST).
func socketFD(nc net.Conn) int {
	fd := -1
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			_ = rc.Control(func(f uintptr) { fd = int(f) })
		}
	}
	return fd
}

// refuse answers a connection with an error and closes it.
func refuse(nc net.Conn, msg string) {
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = nc.Write(resp.Error(msg))
	nc.Close()
}

// clientsCron closes, every 100 ms, clients idle longer than --timeout
// (not those blocked or subscribed, as in Redis) and clients whose unsent
// replies pass --client-output-buffer-limit.
func (s *frontEnd) clientsCron(stop <-chan struct{}) {
	s.now.Store(s.wall())
	s.lastSaveAt.Store(s.wall() / 1000)
	every(stop, 100*time.Millisecond, func() {
		now := s.wall()
		s.now.Store(now)
		s.noteSnapshots(now)
		s.clients.forEach(func(cl *clientConn) {
			if why := s.overLimit(cl, now); why != "" {
				s.log.Log(context.Background(), logging.LevelVerbose, why, "client", cl.addr, "id", cl.id)
				cl.kill()
			}
		})
	})
}

// noteSnapshots records when a snapshot (automatic or asked for) finished,
// for LASTSAVE.
func (s *frontEnd) noteSnapshots(now int64) {
	if s.node == nil {
		return
	}
	idx, _ := strconv.ParseUint(s.node.stats()["last_snapshot_index"], 10, 64)
	if idx != s.lastSnapshot {
		s.lastSnapshot = idx
		s.lastSaveAt.Store(now / 1000)
	}
}

// overLimit says why cl must be closed now, "" if it may stay.
func (s *frontEnd) overLimit(cl *clientConn, now int64) string {
	subscribed := cl.subscribed.Load()
	if s.idleTimeout > 0 && !subscribed && !cl.blocked.Load() && now-cl.lastActive.Load() > s.idleTimeout.Milliseconds() {
		return "closing idle client"
	}
	lim := s.outputLimits.normal
	if subscribed {
		lim = s.outputLimits.pubsub
	}
	unsent := cl.unsent.Load() + cl.queued.Load()
	switch {
	case lim.hard > 0 && unsent > lim.hard:
		return "client output buffer hard limit reached; closing the client"
	case lim.soft > 0 && unsent > lim.soft:
		since := cl.softSince.Load()
		if since == 0 {
			cl.softSince.Store(now)
			since = now
		}
		if now-since >= lim.softFor.Milliseconds() {
			return "client output buffer soft limit reached; closing the client"
		}
	default:
		cl.softSince.Store(0)
	}
	return ""
}

// closeClients lets every connection finish the batch it is executing,
// waiting up to grace, then closes them all and waits for their goroutines
// (shutdown).
func (s *frontEnd) closeClients(grace time.Duration) {
	s.stopping.Store(true)
	s.clients.each(func(cl *clientConn) { _ = cl.nc.SetReadDeadline(aLongTimeAgo) })
	idle := make(chan struct{})
	go func() { s.conns.Wait(); close(idle) }()
	select {
	case <-idle:
		return
	case <-time.After(grace):
	}
	s.clients.each(func(cl *clientConn) { cl.kill() })
	<-idle
}

// serveConn runs one connection: read a batch of pipelined commands,
// execute it, write the replies. A panic in one connection is logged with
// the client's address and closes only that connection.
func (s *frontEnd) serveConn(nc net.Conn) {
	defer s.conns.Done()
	cl := &clientConn{
		id: s.nextID.Add(1), nc: nc, addr: nc.RemoteAddr().String(), laddr: nc.LocalAddr().String(),
		rd: resp.NewRequestReader(nc, s.limits), created: s.wall(), fd: socketFD(nc),
		authed: s.connectedAuthenticated(nc),
	}
	cl.inMulti.Store(-1)
	s.clients.add(cl)
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("panic while serving a client; closing its connection", "client", cl.addr, "panic", v, "stack", string(debug.Stack()))
		}
		cl.closeOutput()
		nc.Close()
		s.release(cl)
	}()
	batch := make([]resp.Command, 0, 16)
	cl.lastActive.Store(s.now.Load())
	for !s.stopping.Load() {
		var err error
		batch, err = cl.rd.ReadBatch(batch[:0], s.prepareRead(cl))
		cl.lastActive.Store(s.now.Load())
		cl.holdIfResp3()
		if len(batch) > 0 && s.execute(cl, batch) {
			cl.flush()
			return
		}
		if err != nil {
			s.readFailed(cl, err)
			return
		}
		if cl.flush() != nil {
			return
		}
		cl.releaseHeld()
	}
}

// readFailed answers a protocol error as Redis does (an error reply, then
// the connection closes); other read errors just end the connection.
func (s *frontEnd) readFailed(cl *clientConn, err error) {
	var pe *resp.ProtocolError
	if errors.As(err, &pe) {
		cl.reply(resp.Error("ERR " + pe.Error()))
		cl.flush()
		return
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !cl.closing.Load() {
		s.log.Debug("client read", "client", cl.addr, "err", err)
	}
}

// release drops what a departing client held.
func (s *frontEnd) release(cl *clientConn) {
	s.clients.remove(cl)
	if cl.track.active.Load() {
		s.tracker.disable(cl)
	}
	s.monitors.remove(cl)
	if cl.sub != nil {
		cl.sub.close()
	}
	if cl.relay != nil {
		cl.relay.Close()
		cl.relay = nil
	}
	if cl.watching {
		go s.unwatch(context.Background(), cl)
	}
}

// execute runs cmds in order: runs of writes become one proposal, runs of
// reads one child round trip. It returns true when the connection must be
// closed (QUIT, or a subscriber relay that ended).
func (s *frontEnd) execute(cl *clientConn, cmds []resp.Command) bool {
	// Waits are bounded where they happen (requestTimeout), so no timer is
	// created for requests that never wait.
	ctx := context.Background()
	for i := 0; i < len(cmds); {
		args := cmds[i].Args
		if cl.sub != nil && !cl.sub.resp3.Load() {
			s.monitors.feed(cl, cl.db, s.cmds.lookup(args), args)
			if !s.subscribedCommand(cl, args) {
				return true
			}
			i++
			continue
		}
		ci := s.cmds.lookup(args)
		if s.mustAuth(cl) {
			if reply := s.authGate(ci, args); reply != nil {
				cl.answer(reply)
				i++
				continue
			}
		}
		if ci != nil {
			cl.lastCmd.Store(&ci.Name)
		}
		if cl.track.active.Load() {
			s.noteCommand(cl, ci, args)
		}
		if cl.tx != nil && (ci == nil || ci.multi != multiNow) {
			reply := s.queue(cl, ci, args)
			s.count(ci, reply[0] == '-')
			cl.answer(reply)
			i++
			continue
		}
		r := s.route(cl, ci, args)
		if r == routeRelay && cl.tx != nil {
			r = routeSelf // WATCH inside MULTI: refused here, as Redis does
		}
		if r == routeWrite || r == routeRead || r == routeRelay {
			// The run: this command and the ones after it with the same
			// route, each looked up once.
			infos := append(cl.runInfos[:0], ci)
			j := i + 1
			for ; j < len(cmds); j++ {
				cj := s.cmds.lookup(cmds[j].Args)
				if s.route(cl, cj, cmds[j].Args) != r {
					break
				}
				if cl.track.active.Load() {
					s.noteCommand(cl, cj, cmds[j].Args)
				}
				infos = append(infos, cj)
			}
			cl.runInfos = infos
			s.countRun(r, infos)
			cl.answer(s.run(ctx, cl, r, cmds[i:j], infos)...)
			s.monitors.feedRun(cl, cl.db, s.cmds, cmds[i:j])
			i = j
			continue
		}
		if r != routeError {
			s.count(ci, false)
		}
		tx := cl.tx
		switch r {
		case routeError:
			reply := s.check(cl, ci, args)
			if reply == nil {
				continue // it passes now (this node's role changed): route it again
			}
			s.count(ci, true)
			cl.answer(reply)
		case routeLocal:
			cl.answer(s.localFor(ctx, cl, args))
			s.monitors.feed(cl, cl.db, ci, args)
		case routeBlock:
			s.monitors.feed(cl, cl.db, ci, args) // as it arrives, as Redis shows a blocking call
			cl.flush()                           // what came before is not held back by the wait
			cl.answer(s.block.serve(cl, ci, args))
		case routeRelayBlock:
			s.monitors.feed(cl, cl.db, ci, args)
			cl.flush()
			cl.releaseHeld() // pushes reach a waiting client at once
			done := noWait
			if ci.kind != kindRead {
				done = s.relayedWrite(ctx, cl, [][][]byte{args})
			}
			reply := s.relay.blocking(cl, args)
			cl.holdIfResp3()
			done()
			cl.answer(reply)
		case routeSubscribe, routeSelf:
			reply := ci.handle(s, ctx, cl, args)
			cl.answer(reply)
			if ci.Name == "exec" {
				s.monitors.feedExec(cl, s.cmds, tx, reply)
			}
			s.monitors.feed(cl, cl.db, ci, args)
		}
		if cl.closing.Load() {
			return true
		}
		i++
	}
	return false
}

// kindOf is the metrics kind of a command that passed its checks.
func kindOf(ci *commandInfo) metrics.Kind {
	switch ci.kind {
	case kindWrite:
		return metrics.Write
	case kindRead:
		return metrics.Read
	}
	return metrics.Local
}

// count counts one command (refused: it failed its checks).
func (s *frontEnd) count(ci *commandInfo, refused bool) {
	if refused || ci == nil {
		s.metrics.Commands(metrics.Refused, 1)
		return
	}
	s.metrics.Commands(kindOf(ci), 1)
}

// countRun counts a run of commands that share route r.
func (s *frontEnd) countRun(r route, infos []*commandInfo) {
	switch r {
	case routeWrite:
		s.metrics.Commands(metrics.Write, len(infos))
	case routeRead:
		s.metrics.Commands(metrics.Read, len(infos))
	default:
		for _, ci := range infos {
			s.count(ci, false)
		}
	}
}

// run executes a run of commands that share a route; infos are their rows
// of the command table.
func (s *frontEnd) run(ctx context.Context, cl *clientConn, r route, run []resp.Command, infos []*commandInfo) [][]byte {
	switch r {
	case routeWrite:
		cmds := make([]entryCmd, len(run))
		proto := cl.protocol()
		for i, c := range run {
			cmds[i] = entryCmd{DB: cl.db, Args: c.Args, Proto: proto}
		}
		done := s.ownWrite(cl, cmds)
		replies, err := s.proposer.write(ctx, cmds)
		done()
		return repliesOrError(s.cluster, run, replies, err)
	case routeRead:
		replies, err := s.reads.forClient(cl).run(ctx, cl.protocol(), cl.db, run, infos)
		return repliesOrError(s.cluster, run, replies, err)
	}
	args := make([][][]byte, len(run))
	writes := false
	for i, c := range run {
		args[i] = c.Args
		ci := infos[i]
		writes = writes || ci.kind != kindRead
		cl.relayWatch = cl.relayWatch || ci.Name == "watch"
	}
	done := noWait
	if writes {
		done = s.relayedWrite(ctx, cl, args)
	}
	out := s.relay.run(cl, args, 0, requestTimeout)
	done()
	return out
}

// overMemory reports whether the child is above the cluster's write limit
// (--maxmemory, or CONFIG SET maxmemory).
func (s *frontEnd) overMemory() bool {
	limit := s.fsm.maxMemory()
	return limit > 0 && s.usedBytes.Load() > limit
}

// memoryLoop keeps the child's used_memory fresh, so that a write limit
// set at any moment (CONFIG SET maxmemory) applies at once.
func (s *frontEnd) memoryLoop(stop <-chan struct{}) {
	every(stop, 100*time.Millisecond, func() {
		info, _ := resp.ReplyString(s.reads.localStrings("INFO", "memory"))
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				s.usedBytes.Store(n)
			}
		}
	})
}

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// outputLimit is one class of client-output-buffer-limit: a client whose
// unsent replies exceed hard bytes, or soft bytes for softFor, is
// disconnected (0 disables each).
type outputLimit struct {
	hard, soft int64
	softFor    time.Duration
}

// outputLimits is the --client-output-buffer-limit option: Redis's classes
// normal, replica and pubsub, each set by "class hard soft seconds"; a value
// may set several classes, and a later setting of a class replaces it.
type outputLimits struct {
	normal, pubsub outputLimit
}

// defaultOutputLimits are Redis's defaults (replica is accepted and
// ignored: Raft does the replication).
var defaultOutputLimits = outputLimits{pubsub: outputLimit{hard: 32 << 20, soft: 8 << 20, softFor: 60 * time.Second}}

// String renders one class as Redis's CONFIG GET does ("hard soft seconds").
func (l outputLimit) String() string {
	return fmt.Sprintf("%d %d %d", l.hard, l.soft, int(l.softFor/time.Second))
}

// localFor runs a command on the local child in the client's protocol,
// without a consistency check (the commands of kindLocal).
func (s *frontEnd) localFor(ctx context.Context, cl *clientConn, args [][]byte) []byte {
	return s.reads.localIn(ctx, cl.protocol(), cl.db, args)
}
