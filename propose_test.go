package main

import (
	"strings"
	"testing"
)

func cmdProposal(args ...string) *proposal {
	return &proposal{cmds: []entryCmd{{Args: argv(args...)}}, done: make(chan struct{})}
}

func newTestProposer() *proposer {
	return &proposer{in: make(chan *proposal, 4096), fsm: &fsm{}}
}

func TestCollectTakesWaitingProposals(t *testing.T) {
	p := newTestProposer()
	first := cmdProposal("SET", "a", "1")
	for i := 0; i < 5; i++ {
		p.in <- cmdProposal("SET", "b", "2")
	}
	batch := p.collect(first)
	if len(batch) != 6 || batch[0] != first {
		t.Fatalf("batch of %d, first %v", len(batch), batch[0] == first)
	}
	if len(p.in) != 0 || p.held != nil {
		t.Errorf("left %d queued, held %v", len(p.in), p.held)
	}
	// Nothing waiting: a batch of one, without blocking.
	if batch := p.collect(cmdProposal("GET", "x")); len(batch) != 1 {
		t.Errorf("batch of %d", len(batch))
	}
}

func TestCollectSweepIsAlone(t *testing.T) {
	p := newTestProposer()
	sweep := &proposal{sweep: true, done: make(chan struct{})}
	p.in <- cmdProposal("SET", "a", "1")
	if batch := p.collect(sweep); len(batch) != 1 || batch[0] != sweep {
		t.Fatalf("sweep batch = %v", batch)
	}
	if len(p.in) != 1 {
		t.Error("a sweep batch consumed a waiting proposal")
	}
	// A sweep met while batching is held for the next batch, in order.
	p = newTestProposer()
	a, b, c := cmdProposal("SET", "a", "1"), cmdProposal("SET", "b", "1"), cmdProposal("SET", "c", "1")
	p.in <- b
	p.in <- sweep
	p.in <- c
	batch := p.collect(a)
	if len(batch) != 2 || batch[0] != a || batch[1] != b {
		t.Fatalf("batch = %v", batch)
	}
	if p.held != sweep {
		t.Fatal("the sweep was not held")
	}
	if len(p.in) != 1 || <-p.in != c {
		t.Error("the proposal after the sweep was consumed")
	}
}

func TestCollectCommandLimit(t *testing.T) {
	p := newTestProposer()
	total := maxBatchCommands + 500
	for i := 1; i < total; i++ {
		p.in <- cmdProposal("INCR", "n")
	}
	batch := p.collect(cmdProposal("INCR", "n"))
	n := 0
	for _, pr := range batch {
		n += len(pr.cmds)
	}
	if n != maxBatchCommands {
		t.Errorf("batch holds %d commands, want %d", n, maxBatchCommands)
	}
	if len(batch)+len(p.in) != total {
		t.Errorf("proposals lost: %d batched + %d queued != %d", len(batch), len(p.in), total)
	}
}

func TestCollectByteLimit(t *testing.T) {
	p := newTestProposer()
	big := strings.Repeat("v", 300<<10)
	const total = 10
	for i := 1; i < total; i++ {
		p.in <- cmdProposal("SET", "k", big)
	}
	first := cmdProposal("SET", "k", big)
	batch := p.collect(first)
	if len(batch) >= total || len(batch) < 2 {
		t.Fatalf("batch of %d proposals of 300 KiB", len(batch))
	}
	// Batching stops once the limit is passed (the first proposal always goes).
	size := 0
	for _, pr := range batch[1 : len(batch)-1] {
		size += cmdSize(&pr.cmds[0])
	}
	if size >= maxBatchBytes {
		t.Errorf("batch went on after %d bytes", size)
	}
	if len(batch)+len(p.in) != total {
		t.Errorf("proposals lost")
	}
}

func TestNextTNeverDecreases(t *testing.T) {
	wall, applied := int64(1000), int64(0)
	c := &logClock{wall: func() int64 { return wall }, applied: func() int64 { return applied }}
	if got := c.next(); got != 1000 {
		t.Fatalf("next = %d", got)
	}
	wall = 900 // the clock steps back
	if got := c.next(); got != 1000 {
		t.Errorf("next after the clock stepped back = %d", got)
	}
	wall = 1500
	if got := c.next(); got != 1500 {
		t.Errorf("next = %d", got)
	}
	// A new leader never goes below what was already applied.
	applied = 5000
	if got := c.next(); got != 5000 {
		t.Errorf("next below the applied time: %d", got)
	}
	wall = 6000
	if got := c.next(); got != 6000 {
		t.Errorf("next = %d", got)
	}
}

func TestFinishSplitsReplies(t *testing.T) {
	a := &proposal{cmds: make([]entryCmd, 2), done: make(chan struct{})}
	b := &proposal{done: make(chan struct{})} // no commands
	c := &proposal{cmds: make([]entryCmd, 1), done: make(chan struct{})}
	res := &applyResult{replies: [][]byte{[]byte("+1\r\n"), []byte("+2\r\n"), []byte("+3\r\n")}}
	finish([]*proposal{a, b, c}, res, nil)
	for _, pr := range []*proposal{a, b, c} {
		select {
		case <-pr.done:
		default:
			t.Fatal("done not closed")
		}
		if pr.err != nil {
			t.Errorf("err %v", pr.err)
		}
	}
	if len(a.replies) != 2 || string(a.replies[0]) != "+1\r\n" || string(a.replies[1]) != "+2\r\n" {
		t.Errorf("a.replies = %q", a.replies)
	}
	if len(b.replies) != 0 {
		t.Errorf("b.replies = %q", b.replies)
	}
	if len(c.replies) != 1 || string(c.replies[0]) != "+3\r\n" {
		t.Errorf("c.replies = %q", c.replies)
	}
}

func TestFinishErrors(t *testing.T) {
	a := &proposal{cmds: make([]entryCmd, 2), done: make(chan struct{})}
	b := &proposal{sweep: true, done: make(chan struct{})}
	finish([]*proposal{a, b}, nil, ErrNoLeader)
	if a.err != ErrNoLeader || b.err != ErrNoLeader || a.replies != nil {
		t.Errorf("err not propagated: %v %v", a.err, b.err)
	}
	// Too few replies: the proposals without theirs get an error, never a
	// reply belonging to someone else.
	a = &proposal{cmds: make([]entryCmd, 1), done: make(chan struct{})}
	c := &proposal{cmds: make([]entryCmd, 2), done: make(chan struct{})}
	finish([]*proposal{a, c}, &applyResult{replies: [][]byte{[]byte(":1\r\n"), []byte(":2\r\n")}}, nil)
	if len(a.replies) != 1 || c.replies != nil || c.err != errMissingReply {
		t.Errorf("a %q / c %q %v", a.replies, c.replies, c.err)
	}
	// An empty sweep (nothing due) finishes without error or replies.
	s := &proposal{sweep: true, done: make(chan struct{})}
	finish([]*proposal{s}, nil, nil)
	if s.err != nil || s.replies != nil {
		t.Errorf("empty sweep: %v %q", s.err, s.replies)
	}
}
