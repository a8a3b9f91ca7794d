package main

import (
	"context"
	"io/fs"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"github.com/redraft/redraft/internal/metrics"
)

// What the Raft node tells about itself: its log and snapshots, its
// readiness (/readyz, READY), its membership, and the gauges it registers.
// The instruments it records through are in metrics.go.

// lastIndex is the index of the last entry in this node's log.
func (n *raftNode) lastIndex() uint64 { return n.raft.LastIndex() }

// lastContact is when this node last heard from a leader (zero: never).
func (n *raftNode) lastContact() time.Time { return n.raft.LastContact() }

// logEntries is the number of entries in the Raft log.
func (n *raftNode) logEntries() uint64 {
	first, err1 := n.logs.FirstIndex()
	last, err2 := n.logs.LastIndex()
	if err1 != nil || err2 != nil || last == 0 || last < first {
		return 0
	}
	return last - first + 1
}

// logBytes is the size on disk of the Raft log and stable store.
func (n *raftNode) logBytes() int64 {
	switch n.backend {
	case "wal":
		return dirSize(filepath.Join(n.dataDir, "wal"))
	case "bolt":
		return dirSize(filepath.Join(n.dataDir, "raft.db"))
	}
	return 0
}

// lastSnapshot is the newest snapshot's index and size (0, 0: none).
func (n *raftNode) lastSnapshot() (uint64, int64) {
	metas, err := n.snaps.List()
	if err != nil || len(metas) == 0 {
		return 0, 0
	}
	return metas[0].Index, metas[0].Size
}

// dirSize is the total size of the files under path (a file or a
// directory).
func dirSize(path string) int64 {
	var total int64
	_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}

// raftStates are the values of redraft_raft_state.
var raftStates = []string{"Follower", "Candidate", "Leader", "Shutdown"}

// registerMetrics registers the node's state, read at every scrape.
func (n *raftNode) registerMetrics(m *metrics.Metrics) {
	m.State("raft_state", "This node's Raft role (1 for the current one).", "state", raftStates, func() string { return n.state().String() })
	m.Gauge("raft_leader_known", "1 when this node knows a leader.", func() float64 { return b2f(n.leaderAddr() != "") })
	m.Gauge("raft_term", "Current Raft term.", func() float64 { return float64(n.raft.CurrentTerm()) })
	m.Gauge("raft_commit_index", "Latest log index known to be committed.", func() float64 { return float64(n.commitIndex()) })
	m.Gauge("raft_applied_index", "Latest log index applied to the child.", func() float64 { return float64(n.fsm.appliedIndex()) })
	m.Gauge("raft_last_log_index", "Latest index in this node's log.", func() float64 { return float64(n.lastIndex()) })
	m.Gauge("raft_log_entries", "Entries in the Raft log (the rest are in the snapshot).", func() float64 { return float64(n.logEntries()) })
	m.Gauge("raft_log_bytes", "Size of the Raft log on disk.", func() float64 { return float64(n.logBytes()) })
	m.Gauge("raft_last_snapshot_index", "Log index of the newest snapshot.", func() float64 { i, _ := n.lastSnapshot(); return float64(i) })
	m.Gauge("raft_last_snapshot_bytes", "Size of the newest snapshot.", func() float64 { _, s := n.lastSnapshot(); return float64(s) })
	m.Gauge("raft_members", "Members of the cluster (voters and non-voters).", func() float64 { s, _ := n.members(); return float64(len(s)) })
	m.Gauge("ready", "1 when /readyz answers 200: a leader is known and this node has applied what it knows to be committed.", func() float64 {
		ready, _ := n.readiness(context.Background(), 0)
		return b2f(ready)
	})
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// readiness says whether the node is ready to serve: it is a member, a
// leader is known and has committed an entry of its term (a leader: it has
// applied its barrier), and this node's FSM has applied everything it
// knows to be committed, including what a leader announced while this
// node was still installing a snapshot. It waits up to wait for the last,
// which a node under load reaches a moment after each commit.
func (n *raftNode) readiness(ctx context.Context, wait time.Duration) (bool, string) {
	switch {
	case n.removed.Load():
		return false, "this node was removed from the cluster"
	case n.state() == raft.Shutdown:
		return false, "raft is shut down"
	case n.leaderAddr() == "":
		return false, "no leader is known"
	case !n.isMember():
		return false, "not a member yet (joining)"
	case n.isLeader() && !n.readyFast.Load():
		return false, "new leader: applying what earlier leaders committed"
	case !n.isLeader() && !n.commitInCurrentTerm():
		return false, "waiting for the leader's first commit in this term"
	}
	target := max(n.commitIndex(), n.leaderCommit.Load())
	deadline := time.Now().Add(wait)
	for {
		applied, of := n.raftApplied(), target
		if applied >= target {
			// Raft counts an entry as applied once it is queued for the
			// FSM; the child has it only once the FSM has applied it.
			of = lastFSMEntry(target, n.logs)
			if applied = n.fsm.appliedIndex(); applied >= of {
				return true, "ready"
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false, "catching up: applied " + strconv.FormatUint(applied, 10) + " of " + strconv.FormatUint(of, 10)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lastFSMEntry is the index of the last entry at or before index that
// Raft hands to the FSM (a command or a configuration change; no-ops and
// barriers never reach it), or 0 when the log no longer holds the entries
// back to such an entry: those are in the snapshot, which Raft installs
// before its applied index moves past it.
func lastFSMEntry(index uint64, logs raft.LogStore) uint64 {
	for i := index; i > 0; i-- {
		var l raft.Log
		if logs.GetLog(i, &l) != nil {
			return 0
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return i
		}
	}
	return 0
}

// commitInCurrentTerm reports whether the entry at this node's commit
// index is of the current term. Until a new leader has committed an entry
// of its own term (its no-op), entries of earlier terms are not known to
// be committed: after a whole cluster restarts, for instance, every
// follower's commit index stays 0 (and its child empty) until then.
func (n *raftNode) commitInCurrentTerm() bool {
	return entryOfTerm(n.commitIndex(), n.raft.CurrentTerm(), n.logs, n.snaps)
}

// entryOfTerm reports whether the entry at index (not 0) is of term: from
// the log, or, when the log no longer has it, from the newest snapshot
// ending there (a follower that has just installed a snapshot has an
// empty log).
func entryOfTerm(index, term uint64, logs raft.LogStore, snaps raft.SnapshotStore) bool {
	if index == 0 {
		return false
	}
	var l raft.Log
	if err := logs.GetLog(index, &l); err == nil {
		return l.Term == term
	}
	metas, err := snaps.List()
	return err == nil && len(metas) > 0 && metas[0].Index == index && metas[0].Term == term
}

// isMember reports whether this node's latest configuration lists it.
func (n *raftNode) isMember() bool {
	_, err := n.member(n.id)
	return err == nil
}
