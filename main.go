// Command redraft runs a redis-server under Raft: every write goes through a
// replicated log and is applied to each node's own child redis-server.
//
// The layers, top to bottom (docs/DESIGN.md shows them with their files):
// the client front end (proxy.go, client.go, commands.go, builtins.go,
// reads.go, transactions.go, blocking.go, pubsub.go, relay.go, info.go,
// sync.go, monitor.go) → the Raft node and the proposer (raft.go,
// propose.go, backup.go, metrics.go, peers.go) → the apply path (fsm.go,
// pipeline.go, rewrite.go, scripts.go, streams.go, clock.go, watch.go,
// snapshot.go, entry.go, replconfig.go, rdb.go) → the packages under
// internal/ (the child supervisor, the RESP client and protocol, the
// command metadata, the one-port mux, metrics).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/raft"

	"github.com/redraft/redraft/internal/child"
	"github.com/redraft/redraft/internal/command"
	conf "github.com/redraft/redraft/internal/config"
	"github.com/redraft/redraft/internal/logging"
	"github.com/redraft/redraft/internal/metrics"
	"github.com/redraft/redraft/internal/mux"
	"github.com/redraft/redraft/internal/peer"
	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
	"github.com/redraft/redraft/internal/sdnotify"
	"github.com/redraft/redraft/internal/version"
)

func main() {
	cfg, _, err := parseConfig(os.Args[1:], os.Environ(), versionText)
	if err != nil {
		if errors.Is(err, conf.ErrHelp) || errors.Is(err, conf.ErrVersion) {
			os.Exit(0)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(os.Stderr, "redraft:", line)
		}
		os.Exit(2)
	}
	level, _ := logging.ParseLevel(cfg.loglevel)
	log, err := logging.New(os.Stderr, logging.Options{Level: level, Format: cfg.logFormat})
	if err != nil {
		fmt.Fprintln(os.Stderr, "redraft:", err)
		os.Exit(2)
	}
	if err := runNode(cfg, log); errors.Is(err, errRemoved) {
		os.Exit(0)
	} else if err != nil {
		log.Error("redraft stopped", "err", err)
		fmt.Fprintln(os.Stderr, "redraft:", err)
		os.Exit(1)
	}
}

// versionText is what --version prints: redraft's version, the Go version,
// and the redis-server it would run.
func versionText() string {
	server := "redis-server: not found"
	if path, err := child.FindServer(""); err == nil {
		if out, err := exec.Command(path, "--version").Output(); err == nil {
			server = strings.TrimSpace(string(out)) + " (" + path + ")"
		}
	}
	return fmt.Sprintf("%s\n%s %s/%s\n%s", version.String(), runtime.Version(), runtime.GOOS, runtime.GOARCH, server)
}

// wallClockMS is the local clock in ms. It is handed to the front end (TTL
// reads, when to sweep) and the proposer (T); the apply path never reads a
// clock (TestApplyPathNeverReadsTheClock).
func wallClockMS() int64 { return time.Now().UnixMilli() }

