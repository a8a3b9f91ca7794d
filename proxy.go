package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/tidwall/redcon"
)

// server is the RESP front end: it classifies each command and sends it to
// the log, to a child connection, or answers it itself.
type server struct {
	node          *node
	fsm           *fsm
	tbl           *commandTable
	child         *childProcess
	consistency   string
	followerProxy bool
	maxMemory     int64
	log           *slog.Logger

	pool     *connPool
	proposer *proposer
	reads    *readIndexer
	waiters  *waiterSet

	clients   sync.Map // id -> *client, for CLIENT LIST and KILL
	epoch     int64    // start time in ns: makes watch IDs unique across restarts
	sweepMu   sync.Mutex
	nextID    atomic.Int64
	usedBytes atomic.Int64 // child's used_memory, refreshed when maxMemory > 0
}

// client is the per-connection state kept by the proxy. Only the
// connection's own goroutine touches it, except name (under nameMu) and
// conn, which CLIENT LIST and CLIENT KILL read from other connections.
type client struct {
	id     int64
	addr   string
	db     int
	nameMu sync.Mutex
	name   string
	conn   redcon.Conn
	multi  []command // queued commands while in MULTI
	inTx   bool
	txDB   int // database queued commands will run in (SELECT inside MULTI)
	// replyOff and replySkip implement CLIENT REPLY OFF and SKIP.
	replyOff  bool
	replySkip int
	dirty     bool // a queued command was rejected: EXEC aborts
	// watching is set while this client has a WATCH in the log, named
	// watchID(node, id).
	watching bool
	// gone is set once the connection is served by the proxy's own loop
	// (after a blocking command) and closes when the client leaves.
	gone <-chan struct{}
	// cmds feeds that loop; handedOff is set once the Pub/Sub relay owns
	// the connection.
	cmds      <-chan redcon.Command
	handedOff bool
	detached  bool // taken out of redcon's loop (set before Detach)
	// fwd is this client's relay connection to the leader (--follower-proxy).
	fwd     *respConn
	fwdAddr string
}

// requestTimeout bounds how long one request may wait on Raft.
const requestTimeout = 10 * time.Second

// serve runs the RESP server on ln until it closes.
func (s *server) serve(ln *chanListener) error {
	return redcon.Serve(ln, s.handle,
		func(conn redcon.Conn) bool {
			cl := &client{id: s.nextID.Add(1), addr: conn.RemoteAddr(), conn: conn}
			conn.SetContext(cl)
			s.clients.Store(cl.id, cl)
			return true
		},
		func(conn redcon.Conn, err error) {
			// redcon also calls this when a connection is detached; the
			// proxy's own loop or the Pub/Sub relay then owns the client.
			if cl, ok := conn.Context().(*client); ok && !cl.detached {
				s.closeClient(cl)
			}
		})
}

// handle processes a command and everything pipelined behind it.
func (s *server) handle(conn redcon.Conn, first redcon.Command) {
	cl := conn.Context().(*client)
	cmds := append([]redcon.Command{first}, conn.ReadPipeline()...)
	if s.process(conn, cl, cmds) {
		conn.Close()
	}
}

// process runs cmds in order: runs of writes become one proposal, runs of
// reads one child round trip. It returns true when the connection must be
// closed (QUIT). It may hand the connection over to the Pub/Sub relay or to
// the blocking-command loop, which then own the remaining commands.
func (s *server) process(conn redcon.Conn, cl *client, cmds []redcon.Command) bool {
	// Waits are bounded where they happen (requestTimeout), so no timer is
	// created for requests that never wait.
	ctx := context.Background()
	for i := 0; i < len(cmds); {
		args := cmds[i].Args
		info := s.tbl.lookup(args)
		if cl.inTx && !isTxControl(args) {
			emit(conn, cl, s.queue(cl, info, args))
			i++
			continue
		}
		kind := s.route(info, args)
		switch {
		case kind == kindWrite || kind == kindRead:
			j := i + 1
			for j < len(cmds) && s.route(s.tbl.lookup(cmds[j].Args), cmds[j].Args) == kind {
				j++
			}
			var replies [][]byte
			if kind == kindWrite {
				replies = s.write(ctx, cl, cmds[i:j])
			} else {
				replies = s.read(ctx, cl, cmds[i:j])
			}
			for _, r := range replies {
				emit(conn, cl, r)
			}
			i = j
		case info != nil && subscribeCommands[info.name] && info.arityOK(len(args)):
			if cl.cmds != nil {
				// Served by the proxy's own loop: flush what is owed first.
				conn.(redcon.DetachedConn).Flush()
			}
			cl.handedOff = true
			s.subscribe(conn, cl, cmds[i:])
			return false
		case info != nil && info.arityOK(len(args)) && isBlockingCall(info, args) && info.kind != kindRefused:
			if cl.gone == nil {
				s.detachForBlocking(conn, cmds[i:])
				return false
			}
			if s.shouldForward() && !(info.name == "xread" && s.consistency == "low") {
				// The leader's proxy does the waiting.
				emit(conn, cl, s.forwardWithin(cl, [][][]byte{args}, 0, 0)[0])
			} else {
				emit(conn, cl, s.block(cl, info, args, cl.gone))
			}
			i++
		default:
			reply, closeAfter := s.single(ctx, cl, info, args)
			emit(conn, cl, reply)
			if closeAfter {
				return true
			}
			i++
		}
	}
	return false
}

