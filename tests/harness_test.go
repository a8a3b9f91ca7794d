package tests

// The harness of the cluster tests: it builds the redraft binary once,
// starts, stops, kills, pauses and restarts nodes (each with its own real
// redis-server child), gives each a go-redis client, polls with deadlines
// (eventually, poll, waitLeader, waitApplied) and reads Raft's view
// (RAFTDIGEST, RAFTSTATS, RAFTPEERS). Cluster state is in state_test.go.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// binPath is the redraft binary under test, built once by TestMain.
var binPath string

// Timeouts used across the suite. Raft elections with hashicorp/raft's
// defaults take 1–3 s, so these leave ample room on a slow 2-core CI box
// while still failing well inside the package budget.
const (
	startTimeout   = 20 * time.Second // process up and answering PING
	leaderTimeout  = 20 * time.Second // one agreed leader
	appliedTimeout = 20 * time.Second // all nodes at same applied index/digest
	cmdTimeout     = 5 * time.Second  // one command round-trip
	exitTimeout    = 15 * time.Second // process exit after a signal
	pollInterval   = 25 * time.Millisecond
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	for _, tool := range []string{"redis-server", "redis-cli", "redis-benchmark"} {
		if _, err := exec.LookPath(tool); err != nil {
			// Fail loudly: CI is expected to install redis (Debian package
			// redis-server / redis-tools). Skipping would hide a broken setup.
			fmt.Fprintf(os.Stderr, "FATAL: %s not found on PATH (%v); install redis-server/redis-tools before running the redraft integration tests\n", tool, err)
			return 1
		}
	}
	if p := os.Getenv("REDRAFT_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "FATAL: REDRAFT_BIN: %v\n", err)
			return 1
		}
		binPath = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "redraft-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FATAL: mkdtemp: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "redraft")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Dir = ".." // module root: package main lives there
	out, err := build.CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FATAL: building redraft failed: %v\n%s\n", err, out)
		return 1
	}
	return m.Run()
}

// ---------------------------------------------------------------------------
// Ports and directories

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("freePort: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var (
	rootMu  sync.Mutex
	rootDir = map[testing.TB]string{}
)

// testRoot returns a short per-test directory (short because the child
// redis-server may use a unix socket inside the node dir, and socket paths
// are limited to 107 bytes; t.TempDir() embeds the test name). It is removed
// after every node of the test has been killed (cleanup order is LIFO and
// this is registered before any node's cleanup).
func testRoot(t testing.TB) string {
	t.Helper()
	rootMu.Lock()
	defer rootMu.Unlock()
	if d, ok := rootDir[t]; ok {
		return d
	}
	d, err := os.MkdirTemp("", "rdt")
	if err != nil {
		t.Fatalf("mkdtemp: %v", err)
	}
	rootDir[t] = d
	t.Cleanup(func() {
		rootMu.Lock()
		delete(rootDir, t)
		rootMu.Unlock()
		if os.Getenv("REDRAFT_TEST_KEEP") != "" {
			t.Logf("keeping test directory %s", d)
			return
		}
		os.RemoveAll(d)
	})
	return d
}

// ---------------------------------------------------------------------------
// Nodes

// nodeOpts configures startNode.
type nodeOpts struct {
	Name        string   // label used in logs; defaults to "n<port>"
	Port        int      // 0: pick a free port
	Join        string   // value for -join ("" = bootstrap / no flag)
	Consistency string   // value for --consistency ("" = binary default)
	Args        []string // extra flags appended verbatim
	Env         []string // extra environment variables (NAME=value)
	NoWait      bool     // don't wait for the node to answer PING
	Password    string   // the node's clients authenticate with it (go-redis Password)
	TLS         *tls.Config
	// Bind is the -bind IP ("" = 127.0.0.1); the node listens on Bind:Port.
	Bind string
	// Advertise is -advertise, the address peers and clients dial (through
	// a proxy, for example); "" = 127.0.0.1:Port, the default.
	Advertise string
	// Bin is the binary to run ("" = the one TestMain built), and
	// EntryArgs flags it gets before all others (a container's
	// ENTRYPOINT): the harness's own flags come after them and win.
	Bin       string
	EntryArgs []string
}

