package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestTermProberTally(t *testing.T) {
	p := &termProber{node: &raftNode{id: "a:1"}}
	srv := func(addr string, s raft.ServerSuffrage) raft.Server {
		return raft.Server{ID: raft.ServerID(addr), Address: raft.ServerAddress(addr), Suffrage: s}
	}
	for _, tc := range []struct {
		name                  string
		servers               []raft.Server
		others, votes, quorum int
	}{
		{"alone", []raft.Server{srv("a:1", raft.Voter)}, 0, 1, 1},
		{"three", []raft.Server{srv("a:1", raft.Voter), srv("b:1", raft.Voter), srv("c:1", raft.Voter)}, 2, 1, 2},
		{"non-voters do not count", []raft.Server{srv("a:1", raft.Voter), srv("b:1", raft.Voter), srv("c:1", raft.Nonvoter)}, 1, 1, 2},
		{"four", []raft.Server{srv("a:1", raft.Voter), srv("b:1", raft.Voter), srv("c:1", raft.Voter), srv("d:1", raft.Voter)}, 3, 1, 3},
		{"self removed", []raft.Server{srv("b:1", raft.Voter), srv("c:1", raft.Voter)}, 2, 0, 2},
	} {
		others, votes, quorum := p.tally(tc.servers)
		if len(others) != tc.others || votes != tc.votes || quorum != tc.quorum {
			t.Errorf("%s: %d others, %d votes, quorum %d; want %d, %d, %d", tc.name, len(others), votes, quorum, tc.others, tc.votes, tc.quorum)
		}
	}
}

// TestTermProberCollect: a quorum of terms no higher than the leader's
// confirms; failures count as no vote; too few answers fail at once,
// without waiting for the rest.
func TestTermProberCollect(t *testing.T) {
	p := &termProber{node: &raftNode{id: "a:1", log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	run := func(votes, quorum, asked int, answers ...termAnswer) error {
		ch := make(chan termAnswer, len(answers))
		for _, a := range answers {
			ch <- a
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return p.collect(ctx, 5, votes, quorum, asked, ch)
	}
	failed := termAnswer{err: errors.New("refused")}
	if err := run(1, 2, 2, failed, termAnswer{term: 5}); err != nil {
		t.Errorf("one failure, one answer at the leader's term: %v", err)
	}
	if err := run(1, 2, 2, termAnswer{term: 3}); err != nil {
		t.Errorf("an answer at a lower term: %v", err)
	}
	if err := run(1, 3, 3, failed, failed); !errors.Is(err, errNoQuorum) || !errors.Is(err, ErrReadVerify) {
		t.Errorf("two failures of three when two answers are needed: %v, want errNoQuorum", err)
	}
	if err := run(1, 2, 2, termAnswer{err: errOlderPeer}); !errors.Is(err, errOlderPeer) {
		t.Errorf("an older peer: %v, want errOlderPeer", err)
	}
	if err := run(1, 2, 1); !errors.Is(err, ErrTimeout) {
		t.Errorf("no answer in time: %v, want ErrTimeout", err)
	}
}
