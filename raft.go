package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
	"github.com/redraft/redraft/internal/logcache"

	"github.com/redraft/redraft/internal/logging"
	"github.com/redraft/redraft/internal/mux"
	"github.com/redraft/redraft/internal/peer"
	"github.com/redraft/redraft/internal/tlsconf"
)

// raftNode is this process's Raft member.
type raftNode struct {
	raft      *raft.Raft
	fsm       *fsm
	transport *raft.NetworkTransport
	id        string         // == advertise address
	identity  *peer.Identity // the cluster's ID, exchanged by every peer handshake
	log       *slog.Logger
	closers   []io.Closer
	stop      chan struct{} // closed by close: ends the durability loops

	// lastLeader is the address of the last leader this node knew (nil
	// before any): it stays through an election, while no leader is known.
	lastLeader atomic.Pointer[string]

	// What INFO and the metrics read (metrics.go, peers.go).
	logs    raft.LogStore
	snaps   raft.SnapshotStore
	dataDir string
	backend string
	peers   *peerTracker
	syncs   *syncStats
	metrics nodeMetrics
	removed atomic.Bool // this node saw itself removed from the configuration
	// leaderCommit is the highest commit index a leader has announced to
	// this node (peers.go).
	leaderCommit atomic.Uint64

	readyMu   sync.Mutex
	ready     chan struct{} // closed once a new leader has applied its barrier
	isReady   bool
	readyFast atomic.Bool // isReady, readable without the lock
}

// The newest log entries are kept in memory, up to logCacheEntries of them
// and logCacheBytes of data: enough for followers a few batches behind,
// little beside the data (a count alone would allow 512 batches of
// maxBatchBytes, 256 MiB).
const (
	logCacheEntries = 512
	logCacheBytes   = 4 << 20
)

// raftOptions are the knobs from the command line.
type raftOptions struct {
	dir               string
	advertise         string
	backend           string
	durability        string
	snapshotThreshold uint64
	trailingLogs      uint64
	snapshotInterval  time.Duration
	identity          *peer.Identity
	metrics           nodeMetrics // where the node records (metrics.go)
}

// newNode opens the stores and starts Raft on the given stream layer. It
// reports whether Raft state existed already.
func newNode(opts raftOptions, f *fsm, layer raft.StreamLayer, log *slog.Logger) (*raftNode, bool, error) {
	hlog := logging.NewHCLogger(log.With("src", "raft"))
	cfg := raft.DefaultConfig()
	cfg.LocalID = raft.ServerID(opts.advertise)
	cfg.Logger = hlog
	cfg.SnapshotThreshold = opts.snapshotThreshold
	cfg.TrailingLogs = opts.trailingLogs
	cfg.SnapshotInterval = opts.snapshotInterval
	cfg.BatchApplyCh = true
	cfg.MaxAppendEntries = 512
	cfg.HeartbeatTimeout = 1000 * time.Millisecond
	cfg.ElectionTimeout = 1000 * time.Millisecond
	cfg.LeaderLeaseTimeout = 500 * time.Millisecond
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.NoSnapshotRestoreOnStart = false

	n := &raftNode{fsm: f, id: opts.advertise, identity: opts.identity, log: log, ready: make(chan struct{}), stop: make(chan struct{}),
		dataDir: opts.dir, backend: opts.backend, peers: &peerTracker{}, syncs: &syncStats{}, metrics: opts.metrics}
	logs, stable, err := n.openStores(opts)
	if err != nil {
		return nil, false, err
	}
	removeTempSnapshots(opts.dir, log)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(opts.dir, "snapshots"), 2, hlog)
	if err != nil {
		return nil, false, fmt.Errorf("open snapshot store: %w", err)
	}
	if err := checkStores(opts.dir, opts.backend, logs, snaps); err != nil {
		return nil, false, err
	}
	hasState, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return nil, false, fmt.Errorf("inspect raft state: %w", err)
	}
	// Recent entries are served to followers from memory, not re-read from
	// disk for every AppendEntries.
	if logs, err = logcache.New(logs, logCacheEntries, logCacheBytes); err != nil {
		return nil, false, fmt.Errorf("log cache: %w", err)
	}
	f.attachStores(logs, snaps)
	n.logs, n.snaps = logs, snaps
	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 4, Timeout: 10 * time.Second, Logger: hlog,
	})
	trans := newTrackingTransport(n.transport, n.peers, &n.leaderCommit)
	n.closers = append(n.closers, trans)
	r, err := newRaft(opts.dir, cfg, &measuredFSM{fsm: f, m: opts.metrics}, logs, stable, snaps, trans)
	if err != nil {
		return nil, false, fmt.Errorf("start raft: %w", err)
	}
	n.raft = r
	go n.watchLeadership()
	go n.noteLeaders()
	return n, hasState, nil
}

