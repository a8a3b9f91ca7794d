package main

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// A script that never ends would block the child on every node, and the
// entry would hang every replay. redraft stops such a script the same way
// on every node (docs/DESIGN.md, "A script that never ends"):
//
//   - the decision is an entry in the log: entryStop names command Pos of
//     entry Index, proposed by a leader whose child has run that script for
//     longer than busy-reply-threshold (or that a client asked to kill);
//   - a script command's outcome is decided by the first later entry that
//     either stops it or was proposed by a leader that had applied it (its
//     A reaches the script's index): that leader ran it to the end, so it
//     stands;
//   - a stopped script has no effect on any node: a node still running it
//     kills it (SCRIPT KILL, which works while it has not written), or kills
//     its child and rebuilds it from a snapshot taken before the script,
//     replaying the log without it; a node that ran it to the end rebuilds
//     the same way; a node that has not reached it skips it.
//
// This file is the apply path's side; scriptwatch.go watches and decides.

// scriptStops is what the apply path shares with the watchdog: the script
// commands a committed entryStop voids, the script the child runs for the
// apply path right now, and the gate that keeps the apply path's scripts
// and local read-only scripts apart (a SCRIPT KILL must only ever reach
// the script it is meant for).
type scriptStops struct {
	mu          sync.Mutex
	voided      map[scriptRef]byte // ref -> stop reason
	running     runningScript      // the apply path's script in the child now
	childKilled bool               // the watchdog killed the child to stop running

	// gate: the apply path holds it exclusively while its scripts run,
	// local read-only scripts hold it shared.
	gate sync.RWMutex
	// threshold is busy-reply-threshold in ms, as the log sets it.
	threshold atomic.Int64
}

// runningScript is a script command the child is running.
type runningScript struct {
	ref      scriptRef
	function bool   // FCALL (FUNCTION KILL) rather than EVAL (SCRIPT KILL)
	seq      uint64 // changes with every script started; 0: none runs
}

func newScriptStops() *scriptStops {
	s := &scriptStops{voided: make(map[scriptRef]byte)}
	s.threshold.Store(5000)
	return s
}

// void records that ref is stopped, for reason.
func (s *scriptStops) void(ref scriptRef, reason byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.voided[ref]; !ok {
		s.voided[ref] = reason
	}
}

// voidedReason is ref's stop reason, 0 if it is not stopped.
func (s *scriptStops) voidedReason(ref scriptRef) byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.voided[ref]
}

// forgetUpTo drops what concerns entries up to index (a snapshot covers
// them).
func (s *scriptStops) forgetUpTo(index uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ref := range s.voided {
		if ref.Index <= index {
			delete(s.voided, ref)
		}
	}
}

var runSeq atomic.Uint64

// setRunning records that the child now runs the script of ref.
func (s *scriptStops) setRunning(ref scriptRef, function bool) {
	s.mu.Lock()
	s.running = runningScript{ref: ref, function: function, seq: runSeq.Add(1)}
	s.mu.Unlock()
}

// clearRunning records that the apply path's script has ended.
func (s *scriptStops) clearRunning() {
	s.mu.Lock()
	s.running = runningScript{}
	s.mu.Unlock()
}

// current is the apply path's script the child runs now (seq 0: none).
func (s *scriptStops) current() runningScript {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// markChildKilled records that the watchdog killed the child to stop the
// running script; takeChildKilled reads and clears it.
func (s *scriptStops) markChildKilled() {
	s.mu.Lock()
	s.childKilled = true
	s.mu.Unlock()
}

func (s *scriptStops) takeChildKilled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.childKilled
	s.childKilled = false
	return k
}

// stopReply is the reply to a script command that was stopped, in place of
// whatever the script would have answered.
func (s *scriptStops) stopReply(reason byte, function bool) []byte {
	if reason == stopUser {
		if function {
			return []byte("-ERR Script killed by user with FUNCTION KILL...\r\n")
		}
		return []byte("-ERR Script killed by user with SCRIPT KILL...\r\n")
	}
	return []byte(fmt.Sprintf("-ERR Script stopped by redraft after running longer than busy-reply-threshold (%d ms); it has no effect on any node\r\n", s.threshold.Load()))
}