// Node is one redraft process under test (plus its restarts).
type Node struct {
	t       testing.TB
	Name    string
	Port    int    // -p, the port the process listens on (at nodeOpts.Bind)
	Addr    string // advertise address = raft node ID, what clients dial ("127.0.0.1:PORT" unless nodeOpts.Advertise)
	Listen  string // where the process itself listens (-bind:-p)
	Dir     string // -dir
	LogPath string // combined stdout/stderr of every incarnation
	bin     string // the binary (binPath unless nodeOpts.Bin)
	args    []string
	// password and tlsConf are what the node's go-redis clients use.
	password string
	tlsConf  *tls.Config
	env      []string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process has exited
	exitErr  error         // result of cmd.Wait for the current process
	running  bool
	client   *redis.Client
	children []procID // redis-server descendants seen while it ran
}

// startNode launches a redraft node bound to 127.0.0.1 with its own data
// directory and registers a cleanup that kills it (and any redis-server it
// leaked) and dumps its log if the test failed.
func startNode(t testing.TB, o nodeOpts) *Node {
	t.Helper()
	root := testRoot(t)
	port := o.Port
	if port == 0 {
		port = freePort(t)
	}
	name := o.Name
	if name == "" {
		name = fmt.Sprintf("n%d", port)
	}
	bind := o.Bind
	if bind == "" {
		bind = "127.0.0.1"
	}
	n := &Node{
		t:        t,
		Name:     name,
		Port:     port,
		Addr:     fmt.Sprintf("127.0.0.1:%d", port),
		Listen:   net.JoinHostPort(bind, strconv.Itoa(port)),
		Dir:      filepath.Join(root, name),
		LogPath:  filepath.Join(root, name+".log"),
		password: o.Password,
		tlsConf:  o.TLS,
	}
	n.bin = binPath
	if o.Bin != "" {
		n.bin = o.Bin
	}
	n.args = append(append([]string(nil), o.EntryArgs...), "-bind", bind, "-p", strconv.Itoa(port), "-dir", n.Dir)
	if o.Advertise != "" {
		n.Addr = o.Advertise
		n.args = append(n.args, "-advertise", o.Advertise)
	}
	if o.Join != "" {
		n.args = append(n.args, "-join", o.Join)
	}
	if o.Consistency != "" {
		n.args = append(n.args, "--consistency", o.Consistency)
	}
	if lvl := os.Getenv("REDRAFT_TEST_LOGLEVEL"); lvl != "" {
		n.args = append(n.args, "-loglevel", lvl)
	}
	n.args = append(n.args, o.Args...)
	n.env = o.Env

	t.Cleanup(func() {
		n.cleanup()
		if t.Failed() {
			n.dumpLog(24 << 10)
		}
	})
	n.launch()
	if !o.NoWait {
		n.waitUp()
	}
	return n
}

func (n *Node) String() string { return n.Name + "(" + n.Addr + ")" }

// launch starts a new incarnation of the process with the node's args.
func (n *Node) launch() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.running {
		n.t.Fatalf("%s: launch while already running", n)
	}
	f, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatalf("%s: open log: %v", n, err)
	}
	fmt.Fprintf(f, "=== %s start: %s %s\n", time.Now().Format("15:04:05.000"), n.bin, strings.Join(n.args, " "))
	cmd := exec.Command(n.bin, n.args...)
	if len(n.env) > 0 {
		cmd.Env = append(os.Environ(), n.env...)
	}
	cmd.Stdout = f
	cmd.Stderr = f
	// If the test binary itself dies (panic, timeout), take the node with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		n.t.Fatalf("%s: start %s: %v", n, n.bin, err)
	}
	done := make(chan struct{})
	n.cmd, n.done, n.exitErr, n.running = cmd, done, nil, true
	n.children = nil
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(f, "=== %s exit: %v\n", time.Now().Format("15:04:05.000"), exitDesc(err))
		f.Close()
		n.mu.Lock()
		n.exitErr = err
		n.mu.Unlock()
		close(done)
	}()
	n.client = n.newNodeClient(0)
}