// noteLeaders keeps lastLeader: every leader Raft reports, until close.
func (n *raftNode) noteLeaders() {
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	n.noteLeader(n.leaderAddr())
	for {
		select {
		case <-n.stop:
			return
		case o := <-ch:
			n.noteLeader(string(o.Data.(raft.LeaderObservation).LeaderAddr))
		}
	}
}

// noteLeader records addr as the last leader known, unless it is empty.
func (n *raftNode) noteLeader(addr string) {
	if addr != "" {
		n.lastLeader.Store(&addr)
	}
}

// lastLeaderAddr is the last leader this node knew: the current one, or
// during an election the one before it; "" if it never knew one.
func (n *raftNode) lastLeaderAddr() string {
	if addr := n.leaderAddr(); addr != "" {
		return addr
	}
	if p := n.lastLeader.Load(); p != nil {
		return *p
	}
	return ""
}

// newRaft is raft.NewRaft, with a panic (hashicorp/raft panics on some
// entries it cannot read while restoring) turned into the damaged-data
// error of the start-up checks.
func newRaft(dataDir string, cfg *raft.Config, f raft.FSM, logs raft.LogStore, stable raft.StableStore,
	snaps raft.SnapshotStore, trans raft.Transport) (r *raft.Raft, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, damagedError(dataDir, "starting Raft on the data in %s failed: %v", dataDir, p)
		}
	}()
	return raft.NewRaft(cfg, f, logs, stable, snaps, trans)
}

// openStores opens the log and stable stores of the chosen backend.
func (n *raftNode) openStores(opts raftOptions) (raft.LogStore, raft.StableStore, error) {
	switch opts.backend {
	case "wal":
		dir := filepath.Join(opts.dir, "wal")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("create wal dir: %w", err)
		}
		vfs := &syncPolicyVFS{VFS: fs.New(), mode: opts.durability, stats: n.syncs, m: opts.metrics}
		w, err := wal.Open(dir, wal.WithSegmentFiler(segment.NewFiler(dir, vfs)))
		if err != nil {
			if isIOError(err) {
				return nil, nil, fmt.Errorf("open wal in %s: %w", dir, err)
			}
			return nil, nil, damagedError(opts.dir, "the Raft log in %s (its segment files or wal-meta.db) cannot be opened: %v", dir, err)
		}
		n.closers = append(n.closers, w)
		if opts.durability == "medium" {
			go every(n.stop, time.Second, vfs.syncTail)
		}
		return w, w, nil
	case "bolt":
		b, err := raftboltdb.New(raftboltdb.Options{
			Path:   filepath.Join(opts.dir, "raft.db"),
			NoSync: opts.durability != "high",
		})
		if err != nil {
			path := filepath.Join(opts.dir, "raft.db")
			if isIOError(err) {
				return nil, nil, fmt.Errorf("open bolt %s: %w", path, err)
			}
			return nil, nil, damagedError(opts.dir, "the Raft log %s cannot be opened: %v", path, err)
		}
		n.closers = append(n.closers, b)
		if opts.durability == "medium" {
			go every(n.stop, time.Second, func() { _ = b.Sync() })
		}
		return b, b, nil
	case "inmem":
		s := raft.NewInmemStore()
		return s, s, nil
	}
	return nil, nil, fmt.Errorf("unknown -backend %q (want wal, bolt or inmem)", opts.backend)
}

// syncPolicyVFS applies -durability to raft-wal's segment files: high syncs
// on every append (raft-wal's own behaviour), medium once a second, low
// leaves it to the operating system.
type syncPolicyVFS struct {
	types.VFS
	mode  string
	stats *syncStats  // every fsync is timed (INFO, metrics)
	m     nodeMetrics // may be nil
	mu    sync.Mutex
	files []types.WritableFile
}

// Create opens a new segment file with the sync policy.
func (v *syncPolicyVFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	f, err := v.VFS.Create(dir, name, size)
	return v.wrap(f), err
}