// emit writes a reply unless CLIENT REPLY OFF or SKIP suppresses it.
func emit(conn redcon.Conn, cl *client, raw []byte) {
	switch {
	case cl.replyOff:
		return
	case cl.replySkip > 0:
		cl.replySkip--
		return
	}
	conn.WriteRaw(raw)
}

// route classifies one invocation; validation failures are kindProxy so that
// single answers them.
func (s *server) route(info *commandInfo, args [][]byte) commandKind {
	if info == nil || !info.arityOK(len(args)) {
		return kindProxy
	}
	switch info.kind {
	case kindWrite:
		if isBlockingCall(info, args) || s.overMemory(info) {
			return kindProxy
		}
		if info.name == "config|set" && configSetAllowed(args) != "" {
			return kindProxy
		}
	case kindRead:
		if isBlockingCall(info, args) {
			return kindProxy
		}
	}
	return info.kind
}

// write proposes a run of write commands as one batch and returns their
// replies.
func (s *server) write(ctx context.Context, cl *client, run []redcon.Command) [][]byte {
	cmds := make([]command, len(run))
	for i, c := range run {
		cmds[i] = command{DB: cl.db, Args: c.Args}
	}
	if s.shouldForward() {
		return s.forward(cl, argsOf(cmds), 0)
	}
	return s.propose(ctx, cmds)
}

// propose sends commands through the log and waits for their replies.
func (s *server) propose(ctx context.Context, cmds []command) [][]byte {
	fail := func(reply []byte) [][]byte {
		out := make([][]byte, len(cmds))
		for i := range out {
			out[i] = reply
		}
		return out
	}
	if err := s.node.waitLeaderReady(ctx); err != nil {
		return fail(s.node.notLeaderError())
	}
	p := &proposal{cmds: cmds, done: make(chan struct{})}
	s.proposer.submit(p)
	timeout := time.NewTimer(requestTimeout)
	defer timeout.Stop()
	select {
	case <-p.done:
	case <-ctx.Done():
		return fail(respError("ERR timed out waiting for the Raft log; the write may or may not have been applied"))
	case <-timeout.C:
		return fail(respError("ERR timed out waiting for the Raft log; the write may or may not have been applied"))
	}
	if p.errReply != nil {
		return fail(p.errReply)
	}
	return p.replies
}

// read serves a run of read commands from a child connection after the
// --consistency check.
func (s *server) read(ctx context.Context, cl *client, run []redcon.Command) [][]byte {
	if s.consistency != "low" && s.shouldForward() {
		args := make([][][]byte, len(run))
		for i, c := range run {
			args[i] = c.Args
		}
		return s.forward(cl, args, 0)
	}
	steps := make([]readStep, len(run))
	now := nowMS()
	for i, c := range run {
		steps[i] = planRead(s.tbl.lookup(c.Args), c.Args, now, s.fsm.script)
	}
	return s.readSteps(ctx, cl.db, steps, true)
}

// readStep is one command for the child, with an optional reply rewrite;
// a step with a reply set is answered without the child.
type readStep struct {
	args     [][]byte
	mapReply func([]byte) []byte
	reply    []byte
}