// runNode starts every part of the node, bottom up, and blocks until a signal or
// a fatal error; then it shuts down in the order documented at stopNode.
func runNode(cfg *options, log *slog.Logger) error {
	redisPath, err := child.FindServer(cfg.redisServer)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(cfg.dir)
	if err != nil {
		return err
	}
	childDir := filepath.Join(dir, "redis")
	if err := os.MkdirAll(childDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	removeStaleRDB(childDir)

	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.bind, strconv.Itoa(cfg.port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	sock := child.SocketPath(dir)
	proc, err := child.Supervise(redisPath, childDir, sock, child.Args(sock, childDir,
		"--client-output-buffer-limit", "pubsub "+cfg.outputLimits.pubsub.String()), log.With("src", "redis-server"))
	if err != nil {
		return err
	}
	defer proc.Stop(5 * time.Second)

	tbl, err := loadCommandTable(proc)
	if err != nil {
		return err
	}
	f, err := newFSM(proc, tbl.meta, log.With("src", "fsm"))
	if err != nil {
		return err
	}

	f.setStartupConfig(cfg.requirePass, cfg.maxMemory)
	sec, err := newSecurity(cfg, dir, log)
	if err != nil {
		return err
	}
	m := mux.New(ln, log, sec.muxOptions())
	advertise, err := net.ResolveTCPAddr("tcp", cfg.advertise)
	if err != nil {
		return fmt.Errorf("-advertise: %w", err)
	}
	go m.Serve()
	dialer := sec.dialer()

	obs := metrics.New()
	n, hasState, err := startNode(cfg, dir, f, mux.NewStreamLayer(m, advertise, dialer), sec.identity, obs, log)
	if err != nil {
		return err
	}
	go n.serveJoins(m.Joins())
	watchCtx, stopWatching := context.WithCancel(context.Background())
	defer stopWatching()
	go sec.watchCertificates(watchCtx, log)
	s := newServer(cfg, n, f, proc, tbl, dialer, obs, log)
	web, err := startMetrics(cfg.metricsAddr, s, n, obs, log)
	if err != nil {
		n.close()
		return err
	}
	if cfg.restore != "" {
		if err := restoreRDB(cfg.restore, hasState, n, redisPath, dir, log); err != nil {
			n.close()
			return err
		}
	}
	stop := make(chan struct{})
	go s.proposer.run(stop)
	go s.proposer.sweepLoop(stop)
	go s.clientsCron(stop)
	go s.scripts.run(stop)
	go s.memoryLoop(stop)
	s.tracker.stopWith(stop)
	removed := make(chan string, 1)
	go n.watchRemoval(stop, hasState, removed)
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.serve(m.Clients()) }()
	log.Info("redraft started", "addr", ln.Addr().String(), "id", cfg.advertise, "cluster", n.clusterID(),
		"consistency", cfg.consistency.String(), "backend", cfg.backend, "durability", cfg.durability,
		"tls", cfg.tlsEnabled(), "requirepass", cfg.requirePass != "", "redis-server", redisPath)
	joinErr := startJoin(cfg, hasState, dialer, log)
	notify := sdnotify.FromEnv()
	go notifyWhenReady(stop, n, notify, ln.Addr().String(), log)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	var result error
wait:
	for {
		select {
		case <-hup:
			sec.reload(cfg, log)
			continue
		case sig := <-sigs:
			log.Info("shutting down", "signal", sig.String())
		case <-proc.Died():
			result = fmt.Errorf("redis-server exited unexpectedly (%v); exiting so that a restart rebuilds its data from the snapshot and the Raft log", proc.Err())
		case err := <-serveErr:
			result = fmt.Errorf("client listener stopped: %w", err)
		case err := <-joinErr:
			result = fmt.Errorf("join failed: %w", err)
		case why := <-removed:
			log.Error("this node is no longer a member of the cluster and stops serving; to rejoin, empty its data directory and start it with -join", "reason", why)
			result = errRemoved
		}
		break wait
	}
	_ = notify.Stopping()
	stopNode(s, n, m, stop, log)
	if web != nil {
		web.Close(5 * time.Second)
	}
	return result
}

// errRemoved ends a node that was removed from its cluster; it exits with
// status 0, so a supervisor with Restart=on-failure leaves it stopped.
var errRemoved = errors.New("removed from the cluster")

// notifyWhenReady tells systemd (Type=notify) that the node is ready once
// it is: a leader is known and the node has applied what it knows to be
// committed (as /readyz). Until then the status line says what it waits
// for.
func notifyWhenReady(stop <-chan struct{}, n *raftNode, notify *sdnotify.Notifier, addr string, log *slog.Logger) {
	last := ""
	for {
		ready, why := n.readiness(context.Background(), 0)
		if ready {
			log.Info("redraft ready", "addr", addr, "leader", n.leaderAddr(), "applied", n.fsm.appliedIndex())
			_ = notify.Ready("serving on " + addr)
			return
		}
		if why != last {
			_ = notify.Status(why)
			last = why
		}
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startMetrics serves --metrics-addr (nothing when it is empty): the
// metrics of the node and the front end, hashicorp/raft's own, the health
// checks, /backup and Go's profiles.
func startMetrics(addr string, s *frontEnd, n *raftNode, obs *metrics.Metrics, log *slog.Logger) (*metrics.Server, error) {
	if addr == "" {
		return nil, nil
	}
	n.registerMetrics(obs)
	s.registerMetrics(obs)
	if err := obs.ForwardRaft(); err != nil {
		return nil, err
	}
	h := obs.Handler(metrics.Endpoints{
		Ready:  func(ctx context.Context) (bool, string) { return n.readiness(ctx, time.Second) },
		Backup: s.backupHTTP,
	})
	web, err := metrics.Listen(addr, h, log.With("src", "metrics"))
	if err != nil {
		return nil, err
	}
	log.Info("serving metrics", "addr", web.Addr())
	return web, nil
}

// restoreRDB seeds the new cluster this node has just bootstrapped with
// the data of an RDB file (--restore).
func restoreRDB(path string, hasState bool, n *raftNode, redisPath, dir string, log *slog.Logger) error {
	if hasState {
		return fmt.Errorf("--restore %s: the data directory %s already holds Raft state; restore into an empty -dir", path, dir)
	}
	log.Info("restoring from an RDB file", "file", path)
	res, err := n.seedFromRDB(path, redisPath, filepath.Join(dir, "restore"), log)
	if err != nil {
		return err
	}
	log.Info("restored", "file", path, "keys", res.keys, "index", res.index,
		"convert", res.convertTook.Round(time.Millisecond), "load", res.loadTook.Round(time.Millisecond))
	return nil
}

// stopNode stops the node in this order: stop accepting clients; hand
// leadership over (a leader); let in-flight requests finish and close
// every client connection; stop the proposer and the periodic loops; stop
// Raft (and its stores); stop accepting peers. The child is stopped last,
// by runNode's deferred Stop.
func stopNode(s *frontEnd, n *raftNode, m *mux.Mux, stop chan struct{}, log *slog.Logger) {
	m.Clients().Close()
	if err := n.handOver(); err != nil {
		log.Warn("leadership transfer", "err", err)
	}
	s.closeClients(5 * time.Second)
	close(stop)
	n.close()
	m.Raft().Close()
}

// newServer wires the front end to the node and the FSM.
func newServer(cfg *options, n *raftNode, f *fsm, proc *child.Supervisor, tbl *commandTable, d *mux.Dialer, obs *metrics.Metrics, log *slog.Logger) *frontEnd {
	s := &frontEnd{
		node: n, fsm: f, cmds: tbl, child: proc, log: log,
		maxClients: cfg.maxClients, outputLimits: cfg.outputLimits,
		idleTimeout: time.Duration(cfg.idleTimeout) * time.Second,
		limits:      clientLimits(cfg), wall: wallClockMS, epoch: time.Now().UnixNano(),
		metrics: obs,
	}
	peerStream := func(addr string, timeout time.Duration) (net.Conn, error) {
		return d.Dial(addr, peer.PurposeRelay, timeout)
	}
	s.relay = &leaderRelay{enabled: cfg.followerProxy, node: n, dial: peerStream}
	s.dataDir, _ = filepath.Abs(cfg.dir)
	if cfg.backupDir != "" {
		s.backupDir, _ = filepath.Abs(cfg.backupDir)
	}
	s.port = cfg.port
	s.proposer = newProposer(n, f, wallClockMS, obs, log.With("src", "proposer"))
	pool := redisconn.NewPool("unix", proc.Sock(), 256)
	pool3 := redisconn.NewPoolWith("unix", proc.Sock(), 64, "HELLO", "3")
	proc.OnRestart(pool.Drain)
	proc.OnRestart(pool3.Drain)
	lanes := redisconn.NewShared("unix", proc.Sock(), readLanes)
	lanes3 := redisconn.NewSharedWith("unix", proc.Sock(), readLanes, "HELLO", "3")
	proc.OnRestart(lanes.Reset)
	proc.OnRestart(lanes3.Reset)
	s.reads = &readPath{
		level: cfg.consistency, node: n, fsm: f, proposer: s.proposer, wall: wallClockMS,
		pool: pool, lanes: lanes, pool3: pool3, lanes3: lanes3,
		index: &readIndexer{node: n, fsm: f, prober: &termProber{node: n, dial: peerStream}},
	}
	s.tracker = newTracker(&s.clients, proc.Dial, log.With("src", "tracking"))
	s.scripts = &scriptWatch{fsm: f, node: n, proposer: s.proposer, child: proc, log: log.With("src", "scripts"), wall: wallClockMS}
	s.reads.scripts = s.scripts
	if cfg.clusterMode {
		s.cluster = &clusterMode{node: n, tbl: tbl}
		stale := *s.reads
		stale.level = consistencyLow
		s.reads.stale = &stale
	}
	s.block = &blocker{proposer: s.proposer, reads: s.reads, node: n, waiters: newWaiterSet(), cluster: s.cluster, ownWrite: s.ownWrite}
	f.setTouchHook(touchHook{wanted: s.block.waiters.active, report: s.block.waiters.touched, groupsGone: s.block.waiters.groupsGone})
	return s
}

// clientLimits are the protocol limits of client requests.
func clientLimits(cfg *options) resp.Limits {
	l := resp.DefaultLimits()
	l.MaxBulkLen, l.MaxQueryBuffer = cfg.protoMaxBulkLen, cfg.queryBufferLimit
	return l
}

// loadCommandTable asks the child for COMMAND and builds the front end's
// command table from it.
func loadCommandTable(proc *child.Supervisor) (*commandTable, error) {
	c, err := proc.Dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	raw, err := c.Do("COMMAND")
	if err != nil {
		return nil, err
	}
	v, err := resp.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse COMMAND reply: %w", err)
	}
	meta, err := command.NewTable(v)
	if err != nil {
		return nil, err
	}
	return newCommandTable(meta), nil
}

// startNode opens Raft and bootstraps a new single-member cluster when there
// is no state and nothing to join.
func startNode(cfg *options, dir string, f *fsm, layer raft.StreamLayer, identity *peer.Identity, obs *metrics.Metrics, log *slog.Logger) (*raftNode, bool, error) {
	opts := raftOptions{
		dir: dir, advertise: cfg.advertise, backend: cfg.backend, durability: cfg.durability,
		snapshotThreshold: cfg.snapshotThreshold, trailingLogs: cfg.trailingLogs,
		snapshotInterval: cfg.snapshotInterval, identity: identity, metrics: obs,
	}
	n, hasState, err := newNode(opts, f, layer, log)
	if err != nil {
		return nil, false, err
	}
	bootstrap := !hasState && len(cfg.join) == 0
	if err := n.settleIdentity(hasState, bootstrap); err != nil {
		n.close()
		return nil, false, err
	}
	if bootstrap {
		if err := n.bootstrap(); err != nil {
			n.close()
			return nil, false, err
		}
	}
	return n, hasState, nil
}

// startJoin asks the cluster at -join to add this node, unless the node
// already has Raft state (then its data directory decides membership). A
// join that fails for good is sent on the returned channel.
func startJoin(cfg *options, hasState bool, d *mux.Dialer, log *slog.Logger) <-chan error {
	failed := make(chan error, 1)
	switch {
	case hasState && len(cfg.join) > 0:
		log.Info("existing Raft state found; -join is ignored and the node rejoins its cluster")
	case !hasState && len(cfg.join) > 0:
		go func() {
			if err := joinCluster(cfg.join, d, cfg.nonvoter, log); err != nil {
				failed <- err
			}
		}()
	}
	return failed
}

// removeStaleRDB deletes snapshot files a crash may have left in the child's
// directory, so the child always starts empty and is filled from Raft.
func removeStaleRDB(dir string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.rdb"))
	for _, m := range matches {
		_ = os.Remove(m)
	}
	_ = os.RemoveAll(filepath.Join(dir, "frozen"))
}