// OpenWriter reopens a segment file with the sync policy.
func (v *syncPolicyVFS) OpenWriter(dir, name string) (types.WritableFile, error) {
	f, err := v.VFS.OpenWriter(dir, name)
	return v.wrap(f), err
}

func (v *syncPolicyVFS) wrap(f types.WritableFile) types.WritableFile {
	if f == nil {
		return f
	}
	if v.mode == "high" {
		return timedSyncFile{f, v}
	}
	v.mu.Lock()
	v.files = append(v.files[max(0, len(v.files)-1):], f) // only the tail is written
	v.mu.Unlock()
	return lazySyncFile{f}
}

// syncTail flushes the tail segment (-durability medium: once a second).
func (v *syncPolicyVFS) syncTail() {
	v.mu.Lock()
	files := append([]types.WritableFile(nil), v.files...)
	v.mu.Unlock()
	for _, f := range files {
		_ = timedSync(f.Sync, v.stats, v.m)
	}
}

// timedSyncFile times every fsync (-durability high).
type timedSyncFile struct {
	types.WritableFile
	v *syncPolicyVFS
}

// Sync flushes the file and records how long it took.
func (f timedSyncFile) Sync() error { return timedSync(f.WritableFile.Sync, f.v.stats, f.v.m) }

// lazySyncFile skips the per-append fsync.
type lazySyncFile struct{ types.WritableFile }

// Sync does nothing; see syncPolicyVFS.
func (lazySyncFile) Sync() error { return nil }

// clusterID is the ID of the cluster this node belongs to ("" before it
// has bootstrapped or joined one).
func (n *raftNode) clusterID() string {
	if id, ok := n.identity.Get(); ok {
		return id.String()
	}
	return ""
}

// settleIdentity makes the cluster ID agree with the Raft state: a node
// with state keeps its ID (state from before cluster IDs existed gets the
// all-zero one, which every such member shares); a node without state
// belongs to no cluster until it bootstraps (a new random ID) or joins.
func (n *raftNode) settleIdentity(hasState, willBootstrap bool) error {
	_, known := n.identity.Get()
	switch {
	case hasState && !known:
		n.log.Warn("Raft state without a cluster ID (written by an older redraft): using the all-zero ID; every member of this cluster must be upgraded the same way")
		return n.identity.Set(peer.ClusterID{})
	case hasState:
		return nil
	}
	if err := n.identity.Forget(); err != nil {
		return err
	}
	if !willBootstrap {
		return nil
	}
	id, err := peer.NewClusterID()
	if err != nil {
		return err
	}
	if err := n.identity.Set(id); err != nil {
		return err
	}
	n.log.Info("bootstrapping a new cluster", "cluster", id.String())
	return nil
}

// bootstrap starts a one-member cluster.
func (n *raftNode) bootstrap() error {
	f := n.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
		ID: raft.ServerID(n.id), Address: raft.ServerAddress(n.id),
	}}})
	if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

// watchLeadership tracks whether this node may serve as leader: after
// winning an election it first applies a barrier, so everything committed
// by earlier leaders is applied before it serves reads or assigns times.
func (n *raftNode) watchLeadership() {
	for {
		var isLeader bool
		select {
		case <-n.stop:
			return
		case isLeader = <-n.raft.LeaderCh():
		}
		n.setReady(false)
		if !isLeader {
			continue
		}
		go func() {
			for n.raft.State() == raft.Leader {
				if err := n.raft.Barrier(10 * time.Second).Error(); err == nil {
					if n.raft.State() == raft.Leader {
						n.setReady(true)
						n.log.Info("leader ready", "applied", n.fsm.appliedIndex())
					}
					return
				}
			}
		}()
	}
}

func (n *raftNode) setReady(ready bool) {
	n.readyMu.Lock()
	defer n.readyMu.Unlock()
	if ready == n.isReady {
		return
	}
	n.isReady = ready
	n.readyFast.Store(ready)
	if ready {
		close(n.ready)
	} else {
		n.ready = make(chan struct{})
	}
}

