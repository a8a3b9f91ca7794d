package main

import (
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/redraft/redraft/internal/child"
	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// scriptWatch stops scripts that run too long (scriptstop.go explains the
// rules). Every watchPeriod it looks at the script the child runs for the
// apply path: the leader proposes to stop it once it has run for
// busy-reply-threshold, and every node carries out a stop the log has
// committed. It also stops this node's own read-only scripts (EVAL_RO,
// FCALL_RO) after the threshold, which only concerns this node.
type scriptWatch struct {
	fsm      *fsm
	node     *raftNode
	proposer *proposer
	child    *child.Supervisor
	log      *slog.Logger
	wall     func() int64

	// The apply path's script last seen running (by its seq), since when,
	// and what was done about it.
	seq      uint64
	since    int64
	proposed bool
	acted    bool
	scanned  uint64 // the committed log is read up to here for its decision

	ro readOnlyScripts
}

// watchPeriod is how often the watchdog looks.
const watchPeriod = 100 * time.Millisecond

// stopGrace is how long past busy-reply-threshold the leader waits before
// stopping a script itself: the child takes a client's SCRIPT KILL from the
// threshold on, and that kill should land first.
const stopGrace = 200 // ms

// run watches until stop closes.
func (w *scriptWatch) run(stop <-chan struct{}) {
	every(stop, watchPeriod, func() { w.tick(w.wall()) })
}

// tick looks once.
func (w *scriptWatch) tick(now int64) {
	threshold := w.fsm.stops.threshold.Load()
	w.ro.stopOverdue(now, threshold, w)
	cur := w.fsm.stops.current()
	if cur.seq == 0 {
		w.seq = 0
		return
	}
	if cur.seq != w.seq {
		w.seq, w.since, w.proposed, w.acted, w.scanned = cur.seq, now, false, false, 0
	}
	if threshold > 0 && now-w.since >= threshold+stopGrace && !w.proposed && w.node.isLeader() {
		w.proposed = true
		go w.proposeStop(cur.ref)
	}
	if !w.acted {
		if reason, decided := w.decision(cur.ref); decided {
			w.acted = true
			if reason != 0 {
				w.fsm.stops.void(cur.ref, reason)
				go w.stopRunning(cur)
			}
		}
	}
}

// proposeStop asks the cluster to stop ref's script.
func (w *scriptWatch) proposeStop(ref scriptRef) {
	w.log.Warn("a script has run longer than busy-reply-threshold; stopping it on every node", "entry", ref.Index, "command", ref.Pos)
	if err := w.proposer.proposeStop(ref, stopAuto); err != nil {
		w.log.Warn("could not propose to stop a script", "entry", ref.Index, "err", err)
	}
}

// decision reads the committed log after ref's entry for the first entry
// that decides its script: a stop (reason, true) or an entry proposed by a
// leader that had applied it (0, true: it stands).
func (w *scriptWatch) decision(ref scriptRef) (byte, bool) {
	commit := w.node.commitIndex()
	for i := max(ref.Index, w.scanned) + 1; i <= commit; i++ {
		l, err := w.fsm.readLogs(i, i+1)
		if err != nil {
			return 0, false
		}
		w.scanned = i
		if l[0].Type != raft.LogCommand {
			continue // Raft's own (no-op, barrier, configuration)
		}
		e, err := decodeEntry(l[0].Data)
		if err != nil {
			continue
		}
		if e.Kind == entryStop && e.Stop.Ref == ref {
			return e.Stop.Reason, true
		}
		if e.decides(ref.Index) {
			return 0, true
		}
	}
	return 0, false
}

// stopRunning stops the script of cur in this node's child: SCRIPT KILL
// (FUNCTION KILL) when it has not written; otherwise the child is killed
// and the FSM rebuilds it without the script.
func (w *scriptWatch) stopRunning(cur runningScript) {
	reply, err := w.killCommand(cur.function, 0)
	switch {
	case err != nil:
		w.log.Warn("could not stop a script; killing redis-server", "entry", cur.ref.Index, "err", err)
	case strings.HasPrefix(string(reply), "-UNKILLABLE"):
		w.log.Warn("a stopped script had written; restarting redis-server and replaying the log without it", "entry", cur.ref.Index)
	default:
		return // killed cleanly, or it has ended: the log's stop settles it
	}
	if w.fsm.stops.current().seq != cur.seq {
		return // it ended meanwhile
	}
	w.fsm.stops.markChildKilled()
	w.child.Kill()
}

// killCommand sends SCRIPT KILL (or FUNCTION KILL) to the child and
// returns its answer. The child reads it once the running script counts as
// busy (busy-reply-threshold); limit bounds the wait (0: the threshold and
// a margin).
func (w *scriptWatch) killCommand(function bool, limit time.Duration) ([]byte, error) {
	c, err := w.child.Dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if limit == 0 {
		limit = time.Duration(w.fsm.stops.threshold.Load())*time.Millisecond + requestTimeout
	}
	_ = c.SetDeadline(time.Now().Add(limit))
	if function {
		return c.Do("FUNCTION", "KILL")
	}
	return c.Do("SCRIPT", "KILL")
}

// readOnlyScripts are this node's running read-only scripts.
type readOnlyScripts struct {
	mu      sync.Mutex
	running map[uint64]readOnlyScript
	next    uint64
}

// readOnlyScript is one running EVAL_RO, EVALSHA_RO or FCALL_RO.
type readOnlyScript struct {
	function bool
	since    int64 // ms
	killed   bool
}

// start registers a read-only script started at now; end removes it.
func (r *readOnlyScripts) start(function bool, now int64) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running == nil {
		r.running = make(map[uint64]readOnlyScript)
	}
	r.next++
	r.running[r.next] = readOnlyScript{function: function, since: now}
	return r.next
}

