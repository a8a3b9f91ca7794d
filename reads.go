package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redraft/redraft/internal/command"
	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// consistency is the --consistency level of reads.
type consistency int

const (
	// consistencyLow: any node answers from its own child.
	consistencyLow consistency = iota
	// consistencyMedium: only a leader that has applied its barrier answers,
	// without contacting the others for each read.
	consistencyMedium
	// consistencyHigh: linearizable reads (ReadIndex, batched).
	consistencyHigh
)

var consistencyNames = [...]string{"low", "medium", "high"}

// String is the level's flag value.
func (c consistency) String() string { return consistencyNames[c] }

// parseConsistency reads a --consistency value.
func parseConsistency(s string) (consistency, error) {
	for i, n := range consistencyNames {
		if s == n {
			return consistency(i), nil
		}
	}
	return 0, fmt.Errorf("--consistency must be low, medium or high, not %q", s)
}

// errChild wraps a failure of a connection to the child.
var errChild = errors.New("redis-server connection failed")

// readLanes is how many shared connections to the child carry reads.
// Reads waiting at the same moment go out together on one of them; two
// keep one slow command from holding up every other read.
const readLanes = 2

// readPath serves reads on connections to the local child after the
// --consistency check, and makes sure no read sees a key past its
// deadline.
type readPath struct {
	level    consistency
	node     *raftNode
	fsm      *fsm
	proposer *proposer
	lanes    *redisconn.Shared // reads of all clients, coalesced
	pool     *redisconn.Pool   // connections of its own for a read-only script
	// lanes3 and pool3 are the same in RESP3, for RESP3 clients' reads:
	// the child answers them in the shapes RESP3 clients get (resp3.go).
	lanes3  *redisconn.Shared
	pool3   *redisconn.Pool
	index   *readIndexer
	wall    func() int64
	scripts *scriptWatch // read-only scripts run under its watch
	// stale is this path at --consistency low, for READONLY connections
	// (cluster mode); nil when cluster mode is off.
	stale *readPath
}

// forClient is the read path of cl's reads: a READONLY connection (cluster
// mode) reads as --consistency low does, on any node.
func (r *readPath) forClient(cl *clientConn) *readPath {
	if r.stale != nil && cl != nil && cl.readOnly.Load() {
		return r.stale
	}
	return r
}

// run serves a run of reads in db, answered in proto: one consistency
// check, one round trip. infos are the commands' rows of the table.
func (r *readPath) run(ctx context.Context, proto resp.Proto, db int, run []resp.Command, infos []*commandInfo) ([][]byte, error) {
	steps := make([]redisconn.Step, len(run))
	now := r.wall()
	scripts := readScripts{}
	for i, c := range run {
		info := infos[i].Info
		steps[i] = planRead(info, c.Args, now, r.fsm.script)
		scripts.note(info.Name)
	}
	if err := r.check(ctx); err != nil {
		return nil, err
	}
	return r.onChild(proto, db, steps, scripts)
}

// tx serves a transaction of reads (MULTI, cmds, EXEC) in db on one child
// connection, answered in proto, after one consistency check, and returns
// EXEC's reply. TTL reads are answered against the local clock.
func (r *readPath) tx(ctx context.Context, proto resp.Proto, db int, cmds [][][]byte) ([]byte, error) {
	now := r.wall()
	steps := make([]redisconn.Step, 0, len(cmds)+2)
	steps = append(steps, redisconn.Step{Args: [][]byte{[]byte("MULTI")}})
	for _, args := range cmds {
		switch name := command.Lower(args[0]); name {
		case "ttl", "pttl", "expiretime", "pexpiretime":
			args = ttlCommand(name, args[1], now)
		}
		steps = append(steps, redisconn.Step{Args: args})
	}
	steps = append(steps, redisconn.Step{Args: [][]byte{[]byte("EXEC")}})
	replies, err := r.steps(ctx, proto, db, steps, true)
	if err != nil {
		return nil, err
	}
	return replies[len(replies)-1], nil
}

// readScripts says whether a run of reads runs read-only scripts (and
// functions), which the script watchdog must be able to stop.
type readScripts struct{ any, function bool }

func (s *readScripts) note(name string) {
	switch name {
	case "eval_ro", "evalsha_ro":
		s.any = true
	case "fcall_ro":
		s.any, s.function = true, true
	}
}

// ttl answers TTL, PTTL, EXPIRETIME or PEXPIRETIME of key against the local
// clock (deadlines are stored shifted in the child).
func (r *readPath) ttl(ctx context.Context, db int, name string, key []byte) ([]byte, error) {
	replies, err := r.steps(ctx, resp.Proto2, db, []redisconn.Step{{Args: ttlCommand(name, key, r.wall())}}, true)
	if err != nil {
		return nil, err
	}
	return replies[0], nil
}

