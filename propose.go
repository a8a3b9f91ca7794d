package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Batching limits for one log entry.
const (
	maxBatchCommands = 1024
	maxBatchBytes    = 512 << 10
	maxInFlight      = 1 // entries handed to Raft and not yet applied: one, so waiting writes form the next batch (group commit; measured best in make bench)
)

// requestTimeout bounds how long one request may wait on the log.
const requestTimeout = 10 * time.Second

// sweepPeriod is how often the leader looks for keys past their deadline.
const sweepPeriod = 20 * time.Millisecond

// proposal is one request to the log: client commands, or a sweep of due
// keys. done is closed once replies (or err) are set.
type proposal struct {
	cmds    []entryCmd
	sweep   bool
	mark    bool // an entry of its own that only decides earlier scripts
	replies [][]byte
	index   uint64 // the log index of the entry that carried it
	err     error
	done    chan struct{}
}

// logClock hands out the T of each new entry (nextT in clock.go) from the
// local clock.
type logClock struct {
	wall    func() int64 // the local clock in ms
	applied func() int64 // T of the last applied entry
	last    int64        // the last T handed out
}

// next returns the T for a new entry.
func (c *logClock) next() int64 {
	c.last = nextT(c.wall(), c.last, c.applied())
	return c.last
}

// proposer is the single place where entries enter the log. It coalesces
// concurrent proposals into one entry (group commit), stamps each entry
// with the log time T, and proposes sweeps of keys past their deadline.
type proposer struct {
	node  *raftNode
	fsm   *fsm
	clock *logClock
	in    chan *proposal
	slots chan struct{}
	held  *proposal // read while batching, it must start the next batch
	log   *slog.Logger
	// metrics records each command entry's size and its time from
	// proposal to being applied (metrics.go).
	metrics proposalMetrics

	sweepMu sync.Mutex // one sweep round at a time
}

// proposalMetrics is what the proposer records.
type proposalMetrics interface {
	Proposed(cmds int, d time.Duration)
}

// newProposer proposes to n; wall is the local clock in ms.
func newProposer(n *raftNode, f *fsm, wall func() int64, m proposalMetrics, log *slog.Logger) *proposer {
	return &proposer{
		node: n, fsm: f, log: log, metrics: m,
		clock: &logClock{wall: wall, applied: f.lastTime},
		in:    make(chan *proposal, 4096),
		slots: make(chan struct{}, maxInFlight),
	}
}

// write proposes cmds as one request and waits for their replies (or an
// error from the Raft layer: *NotLeaderError, ErrNoLeader, ErrTimeout,
// ErrLeadershipLost).
func (p *proposer) write(ctx context.Context, cmds []entryCmd) ([][]byte, error) {
	replies, _, err := p.writeAt(ctx, cmds)
	return replies, err
}

// writeAt is write that also returns the log index at which cmds were
// applied.
func (p *proposer) writeAt(ctx context.Context, cmds []entryCmd) ([][]byte, uint64, error) {
	if err := p.node.waitReady(ctx); err != nil {
		return nil, 0, err
	}
	pr := &proposal{cmds: cmds, done: make(chan struct{})}
	if err := p.submitAndWait(ctx, pr); err != nil {
		return nil, 0, err
	}
	return pr.replies, pr.index, nil
}

// submitAndWait queues pr and waits until it is done or requestTimeout
// passes.
func (p *proposer) submitAndWait(ctx context.Context, pr *proposal) error {
	p.in <- pr
	timeout := time.NewTimer(requestTimeout)
	defer timeout.Stop()
	select {
	case <-pr.done:
		return pr.err
	case <-ctx.Done():
		return ErrTimeout
	case <-timeout.C:
		return ErrTimeout
	}
}

// run forms and proposes entries until stop closes.
func (p *proposer) run(stop <-chan struct{}) {
	for {
		first := p.held
		p.held = nil
		if first == nil {
			select {
			case first = <-p.in:
			case <-stop:
				return
			}
		}
		select {
		case p.slots <- struct{}{}:
		case <-stop:
			return
		}
		p.propose(p.collect(first))
	}
}