// readSteps checks consistency (when checked), makes sure nothing past its
// deadline is visible, and runs steps on a pooled child connection.
func (s *server) readSteps(ctx context.Context, db int, steps []readStep, checked bool) [][]byte {
	fail := func(reply []byte) [][]byte {
		out := make([][]byte, len(steps))
		for i := range out {
			out[i] = reply
		}
		return out
	}
	if checked {
		if reply := s.readAllowed(ctx); reply != nil {
			return fail(reply)
		}
		if reply := s.hideExpired(ctx); reply != nil {
			return fail(reply)
		}
	}
	c, err := s.pool.get()
	if err != nil {
		return fail(respError("ERR " + err.Error()))
	}
	out, err := runOnConn(c, db, steps)
	if err != nil {
		c.Close()
		return fail(respError("ERR redis-server connection failed: " + err.Error()))
	}
	s.pool.put(c)
	return out
}

// runOnConn pipelines steps on c in db.
func runOnConn(c *respConn, db int, steps []readStep) ([][]byte, error) {
	selected := c.selectDB(db)
	for _, st := range steps {
		if st.reply == nil {
			c.send(st.args)
		}
	}
	if err := c.flush(); err != nil {
		return nil, err
	}
	if selected {
		if _, err := c.readReply(); err != nil {
			return nil, err
		}
	}
	out := make([][]byte, len(steps))
	for i, st := range steps {
		if st.reply != nil {
			out[i] = st.reply
			continue
		}
		raw, err := c.readReply()
		if err != nil {
			return nil, err
		}
		if st.mapReply != nil {
			raw = st.mapReply(raw)
		}
		out[i] = raw
	}
	return out, nil
}

// readAllowed applies --consistency; nil means the read may be served here.
func (s *server) readAllowed(ctx context.Context) []byte {
	switch s.consistency {
	case "low":
		return nil
	case "medium":
		if err := s.node.waitLeaderReady(ctx); err != nil {
			return s.node.notLeaderError()
		}
		return nil
	}
	if err := s.node.waitLeaderReady(ctx); err != nil {
		return s.node.notLeaderError()
	}
	vctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if err := s.reads.verify(vctx); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return s.node.notLeaderError()
		}
		return respError("ERR linearizable read failed: " + err.Error())
	}
	return nil
}

// hideExpired makes sure no key past its deadline is visible before a read:
// the leader sweeps due keys through the log; a follower waits for the
// leader's sweep to reach it.
func (s *server) hideExpired(ctx context.Context) []byte {
	at, ok := s.fsm.index.earliest()
	if !ok || at > nowMS() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if s.node.raft.State() == raft.Leader {
		if err := s.sweep(ctx); err != nil {
			return s.node.notLeaderError()
		}
		return nil
	}
	wait, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for {
		at, ok := s.fsm.index.earliest()
		if !ok || at > nowMS() {
			return nil
		}
		idx := s.fsm.applied.Load()
		if err := s.fsm.waitApplied(wait, idx+1); err != nil {
			return s.node.notLeaderError()
		}
	}
}

// sweep proposes the deletion of every due key and waits for it to apply.
func (s *server) sweep(ctx context.Context) error {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	for {
		at, ok := s.fsm.index.earliest()
		if !ok || at > nowMS() {
			return nil
		}
		if err := s.node.waitLeaderReady(ctx); err != nil {
			return err
		}
		p := &proposal{sweep: true, done: make(chan struct{})}
		s.proposer.submit(p)
		select {
		case <-p.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if p.errReply != nil {
			return errors.New(string(p.errReply))
		}
	}
}

// every runs fn each period until stop closes.
func every(stop <-chan struct{}, period time.Duration, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			fn()
		}
	}
}

// expireLoop makes the leader sweep keys as their deadlines pass, so that
// they disappear on every node even when nobody reads them.
func (s *server) expireLoop(stop <-chan struct{}) {
	every(stop, 20*time.Millisecond, func() {
		if s.node.raft.State() != raft.Leader {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		if err := s.sweep(ctx); err != nil {
			s.log.Debug("sweep", "err", err)
		}
	})
}

// overMemory reports whether a denyoom command must be refused because the
// leader's child is above --maxmemory.
func (s *server) overMemory(info *commandInfo) bool {
	return s.maxMemory > 0 && info.denyOOM && s.usedBytes.Load() > s.maxMemory
}

// memoryLoop refreshes the child's used_memory for --maxmemory.
func (s *server) memoryLoop(stop <-chan struct{}) {
	every(stop, 100*time.Millisecond, func() {
		info, _ := replyString(s.local("INFO", "memory"))
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				s.usedBytes.Store(n)
			}
		}
	})
}

