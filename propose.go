package main

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// Batching limits for one log entry.
const (
	maxBatchCommands = 1024
	maxBatchBytes    = 512 << 10
	maxInFlight      = 1 // entries handed to Raft and not yet applied: one, so waiting writes form the next batch (group commit; measured best in make bench)
)

// proposal is one client's request to the log: commands, or a sweep of due
// keys. done is closed when replies (or errReply) are set.
type proposal struct {
	cmds     []command
	sweep    bool
	replies  [][]byte
	errReply []byte
	done     chan struct{}
}

// proposer is the single place where entries enter the log. It coalesces
// concurrent proposals into one entry and stamps each entry with the leader
// time T, which never decreases.
type proposer struct {
	node   *node
	fsm    *fsm
	in     chan *proposal
	slots  chan struct{}
	lastT  int64
	held   *proposal // a proposal read while batching that must start the next batch
	tickMS func() int64
}

func newProposer(n *node, f *fsm) *proposer {
	return &proposer{node: n, fsm: f, in: make(chan *proposal, 4096), slots: make(chan struct{}, maxInFlight), tickMS: nowMS}
}

// submit queues p.
func (p *proposer) submit(pr *proposal) { p.in <- pr }

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
		batch := p.collect(first)
		p.propose(batch)
	}
}

// collect gathers more waiting command proposals behind first, up to the
// batch limits. A sweep is always an entry of its own.
func (p *proposer) collect(first *proposal) []*proposal {
	batch := []*proposal{first}
	if first.sweep {
		return batch
	}
	n, size := len(first.cmds), 0
	for n < maxBatchCommands && size < maxBatchBytes {
		select {
		case pr := <-p.in:
			if pr.sweep {
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

// nextT returns the time for a new entry: the local clock, but never less
// than any time already proposed or applied.
func (p *proposer) nextT() int64 {
	t := max(p.tickMS(), p.lastT, p.fsm.lastT.Load())
	p.lastT = t
	return t
}

// propose encodes batch as one entry, hands it to Raft and replies when it
// is applied.
func (p *proposer) propose(batch []*proposal) {
	e := &entry{Kind: entryCommands, T: p.nextT()}
	if batch[0].sweep {
		e.Kind = entrySweep
		e.Keys = p.fsm.index.dueKeys(e.T, maxBatchCommands)
		if len(e.Keys) == 0 {
			<-p.slots
			finish(batch, nil, nil)
			return
		}
	} else {
		for _, pr := range batch {
			e.Cmds = append(e.Cmds, pr.cmds...)
		}
	}
	if p.node.raft.State() != raft.Leader {
		<-p.slots
		finish(batch, nil, p.node.notLeaderError())
		return
	}
	fut := p.node.raft.Apply(encodeEntry(e), requestTimeout)
	go func() {
		err := fut.Error()
		<-p.slots
		if err != nil {
			finish(batch, nil, p.applyError(err))
			return
		}
		res, _ := fut.Response().(*applyResult)
		finish(batch, res, nil)
	}()
}

// applyError turns a Raft failure into a Redis-style error reply.
func (p *proposer) applyError(err error) []byte {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return p.node.notLeaderError()
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return respError("ERR leadership changed before the write was acknowledged; it may or may not have been applied")
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return respError("ERR timed out waiting for the Raft log; the write may or may not have been applied")
	}
	return respError(fmt.Sprintf("ERR raft: %v", err))
}

// finish hands each proposal its share of the replies.
func finish(batch []*proposal, res *applyResult, errReply []byte) {
	off := 0
	for _, pr := range batch {
		switch {
		case errReply != nil:
			pr.errReply = errReply
		case res != nil && off+len(pr.cmds) <= len(res.replies):
			pr.replies = res.replies[off : off+len(pr.cmds)]
		case len(pr.cmds) > 0:
			pr.errReply = respError("ERR internal error: missing reply")
		}
		off += len(pr.cmds)
		close(pr.done)
	}
}