// waitReady waits until this node is a leader that has applied its
// barrier. It fails fast when another node leads (a *NotLeaderError), and
// waits (within ctx, at most leaderWait) while no leader is known, e.g.
// during an election (then ErrNoLeader).
func (n *raftNode) waitReady(ctx context.Context) error {
	if n.readyFast.Load() && n.raft.State() == raft.Leader {
		return nil
	}
	give := time.NewTimer(leaderWait)
	defer give.Stop()
	for {
		if n.raft.State() != raft.Leader {
			if addr := n.leaderAddr(); addr != "" && addr != n.id {
				return &NotLeaderError{Leader: addr}
			}
		}
		n.readyMu.Lock()
		ready, ch := n.isReady, n.ready
		n.readyMu.Unlock()
		if ready && n.raft.State() == raft.Leader {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return n.leaderError()
		case <-give.C:
			return n.leaderError()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// leaderWait bounds how long a request waits for an election to finish.
const leaderWait = 3 * time.Second

// NotLeaderError means the request must go to the leader at Leader.
type NotLeaderError struct{ Leader string }

func (e *NotLeaderError) Error() string { return "not the leader; the leader is " + e.Leader }

// Errors of the Raft layer; the front end turns them into replies.
var (
	// ErrNoLeader means no leader is known (an election, or no quorum).
	ErrNoLeader = errors.New("no leader is known")
	// ErrTimeout means the log did not answer in time; the write may or
	// may not have been applied.
	ErrTimeout = errors.New("timed out waiting for the Raft log")
	// ErrLeadershipLost means leadership changed while a write was in
	// flight; it may or may not have been applied.
	ErrLeadershipLost = errors.New("leadership changed before the write was acknowledged")
)

// leaderError describes why this node cannot serve as leader now.
func (n *raftNode) leaderError() error {
	if addr := n.leaderAddr(); addr != "" && addr != n.id {
		return &NotLeaderError{Leader: addr}
	}
	return ErrNoLeader
}

// raftError maps hashicorp/raft's errors to this layer's.
func (n *raftNode) raftError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		return n.leaderError()
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return ErrLeadershipLost
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return ErrTimeout
	}
	return fmt.Errorf("raft: %w", err)
}

// leaderAddr is the current leader's address, "" if unknown.
func (n *raftNode) leaderAddr() string {
	addr, _ := n.raft.LeaderWithID()
	return string(addr)
}

// isLeader reports whether this node is the leader now.
func (n *raftNode) isLeader() bool { return n.raft.State() == raft.Leader }

// state is this node's Raft role.
func (n *raftNode) state() raft.RaftState { return n.raft.State() }

// ErrReadVerify wraps a failure to confirm leadership for a linearizable
// read, other than losing it.
var ErrReadVerify = errors.New("linearizable read failed")

// verifyLeader confirms leadership with a majority (a heartbeat round) and
// returns the commit index observed before it.
func (n *raftNode) verifyLeader() (uint64, error) {
	commit := n.raft.CommitIndex()
	err := n.raft.VerifyLeader().Error()
	switch {
	case err == nil:
		return commit, nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
		return 0, n.leaderError()
	}
	return 0, fmt.Errorf("%w: %w", ErrReadVerify, err)
}

// term is the node's current Raft term (RAFTTERM, leadership.go).
func (n *raftNode) term() uint64 { return n.raft.CurrentTerm() }

// commitIndex is the latest index this node knows to be committed.
func (n *raftNode) commitIndex() uint64 { return n.raft.CommitIndex() }

// raftApplied is Raft's own applied index, which also counts entries that
// never reach the FSM (no-ops, barriers, configuration changes).
func (n *raftNode) raftApplied() uint64 { return n.raft.AppliedIndex() }

// apply hands an encoded entry to Raft.
func (n *raftNode) apply(data []byte, timeout time.Duration) raft.ApplyFuture {
	return n.raft.Apply(data, timeout)
}

// stats is hashicorp/raft's statistics.
func (n *raftNode) stats() map[string]string { return n.raft.Stats() }

// snapshot takes a snapshot now.
func (n *raftNode) snapshot() error { return n.raft.Snapshot().Error() }

// members lists the current configuration.
func (n *raftNode) members() ([]raft.Server, error) {
	fut := n.raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		return nil, err
	}
	return fut.Configuration().Servers, nil
}

// handOver transfers leadership to another voter, if this node leads and
// there is one.
func (n *raftNode) handOver() error {
	if !n.isLeader() {
		return nil
	}
	servers, err := n.members()
	if err != nil {
		return err
	}
	for _, srv := range servers {
		if srv.Suffrage == raft.Voter && string(srv.ID) != n.id {
			return n.raft.LeadershipTransfer().Error()
		}
	}
	return nil // no other voter to hand over to
}

