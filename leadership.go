package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// Confirming leadership for --consistency high.
//
// A linearizable read may be served by a leader only once it knows that no
// other leader existed when the read arrived (the Raft paper's ReadIndex,
// section 6.4). hashicorp/raft's VerifyLeader answers this by counting the
// next successful replies of its replication goroutines, but a reply to a
// heartbeat sent before the read arrived counts too. For a leader frozen
// (SIGSTOP, a paused VM, a stalled disk) for longer than an election
// timeout, such a reply, from before the freeze and read after it, confirms
// a leadership that a new leader has already ended: the read then misses
// writes the new leader has acknowledged.
//
// The confirmation here asks every other voter for its current term, with
// a request sent after the round started. A quorum of voters (this node
// included) whose terms are no higher than this leader's proves that no
// later term had been won when the round started: a leader of a later term
// needs the votes of a majority, that majority shares a member with the
// quorum, and a voter raises its term before it votes. The request travels
// on an authenticated peer stream (the same as --follower-proxy's) and is
// answered by RAFTTERM, from memory, without the follower's apply path.

// probeTimeout bounds one voter's answer to a term probe.
const probeTimeout = time.Second

// termProber confirms leadership with fresh term probes.
type termProber struct {
	node *raftNode
	// dial opens an authenticated peer stream to a voter's client port.
	dial func(addr string, timeout time.Duration) (net.Conn, error)

	mu     sync.Mutex
	voters map[raft.ServerAddress]*voterLink
}

// voterLink is the stream to one voter, used by one probe at a time: a
// round waits for the link (its answer must be to a request of its own)
// until the round ends.
type voterLink struct {
	turn chan struct{} // holds a token while a probe uses conn
	conn *redisconn.Conn
}

// take waits for the link until ctx ends.
func (l *voterLink) take(ctx context.Context) bool {
	select {
	case l.turn <- struct{}{}:
		if ctx.Err() != nil { // the round ended meanwhile
			l.release()
			return false
		}
		return true
	case <-ctx.Done():
		return false
	}
}

// tryTake takes the link only if it is free.
func (l *voterLink) tryTake() bool {
	select {
	case l.turn <- struct{}{}:
		return true
	default:
		return false
	}
}

// release hands the link to the next probe.
func (l *voterLink) release() { <-l.turn }

// errNoQuorum says too few voters answered a term probe in time.
var errNoQuorum = errors.New("leadership not confirmed by a quorum of voters")

// errOlderPeer says a voter does not know RAFTTERM (a version before it,
// during a rolling upgrade).
var errOlderPeer = errors.New("voter does not answer RAFTTERM")

// termAnswer is one voter's answer to a probe: its term, or why none.
type termAnswer struct {
	term uint64
	err  error
}

// confirm returns the commit index a read arriving before the call may be
// served at, once a quorum has confirmed that this node still leads.
func (p *termProber) confirm(ctx context.Context) (uint64, error) {
	r := p.node.raft
	if r.State() != raft.Leader {
		return 0, p.node.leaderError()
	}
	term, commit := r.CurrentTerm(), r.CommitIndex()
	servers, err := p.node.members()
	if err != nil {
		return 0, p.node.raftError(err)
	}
	others, votes, quorum := p.tally(servers)
	if votes < quorum {
		answers := make(chan termAnswer, len(others))
		for _, addr := range others {
			go func() { answers <- p.askTerm(ctx, addr) }()
		}
		err := p.collect(ctx, term, votes, quorum, len(others), answers)
		if errors.Is(err, errOlderPeer) {
			return p.node.verifyLeader() // as before RAFTTERM existed
		}
		if err != nil {
			return 0, err
		}
	}
	if r.State() != raft.Leader || r.CurrentTerm() != term {
		return 0, p.node.leaderError()
	}
	return commit, nil
}

// tally lists the other voters of servers, counts this node's own vote, and
// gives the quorum. It also forgets links to servers no longer voting.
func (p *termProber) tally(servers []raft.Server) (others []raft.ServerAddress, votes, quorum int) {
	self := raft.ServerAddress(p.node.id)
	voters := 0
	for _, s := range servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if s.Address == self {
			votes++
		} else {
			others = append(others, s.Address)
		}
	}
	p.forgetExcept(others)
	return others, votes, voters/2 + 1
}

// collect counts answers until a quorum, a higher term, or no hope.
func (p *termProber) collect(ctx context.Context, term uint64, votes, quorum, asked int, answers <-chan termAnswer) error {
	for pending := asked; votes < quorum; pending-- {
		if votes+pending < quorum {
			return fmt.Errorf("%w: %w: %d of %d", ErrReadVerify, errNoQuorum, votes, quorum)
		}
		select {
		case a := <-answers:
			switch {
			case errors.Is(a.err, errOlderPeer):
				return a.err
			case a.err != nil:
				p.node.log.Debug("term probe", "err", a.err)
			case a.term > term:
				return p.node.leaderError() // a later term exists: this node no longer leads
			default:
				votes++
			}
		case <-ctx.Done():
			return ErrTimeout
		}
	}
	return nil
}

// askTerm sends RAFTTERM on the link to addr, dialling it if needed.
func (p *termProber) askTerm(ctx context.Context, addr raft.ServerAddress) termAnswer {
	link := p.link(addr)
	if !link.take(ctx) {
		return termAnswer{err: fmt.Errorf("%s: the round ended before the link was free", addr)}
	}
	defer link.release()
	deadline := time.Now().Add(probeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if link.conn == nil {
		nc, err := p.dial(string(addr), time.Until(deadline))
		if err != nil {
			return termAnswer{err: fmt.Errorf("%s: %w", addr, err)}
		}
		link.conn = redisconn.New(nc)
	}
	_ = link.conn.SetDeadline(deadline)
	raw, err := link.conn.Do("RAFTTERM")
	if err != nil {
		link.conn.Close()
		link.conn = nil
		return termAnswer{err: fmt.Errorf("%s: %w", addr, err)}
	}
	if term, ok := resp.ReplyInt(raw); ok && term > 0 {
		return termAnswer{term: uint64(term)}
	}
	if bytes.HasPrefix(raw, []byte("-ERR unknown command")) {
		return termAnswer{err: fmt.Errorf("%s: %w", addr, errOlderPeer)}
	}
	return termAnswer{err: fmt.Errorf("%s: RAFTTERM answered %q", addr, raw)}
}

// link returns the link to addr, creating it on first use.
func (p *termProber) link(addr raft.ServerAddress) *voterLink {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.voters == nil {
		p.voters = make(map[raft.ServerAddress]*voterLink)
	}
	l, ok := p.voters[addr]
	if !ok {
		l = &voterLink{turn: make(chan struct{}, 1)}
		p.voters[addr] = l
	}
	return l
}

// forgetExcept closes the idle links to servers not in keep.
func (p *termProber) forgetExcept(keep []raft.ServerAddress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.voters) <= len(keep) {
		return
	}
	wanted := make(map[raft.ServerAddress]bool, len(keep))
	for _, a := range keep {
		wanted[a] = true
	}
	for addr, l := range p.voters {
		if wanted[addr] || !l.tryTake() {
			continue
		}
		if l.conn != nil {
			l.conn.Close()
		}
		delete(p.voters, addr)
		l.release()
	}
}
