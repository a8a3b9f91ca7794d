package main

import (
	"io"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Measurements of the Raft node and the apply path. The apply path never
// reads a clock (TestApplyPathNeverReadsTheClock), so its batches and
// snapshots are timed here, around the FSM Raft calls; the layers record
// through these small interfaces, which *metrics.Metrics implements.

// nodeMetrics is what the Raft node and the FSM around it record.
type nodeMetrics interface {
	Applied(entries int, d time.Duration)
	Snapshotted(d time.Duration, err error)
	Restored()
	Synced(d time.Duration)
	BackedUp()
}

// measuredFSM is the FSM as Raft sees it: the real one, timed.
type measuredFSM struct {
	*fsm
	m nodeMetrics
}

// ApplyBatch applies logs and records how long it took.
func (f *measuredFSM) ApplyBatch(logs []*raft.Log) []any {
	start := time.Now()
	out := f.fsm.ApplyBatch(logs)
	f.m.Applied(len(logs), time.Since(start))
	return out
}

// Apply applies one log.
func (f *measuredFSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// Snapshot starts a snapshot whose Persist is timed.
func (f *measuredFSM) Snapshot() (raft.FSMSnapshot, error) {
	start := time.Now()
	s, err := f.fsm.Snapshot()
	if err != nil {
		f.m.Snapshotted(0, err)
		return nil, err
	}
	return &measuredSnapshot{FSMSnapshot: s, m: f.m, start: start}, nil
}

// Restore installs a snapshot and counts it.
func (f *measuredFSM) Restore(rc io.ReadCloser) error {
	err := f.fsm.Restore(rc)
	if err == nil {
		f.m.Restored()
	}
	return err
}

// measuredSnapshot times a snapshot from its fork to the end of Persist.
type measuredSnapshot struct {
	raft.FSMSnapshot
	m     nodeMetrics
	start time.Time
}

// Persist writes the snapshot and records the outcome.
func (s *measuredSnapshot) Persist(sink raft.SnapshotSink) error {
	err := s.FSMSnapshot.Persist(sink)
	s.m.Snapshotted(time.Since(s.start), err)
	return err
}

// syncStats counts the Raft log's fsyncs (wal backend) for INFO.
type syncStats struct {
	count   atomic.Int64
	totalNS atomic.Int64
	lastNS  atomic.Int64
	maxNS   atomic.Int64
}

// record adds one fsync of duration d.
func (s *syncStats) record(d time.Duration) {
	s.count.Add(1)
	s.totalNS.Add(int64(d))
	s.lastNS.Store(int64(d))
	for {
		old := s.maxNS.Load()
		if int64(d) <= old || s.maxNS.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

// timedSync runs sync, recording its duration in stats and m.
func timedSync(sync func() error, stats *syncStats, m nodeMetrics) error {
	start := time.Now()
	err := sync()
	d := time.Since(start)
	stats.record(d)
	if m != nil {
		m.Synced(d)
	}
	return err
}