// addPeer adds a voter (idempotent).
func (n *raftNode) addPeer(addr string) error {
	return n.raftError(n.raft.AddVoter(raft.ServerID(addr), raft.ServerAddress(addr), 0, 10*time.Second).Error())
}

// addNonvoter adds a member that receives the log but does not vote
// (idempotent; a voter stays a voter).
func (n *raftNode) addNonvoter(addr string) error {
	return n.raftError(n.raft.AddNonvoter(raft.ServerID(addr), raft.ServerAddress(addr), 0, 10*time.Second).Error())
}

// ErrNotMember means an address is not in the cluster's configuration.
var ErrNotMember = errors.New("not a member of the cluster")

// member returns the configuration entry of addr.
func (n *raftNode) member(addr string) (raft.Server, error) {
	servers, err := n.members()
	if err != nil {
		return raft.Server{}, err
	}
	for _, srv := range servers {
		if string(srv.ID) == addr {
			return srv, nil
		}
	}
	return raft.Server{}, fmt.Errorf("%s is %w", addr, ErrNotMember)
}

// promote makes the non-voting member addr a voter.
func (n *raftNode) promote(addr string) error {
	srv, err := n.member(addr)
	if err != nil {
		return err
	}
	if srv.Suffrage == raft.Voter {
		return nil
	}
	return n.raftError(n.raft.AddVoter(srv.ID, srv.Address, 0, 10*time.Second).Error())
}

// removePeer removes a member by address, whether it is up or down (the
// remaining members commit the change).
func (n *raftNode) removePeer(addr string) error {
	if _, err := n.member(addr); err != nil {
		return err
	}
	return n.raftError(n.raft.RemoveServer(raft.ServerID(addr), 0, 10*time.Second).Error())
}

// transferLeadership hands leadership to the voter at addr, or to the
// most up-to-date one when addr is "", and waits until it has it.
func (n *raftNode) transferLeadership(addr string) error {
	var fut raft.Future
	if addr == "" {
		fut = n.raft.LeadershipTransfer()
	} else {
		srv, err := n.member(addr)
		switch {
		case err != nil:
			return err
		case srv.Suffrage != raft.Voter:
			return fmt.Errorf("%s does not vote, so it cannot lead (RAFTPROMOTE it first)", addr)
		case addr == n.id:
			return nil
		}
		fut = n.raft.LeadershipTransferToServer(srv.ID, srv.Address)
	}
	if err := fut.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return n.leaderError()
		}
		return fmt.Errorf("leadership transfer failed: %w", err)
	}
	return nil
}

// watchRemoval reports, once, why this node is no longer a member: its
// latest configuration (seen twice, a second apart) lists other members
// but not this one, after it had been one or when it started with Raft
// state; or Raft shut down on its own (a leader that removed itself).
func (n *raftNode) watchRemoval(stop <-chan struct{}, hadState bool, removed chan<- string) {
	wasMember, strikes := hadState, 0
	every(stop, time.Second, func() {
		if n.removed.Load() {
			return
		}
		why := ""
		if n.state() == raft.Shutdown {
			why = "Raft shut down: this node removed itself from the cluster"
		} else if servers, err := n.members(); err == nil {
			self := false
			for _, srv := range servers {
				self = self || string(srv.ID) == n.id
			}
			switch {
			case self:
				wasMember, strikes = true, 0
			case wasMember && len(servers) > 0:
				if strikes++; strikes >= 2 {
					why = "the cluster's configuration no longer lists this node (RAFTREMOVEPEER)"
				}
			}
		}
		if why != "" {
			n.removed.Store(true)
			removed <- why
		}
	})
}

// close shuts Raft down and closes the stores.
func (n *raftNode) close() {
	close(n.stop)
	if err := n.raft.Shutdown().Error(); err != nil {
		n.log.Warn("raft shutdown", "err", err)
	}
	_ = n.transport.Close()
	for _, c := range n.closers {
		_ = c.Close()
	}
}

// normalizeAddr turns "7481" into "127.0.0.1:7481" and checks host:port.
func normalizeAddr(a string) (string, error) {
	if !strings.Contains(a, ":") {
		a = "127.0.0.1:" + a
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		return "", fmt.Errorf("bad address %q: %w", a, err)
	}
	return a, nil
}

