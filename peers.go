package main

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// hashicorp/raft keeps each follower's match index to itself. The leader's
// view of its followers (INFO's # Replication and # Raft) comes from
// watching the replies to its own AppendEntries calls instead: a
// successful reply to a call carrying entries means the follower holds
// the log up to the last of them (that is how Raft sets matchIndex), and
// any successful reply, heartbeats included, is a contact.

// peerProgress is what the leader last learned about one follower.
type peerProgress struct {
	match       atomic.Uint64
	lastContact atomic.Int64 // unix ns, 0: never
}

// peerTracker holds the progress of every peer this node has sent
// AppendEntries to.
type peerTracker struct {
	peers sync.Map // raft.ServerID → *peerProgress
}

func (t *peerTracker) get(id raft.ServerID) *peerProgress {
	if p, ok := t.peers.Load(id); ok {
		return p.(*peerProgress)
	}
	p, _ := t.peers.LoadOrStore(id, &peerProgress{})
	return p.(*peerProgress)
}

// observe records the outcome of one AppendEntries call to id.
func (t *peerTracker) observe(id raft.ServerID, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse, err error) {
	if err != nil || resp == nil || !resp.Success {
		return
	}
	p := t.get(id)
	p.lastContact.Store(time.Now().UnixNano())
	if n := len(req.Entries); n > 0 {
		p.match.Store(req.Entries[n-1].Index)
	}
}

// progress returns what is known about id: its match index and when it
// last answered (zero time: never).
func (t *peerTracker) progress(id raft.ServerID) (uint64, time.Time) {
	v, ok := t.peers.Load(id)
	if !ok {
		return 0, time.Time{}
	}
	p := v.(*peerProgress)
	var at time.Time
	if ns := p.lastContact.Load(); ns != 0 {
		at = time.Unix(0, ns)
	}
	return p.match.Load(), at
}

// trackingTransport is the network transport with the replies to
// AppendEntries recorded in a peerTracker, and the highest commit index a
// leader has announced to this node (in AppendEntries and heartbeats,
// before Raft looks at them). A follower whose own commit index lags
// because it is still installing a snapshot knows from that how far it
// has to go (readiness, metrics.go). Every other method, and the optional
// interfaces Raft looks for (WithClose, WithPreVote), come from the
// embedded transport.
type trackingTransport struct {
	*raft.NetworkTransport
	peers        *peerTracker
	leaderCommit *atomic.Uint64
	in           chan raft.RPC
	done         chan struct{}
	startOnce    sync.Once
	closeOnce    sync.Once
}

// newTrackingTransport wraps t; leaderCommit receives the announced
// commit index.
func newTrackingTransport(t *raft.NetworkTransport, peers *peerTracker, leaderCommit *atomic.Uint64) *trackingTransport {
	return &trackingTransport{NetworkTransport: t, peers: peers, leaderCommit: leaderCommit,
		in: make(chan raft.RPC), done: make(chan struct{})}
}

// noteRPC records the commit index an incoming AppendEntries announces.
func (t *trackingTransport) noteRPC(rpc raft.RPC) {
	if req, ok := rpc.Command.(*raft.AppendEntriesRequest); ok {
		for {
			old := t.leaderCommit.Load()
			if req.LeaderCommitIndex <= old || t.leaderCommit.CompareAndSwap(old, req.LeaderCommitIndex) {
				return
			}
		}
	}
}

// Consumer is the channel of incoming RPCs, each noted on its way to Raft.
func (t *trackingTransport) Consumer() <-chan raft.RPC {
	t.startOnce.Do(func() {
		go relayNoting(t.NetworkTransport.Consumer(), t.in, t.done, t.noteRPC)
	})
	return t.in
}

// SetHeartbeatHandler notes each heartbeat before Raft handles it.
func (t *trackingTransport) SetHeartbeatHandler(cb func(rpc raft.RPC)) {
	if cb == nil {
		t.NetworkTransport.SetHeartbeatHandler(nil)
		return
	}
	t.NetworkTransport.SetHeartbeatHandler(func(rpc raft.RPC) {
		t.noteRPC(rpc)
		cb(rpc)
	})
}

// Close stops forwarding and closes the transport.
func (t *trackingTransport) Close() error {
	t.closeOnce.Do(func() { close(t.done) })
	return t.NetworkTransport.Close()
}

// AppendEntries sends one AppendEntries call and records its outcome.
func (t *trackingTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	err := t.NetworkTransport.AppendEntries(id, target, req, resp)
	t.peers.observe(id, req, resp, err)
	return err
}

// AppendEntriesPipeline opens a pipeline whose replies are recorded.
func (t *trackingTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	tp := &trackingPipeline{AppendPipeline: p, id: id, peers: t.peers, out: make(chan raft.AppendFuture, 128), stop: make(chan struct{})}
	go tp.forward()
	return tp, nil
}

// trackingPipeline passes a pipeline's replies on to Raft after recording
// them.
type trackingPipeline struct {
	raft.AppendPipeline
	id    raft.ServerID
	peers *peerTracker
	out   chan raft.AppendFuture
	stop  chan struct{}
	once  sync.Once
}

// forward copies replies from the pipeline to Raft until Close.
func (p *trackingPipeline) forward() {
	relayNoting(p.AppendPipeline.Consumer(), p.out, p.stop, func(f raft.AppendFuture) {
		err := f.Error()
		var resp *raft.AppendEntriesResponse
		if err == nil {
			resp = f.Response()
		}
		p.peers.observe(p.id, f.Request(), resp, err)
	})
}

// relayNoting passes each value from in to out, calling note on it first,
// until stop closes.
func relayNoting[T any](in <-chan T, out chan<- T, stop <-chan struct{}, note func(T)) {
	for {
		select {
		case v := <-in:
			note(v)
			select {
			case out <- v:
			case <-stop:
				return
			}
		case <-stop:
			return
		}
	}
}

// Consumer is the channel Raft reads replies from.
func (p *trackingPipeline) Consumer() <-chan raft.AppendFuture { return p.out }

// Close closes the pipeline and ends forward.
func (p *trackingPipeline) Close() error {
	p.once.Do(func() { close(p.stop) })
	return p.AppendPipeline.Close()
}