func (r *readOnlyScripts) end(id uint64) {
	r.mu.Lock()
	delete(r.running, id)
	r.mu.Unlock()
}

// any reports whether a read-only script runs, and whether it is a function.
func (r *readOnlyScripts) any() (running, function bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.running {
		return true, s.function
	}
	return false, false
}

// stopOverdue kills the read-only scripts that have run for threshold ms.
// The gate, held shared, keeps the apply path's scripts from starting
// meanwhile, so the kill can only reach a read-only script.
func (r *readOnlyScripts) stopOverdue(now, threshold int64, w *scriptWatch) {
	if threshold <= 0 {
		return
	}
	r.mu.Lock()
	var function, found bool
	for id, s := range r.running {
		if !s.killed && now-s.since >= threshold {
			s.killed = true
			r.running[id] = s
			function, found = s.function, true
			break
		}
	}
	r.mu.Unlock()
	if !found || !w.fsm.stops.gate.TryRLock() {
		return
	}
	go func() {
		defer w.fsm.stops.gate.RUnlock()
		if _, err := w.killCommand(function, requestTimeout); err != nil {
			w.log.Warn("could not stop a read-only script", "err", err)
		}
	}()
}

// runReadOnly runs steps that include read-only scripts on c: it holds the
// gate shared (so no apply-path script runs meanwhile) and registers the
// scripts so the watchdog can stop them.
func (w *scriptWatch) runReadOnly(c *redisconn.Conn, db int, steps []redisconn.Step, function bool) ([][]byte, error) {
	w.fsm.stops.gate.RLock()
	defer w.fsm.stops.gate.RUnlock()
	id := w.ro.start(function, w.wall())
	defer w.ro.end(id)
	return c.Run(db, steps)
}

// killReadOnly kills this node's read-only script for a client's SCRIPT
// KILL (FUNCTION KILL); handled is false when none runs.
func (w *scriptWatch) killReadOnly(function bool) (reply []byte, handled bool, err error) {
	if running, _ := w.ro.any(); !running {
		return nil, false, nil
	}
	if !w.fsm.stops.gate.TryRLock() {
		return nil, false, nil
	}
	defer w.fsm.stops.gate.RUnlock()
	reply, err = w.killCommand(function, 0)
	return reply, true, err
}

// killApplyScript kills the apply path's running script for a client's
// SCRIPT KILL (FUNCTION KILL), on the leader: the child kills it only if it
// has not written (else UNKILLABLE, as in Redis), and then every node must
// do the same, so the stop goes into the log. running is false when no
// such script runs.
func (w *scriptWatch) killApplyScript(function bool) (reply []byte, running bool, err error) {
	cur := w.fsm.stops.current()
	if cur.seq == 0 {
		return nil, false, nil
	}
	if !w.node.isLeader() {
		return nil, true, w.node.leaderError()
	}
	reply, err = w.killCommand(function, 0)
	if err != nil || string(reply) != string(resp.OK) {
		return reply, true, err
	}
	return reply, true, w.proposer.proposeStop(cur.ref, stopUser)
}