// joinTimeout bounds how long -join keeps trying.
const joinTimeout = 2 * time.Minute

// joinCluster asks the members at targets, in turn, to add self (as a
// non-voting member with nonvoter), over authenticated join streams (the
// handshake proves the cluster secret both ways, and gives this node the
// cluster's ID before it asks), following redirects to the leader, until
// one succeeds or joinTimeout passes. A wrong secret or a member of
// another cluster ends it at once: retrying cannot help.
func joinCluster(targets []string, d *mux.Dialer, nonvoter bool, log *slog.Logger) error {
	addrs := make([]string, len(targets))
	for i, t := range targets {
		a, err := normalizeAddr(t)
		if err != nil {
			return fmt.Errorf("-join: %w", err)
		}
		addrs[i] = a
	}
	deadline := time.Now().Add(joinTimeout)
	addr := addrs[0]
	for attempt := 1; ; attempt++ {
		reply, err := requestJoin(d, addr, nonvoter)
		switch {
		case err == nil && reply.Status == peer.JoinOK:
			id, _ := d.Peers.Identity.Get()
			log.Info("joined cluster", "via", addr, "cluster", id.String())
			return nil
		case err == nil && reply.Status == peer.JoinTry && reply.Text != addr && time.Now().Before(deadline):
			addr = reply.Text
			continue
		case joinRefused(err):
			return fmt.Errorf("-join %s: %w", addr, err)
		}
		if err == nil {
			err = fmt.Errorf("%s answered: %s", addr, reply.Text)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("could not join via %s: %w", strings.Join(targets, ","), err)
		}
		log.Warn("join attempt failed; retrying", "via", addr, "attempt", attempt, "err", err)
		time.Sleep(500 * time.Millisecond)
		addr = addrs[attempt%len(addrs)]
	}
}

// joinRefused reports whether a join attempt failed for a reason that
// retrying cannot fix: the cluster secret, another cluster, or a TLS
// certificate one side does not accept.
func joinRefused(err error) bool {
	var certErr *tls.CertificateVerificationError
	var opErr *net.OpError
	switch {
	case errors.Is(err, peer.ErrWrongSecret), errors.Is(err, peer.ErrOtherCluster), errors.Is(err, peer.ErrPeerWithoutSecret):
		return true
	case errors.As(err, &certErr), errors.Is(err, tlsconf.ErrUntrustedPeer), errors.Is(err, tlsconf.ErrNoPeerCertificate):
		return true
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		return true // a TLS alert: the member refused this node's certificate
	}
	return false
}

// requestJoin asks the member at addr to add this node (as a non-voting
// member with nonvoter).
func requestJoin(d *mux.Dialer, addr string, nonvoter bool) (peer.JoinReply, error) {
	c, err := d.Dial(addr, peer.PurposeJoin, 5*time.Second)
	if err != nil {
		return peer.JoinReply{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return peer.RequestJoin(c, nonvoter)
}

// serveJoins answers the join requests that arrive on authenticated join
// streams (the mux's Joins listener) until it closes.
func (n *raftNode) serveJoins(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go n.answerJoin(c)
	}
}

// answerJoin adds the joiner named in the handshake, or tells it where the
// leader is.
func (n *raftNode) answerJoin(c net.Conn) {
	defer c.Close()
	pc, ok := c.(*mux.PeerConn)
	if !ok {
		return
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	nonvoter, err := peer.ReadJoinRequest(c)
	if err != nil {
		return
	}
	addr, err := normalizeAddr(pc.Peer.Name)
	switch {
	case err == nil && nonvoter:
		err = n.addNonvoter(addr)
	case err == nil:
		err = n.addPeer(addr)
	}
	reply := peer.JoinReply{Status: peer.JoinOK}
	var nl *NotLeaderError
	switch {
	case errors.As(err, &nl):
		reply = peer.JoinReply{Status: peer.JoinTry, Text: nl.Leader}
	case err != nil:
		reply = peer.JoinReply{Status: peer.JoinFailed, Text: err.Error()}
	default:
		n.log.Info("a node joined the cluster", "node", addr, "nonvoter", nonvoter)
	}
	_ = peer.WriteJoinReply(c, reply)
}

// every runs fn each period until stop closes.
func every(stop <-chan struct{}, period time.Duration, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			fn()
		}
	}
}