// local runs one command on a child connection with no consistency check,
// answered in RESP2 (for redraft's own use of the reply).
func (r *readPath) local(ctx context.Context, db int, args [][]byte) []byte {
	return r.localStep(ctx, resp.Proto2, db, redisconn.Step{Args: args})
}

// localIn is local answered in proto (a reply for a client).
func (r *readPath) localIn(ctx context.Context, proto resp.Proto, db int, args [][]byte) []byte {
	return r.localStep(ctx, proto, db, redisconn.Step{Args: args})
}

// localStep runs one step on a child connection with no consistency check.
func (r *readPath) localStep(ctx context.Context, proto resp.Proto, db int, st redisconn.Step) []byte {
	replies, err := r.onChild(proto, db, []redisconn.Step{st}, readScripts{})
	if err != nil {
		return errorReply(err)
	}
	return replies[0]
}

// localStrings is local for a command given as strings, in database 0.
func (r *readPath) localStrings(args ...string) []byte {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	return r.local(context.Background(), 0, b)
}

// steps checks consistency (when checked), makes sure nothing past its
// deadline is visible, and runs steps on a pooled child connection.
func (r *readPath) steps(ctx context.Context, proto resp.Proto, db int, steps []redisconn.Step, checked bool) ([][]byte, error) {
	if checked {
		if err := r.check(ctx); err != nil {
			return nil, err
		}
	}
	return r.onChild(proto, db, steps, readScripts{})
}

// check applies --consistency and hides keys past their deadline.
func (r *readPath) check(ctx context.Context) error {
	if err := r.allowed(ctx); err != nil {
		return err
	}
	return r.hideExpired(ctx)
}

// onChild runs steps on the child, answered in proto: on a shared lane,
// or, for read-only scripts (which the watchdog must be able to stop
// without stopping anyone else's reads), on a pooled connection of their
// own.
func (r *readPath) onChild(proto resp.Proto, db int, steps []redisconn.Step, scripts readScripts) ([][]byte, error) {
	lanes, pool := r.lanes, r.pool
	if proto >= resp.Proto3 {
		lanes, pool = r.lanes3, r.pool3
	}
	if !(scripts.any && r.scripts != nil) {
		out, err := lanes.Run(db, steps)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errChild, err)
		}
		return out, nil
	}
	c, err := pool.Get()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errChild, err)
	}
	out, err := r.scripts.runReadOnly(c, db, steps, scripts.function)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: %w", errChild, err)
	}
	pool.Put(c)
	return out, nil
}

// allowed applies --consistency: nil means the read may be served here.
func (r *readPath) allowed(ctx context.Context) error {
	if r.level == consistencyLow {
		return nil
	}
	if err := r.node.waitReady(ctx); err != nil {
		return err
	}
	if r.level == consistencyMedium {
		return nil
	}
	vctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return r.index.verify(vctx)
}

// hideExpired makes sure no key past its deadline is visible before a read:
// the leader sweeps due keys through the log; a follower waits for the
// leader's sweep to reach it.
func (r *readPath) hideExpired(ctx context.Context) error {
	if !r.proposer.dueNow(r.wall()) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if r.node.isLeader() {
		return r.proposer.sweep(ctx)
	}
	wait, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for r.proposer.dueNow(r.wall()) {
		if err := r.fsm.waitApplied(wait, r.fsm.appliedIndex()+1); err != nil {
			return r.node.leaderError()
		}
	}
	return nil
}

// readIndexer batches linearizable reads: every read waiting when a round
// starts shares one confirmation of leadership (leadership.go), then waits
// until the applied index reaches the commit index taken at the start of
// that round.
type readIndexer struct {
	node    *raftNode
	fsm     *fsm
	prober  *termProber
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
		return ErrTimeout
	}
}

// waitApplied waits until index idx is applied. Entries that never reach
// the FSM (a new leader's no-op, barriers, configuration changes) advance
// only Raft's own applied index, so both are consulted.
func (r *readIndexer) waitApplied(ctx context.Context, idx uint64) error {
	for {
		if r.fsm.appliedIndex() >= idx || r.node.raftApplied() >= idx {
			return nil
		}
		wait, cancel := context.WithTimeout(ctx, 2*time.Millisecond)
		err := r.fsm.waitApplied(wait, idx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ErrTimeout
		}
	}
}

// loop runs rounds while reads are waiting.
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
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		commit, err := r.prober.confirm(ctx)
		cancel()
		for _, w := range waiters {
			w <- readRound{commit: commit, err: err}
		}
	}
}
