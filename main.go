// Command redraft runs a redis-server under Raft: every write goes through a
// replicated log and is applied to each node's own child redis-server.
//
// The layers, top to bottom (docs/DESIGN.md shows them with their files):
// the client front end (proxy.go, client.go, commands.go, builtins.go,
// reads.go, transactions.go, blocking.go, pubsub.go, relay.go) → the Raft
// node and the proposer (raft.go, propose.go) → the apply path (fsm.go,
// pipeline.go, rewrite.go, scripts.go, streams.go, clock.go, watch.go,
// snapshot.go, entry.go, replconfig.go) → the packages under internal/ (the
// child supervisor, the RESP client and protocol, the command metadata, the
// one-port mux).
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with -pprof
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/raft"

	"github.com/redraft/redraft/internal/child"
	"github.com/redraft/redraft/internal/command"
	"github.com/redraft/redraft/internal/logging"
	"github.com/redraft/redraft/internal/mux"
	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// config holds the command-line flags.
type config struct {
	port              int
	dir               string
	join              string
	advertise         string
	bind              string
	consistency       consistency
	backend           string
	durability        string
	loglevel          string
	redisServer       string
	snapshotThreshold uint64
	trailingLogs      uint64
	snapshotInterval  time.Duration
	maxMemory         int64
	followerProxy     bool
	pprof             string
}

// parseFlags reads and checks the command line.
func parseFlags(args []string) (*config, error) {
	c := &config{}
	var consistencyName, maxMemory string
	fs := flag.NewFlagSet("redraft", flag.ContinueOnError)
	fs.IntVar(&c.port, "p", 7481, "port for Redis clients and Raft peers")
	fs.StringVar(&c.dir, "dir", "data", "data directory (Raft log, snapshots, child socket)")
	fs.StringVar(&c.join, "join", "", "address of a member to join (host:port, or a bare port on 127.0.0.1)")
	fs.StringVar(&c.advertise, "advertise", "", "address peers and clients use to reach this node (default 127.0.0.1:PORT); also the node ID")
	fs.StringVar(&c.bind, "bind", "127.0.0.1", "address to listen on (0.0.0.0 for all interfaces)")
	fs.StringVar(&consistencyName, "consistency", "medium", "read consistency: low (any node), medium (leader), high (linearizable)")
	fs.StringVar(&c.backend, "backend", "wal", "Raft log store: wal, bolt or inmem")
	fs.StringVar(&c.durability, "durability", "high", "log fsync: high (before acknowledging), medium (every second), low (left to the OS)")
	fs.StringVar(&c.loglevel, "loglevel", "notice", "log level: quiet, warning, notice, verbose, debug")
	fs.StringVar(&c.redisServer, "redis-server", "", "path of the redis-server executable (default: beside redraft, then $PATH)")
	fs.Uint64Var(&c.snapshotThreshold, "snapshot-threshold", 8192, "log entries between automatic snapshots")
	fs.Uint64Var(&c.trailingLogs, "trailing-logs", 10240, "log entries kept after a snapshot for slow followers")
	fs.DurationVar(&c.snapshotInterval, "snapshot-interval", 10*time.Second, "how often (randomised up to twice this) to check whether -snapshot-threshold entries have accumulated")
	fs.StringVar(&maxMemory, "maxmemory", "0", "refuse writes that grow memory (-OOM) above this many bytes (e.g. 512mb); 0 for no limit")
	fs.BoolVar(&c.followerProxy, "follower-proxy", false, "followers relay writes (and reads they may not serve) to the leader instead of answering -TRY")
	fs.StringVar(&c.pprof, "pprof", "", "serve Go profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060; off by default")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if c.consistency, err = parseConsistency(consistencyName); err != nil {
		return nil, err
	}
	if c.maxMemory, err = parseBytes(maxMemory); err != nil {
		return nil, fmt.Errorf("-maxmemory: %w", err)
	}
	if !oneOf(c.durability, "low", "medium", "high") {
		return nil, fmt.Errorf("-durability must be low, medium or high, not %q", c.durability)
	}
	if !oneOf(c.backend, "wal", "bolt", "inmem") {
		return nil, fmt.Errorf("-backend must be wal, bolt or inmem, not %q", c.backend)
	}
	if _, ok := logLevels[c.loglevel]; !ok {
		return nil, fmt.Errorf("-loglevel must be quiet, warning, notice, verbose or debug, not %q", c.loglevel)
	}
	if c.port <= 0 || c.port > 65535 {
		return nil, fmt.Errorf("-p must be a port number, not %d", c.port)
	}
	if c.advertise == "" {
		c.advertise = "127.0.0.1:" + strconv.Itoa(c.port)
	}
	return c, nil
}

func oneOf(v string, options ...string) bool {
	for _, o := range options {
		if v == o {
			return true
		}
	}
	return false
}

// logLevels maps -loglevel to slog levels; quiet shows errors only.
var logLevels = map[string]slog.Level{
	"quiet": slog.LevelError, "warning": logging.LevelWarning, "notice": logging.LevelNotice,
	"verbose": logging.LevelVerbose, "debug": logging.LevelDebug - 4,
}