// local runs one command on a child connection with no consistency check.
func (s *server) local(args ...string) []byte {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	return s.readSteps(context.Background(), 0, []readStep{{args: b}}, false)[0]
}

// nowMS is the local clock in ms; it is only used to decide when to sweep
// and to answer TTL reads, never in the apply path.
func nowMS() int64 { return time.Now().UnixMilli() }

// isTxControl lists the commands that act immediately inside MULTI.
func isTxControl(args [][]byte) bool {
	switch lower(args[0]) {
	case "exec", "discard", "multi", "watch", "quit", "reset":
		return true
	}
	return false
}

// queue validates a command inside MULTI and queues it.
func (s *server) queue(cl *client, info *commandInfo, args [][]byte) []byte {
	var reply []byte
	switch {
	case info == nil:
		reply = respError(unknownCommandError(args))
	case !info.arityOK(len(args)):
		reply = respError(info.arityError())
	case info.kind == kindRefused:
		reply = respError(info.refusal)
	case isBlockingCall(info, args):
		// Redis runs blocking commands in MULTI as non-blocking ones, and
		// so does the child.
	case raftCommands[info.name] || (info.kind == kindProxy && !queueableProxy[info.name]):
		reply = respError(fmt.Sprintf("ERR command '%s' cannot be used inside MULTI on redraft", info.name))
	case s.overMemory(info):
		reply = respError("OOM command not allowed when used memory > 'maxmemory'.")
	case info.name == "config|set" && configSetAllowed(args) != "":
		reply = configSetRefusal(configSetAllowed(args))
	}
	if reply != nil {
		cl.dirty = true
		return reply
	}
	owned := make([][]byte, len(args))
	for i, a := range args {
		owned[i] = append([]byte(nil), a...)
	}
	cl.multi = append(cl.multi, command{DB: cl.txDB, Args: owned})
	if info.name == "select" {
		// Commands queued after it run in that database.
		if db, err := strconv.Atoi(string(args[1])); err == nil && db >= 0 && db < 16 {
			cl.txDB = db
		}
	}
	return respStatus("QUEUED")
}

// queueableProxy are proxy-handled commands that can run inside MULTI,
// where the child executes them in the transaction.
var queueableProxy = map[string]bool{
	"ping": true, "echo": true, "select": true, "ttl": true, "pttl": true,
	"expiretime": true, "pexpiretime": true, "info": true,
}

// exec proposes the queued transaction as one log entry.
func (s *server) exec(ctx context.Context, cl *client) []byte {
	queued, dirty := cl.multi, cl.dirty
	cl.multi, cl.inTx, cl.dirty = nil, false, false
	if dirty || len(queued) == 0 {
		if cl.watching {
			s.unwatch(ctx, cl)
		}
		if dirty {
			return respError("EXECABORT Transaction discarded because of previous errors.")
		}
		return respArrayHeader(0)
	}
	if s.shouldForward() {
		tx := append([][][]byte{{[]byte("MULTI")}}, argsOf(queued)...)
		tx = append(tx, [][]byte{[]byte("EXEC")})
		return s.forward(cl, tx, len(queued)+1)[0]
	}
	exec := [][]byte{[]byte("EXEC")}
	if cl.watching {
		exec = append(exec, []byte(watchID(s.node.id, s.epoch, cl.id)))
		cl.watching = false
	}
	reply := s.propose(ctx, []command{{DB: cl.db, Args: exec, Sub: queued}})[0]
	if len(reply) > 0 && reply[0] == '*' {
		for _, c := range queued {
			if lower(c.Args[0]) == "select" {
				if db, err := strconv.Atoi(string(c.Args[1])); err == nil && db >= 0 && db < 16 {
					cl.db = db
				}
			}
		}
	}
	return reply
}

// connPool keeps idle connections to the child for reads.
type connPool struct {
	sock string
	idle chan *respConn
}

func newConnPool(sock string, size int) *connPool {
	return &connPool{sock: sock, idle: make(chan *respConn, size)}
}

