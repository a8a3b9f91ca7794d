// Command redraft runs a redis-server under Raft: every write goes through a
// replicated log and is applied to each node's own child redis-server.
package main

import (
	"bufio"
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
)

// levelVerbose sits between debug and notice (slog's info).
const levelVerbose = slog.Level(-2)

// config holds the command-line flags.
type config struct {
	port              int
	dir               string
	join              string
	advertise         string
	bind              string
	consistency       string
	backend           string
	durability        string
	loglevel          string
	redisServer       string
	snapshotThreshold uint64
	trailingLogs      uint64
	snapshotInterval  time.Duration
	maxMemory         string
	followerProxy     bool
	pprof             string
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("redraft", flag.ContinueOnError)
	fs.IntVar(&c.port, "p", 7481, "port for Redis clients and Raft peers")
	fs.StringVar(&c.dir, "dir", "data", "data directory (Raft log, snapshots, child socket)")
	fs.StringVar(&c.join, "join", "", "address of a member to join (host:port, or a bare port on 127.0.0.1)")
	fs.StringVar(&c.advertise, "advertise", "", "address peers and clients use to reach this node (default 127.0.0.1:PORT); also the node ID")
	fs.StringVar(&c.bind, "bind", "127.0.0.1", "address to listen on (0.0.0.0 for all interfaces)")
	fs.StringVar(&c.consistency, "consistency", "medium", "read consistency: low (any node), medium (leader), high (linearizable)")
	fs.StringVar(&c.backend, "backend", "wal", "Raft log store: wal, bolt or inmem")
	fs.StringVar(&c.durability, "durability", "high", "log fsync: high (before acknowledging), medium (every second), low (left to the OS)")
	fs.StringVar(&c.loglevel, "loglevel", "notice", "log level: quiet, warning, notice, verbose, debug")
	fs.StringVar(&c.redisServer, "redis-server", "", "path of the redis-server executable (default: beside redraft, then $PATH)")
	fs.Uint64Var(&c.snapshotThreshold, "snapshot-threshold", 8192, "log entries between automatic snapshots")
	fs.Uint64Var(&c.trailingLogs, "trailing-logs", 10240, "log entries kept after a snapshot for slow followers")
	fs.DurationVar(&c.snapshotInterval, "snapshot-interval", 10*time.Second, "how often (randomised up to twice this) to check whether -snapshot-threshold entries have accumulated")
	fs.StringVar(&c.maxMemory, "maxmemory", "0", "refuse writes that grow memory (-OOM) above this many bytes (e.g. 512mb); 0 for no limit")
	fs.BoolVar(&c.followerProxy, "follower-proxy", false, "followers relay writes (and reads they may not serve) to the leader instead of answering -TRY")
	fs.StringVar(&c.pprof, "pprof", "", "serve Go profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060; off by default")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if !oneOf(c.consistency, "low", "medium", "high") {
		return nil, fmt.Errorf("--consistency must be low, medium or high, not %q", c.consistency)
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
	"quiet": slog.LevelError, "warning": slog.LevelWarn, "notice": slog.LevelInfo,
	"verbose": levelVerbose, "debug": slog.LevelDebug - 4,
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

// run starts every part of the node and blocks until a signal or a fatal
// error.
func run(cfg *config, log *slog.Logger) error {
	maxMemory, err := parseBytes(cfg.maxMemory)
	if err != nil {
		return fmt.Errorf("-maxmemory: %w", err)
	}
	if cfg.pprof != "" {
		go func() { log.Warn("pprof stopped", "err", http.ListenAndServe(cfg.pprof, nil)) }()
	}
	redisPath, err := findRedisServer(cfg.redisServer)
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
	sock := socketPath(dir)
	child, err := startChild(redisPath, childDir, sock, childArgs(sock, childDir), log.With("src", "redis-server"))
	if err != nil {
		ln.Close()
		return err
	}
	defer child.stop(5 * time.Second)

	ctl, err := dialChild(sock)
	if err != nil {
		return err
	}
	tbl, err := loadCommandTable(ctl)
	ctl.Close()
	if err != nil {
		return err
	}
	f, err := newFSM(child, tbl, log.With("src", "fsm"))
	if err != nil {
		return err
	}

	m := newMux(ln, log)
	advertise, err := net.ResolveTCPAddr("tcp", cfg.advertise)
	if err != nil {
		return fmt.Errorf("-advertise: %w", err)
	}
	layer := &streamLayer{chanListener: m.raftLn, advertise: advertise}
	go m.serve()

	n, hasState, err := startNode(cfg, dir, f, layer, log)
	if err != nil {
		return err
	}
	defer n.close()

	stop := make(chan struct{})
	defer close(stop)
	s := &server{
		node: n, fsm: f, tbl: tbl, child: child, consistency: cfg.consistency, followerProxy: cfg.followerProxy,
		maxMemory: maxMemory, log: log, pool: newConnPool(sock, 256), epoch: time.Now().UnixNano(),
	}
	s.proposer = newProposer(n, f)
	s.reads = &readIndexer{node: n, fsm: f}
	s.waiters = newWaiterSet()
	f.setTouchHook(s.waiters.active, s.waiters.touched)
	go s.proposer.run(stop)
	go s.expireLoop(stop)
	if maxMemory > 0 {
		go s.memoryLoop(stop)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.serve(m.redisLn) }()
	log.Info("redraft ready", "addr", ln.Addr().String(), "id", cfg.advertise,
		"consistency", cfg.consistency, "backend", cfg.backend, "durability", cfg.durability, "redis-server", redisPath)

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

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	select {
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String())
		if n.raft.State() == raft.Leader {
			if err := n.raft.LeadershipTransfer().Error(); err != nil {
				log.Warn("leadership transfer", "err", err)
			}
		}
		ln.Close()
		return nil
	case <-child.exited:
		return fmt.Errorf("redis-server exited unexpectedly (%v); exiting so that a restart rebuilds its data from the snapshot and the Raft log", child.err)
	case err := <-serveErr:
		return fmt.Errorf("client listener stopped: %w", err)
	}
}

// startNode opens Raft and bootstraps a new single-member cluster when there
// is no state and nothing to join.
func startNode(cfg *config, dir string, f *fsm, layer *streamLayer, log *slog.Logger) (*node, bool, error) {
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

// removeStaleRDB deletes snapshot files a crash may have left in the child's
// directory, so the child always starts empty and is filled from Raft.
func removeStaleRDB(dir string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.rdb"))
	for _, m := range matches {
		_ = os.Remove(m)
	}
	_ = os.RemoveAll(filepath.Join(dir, "frozen"))
}

// joinCluster asks the member at target to add self, following -TRY
// redirects to the leader, until it succeeds.
func joinCluster(target, self string, log *slog.Logger) error {
	addr, err := normalizeAddr(target)
	if err != nil {
		return fmt.Errorf("-join: %w", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for attempt := 1; ; attempt++ {
		reply, err := sendCommand(addr, "RAFTADDPEER", self)
		switch {
		case err == nil && reply == "+OK":
			log.Info("joined cluster", "via", addr)
			return nil
		case err == nil && strings.HasPrefix(reply, "-TRY "):
			addr = strings.TrimPrefix(reply, "-TRY ")
			continue
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("could not join via %s: %v %s", target, err, reply)
		}
		log.Warn("join attempt failed; retrying", "via", addr, "attempt", attempt, "err", err, "reply", reply)
		time.Sleep(500 * time.Millisecond)
		if a, err := normalizeAddr(target); err == nil && attempt%4 == 0 {
			addr = a
		}
	}
}

// sendCommand runs one command against a redraft node and returns the first
// line of its reply.
func sendCommand(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	w := bufio.NewWriter(c)
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	writeCommand(w, b)
	if err := w.Flush(); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}