// newNodeClient is a client of this node with its password and TLS
// settings (newClient's options otherwise).
func (n *Node) newNodeClient(db int) *redis.Client {
	return newClientWith(n.Addr, db, n.password, n.tlsConf)
}

// SetPassword changes the password the node's clients authenticate with
// (after CONFIG SET requirepass) and replaces its client.
func (n *Node) SetPassword(p string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.password = p
	if n.client != nil {
		n.client.Close()
	}
	n.client = n.newNodeClient(0)
}

func exitDesc(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// newClient returns a go-redis client that never retries (so TRY /
// CLUSTERDOWN errors surface as-is), speaks RESP2, and sends no CLIENT
// SETINFO / maintenance-notification handshakes.
func newClient(addr string, db int) *redis.Client {
	return newClientWith(addr, db, "", nil)
}

// newClientWith is newClient with a password and a TLS configuration.
func newClientWith(addr string, db int, password string, tlsConf *tls.Config) *redis.Client {
	return redis.NewClient(clientOptions(addr, db, password, tlsConf))
}

// clientOptions are the go-redis options of newClientWith.
func clientOptions(addr string, db int, password string, tlsConf *tls.Config) *redis.Options {
	return &redis.Options{
		Password:                 password,
		TLSConfig:                tlsConf,
		Addr:                     addr,
		DB:                       db,
		Protocol:                 2,
		DisableIdentity:          true,
		MaxRetries:               -1,
		DialTimeout:              2 * time.Second,
		ReadTimeout:              cmdTimeout,
		WriteTimeout:             cmdTimeout,
		PoolSize:                 4,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
}

// Client is the node's go-redis client (db 0), valid for the current
// incarnation.
func (n *Node) Client() *redis.Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.client
}

// ClientDB returns a fresh client for db; it is closed at test cleanup.
func (n *Node) ClientDB(db int) *redis.Client {
	c := n.newNodeClient(db)
	n.t.Cleanup(func() { c.Close() })
	return c
}

// Running reports whether the current incarnation has not exited (a
// SIGSTOPped node counts as running).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.running {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Pid of the current incarnation (0 if none).
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// waitUp polls PING until PONG; fails fast if the process exits.
func (n *Node) waitUp() {
	n.t.Helper()
	eventually(n.t, startTimeout, func() error {
		if !n.Running() {
			return stopPolling(fmt.Errorf("%s exited during startup: %v", n, exitDesc(n.exitErrLocked())))
		}
		s, err := n.Do("PING")
		if err != nil {
			return err
		}
		if s != "PONG" {
			return fmt.Errorf("PING -> %v", s)
		}
		return nil
	})
	n.recordChildren()
}

func (n *Node) exitErrLocked() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.exitErr
}

// signal sends sig to the node's process (only that pid).
func (n *Node) signal(sig syscall.Signal) {
	n.t.Helper()
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		n.t.Fatalf("%s: signal %v: not started", n, sig)
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		n.t.Fatalf("%s: signal %v: %v", n, sig, err)
	}
}