// isKillReply reports whether raw is the child's answer for a script that
// SCRIPT KILL or FUNCTION KILL stopped.
func isKillReply(raw []byte) bool {
	return strings.HasPrefix(string(raw), "-ERR Script killed by user with ")
}

// scriptOutcomes tracks, in the apply goroutine only, the script commands
// this node ran whose outcome the log has not decided yet (true: this
// node's child killed it cleanly), and the earliest entry to replay when
// what the node did differs from what the log decided.
type scriptOutcomes struct {
	undecided   map[scriptRef]bool
	rebuildFrom uint64 // 0: nothing to replay
	// killedFrom is the smallest entry index among the undecided scripts
	// this node's child killed (0: none), for the proposer (read from other
	// goroutines).
	killedFrom atomic.Uint64
}

// started registers a script command about to run.
func (o *scriptOutcomes) started(ref scriptRef) {
	if o.undecided == nil {
		o.undecided = make(map[scriptRef]bool)
	}
	o.undecided[ref] = false
}

// killed records that the child answered ref with a kill.
func (o *scriptOutcomes) killed(ref scriptRef) {
	if _, ok := o.undecided[ref]; ok {
		o.undecided[ref] = true
	}
	o.publish()
}

// publish updates killedFrom from undecided.
func (o *scriptOutcomes) publish() {
	var from uint64
	for ref, killed := range o.undecided {
		if killed && (from == 0 || ref.Index < from) {
			from = ref.Index
		}
	}
	o.killedFrom.Store(from)
}

// pending reports whether any outcome is undecided.
func (o *scriptOutcomes) pending() bool { return len(o.undecided) > 0 }

// upTo is the largest entry index with an undecided script (0: none).
func (o *scriptOutcomes) upTo() uint64 {
	var m uint64
	for ref := range o.undecided {
		m = max(m, ref.Index)
	}
	return m
}

// decide applies what entry e decides: scripts of entries it follows stand
// (e's leader had applied them), and an entryStop stops its script. Where
// this node did otherwise, the entries from that script on must be
// replayed (rebuildFrom).
func (o *scriptOutcomes) decide(e *entry, stops *scriptStops) {
	if e.Kind == entryStop {
		if killed, ok := o.undecided[e.Stop.Ref]; ok {
			delete(o.undecided, e.Stop.Ref)
			stops.void(e.Stop.Ref, e.Stop.Reason)
			if !killed {
				o.replayFrom(e.Stop.Ref.Index)
			}
		}
	}
	for ref, killed := range o.undecided {
		if e.decides(ref.Index) {
			delete(o.undecided, ref)
			if killed {
				o.replayFrom(ref.Index)
			}
		}
	}
	o.publish()
}

// replayFrom asks for a replay from entry index on.
func (o *scriptOutcomes) replayFrom(index uint64) {
	if o.rebuildFrom == 0 || index < o.rebuildFrom {
		o.rebuildFrom = index
	}
}

// reset forgets everything (after a snapshot was restored).
func (o *scriptOutcomes) reset() {
	o.undecided, o.rebuildFrom = nil, 0
	o.killedFrom.Store(0)
}

// stopsInBatch returns the script commands stopped within a batch of
// decoded entries (with their log indexes): those whose entry is in the
// batch and which no entry between it and the stop decides first. They are
// skipped when their entry is applied.
func stopsInBatch(entries []*entry, indexes []uint64) map[scriptRef]byte {
	var out map[scriptRef]byte
	for p, e := range entries {
		if e == nil || e.Kind != entryStop {
			continue
		}
		ref := e.Stop.Ref
		first := -1
		for q := 0; q < p; q++ {
			if indexes[q] == ref.Index {
				first = q
			}
		}
		if first < 0 {
			continue // the script's entry is in an earlier batch: decide() handles it
		}
		decided := false
		for q := first + 1; q < p; q++ {
			if entries[q] != nil && entries[q].decides(ref.Index) {
				decided = true
			}
		}
		if !decided {
			if out == nil {
				out = make(map[scriptRef]byte)
			}
			out[ref] = e.Stop.Reason
		}
	}
	return out
}