// parseBytes reads sizes such as 100, 64kb, 512mb, 2gb.
func parseBytes(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for suffix, m := range map[string]int64{"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "k": 1000, "m": 1000 * 1000, "g": 1000 * 1000 * 1000} {
		if strings.HasSuffix(s, suffix) && len(suffix) > 0 {
			if _, err := strconv.ParseInt(strings.TrimSuffix(s, suffix), 10, 64); err == nil {
				s, mult = strings.TrimSuffix(s, suffix), m
				break
			}
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "redraft:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevels[cfg.loglevel]}))
	if err := run(cfg, log); err != nil {
		log.Error("redraft stopped", "err", err)
		fmt.Fprintln(os.Stderr, "redraft:", err)
		os.Exit(1)
	}
}

// wallClockMS is the local clock in ms. It is handed to the front end (TTL
// reads, when to sweep) and the proposer (T); the apply path never reads a
// clock (TestApplyPathNeverReadsTheClock).
func wallClockMS() int64 { return time.Now().UnixMilli() }

// run starts every part of the node, bottom up, and blocks until a signal or
// a fatal error; then it shuts down in the order documented at shutdown.
func run(cfg *config, log *slog.Logger) error {
	if cfg.pprof != "" {
		go func() { log.Warn("pprof stopped", "err", http.ListenAndServe(cfg.pprof, nil)) }()
	}
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
	proc, err := child.Start(redisPath, childDir, sock, child.Args(sock, childDir), log.With("src", "redis-server"))
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

	m := mux.New(ln, log)
	advertise, err := net.ResolveTCPAddr("tcp", cfg.advertise)
	if err != nil {
		return fmt.Errorf("-advertise: %w", err)
	}
	go m.Serve()

	n, hasState, err := startNode(cfg, dir, f, mux.NewStreamLayer(m, advertise), log)
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	s := newServer(cfg, n, f, proc, tbl, log)
	go s.proposer.run(stop)
	go s.proposer.sweepLoop(stop)
	if cfg.maxMemory > 0 {
		go s.memoryLoop(stop)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.serve(m.Clients()) }()
	log.Info("redraft ready", "addr", ln.Addr().String(), "id", cfg.advertise,
		"consistency", cfg.consistency.String(), "backend", cfg.backend, "durability", cfg.durability, "redis-server", redisPath)
	startJoin(cfg, hasState, ln, log)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	var result error
	select {
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String())
	case <-proc.Exited():
		result = fmt.Errorf("redis-server exited unexpectedly (%v); exiting so that a restart rebuilds its data from the snapshot and the Raft log", proc.Err())
	case err := <-serveErr:
		result = fmt.Errorf("client listener stopped: %w", err)
	}
	shutdown(s, n, m, stop, log)
	return result
}

// shutdown stops the node in this order: stop accepting clients; hand
// leadership over (a leader); let in-flight requests finish and close
// every client connection; stop the proposer and the periodic loops; stop
// Raft (and its stores); stop accepting peers. The child is stopped last,
// by run's deferred Stop.
func shutdown(s *server, n *node, m *mux.Mux, stop chan struct{}, log *slog.Logger) {
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
func newServer(cfg *config, n *node, f *fsm, proc *child.Process, tbl *commandTable, log *slog.Logger) *server {
	s := &server{
		node: n, fsm: f, cmds: tbl, child: proc, log: log,
		followerProxy: cfg.followerProxy, maxMemory: cfg.maxMemory,
		limits: resp.DefaultLimits(), wall: wallClockMS, epoch: time.Now().UnixNano(),
		waiters: newWaiterSet(),
	}
	s.proposer = newProposer(n, f, wallClockMS, log.With("src", "proposer"))
	s.reads = &readPath{
		level: cfg.consistency, node: n, fsm: f, proposer: s.proposer, tbl: tbl, wall: wallClockMS,
		pool:  redisconn.NewPool("unix", proc.Sock(), 256),
		index: &readIndexer{node: n, fsm: f},
	}
	f.setTouchHook(touchHook{wanted: s.waiters.active, report: s.waiters.touched})
	return s
}

// loadCommandTable asks the child for COMMAND and builds the front end's
// command table from it.
func loadCommandTable(proc *child.Process) (*commandTable, error) {
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
func startNode(cfg *config, dir string, f *fsm, layer raft.StreamLayer, log *slog.Logger) (*node, bool, error) {
	opts := raftOptions{
		dir: dir, advertise: cfg.advertise, backend: cfg.backend, durability: cfg.durability,
		snapshotThreshold: cfg.snapshotThreshold, trailingLogs: cfg.trailingLogs,
		snapshotInterval: cfg.snapshotInterval,
	}
	n, hasState, err := newNode(opts, f, layer, log)
	if err != nil {
		return nil, false, err
	}
	if !hasState && cfg.join == "" {
		if err := n.bootstrap(); err != nil {
			n.close()
			return nil, false, err
		}
	}
	return n, hasState, nil
}

// startJoin asks the cluster at -join to add this node, unless the node
// already has Raft state (then its data directory decides membership).
func startJoin(cfg *config, hasState bool, ln net.Listener, log *slog.Logger) {
	switch {
	case hasState && cfg.join != "":
		log.Info("existing Raft state found; -join is ignored and the node rejoins its cluster")
	case !hasState && cfg.join != "":
		go func() {
			if err := joinCluster(cfg.join, cfg.advertise, log); err != nil {
				log.Error("join failed", "err", err)
				ln.Close()
			}
		}()
	}
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