// waitExit waits for the current incarnation to exit and returns cmd.Wait's
// error (nil for exit status 0).
func (n *Node) waitExit(timeout time.Duration) error {
	n.t.Helper()
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	select {
	case <-done:
	case <-time.After(timeout):
		n.t.Fatalf("%s did not exit within %v", n, timeout)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.running = false
	if n.client != nil {
		n.client.Close()
	}
	return n.exitErr
}

// Kill9 sends SIGKILL to the node process (not to its children) and reaps it.
func (n *Node) Kill9() {
	n.t.Helper()
	n.recordChildren()
	n.t.Logf("%s: kill -9 pid %d", n, n.Pid())
	n.signal(syscall.SIGKILL)
	n.waitExit(exitTimeout)
}

// Stop sends SIGTERM and waits for a clean exit; returns the exit error.
func (n *Node) Stop() error {
	n.t.Helper()
	n.recordChildren()
	n.t.Logf("%s: SIGTERM pid %d", n, n.Pid())
	n.signal(syscall.SIGTERM)
	return n.waitExit(exitTimeout)
}

// Pause / Resume freeze and thaw the node with SIGSTOP / SIGCONT.
func (n *Node) Pause() { n.t.Helper(); n.signal(syscall.SIGSTOP) }

func (n *Node) Resume() { n.t.Helper(); n.signal(syscall.SIGCONT) }

// Restart starts a new incarnation with the same port, dir and args (the
// previous one must have exited) and waits for PING.
func (n *Node) Restart() {
	n.t.Helper()
	n.RestartNoWait()
	n.waitUp()
}

// RestartNoWait is Restart without waiting for PING (for a start that may
// fail).
func (n *Node) RestartNoWait() {
	n.t.Helper()
	if n.Running() {
		n.t.Fatalf("%s: Restart while still running", n)
	}
	n.mu.Lock()
	n.running = false
	n.mu.Unlock()
	// The old child redis-server must be gone before the new one starts, or
	// the test would be measuring a leak, not a restart.
	n.waitChildrenGone(exitTimeout)
	n.t.Logf("%s: restart", n)
	n.launch()
}

// cleanup kills the node process if still running, then any redis-server
// that it started and that survived (by recorded pid or by referencing the
// node's directory). Only processes started by this test are signalled.
func (n *Node) cleanup() {
	n.mu.Lock()
	cmd, done, running := n.cmd, n.done, n.running
	n.mu.Unlock()
	if running && cmd != nil && cmd.Process != nil {
		n.recordChildren()
		cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(exitTimeout):
			n.t.Errorf("%s: process %d not reaped after SIGKILL", n, cmd.Process.Pid)
		}
	}
	n.mu.Lock()
	n.running = false
	if n.client != nil {
		n.client.Close()
	}
	n.mu.Unlock()
	// Give the binary's own child-reaping a moment before mopping up.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && len(n.liveChildren()) > 0 {
		time.Sleep(pollInterval)
	}
	for _, p := range n.liveChildren() {
		n.t.Logf("%s: killing leftover redis-server pid %d", n, p.pid)
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
}

// dumpLog prints the last max bytes of the node's log to the test output.
func (n *Node) dumpLog(max int) {
	b, err := os.ReadFile(n.LogPath)
	if err != nil {
		n.t.Logf("---- %s: no log (%v)", n, err)
		return
	}
	if len(b) > max {
		b = append([]byte("...[truncated]...\n"), b[len(b)-max:]...)
	}
	n.t.Logf("---- log of %s (%s) ----\n%s---- end of log of %s ----", n, n.LogPath, b, n)
}

// Log returns the node's whole log so far.
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.LogPath)
	return string(b)
}

// ---------------------------------------------------------------------------
// Commands

// Do runs one command on the node with a timeout and returns the decoded
// reply (string, int64, []interface{}, nil for a nil reply) or the error.
func (n *Node) Do(args ...interface{}) (interface{}, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	v, err := n.Client().Do(ctx, args...).Result()
	if err == redis.Nil {
		return nil, nil
	}
	return v, err
}

// MustDo is Do that fails the test on error.
func (n *Node) MustDo(args ...interface{}) interface{} {
	n.t.Helper()
	v, err := n.Do(args...)
	if err != nil {
		n.t.Fatalf("%s: %v: %v", n, args, err)
	}
	return v
}

// DoEventually retries a command until it succeeds (e.g. the first write
// after an election, while the new leader commits its no-op).
func (n *Node) DoEventually(timeout time.Duration, args ...interface{}) interface{} {
	n.t.Helper()
	var v interface{}
	eventually(n.t, timeout, func() error {
		var err error
		v, err = n.Do(args...)
		if err != nil {
			return fmt.Errorf("%s: %v: %w", n, args, err)
		}
		return nil
	})
	return v
}

// cli runs redis-cli against the node and returns its trimmed stdout+stderr.
// Redis 7.0's redis-cli prints error replies on stdout and exits 0, so the
// caller inspects the text.
func cli(t testing.TB, port int, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	full := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(port)}, args...)
	out, err := exec.CommandContext(ctx, "redis-cli", full...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("redis-cli %v: timed out; output: %s", full, out)
	}
	if err != nil {
		t.Logf("redis-cli %v: %v", full, err)
	}
	return strings.TrimRight(string(out), "\r\n")
}

// ---------------------------------------------------------------------------
// Polling

type stopErr struct{ error }