// collect gathers more waiting command proposals behind first, up to the
// batch limits. A sweep or a mark is always an entry of its own.
func (p *proposer) collect(first *proposal) []*proposal {
	batch := []*proposal{first}
	if first.sweep || first.mark {
		return batch
	}
	n, size := len(first.cmds), 0
	for n < maxBatchCommands && size < maxBatchBytes {
		select {
		case pr := <-p.in:
			if pr.sweep || pr.mark {
				p.held = pr
				return batch
			}
			batch = append(batch, pr)
			n += len(pr.cmds)
			for _, c := range pr.cmds {
				size += cmdSize(&c)
			}
		default:
			return batch
		}
	}
	return batch
}

// propose encodes batch as one entry, hands it to Raft and replies when it
// is applied.
func (p *proposer) propose(batch []*proposal) {
	e := &entry{Kind: entryCommands, T: p.clock.next(), A: p.fsm.decidingIndex()}
	switch {
	case batch[0].mark:
		e.Kind = entryMark
	case batch[0].sweep:
		e.Kind = entrySweep
		e.Keys = p.fsm.dueKeys(e.T, maxBatchCommands)
		if len(e.Keys) == 0 {
			<-p.slots
			finish(batch, nil, nil)
			return
		}
	default:
		for _, pr := range batch {
			e.Cmds = append(e.Cmds, pr.cmds...)
		}
	}
	if !p.node.isLeader() {
		<-p.slots
		finish(batch, nil, p.node.leaderError())
		return
	}
	start := time.Now()
	fut := p.node.apply(encodeEntry(e), requestTimeout)
	go func() {
		err := fut.Error()
		<-p.slots
		if err != nil {
			finish(batch, nil, p.node.raftError(err))
			return
		}
		if e.Kind == entryCommands {
			p.metrics.Proposed(len(e.Cmds), time.Since(start))
		}
		res, _ := fut.Response().(*applyResult)
		for _, pr := range batch {
			pr.index = fut.Index()
		}
		finish(batch, res, nil)
	}()
}

// errMissingReply means the FSM returned fewer replies than commands.
var errMissingReply = errors.New("internal error: missing reply")

// finish hands each proposal its share of the replies.
func finish(batch []*proposal, res *applyResult, err error) {
	off := 0
	for _, pr := range batch {
		switch {
		case err != nil:
			pr.err = err
		case res != nil && off+len(pr.cmds) <= len(res.replies):
			pr.replies = res.replies[off : off+len(pr.cmds)]
		case len(pr.cmds) > 0:
			pr.err = errMissingReply
		}
		off += len(pr.cmds)
		close(pr.done)
	}
}

// dueNow reports whether the expiry index holds a deadline at or before
// now (the local clock).
func (p *proposer) dueNow(now int64) bool {
	return p.fsm.anyDueBy(now)
}

// sweep proposes the deletion of every key due by the local clock and waits
// until it is applied.
func (p *proposer) sweep(ctx context.Context) error {
	p.sweepMu.Lock()
	defer p.sweepMu.Unlock()
	for p.dueNow(p.clock.wall()) {
		if err := p.node.waitReady(ctx); err != nil {
			return err
		}
		if err := p.submitAndWait(ctx, &proposal{sweep: true, done: make(chan struct{})}); err != nil {
			return err
		}
	}
	return nil
}

// sweepLoop makes the leader sweep keys as their deadlines pass, so that
// they disappear on every node even when nobody reads them, and decide
// the scripts it has applied when no other entry follows them (mark).
func (p *proposer) sweepLoop(stop <-chan struct{}) {
	var marked uint64
	every(stop, sweepPeriod, func() {
		if !p.node.isLeader() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		if err := p.sweep(ctx); err != nil {
			p.log.Debug("sweep", "err", err)
		}
		if upTo := p.fsm.undecidedUpTo(); upTo > marked && p.fsm.decidingIndex() >= upTo {
			marked = upTo
			select {
			case p.in <- &proposal{mark: true, done: make(chan struct{})}:
			default: // the queue is full: the entries in it decide as well
			}
		}
	})
}

// proposeStop asks the cluster to stop the script of ref, past the
// proposer (which waits for the stuck entry): straight to Raft.
func (p *proposer) proposeStop(ref scriptRef, reason byte) error {
	e := &entry{Kind: entryStop, T: p.fsm.lastTime(), A: p.fsm.decidingIndex(), Stop: scriptStop{Ref: ref, Reason: reason}}
	if !p.node.isLeader() {
		return p.node.leaderError()
	}
	return p.node.raftError(p.node.apply(encodeEntry(e), requestTimeout).Error())
}