func (p *connPool) get() (*respConn, error) {
	select {
	case c := <-p.idle:
		return c, nil
	default:
		return dialChild(p.sock)
	}
}

func (p *connPool) put(c *respConn) {
	select {
	case p.idle <- c:
	default:
		c.Close()
	}
}

// readIndexer batches linearizable reads: every read waiting when a round
// starts shares one VerifyLeader, then waits until the applied index reaches
// the commit index taken at the start of that round.
type readIndexer struct {
	node    *node
	fsm     *fsm
	mu      sync.Mutex
	waiters []chan readRound
	running bool
}

type readRound struct {
	commit uint64
	err    error
}

// verify blocks until a read started now may be served linearizably.
func (r *readIndexer) verify(ctx context.Context) error {
	ch := make(chan readRound, 1)
	r.mu.Lock()
	r.waiters = append(r.waiters, ch)
	if !r.running {
		r.running = true
		go r.loop()
	}
	r.mu.Unlock()
	select {
	case res := <-ch:
		if res.err != nil {
			return res.err
		}
		return r.waitApplied(ctx, res.commit)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitApplied waits until index idx is applied. Entries that never reach
// the FSM (a new leader's no-op, barriers, configuration changes) advance
// only Raft's own applied index, so both are consulted.
func (r *readIndexer) waitApplied(ctx context.Context, idx uint64) error {
	for {
		if r.fsm.applied.Load() >= idx || r.node.raft.AppliedIndex() >= idx {
			return nil
		}
		wait, cancel := context.WithTimeout(ctx, 2*time.Millisecond)
		err := r.fsm.waitApplied(wait, idx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func (r *readIndexer) loop() {
	for {
		r.mu.Lock()
		waiters := r.waiters
		r.waiters = nil
		if len(waiters) == 0 {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		commit := r.node.raft.CommitIndex()
		err := r.node.raft.VerifyLeader().Error()
		for _, w := range waiters {
			w <- readRound{commit: commit, err: err}
		}
	}
}

// raftStats renders Raft's statistics plus redraft's own as key/value pairs.
func (s *server) raftStats() map[string]string {
	stats := s.node.raft.Stats()
	stats["applied_index"] = strconv.FormatUint(s.fsm.applied.Load(), 10)
	stats["fsm_last_time_ms"] = strconv.FormatInt(s.fsm.lastT.Load(), 10)
	stats["expiry_index_keys"] = strconv.Itoa(s.fsm.index.size())
	stats["leader"] = s.node.leaderAddr()
	stats["id"] = s.node.id
	return stats
}

// sortedPairs flattens a map into a RESP array of key/value bulks.
func sortedPairs(m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := respArrayHeader(2 * len(keys))
	for _, k := range keys {
		out = append(out, respBulk(k)...)
		out = append(out, respBulk(m[k])...)
	}
	return out
}

// watch records keys for this client's WATCH through the log.
func (s *server) watch(ctx context.Context, cl *client, keys [][]byte) []byte {
	if s.shouldForward() {
		return s.forward(cl, [][][]byte{append([][]byte{[]byte("WATCH")}, keys...)}, 0)[0]
	}
	args := append([][]byte{[]byte(cmdWatch), []byte(watchID(s.node.id, s.epoch, cl.id))}, keys...)
	reply := s.propose(ctx, []command{{DB: cl.db, Args: args}})[0]
	if string(reply) == string(respOK) {
		cl.watching = true
	}
	return reply
}

// unwatch drops this client's WATCH, if any, through the log.
func (s *server) unwatch(ctx context.Context, cl *client) {
	if cl.fwd != nil {
		s.forward(cl, [][][]byte{{[]byte("UNWATCH")}}, 0)
	}
	if !cl.watching {
		return
	}
	cl.watching = false
	s.propose(ctx, []command{{DB: cl.db, Args: [][]byte{[]byte(cmdUnwatch), []byte(watchID(s.node.id, s.epoch, cl.id))}}})
}

// closeClient releases what a departing client held.
func (s *server) closeClient(cl *client) {
	s.clients.Delete(cl.id)
	if cl.fwd != nil {
		cl.fwd.Close()
		cl.fwd = nil
	}
	if cl.watching {
		go s.unwatch(context.Background(), cl)
	}
}