// stopPolling wraps an error so that eventually gives up immediately.
func stopPolling(err error) error { return stopErr{err} }

// eventually polls f every pollInterval until it returns nil; it fails the
// test with f's last error at the deadline (or at once for stopPolling).
func eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	if err := poll(timeout, f); err != nil {
		t.Fatalf("condition not met within %v: %v", timeout, err)
	}
}

// poll is eventually without failing: it returns the last error or nil.
func poll(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		var s stopErr
		if errors.As(err, &s) {
			return s.error
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(pollInterval)
	}
}

func running(nodes []*Node) []*Node {
	var out []*Node
	for _, n := range nodes {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// waitLeader polls until exactly one of the running nodes reports
// RAFTSTATE Leader and every running node's RAFTLEADER names it; returns it.
func waitLeader(t testing.TB, nodes ...*Node) *Node {
	t.Helper()
	var leader *Node
	eventually(t, leaderTimeout, func() error {
		var err error
		leader, err = agreedLeader(nodes)
		return err
	})
	return leader
}

// agreedLeader returns the one running node of nodes that reports RAFTSTATE
// Leader, if every running node's RAFTLEADER names it; otherwise an error
// (stopPolling when no node runs).
func agreedLeader(nodes []*Node) (*Node, error) {
	live := running(nodes)
	if len(live) == 0 {
		return nil, stopPolling(errors.New("no running nodes"))
	}
	var leaders []*Node
	for _, n := range live {
		st, err := n.Do("RAFTSTATE")
		if err != nil {
			return nil, fmt.Errorf("%s RAFTSTATE: %v", n, err)
		}
		if st == "Leader" {
			leaders = append(leaders, n)
		}
	}
	if len(leaders) != 1 {
		return nil, fmt.Errorf("%d nodes report Leader (%v)", len(leaders), leaders)
	}
	for _, n := range live {
		l, err := n.Do("RAFTLEADER")
		if err != nil {
			return nil, fmt.Errorf("%s RAFTLEADER: %v", n, err)
		}
		if l != leaders[0].Addr {
			return nil, fmt.Errorf("%s RAFTLEADER = %v, want %s", n, l, leaders[0].Addr)
		}
	}
	return leaders[0], nil
}

// digest is a parsed RAFTDIGEST reply.
type digest struct {
	Applied int64
	Hash    string
}

func raftDigest(n *Node) (digest, error) {
	v, err := n.Do("RAFTDIGEST")
	if err != nil {
		return digest{}, err
	}
	arr, ok := v.([]interface{})
	if !ok || len(arr) != 2 {
		return digest{}, fmt.Errorf("RAFTDIGEST: want 2-element array, got %#v", v)
	}
	idx, ok := arr[0].(int64)
	if !ok {
		return digest{}, fmt.Errorf("RAFTDIGEST: applied index not an integer: %#v", arr[0])
	}
	h, ok := arr[1].(string)
	if !ok {
		return digest{}, fmt.Errorf("RAFTDIGEST: digest not a string: %#v", arr[1])
	}
	return digest{idx, h}, nil
}

// waitApplied polls RAFTDIGEST until all given running nodes report the same
// applied index and the same digest; returns that digest.
func waitApplied(t testing.TB, nodes ...*Node) digest {
	t.Helper()
	var d digest
	eventually(t, appliedTimeout, func() error {
		var err error
		d, err = sameDigest(nodes)
		return err
	})
	return d
}

// sameDigest returns the RAFTDIGEST that every running node of nodes
// reports, or an error if they differ (in applied index or digest).
func sameDigest(nodes []*Node) (digest, error) {
	live := running(nodes)
	var first digest
	for i, n := range live {
		got, err := raftDigest(n)
		if err != nil {
			return digest{}, fmt.Errorf("%s: %v", n, err)
		}
		if i == 0 {
			first = got
			continue
		}
		if got != first {
			return digest{}, fmt.Errorf("%s RAFTDIGEST %+v != %s %+v", n, got, live[0], first)
		}
	}
	return first, nil
}

// raftStats returns RAFTSTATS as a map.
func raftStats(n *Node) (map[string]string, error) {
	v, err := n.Do("RAFTSTATS")
	if err != nil {
		return nil, err
	}
	arr, ok := v.([]interface{})
	if !ok || len(arr)%2 != 0 {
		return nil, fmt.Errorf("RAFTSTATS: want flat key/value array, got %#v", v)
	}
	m := map[string]string{}
	for i := 0; i < len(arr); i += 2 {
		m[fmt.Sprint(arr[i])] = fmt.Sprint(arr[i+1])
	}
	return m, nil
}

// raftPeers returns the addresses (first element of each member) listed by
// RAFTPEERS, sorted.
func raftPeers(n *Node) ([]string, error) {
	v, err := n.Do("RAFTPEERS")
	if err != nil {
		return nil, err
	}
	arr, ok := v.([]interface{})
	if !ok {
		return nil, fmt.Errorf("RAFTPEERS: want array, got %#v", v)
	}
	var out []string
	for _, m := range arr {
		member, ok := m.([]interface{})
		if !ok || len(member) == 0 {
			return nil, fmt.Errorf("RAFTPEERS: member not a non-empty array: %#v", m)
		}
		out = append(out, fmt.Sprint(member[0]))
	}
	sort.Strings(out)
	return out, nil
}

// ---------------------------------------------------------------------------
// Processes (/proc)

// procID identifies a process robustly against pid reuse.
type procID struct {
	pid   int
	start string // field 22 of /proc/PID/stat
}

// procStat returns (ppid, state, starttime) of pid.
func procStat(pid int) (int, string, string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", "", err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // comm may contain spaces
	if i < 0 {
		return 0, "", "", fmt.Errorf("bad stat %q", s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, "", "", fmt.Errorf("bad stat %q", s)
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid, f[0], f[19], nil
}

func allPids() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isRedisServer(pid int) bool {
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if strings.TrimSpace(string(comm)) == "redis-server" {
		return true
	}
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return strings.HasSuffix(exe, "/redis-server")
}

// alive reports whether p still exists and is not a zombie.
func (p procID) alive() bool {
	_, state, start, err := procStat(p.pid)
	return err == nil && start == p.start && state != "Z" && state != "X"
}

// redisChildren finds redis-server processes belonging to the node: live
// descendants of its current pid, plus any redis-server whose cmdline or
// working directory references the node's -dir (orphans).
func (n *Node) redisChildren() []procID {
	root := n.Pid()
	parent := map[int]int{}
	pids := allPids()
	for _, pid := range pids {
		if ppid, _, _, err := procStat(pid); err == nil {
			parent[pid] = ppid
		}
	}
	isDesc := func(pid int) bool {
		for i := 0; i < 64 && pid > 1; i++ {
			pid = parent[pid]
			if pid == root && root != 0 {
				return true
			}
		}
		return false
	}
	var out []procID
	for _, pid := range pids {
		if !isRedisServer(pid) {
			continue
		}
		_, state, start, err := procStat(pid)
		if err != nil || state == "Z" {
			continue
		}
		mine := n.Running() && isDesc(pid)
		if !mine {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
			mine = bytes.Contains(cmdline, []byte(n.Dir)) || cwd == n.Dir || strings.HasPrefix(cwd, n.Dir+"/")
		}
		if mine {
			out = append(out, procID{pid, start})
		}
	}
	return out
}

// recordChildren remembers the node's current redis-server children so they
// can be checked / cleaned up after the node dies.
func (n *Node) recordChildren() {
	found := n.redisChildren()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range found {
		dup := false
		for _, q := range n.children {
			if q == p {
				dup = true
			}
		}
		if !dup {
			n.children = append(n.children, p)
		}
	}
}

// liveChildren returns recorded or dir-referencing redis-servers still alive.
func (n *Node) liveChildren() []procID {
	n.mu.Lock()
	recorded := append([]procID(nil), n.children...)
	n.mu.Unlock()
	seen := map[procID]bool{}
	var out []procID
	for _, p := range append(recorded, n.redisChildren()...) {
		if !seen[p] && p.alive() {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// waitChildrenGone fails the test if a redis-server of the (dead) node is
// still alive after timeout.
func (n *Node) waitChildrenGone(timeout time.Duration) {
	n.t.Helper()
	eventually(n.t, timeout, func() error {
		if l := n.liveChildren(); len(l) > 0 {
			return fmt.Errorf("%s: redis-server child still alive after node exit: %v", n, l)
		}
		return nil
	})
}

// ---------------------------------------------------------------------------
// Cluster helpers

// startCluster starts node 1 (bootstrap) and size-1 joiners pointing at it,
// waits for one leader and returns the nodes (index 0 = bootstrap node).
func startCluster(t testing.TB, size int, o nodeOpts) []*Node {
	t.Helper()
	first := o
	first.Join = ""
	first.Name = "n1"
	n1 := startNode(t, first)
	waitLeader(t, n1)
	nodes := []*Node{n1}
	for i := 2; i <= size; i++ {
		oi := o
		oi.Name = fmt.Sprintf("n%d", i)
		oi.Join = n1.Addr
		nodes = append(nodes, startNode(t, oi))
	}
	waitMembers(t, nodes...)
	waitLeader(t, nodes...)
	return nodes
}

// waitMembers polls until every running node's RAFTPEERS lists exactly the
// addresses of nodes.
func waitMembers(t testing.TB, nodes ...*Node) {
	t.Helper()
	want := make([]string, len(nodes))
	for i, n := range nodes {
		want[i] = n.Addr
	}
	sort.Strings(want)
	eventually(t, leaderTimeout, func() error {
		for _, n := range running(nodes) {
			got, err := raftPeers(n)
			if err != nil {
				return fmt.Errorf("%s RAFTPEERS: %v", n, err)
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				return fmt.Errorf("%s RAFTPEERS = %v, want %v", n, got, want)
			}
		}
		return nil
	})
}

func others(all []*Node, not ...*Node) []*Node {
	var out []*Node
outer:
	for _, n := range all {
		for _, x := range not {
			if n == x {
				continue outer
			}
		}
		out = append(out, n)
	}
	return out
}

// mustEqual is a tiny assertion helper.
func mustEqual(t testing.TB, what string, got, want interface{}) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: got %#v, want %#v", what, got, want)
	}
}

// wipeDir deletes a stopped node's data directory so that its next Restart
// starts from empty state (and therefore honours -join again).
func wipeDir(t testing.TB, n *Node) {
	t.Helper()
	if n.Running() {
		t.Fatalf("%s: wipeDir while running", n)
	}
	if err := os.RemoveAll(n.Dir); err != nil {
		t.Fatalf("%s: wipe %s: %v", n, n.Dir, err)
	}
}

// rawConn is a bare RESP connection, used where the exact moment a command
// reaches the node matters (e.g. queueing commands to a SIGSTOPped process:
// the kernel buffers them, and the node sees them the instant it resumes).
type rawConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t testing.TB, n *Node) *rawConn {
	t.Helper()
	return dialAddrRaw(t, n.Addr)
}

// send writes one command without reading the reply.
func (rc *rawConn) send(t testing.TB, args ...string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	rc.c.SetWriteDeadline(time.Now().Add(cmdTimeout))
	if _, err := rc.c.Write([]byte(b.String())); err != nil {
		t.Fatalf("raw send %v: %v", args, err)
	}
}

// reply reads one reply rendered as text: "+OK", "-ERR ...", ":1",
// "$value", "$nil", or "*N" followed by the rendered elements joined by " ".
func (rc *rawConn) reply(t testing.TB, timeout time.Duration) string {
	t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(timeout))
	s, err := rc.readValue()
	if err != nil {
		t.Fatalf("raw reply: %v", err)
	}
	return s
}

func (rc *rawConn) readValue() (string, error) {
	line, err := rc.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply line")
	}
	switch line[0] {
	case '+', '-', ':':
		return line, nil
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("bad bulk header %q", line)
		}
		if n < 0 {
			return "$nil", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rc.r, buf); err != nil {
			return "", err
		}
		return "$" + string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("bad array header %q", line)
		}
		parts := []string{line}
		for i := 0; i < n; i++ {
			v, err := rc.readValue()
			if err != nil {
				return "", err
			}
			parts = append(parts, v)
		}
		return strings.Join(parts, " "), nil
	}
	return "", fmt.Errorf("unexpected reply line %q", line)
}
