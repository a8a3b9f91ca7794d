package tests

// The Redis command surface as clients use it: transactions,
// scripts and functions, Pub/Sub across nodes, blocking commands,
// connection and server commands, every refusal, data commands of every
// type, --follower-proxy and redis-cli. One 3-node cluster is shared by
// all subtests of TestSurface (n1 and n2 at --consistency low so that their
// state can be read directly; n3 with --follower-proxy at the default
// consistency), plus a bare redis-server of the same version to compare
// replies with, byte for byte where they must be equal.
//
// The destructive subtests (leader kill, leadership loss) run last.

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ---------------------------------------------------------------------------
// Shared environment

type surfaceEnv struct {
	n1, n2, n3 *Node // n1 bootstrap (low), n2 (low), n3 (--follower-proxy, medium)
	all        []*Node
	bare       *bareRedis
}

// surfaceChecks counts the assertions made by this file (reported per
// subtest and in total).
var surfaceChecks atomic.Int64

// sCheck records one assertion; it reports (without stopping) when !ok.
func sCheck(t *testing.T, ok bool, format string, args ...interface{}) bool {
	t.Helper()
	surfaceChecks.Add(1)
	if !ok {
		t.Errorf(format, args...)
	}
	return ok
}

// sMust records one assertion that later steps depend on (stops the subtest).
func sMust(t *testing.T, ok bool, format string, args ...interface{}) {
	t.Helper()
	surfaceChecks.Add(1)
	if !ok {
		t.Fatalf(format, args...)
	}
}

// bareRedis is a plain redis-server (same binary as the children) used as
// the reference for replies.
type bareRedis struct {
	Addr string
	done chan struct{}
}

// startBareRedis starts one, with extra redis-server arguments (later ones
// win, e.g. --dir and --dbfilename to load an RDB file).
func startBareRedis(t *testing.T, extra ...string) *bareRedis {
	t.Helper()
	port := freePort(t)
	dir := filepath.Join(testRoot(t), fmt.Sprintf("bare-%d", port))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("mkdir %s: %v", dir, err)
	}
	logf, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		t.Fatalf("create bare log: %v", err)
	}
	cmd := exec.Command("redis-server", append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning"}, extra...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start bare redis-server: %v", err)
	}
	b := &bareRedis{Addr: fmt.Sprintf("127.0.0.1:%d", port), done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(b.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill() // only the pid we started
		select {
		case <-b.done:
		case <-time.After(exitTimeout):
			t.Errorf("bare redis-server pid %d not reaped", cmd.Process.Pid)
		}
	})
	c := newClient(b.Addr, 0)
	defer c.Close()
	eventually(t, startTimeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Ping(ctx).Err()
	})
	return b
}

// startSurfaceCluster starts n1 (bootstrap), then n2 and n3 joining it.
func startSurfaceCluster(t *testing.T) *surfaceEnv {
	t.Helper()
	n1 := startNode(t, nodeOpts{Name: "n1", Consistency: "low"})
	waitLeader(t, n1)
	n2 := startNode(t, nodeOpts{Name: "n2", Consistency: "low", Join: n1.Addr})
	n3 := startNode(t, nodeOpts{Name: "n3", Join: n1.Addr, Args: []string{"--follower-proxy"}})
	all := []*Node{n1, n2, n3}
	waitMembers(t, all...)
	l := waitLeader(t, all...)
	// The first write after an election may race the leader's no-op.
	eventually(t, 15*time.Second, func() error {
		_, err := l.Do("SET", "surface:ready", "1")
		return err
	})
	return &surfaceEnv{n1: n1, n2: n2, n3: n3, all: all}
}

func (e *surfaceEnv) leader(t *testing.T) *Node {
	t.Helper()
	return waitLeader(t, running(e.all)...)
}

// lowFollower returns a running follower that serves reads locally.
func (e *surfaceEnv) lowFollower(t *testing.T, l *Node) *Node {
	t.Helper()
	for _, n := range []*Node{e.n1, e.n2} {
		if n != l && n.Running() {
			return n
		}
	}
	t.Fatalf("no running --consistency low follower")
	return nil
}

// sClient is a go-redis client (see newClient) closed at the end of t.
func sClient(t *testing.T, addr string, db int) *redis.Client {
	c := newClient(addr, db)
	t.Cleanup(func() { c.Close() })
	return c
}

func sCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 15*time.Second)
}

// sDo runs a command on n and fails the subtest on error (nil reply = nil).
func sDo(t *testing.T, n *Node, args ...interface{}) interface{} {
	t.Helper()
	v, err := n.Do(args...)
	if err != nil {
		t.Fatalf("%s: %v: %v", n, args, err)
	}
	return v
}

// sErr asserts that a command fails with exactly want.
func sErr(t *testing.T, n *Node, want string, args ...interface{}) {
	t.Helper()
	_, err := n.Do(args...)
	sCheck(t, err != nil && err.Error() == want, "%s: %v: got error %v, want %q", n, args, err, want)
}

// render turns a go-redis reply into comparable text.
func render(v interface{}, err error) string {
	if err == redis.Nil {
		return "<nil>"
	}
	if err != nil {
		return "ERR<" + err.Error() + ">"
	}
	return fmt.Sprintf("%v", v)
}

// dialAddrRaw opens a rawConn (see harness) to any address.
func dialAddrRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{c: c, r: bufio.NewReader(c)}
}

func (rc *rawConn) do(t *testing.T, args ...string) string {
	t.Helper()
	rc.send(t, args...)
	return rc.reply(t, 15*time.Second)
}

// sameReplies runs cmds in order on one connection to n and one to the
// bare redis-server and reports every reply that differs. The replies are
// compared as rendered by rawConn (type marker + payload of every element).
func sameReplies(t *testing.T, what string, n *Node, bare *bareRedis, cmds ...[]string) {
	t.Helper()
	a := dialAddrRaw(t, n.Addr)
	b := dialAddrRaw(t, bare.Addr)
	for _, c := range cmds {
		got := a.do(t, c...)
		want := b.do(t, c...)
		sCheck(t, got == want, "%s: %q:\n  redraft %s: %s\n  redis-server: %s", what, c, n, showDiff(got, want), showDiff(want, got))
	}
}

// showDiff shows s around its first difference from other.
func showDiff(s, other string) string {
	i := 0
	for i < len(s) && i < len(other) && s[i] == other[i] {
		i++
	}
	from := max(0, i-60)
	to := min(len(s), i+100)
	pre := ""
	if from > 0 {
		pre = fmt.Sprintf("...(%d bytes)...", from)
	}
	return fmt.Sprintf("%s%q (len %d)", pre, s[from:to], len(s))
}

// appliedIndex is the node's RAFTSTATS applied_index.
func appliedIndex(t *testing.T, n *Node) uint64 {
	t.Helper()
	st, err := raftStats(n)
	if err != nil {
		t.Fatalf("%s RAFTSTATS: %v", n, err)
	}
	v, err := strconv.ParseUint(st["applied_index"], 10, 64)
	if err != nil {
		t.Fatalf("%s applied_index %q: %v", n, st["applied_index"], err)
	}
	return v
}

// waitProposed waits until the leader applied a new entry after before: a
// blocking call proposes its non-blocking form right after registering as
// a waiter, so this is the moment it is known to be queued.
func waitProposed(t *testing.T, l *Node, before uint64, what string) {
	t.Helper()
	eventually(t, 15*time.Second, func() error {
		if got := appliedIndex(t, l); got <= before {
			return fmt.Errorf("%s: applied index still %d (waiting for %s to register)", l, got, what)
		}
		return nil
	})
}

func filterState(st map[string]keyState, prefixes ...string) map[string]keyState {
	out := map[string]keyState{}
	for k, v := range st {
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				out[k] = v
				break
			}
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// The test

func TestSurface(t *testing.T) {
	start := time.Now()
	env := startSurfaceCluster(t)
	env.bare = startBareRedis(t)
	t.Logf("cluster + bare redis-server up in %v", time.Since(start).Round(time.Millisecond))

	sub := func(name string, f func(t *testing.T, env *surfaceEnv)) {
		t.Run(name, func(t *testing.T) {
			before := surfaceChecks.Load()
			st := time.Now()
			defer func() {
				t.Logf("%s: %d checks in %v", name, surfaceChecks.Load()-before, time.Since(st).Round(time.Millisecond))
			}()
			f(t, env)
		})
	}
	sub("Connection", surfaceConnection)
	sub("Refusals", surfaceRefusals)
	sub("Transactions", surfaceTransactions)
	sub("ScriptsFunctions", surfaceScripts)
	sub("PubSub", surfacePubSub)
	sub("Blocking", surfaceBlocking)
	sub("DataTypes", surfaceData)
	sub("FollowerProxy", surfaceFollowerProxy)
	sub("RedisCli", surfaceRedisCli)
	sub("ScriptsAfterLeaderChange", surfaceLeaderChange)
	sub("BlockedClientLosesLeadership", surfaceLeadershipLoss)
	t.Logf("TestSurface: %d checks in %v", surfaceChecks.Load(), time.Since(start).Round(time.Millisecond))
}

// ---------------------------------------------------------------------------
// 5. Connection and server commands

func surfaceConnection(t *testing.T, env *surfaceEnv) {
	l := env.leader(t)
	f := env.lowFollower(t, l)
	ctx, cancel := sCtx()
	defer cancel()

	// Replies that must be Redis's own, byte for byte.
	sameReplies(t, "connection commands", l, env.bare,
		[]string{"PING"}, []string{"PING", "hello world"}, []string{"ECHO", "a\r\nb"},
		[]string{"SELECT", "16"}, []string{"SELECT", "-1"}, []string{"SELECT", "x"}, []string{"SELECT", "15"}, []string{"SELECT", "0"},
		[]string{"AUTH", "secret"}, []string{"HELLO", "4"}, []string{"HELLO", "x"},
		[]string{"CLIENT", "GETNAME"}, []string{"CLIENT", "SETNAME", "a b"}, []string{"CLIENT", "SETNAME", "surf"},
		[]string{"CLIENT", "GETNAME"}, []string{"CLIENT", "KILL", "ID", "999999"}, []string{"CLIENT", "KILL", "1.2.3.4:5"},
		[]string{"COMMAND", "COUNT"}, []string{"COMMAND", "INFO", "GET", "SET", "EVAL", "BLPOP"},
		[]string{"COMMAND", "DOCS", "GET"}, []string{"COMMAND", "GETKEYS", "SET", "a", "b"},
		[]string{"COMMAND", "GETKEYS", "EVAL", "return 1", "2", "k1", "k2", "a"},
		[]string{"CONFIG", "GET", "save"}, []string{"CONFIG", "GET", "maxmemory"},
		[]string{"NOSUCHCMD", "a", "b"}, []string{"GET"}, []string{"SET", "k"},
	)
	// With the default user's nopass, Redis accepts AUTH default <anything>
	// (clients configured with a username send this form).
	sameReplies(t, "AUTH with a username", l, env.bare, []string{"AUTH", "default", "secret"})
	// redraft's CLIENT HELP lists the subcommands it supports.
	if v, err := l.Do("CLIENT", "HELP"); err != nil || !strings.HasPrefix(fmt.Sprint(v), "[CLIENT <subcommand>") {
		t.Errorf("CLIENT HELP = %v, %v", v, err)
	}

	// HELLO 2 (RESP3 is tested in resp3_test.go); versions other than 2
	// and 3 are refused with NOPROTO.
	rc := dialAddrRaw(t, l.Addr)
	hello := rc.do(t, "HELLO", "2")
	id := rc.do(t, "CLIENT", "ID")
	sCheck(t, strings.HasPrefix(hello, "*14 $server $redis $version $") && strings.Contains(hello, " $proto :2 ") &&
		strings.Contains(hello, " $id "+id+" $mode $standalone $role $master $modules *0"), "HELLO 2 = %q (CLIENT ID %s)", hello, id)
	got := rc.do(t, "HELLO", "4")
	sCheck(t, got == "-NOPROTO unsupported protocol version", "HELLO 4 = %q", got)
	sCheck(t, rc.do(t, "PING") == "+PONG", "connection unusable after HELLO 4")
	rc.do(t, "HELLO", "2", "SETNAME", "viahello")
	got = rc.do(t, "CLIENT", "GETNAME")
	sCheck(t, got == "$viahello", "CLIENT GETNAME after HELLO 2 SETNAME = %q", got)

	// CLIENT SETNAME/GETNAME/ID/INFO/LIST/KILL with go-redis.
	c := sClient(t, l.Addr, 0)
	victim := c.Conn()
	defer victim.Close()
	ok, err := victim.ClientSetName(ctx, "surface-victim").Result()
	sCheck(t, err == nil && ok, "CLIENT SETNAME: %v %v", ok, err)
	name, err := victim.ClientGetName(ctx).Result()
	sCheck(t, err == nil && name == "surface-victim", "CLIENT GETNAME = %q, %v", name, err)
	vid, err := victim.ClientID(ctx).Result()
	sMust(t, err == nil && vid > 0, "CLIENT ID = %d, %v", vid, err)
	info, err := victim.ClientInfo(ctx).Result()
	sCheck(t, err == nil && info.ID == vid && info.Name == "surface-victim", "CLIENT INFO (go-redis parse) = %+v, %v", info, err)
	list, err := c.ClientList(ctx).Result()
	sCheck(t, err == nil && strings.Contains(list, fmt.Sprintf("id=%d ", vid)) && strings.Contains(list, "name=surface-victim"),
		"CLIENT LIST from another connection lacks the victim: %q, %v", list, err)
	killed, err := c.ClientKillByFilter(ctx, "ID", strconv.FormatInt(vid, 10)).Result()
	sCheck(t, err == nil && killed == 1, "CLIENT KILL ID %d = %d, %v", vid, killed, err)
	sCheck(t, victim.Ping(ctx).Err() != nil, "killed connection still answers PING")
	eventually(t, 10*time.Second, func() error {
		list, err := c.ClientList(ctx).Result()
		if err != nil || strings.Contains(list, "name=surface-victim") {
			return fmt.Errorf("CLIENT LIST still lists the killed client: %q %v", list, err)
		}
		return nil
	})

	// CLIENT REPLY OFF/ON/SKIP, compared with Redis (replies suppressed).
	replySeq := func(addr string) []string {
		rc := dialAddrRaw(t, addr)
		rc.send(t, "CLIENT", "REPLY", "OFF")
		rc.send(t, "SET", "cr:a", "1")
		rc.send(t, "GET", "cr:a")
		out := []string{rc.do(t, "CLIENT", "REPLY", "ON")}
		rc.send(t, "CLIENT", "REPLY", "SKIP")
		rc.send(t, "SET", "cr:b", "2")
		return append(out, rc.do(t, "GET", "cr:b"), rc.do(t, "GET", "cr:a"))
	}
	gotR, wantR := replySeq(l.Addr), replySeq(env.bare.Addr)
	sCheck(t, fmt.Sprint(gotR) == fmt.Sprint(wantR), "CLIENT REPLY: redraft %q, redis-server %q", gotR, wantR)

	// RESET and QUIT, compared with Redis.
	sameReplies(t, "RESET", l, env.bare,
		[]string{"SET", "reset:db0", "zero"}, []string{"SELECT", "4"}, []string{"CLIENT", "SETNAME", "r1"},
		[]string{"MULTI"}, []string{"RESET"}, []string{"CLIENT", "GETNAME"}, []string{"EXEC"}, []string{"GET", "reset:db0"})
	for _, addr := range []string{l.Addr, env.bare.Addr} {
		q := dialAddrRaw(t, addr)
		got := q.do(t, "QUIT")
		q.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, rerr := q.r.ReadByte()
		sCheck(t, got == "+OK" && rerr == io.EOF, "%s: QUIT = %q, then read: %v (want EOF)", addr, got, rerr)
	}

	// TIME is the node's clock.
	tm, err := c.Time(ctx).Result()
	sCheck(t, err == nil && time.Since(tm).Abs() < time.Minute, "TIME = %v, %v", tm, err)

	// INFO has a Raft section; INFO server does not.
	all, err := c.Info(ctx).Result()
	sCheck(t, err == nil && strings.Contains(all, "# Raft\r\n") && strings.Contains(all, "raft_state:Leader") &&
		strings.Contains(all, "redis_version:"), "INFO on leader lacks the Raft or server section: %v", err)
	srv, err := c.Info(ctx, "server").Result()
	sCheck(t, err == nil && strings.Contains(srv, "redis_version:") && !strings.Contains(srv, "# Raft"), "INFO server = %.200q, %v", srv, err)
	fi, err := f.Do("INFO", "raft")
	sCheck(t, err == nil && strings.Contains(fmt.Sprint(fi), "raft_state:Follower") && strings.Contains(fmt.Sprint(fi), "raft_leader:"+l.Addr),
		"INFO raft on follower %s = %q, %v", f, fi, err)

	// CONFIG SET of a replicated parameter reaches every node; a refused
	// one changes nothing, even when mixed with an allowed one.
	sCheck(t, c.ConfigSet(ctx, "slowlog-max-len", "77").Err() == nil, "CONFIG SET slowlog-max-len 77 failed")
	for _, n := range env.all {
		n := n
		eventually(t, appliedTimeout, func() error {
			v, err := n.Do("CONFIG", "GET", "slowlog-max-len")
			if err != nil || fmt.Sprint(v) != "[slowlog-max-len 77]" {
				return fmt.Errorf("%s CONFIG GET slowlog-max-len = %v, %v", n, v, err)
			}
			return nil
		})
		surfaceChecks.Add(1)
	}
	refusal := "ERR CONFIG SET 'maxmemory-policy' is not supported by redraft: only parameters that are safe to apply on every node can be set (see README)"
	sErr(t, l, refusal, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
	sErr(t, l, refusal, "CONFIG", "SET", "slowlog-max-len", "5", "maxmemory-policy", "allkeys-lru")
	sErr(t, l, "ERR CONFIG SET 'save' is not supported by redraft: only parameters that are safe to apply on every node can be set (see README)", "CONFIG", "SET", "save", "3600 1")
	v := sDo(t, l, "CONFIG", "GET", "maxmemory-policy")
	sCheck(t, fmt.Sprint(v) == "[maxmemory-policy noeviction]", "CONFIG GET maxmemory-policy after refused SET = %v", v)
	v = sDo(t, l, "CONFIG", "GET", "slowlog-max-len")
	sCheck(t, fmt.Sprint(v) == "[slowlog-max-len 77]", "a refused multi-parameter CONFIG SET changed slowlog-max-len: %v", v)
	sDo(t, l, "CONFIG", "SET", "slowlog-max-len", "128")

	// DBSIZE, LASTSAVE, MEMORY, OBJECT, SLOWLOG, LATENCY.
	c9 := sClient(t, l.Addr, 9)
	for i := 0; i < 3; i++ {
		c9.Set(ctx, fmt.Sprintf("dbsize:%d", i), i, 0)
	}
	n, err := c9.DBSize(ctx).Result()
	sCheck(t, err == nil && n == 3, "DBSIZE in db 9 = %d, %v", n, err)
	f9 := sClient(t, f.Addr, 9)
	eventually(t, appliedTimeout, func() error {
		if n, err := f9.DBSize(ctx).Result(); err != nil || n != 3 {
			return fmt.Errorf("follower %s DBSIZE db 9 = %d, %v", f, n, err)
		}
		return nil
	})
	ls, err := c.LastSave(ctx).Result()
	sCheck(t, err == nil && ls > 1600000000, "LASTSAVE = %d, %v", ls, err)
	c.Set(ctx, "mem:k", strings.Repeat("x", 100), 0)
	mu, err := c.MemoryUsage(ctx, "mem:k").Result()
	sCheck(t, err == nil && mu >= 100, "MEMORY USAGE mem:k = %d, %v", mu, err)
	sameReplies(t, "OBJECT ENCODING", l, env.bare,
		[]string{"SET", "oe:i", "12345"}, []string{"OBJECT", "ENCODING", "oe:i"},
		[]string{"SET", "oe:s", "hello"}, []string{"OBJECT", "ENCODING", "oe:s"},
		[]string{"SET", "oe:raw", strings.Repeat("r", 64)}, []string{"OBJECT", "ENCODING", "oe:raw"},
		[]string{"RPUSH", "oe:l", "a", "b"}, []string{"OBJECT", "ENCODING", "oe:l"},
		[]string{"SADD", "oe:set", "1", "2"}, []string{"OBJECT", "ENCODING", "oe:set"},
		[]string{"HSET", "oe:h", "f", "v"}, []string{"OBJECT", "ENCODING", "oe:h"},
		[]string{"ZADD", "oe:z", "1", "m"}, []string{"OBJECT", "ENCODING", "oe:z"},
		[]string{"OBJECT", "ENCODING", "oe:none"}, []string{"OBJECT", "FREQ", "oe:i"},
	)
	for _, args := range [][]interface{}{{"SLOWLOG", "GET"}, {"SLOWLOG", "GET", "5"}, {"LATENCY", "LATEST"}} {
		v, err := l.Do(args...)
		_, isArr := v.([]interface{})
		sCheck(t, err == nil && isArr, "%v = %#v, %v", args, v, err)
	}
	v, err = l.Do("SLOWLOG", "LEN")
	_, isInt := v.(int64)
	sCheck(t, err == nil && isInt, "SLOWLOG LEN = %#v, %v", v, err)

	// WAIT counts the replicas holding the connection's last write.
	conn := c.Conn()
	defer conn.Close()
	sCheck(t, conn.Set(ctx, "wait:k", "v", 0).Err() == nil, "SET before WAIT failed")
	w, err := conn.Wait(ctx, 1, 0).Result()
	sCheck(t, err == nil && w >= 1, "WAIT 1 0 on a 3-node cluster = %d, %v (want >= 1)", w, err)

	// SWAPDB goes through the log: every node shows the swap.
	c5, c6 := sClient(t, l.Addr, 5), sClient(t, l.Addr, 6)
	c5.Set(ctx, "swap:five", "5", 0)
	c6.Set(ctx, "swap:six", "6", 0)
	sCheck(t, c.Do(ctx, "SWAPDB", 5, 6).Err() == nil, "SWAPDB 5 6 failed")
	for _, n := range []*Node{l, f} {
		f5, f6 := sClient(t, n.Addr, 5), sClient(t, n.Addr, 6)
		eventually(t, appliedTimeout, func() error {
			a, _ := f5.Get(ctx, "swap:six").Result()
			b, _ := f6.Get(ctx, "swap:five").Result()
			x, _ := f5.Exists(ctx, "swap:five").Result()
			if a != "6" || b != "5" || x != 0 {
				return fmt.Errorf("%s after SWAPDB 5 6: db5 swap:six=%q db6 swap:five=%q db5 has swap:five=%d", n, a, b, x)
			}
			return nil
		})
		surfaceChecks.Add(1)
	}
}

// ---------------------------------------------------------------------------
// 6. Refusals

func surfaceRefusals(t *testing.T, env *surfaceEnv) {
	l := env.leader(t)
	refusals := []struct {
		args []interface{}
		want string
	}{
		{[]interface{}{"REPLICAOF", "NO", "ONE"}, "ERR REPLICAOF is not supported: replication is done by Raft (see RAFTADDPEER)"},
		{[]interface{}{"REPLICAOF", "127.0.0.1", "6379"}, "ERR REPLICAOF is not supported: replication is done by Raft (see RAFTADDPEER)"},
		{[]interface{}{"SLAVEOF", "NO", "ONE"}, "ERR SLAVEOF is not supported: replication is done by Raft (see RAFTADDPEER)"},
		// SYNC, PSYNC and REPLCONF serve backups only (ops_test.go).
		{[]interface{}{"PSYNC", "?", "-1"}, "ERR PSYNC is only served for backups (after REPLCONF rdb-only 1, as redis-cli --rdb sends): replication is done by Raft (see RAFTADDPEER)"},
		{[]interface{}{"REPLCONF", "listening-port", "1"}, "ERR REPLCONF listening-port is not supported: replication is done by Raft (see RAFTADDPEER)"},
		{[]interface{}{"FAILOVER"}, "ERR FAILOVER is not supported: leadership is decided by Raft"},
		{[]interface{}{"CLUSTER", "INFO"}, "ERR This instance has cluster support disabled"},
		{[]interface{}{"CLUSTER", "NODES"}, "ERR This instance has cluster support disabled"},
		{[]interface{}{"READONLY"}, "ERR This instance has cluster support disabled"},
		{[]interface{}{"READWRITE"}, "ERR This instance has cluster support disabled"},
		{[]interface{}{"ASKING"}, "ERR This instance has cluster support disabled"},
		{[]interface{}{"DEBUG", "SLEEP", "0"}, "ERR DEBUG is not supported by redraft"},
		{[]interface{}{"DEBUG", "DIGEST"}, "ERR DEBUG is not supported by redraft"},
		{[]interface{}{"SHUTDOWN"}, "ERR SHUTDOWN is not supported: stop the redraft process instead"},
		{[]interface{}{"SHUTDOWN", "NOSAVE"}, "ERR SHUTDOWN is not supported: stop the redraft process instead"},
		{[]interface{}{"MIGRATE", "127.0.0.1", "1", "k", "0", "10"}, "ERR MIGRATE is not supported by redraft"},
		{[]interface{}{"BGREWRITEAOF"}, "ERR BGREWRITEAOF is not supported: durability comes from the Raft log"},
		{[]interface{}{"MODULE", "LIST"}, "ERR MODULE is not supported by redraft"},
		{[]interface{}{"ACL", "WHOAMI"}, "ERR ACL is not supported by redraft"},
		{[]interface{}{"ACL", "LIST"}, "ERR ACL is not supported by redraft"},
		{[]interface{}{"ROLE"}, "ERR ROLE is not supported: use RAFTSTATE"},
		{[]interface{}{"SCRIPT", "DEBUG", "NO"}, "ERR SCRIPT DEBUG is not supported by redraft"},
		// Not refusals any more: as in Redis with no script running.
		{[]interface{}{"SCRIPT", "KILL"}, "NOTBUSY No scripts in execution right now."},
		{[]interface{}{"FUNCTION", "KILL"}, "NOTBUSY No scripts in execution right now."},
		{[]interface{}{"CONFIG", "RESETSTAT"}, "ERR CONFIG RESETSTAT is not supported by redraft"},
		{[]interface{}{"CONFIG", "REWRITE"}, "ERR CONFIG REWRITE is not supported by redraft"},
		{[]interface{}{"CONFIG", "SET", "appendonly", "yes"}, "ERR CONFIG SET 'appendonly' is not supported by redraft: only parameters that are safe to apply on every node can be set (see README)"},
	}
	before := appliedIndex(t, l)
	// Refusals are the same on every node (not TRY on followers).
	for _, n := range env.all {
		for _, r := range refusals {
			sErr(t, n, r.want, r.args...)
		}
	}
	// Nothing refused went through the log (no other writes run now).
	after := appliedIndex(t, l)
	sCheck(t, after == before, "refused commands moved the leader's applied index %d -> %d", before, after)
	// Every node is alive and still answers (SHUTDOWN killed nothing).
	for _, n := range env.all {
		sCheck(t, n.Running(), "%s exited after the refused commands", n)
		v, err := n.Do("PING")
		sCheck(t, err == nil && v == "PONG", "%s PING after refusals = %v, %v", n, v, err)
		sCheck(t, len(n.liveChildren()) == 1, "%s: child redis-servers after SHUTDOWN = %v (want exactly one alive)", n, n.liveChildren())
	}
	sCheck(t, waitLeader(t, env.all...) == l, "leadership moved after the refused commands")
	v, err := l.Do("SET", "refusals:after", "ok")
	sCheck(t, err == nil && v == "OK", "SET on leader after refusals = %v, %v", v, err)
	// redis-cli has its own SHUTDOWN handling: the error must still show.
	out := cli(t, l.Port, "SHUTDOWN")
	sCheck(t, strings.Contains(out, "ERR SHUTDOWN is not supported: stop the redraft process instead"), "redis-cli SHUTDOWN printed %q", out)
	sCheck(t, l.Running(), "redis-cli SHUTDOWN stopped the node")
	// A refused command inside MULTI aborts the transaction like Redis's
	// queue-time errors.
	rc := dialAddrRaw(t, l.Addr)
	rc.do(t, "MULTI")
	rc.do(t, "SET", "refusals:tx", "1")
	got := rc.do(t, "BGREWRITEAOF")
	sCheck(t, got == "-ERR BGREWRITEAOF is not supported: durability comes from the Raft log", "BGREWRITEAOF inside MULTI = %q", got)
	got = rc.do(t, "EXEC")
	sCheck(t, got == "-EXECABORT Transaction discarded because of previous errors.", "EXEC after refused BGREWRITEAOF = %q", got)
	v, _ = l.Do("EXISTS", "refusals:tx")
	sCheck(t, v == int64(0), "aborted transaction applied its SET (EXISTS = %v)", v)
}

// ---------------------------------------------------------------------------
// 1. Transactions and pipelines

func surfaceTransactions(t *testing.T, env *surfaceEnv) {
	l := env.leader(t)
	ctx, cancel := sCtx()
	defer cancel()
	c := sClient(t, l.Addr, 0)

	// Pipelined: mixed reads and writes keep order and read their writes.
	var cmds []redis.Cmder
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		cmds = append(cmds, p.Set(ctx, "pl:a", "1", 0), p.Get(ctx, "pl:a"), p.Append(ctx, "pl:a", "2"), p.Get(ctx, "pl:a"),
			p.RPush(ctx, "pl:l", "x", "y"), p.LRange(ctx, "pl:l", 0, -1), p.Del(ctx, "pl:a"), p.Exists(ctx, "pl:a"))
		for i := 1; i <= 100; i++ {
			cmds = append(cmds, p.Incr(ctx, "pl:ctr"), p.Get(ctx, "pl:ctr"))
		}
		return nil
	})
	sMust(t, err == nil, "Pipelined: %v", err)
	want := []string{"OK", "1", "2", "12", "2", "[x y]", "1", "0"}
	got := []string{
		cmds[0].(*redis.StatusCmd).Val(), cmds[1].(*redis.StringCmd).Val(), fmt.Sprint(cmds[2].(*redis.IntCmd).Val()),
		cmds[3].(*redis.StringCmd).Val(), fmt.Sprint(cmds[4].(*redis.IntCmd).Val()), fmt.Sprint(cmds[5].(*redis.StringSliceCmd).Val()),
		fmt.Sprint(cmds[6].(*redis.IntCmd).Val()), fmt.Sprint(cmds[7].(*redis.IntCmd).Val()),
	}
	sCheck(t, strings.Join(got, "|") == strings.Join(want, "|"), "pipeline replies %q, want %q", got, want)
	bad := 0
	for i := 1; i <= 100; i++ {
		inc := cmds[8+2*(i-1)].(*redis.IntCmd).Val()
		get := cmds[9+2*(i-1)].(*redis.StringCmd).Val()
		if inc != int64(i) || get != strconv.Itoa(i) {
			bad++
			if bad < 4 {
				t.Errorf("pipeline step %d: INCR=%d GET=%q", i, inc, get)
			}
		}
	}
	sCheck(t, bad == 0, "%d of 100 INCR/GET pairs in one pipeline out of order", bad)

	// TxPipelined: MULTI/EXEC replies, applied as one unit.
	var tx []redis.Cmder
	_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		tx = []redis.Cmder{p.Incr(ctx, "tx:n"), p.Incr(ctx, "tx:n"), p.Set(ctx, "tx:s", "v", 0), p.Get(ctx, "tx:s"), p.Get(ctx, "tx:n")}
		return nil
	})
	sCheck(t, err == nil && tx[0].(*redis.IntCmd).Val() == 1 && tx[1].(*redis.IntCmd).Val() == 2 &&
		tx[2].(*redis.StatusCmd).Val() == "OK" && tx[3].(*redis.StringCmd).Val() == "v" && tx[4].(*redis.StringCmd).Val() == "2",
		"TxPipelined replies %v, %v", tx, err)
	// Atomicity as seen by another connection: a reader never sees half a
	// transaction (it reads both keys in one MULTI).
	reader := sClient(t, l.Addr, 0)
	stop := make(chan struct{})
	torn := make(chan string, 1)
	go func() {
		for {
			select {
			case <-stop:
				close(torn)
				return
			default:
			}
			var a, b *redis.StringCmd
			_, err := reader.TxPipelined(ctx, func(p redis.Pipeliner) error {
				a, b = p.Get(ctx, "tx:a"), p.Get(ctx, "tx:b")
				return nil
			})
			if err != nil && err != redis.Nil {
				continue
			}
			if a.Val() != b.Val() {
				torn <- fmt.Sprintf("tx:a=%q tx:b=%q", a.Val(), b.Val())
				return
			}
		}
	}()
	for i := 0; i < 40; i++ {
		_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "tx:a", i, 0)
			p.Set(ctx, "tx:b", i, 0)
			return nil
		})
		if err != nil {
			t.Errorf("TxPipelined %d: %v", i, err)
			break
		}
	}
	close(stop)
	msg := <-torn
	sCheck(t, msg == "", "a reader saw half a transaction: %s", msg)

	// WATCH with a conflicting writer on another connection (here another
	// node's client, through --follower-proxy) fails with TxFailedErr.
	other := sClient(t, env.n3.Addr, 0)
	if env.n3 == l {
		other = sClient(t, l.Addr, 0)
	}
	c.Set(ctx, "w:k", "orig", 0)
	err = c.Watch(ctx, func(txn *redis.Tx) error {
		v, err := txn.Get(ctx, "w:k").Result()
		if err != nil {
			return err
		}
		if err := other.Set(ctx, "w:k", "conflict", 0).Err(); err != nil {
			return fmt.Errorf("conflicting writer: %w", err)
		}
		_, err = txn.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "w:k", v+"+mine", 0)
			return nil
		})
		return err
	}, "w:k")
	sCheck(t, errors.Is(err, redis.TxFailedErr), "WATCH with a conflicting writer: err = %v, want redis.TxFailedErr", err)
	v, _ := c.Get(ctx, "w:k").Result()
	sCheck(t, v == "conflict", "after failed WATCH transaction w:k = %q, want conflict", v)
	// ... and without a conflict it succeeds.
	err = c.Watch(ctx, func(txn *redis.Tx) error {
		v, err := txn.Get(ctx, "w:k").Result()
		if err != nil {
			return err
		}
		_, err = txn.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "w:k", v+"+mine", 0)
			return nil
		})
		return err
	}, "w:k")
	v, _ = c.Get(ctx, "w:k").Result()
	sCheck(t, err == nil && v == "conflict+mine", "WATCH without conflict: err %v, w:k = %q", err, v)

	// EXECABORT on a queue-time error (unknown command inside MULTI).
	_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "abort:k", "1", 0)
		p.Do(ctx, "NOSUCHCMD", "x")
		return nil
	})
	sCheck(t, err != nil && strings.HasPrefix(err.Error(), "EXECABORT Transaction discarded because of previous errors."), "TxPipelined with unknown command: %v", err)
	n, _ := c.Exists(ctx, "abort:k").Result()
	sCheck(t, n == 0, "aborted transaction applied SET abort:k")

	// Transaction edge cases and DISCARD, byte for byte with Redis.
	sameReplies(t, "MULTI/EXEC/DISCARD", l, env.bare,
		[]string{"DEL", "mx:a", "mx:d"},
		[]string{"MULTI"}, []string{"SET", "mx:a", "1"}, []string{"INCR", "mx:a"}, []string{"LPUSH", "mx:a", "x"}, []string{"GET", "mx:a"}, []string{"EXEC"},
		[]string{"MULTI"}, []string{"SET", "mx:d", "1"}, []string{"DISCARD"}, []string{"GET", "mx:d"},
		[]string{"DISCARD"}, []string{"EXEC"},
		[]string{"MULTI"}, []string{"MULTI"}, []string{"WATCH", "mx:a"}, []string{"SET", "mx:a"}, []string{"EXEC"},
		[]string{"MULTI"}, []string{"EXEC"},
		[]string{"MULTI"}, []string{"BLPOP", "mx:none", "0"}, []string{"PING"}, []string{"ECHO", "e"}, []string{"SELECT", "2"}, []string{"SET", "mx:db2", "2"}, []string{"EXEC"},
		[]string{"GET", "mx:db2"}, []string{"SELECT", "0"}, []string{"GET", "mx:db2"},
		[]string{"WATCH", "mx:a"}, []string{"UNWATCH"}, []string{"MULTI"}, []string{"GET", "mx:a"}, []string{"EXEC"},
	)

	// WATCH is dirtied by expiry and by FLUSHDB, and cleared by UNWATCH and
	// DISCARD, as in Redis (two connections, db 7).
	watchSeq := func(addr string) []string {
		a := dialAddrRaw(t, addr)
		b := dialAddrRaw(t, addr)
		var out []string
		do := func(rc *rawConn, args ...string) { out = append(out, rc.do(t, args...)) }
		do(a, "SELECT", "7")
		do(b, "SELECT", "7")
		do(b, "FLUSHDB")
		do(a, "SET", "we", "1", "PX", "200")
		do(a, "WATCH", "we")
		eventually(t, 10*time.Second, func() error {
			if r := b.do(t, "EXISTS", "we"); r != ":0" {
				return fmt.Errorf("%s: key with PX 200 still exists", addr)
			}
			return nil
		})
		do(a, "MULTI")
		do(a, "SET", "we2", "x")
		do(a, "EXEC")
		do(b, "SET", "wf", "1")
		do(a, "WATCH", "wf")
		do(b, "FLUSHDB")
		do(a, "MULTI")
		do(a, "SET", "we3", "x")
		do(a, "EXEC")
		do(a, "WATCH", "wg")
		do(b, "SET", "wg", "1")
		do(a, "UNWATCH")
		do(a, "MULTI")
		do(a, "SET", "we4", "x")
		do(a, "EXEC")
		do(a, "WATCH", "wh")
		do(a, "MULTI")
		do(a, "DISCARD")
		do(b, "SET", "wh", "1")
		do(a, "MULTI")
		do(a, "SET", "we5", "x")
		do(a, "EXEC")
		do(a, "WATCH", "wi")
		do(b, "SET", "wi", "1")
		do(a, "MULTI")
		do(a, "GET", "wi")
		do(a, "EXEC")
		do(b, "DBSIZE")
		return out
	}
	gotSeq, wantSeq := watchSeq(l.Addr), watchSeq(env.bare.Addr)
	sCheck(t, strings.Join(gotSeq, " | ") == strings.Join(wantSeq, " | "), "WATCH sequence:\n  redraft:      %q\n  redis-server: %q", gotSeq, wantSeq)
}

// ---------------------------------------------------------------------------
// 2. Scripts and functions

const surfaceLib = "#!lua name=surflib\n" +
	"redis.register_function('sset', function(keys, args) return redis.call('SET', keys[1], args[1]) end)\n" +
	"redis.register_function{function_name='sget', callback=function(keys, args) return redis.call('GET', keys[1]) end, flags={'no-writes'}}\n" +
	"redis.register_function('sargs', function(keys, args) return {#keys, #args, args[#args]} end)\n"

func sha1hex(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func surfaceScripts(t *testing.T, env *surfaceEnv) {
	l := env.leader(t)
	f := env.lowFollower(t, l)
	ctx, cancel := sCtx()
	defer cancel()
	c := sClient(t, l.Addr, 0)

	v, err := c.Eval(ctx, "return redis.call('SET', KEYS[1], ARGV[1])", []string{"ev:k"}, "ev").Result()
	sCheck(t, err == nil && v == "OK", "EVAL SET = %v, %v", v, err)
	v, err = c.Eval(ctx, "return {KEYS[1], ARGV[1], ARGV[2], #ARGV}", []string{"ev:k"}, "a", "b").Result()
	sCheck(t, err == nil && fmt.Sprint(v) == "[ev:k a b 2]", "EVAL sees its ARGV as given: %v, %v", v, err)
	src := "return redis.call('INCRBY', KEYS[1], ARGV[1])"
	sha, err := c.ScriptLoad(ctx, src).Result()
	sCheck(t, err == nil && sha == sha1hex(src), "SCRIPT LOAD = %q, %v; want sha1 %s", sha, err, sha1hex(src))
	n, err := c.EvalSha(ctx, sha, []string{"ev:ctr"}, 5).Int64()
	sCheck(t, err == nil && n == 5, "EVALSHA = %d, %v", n, err)
	n, err = c.EvalShaRO(ctx, sha1hex("return 1"), nil).Int64()
	sCheck(t, err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT"), "EVALSHA_RO of an unknown script: %d, %v", n, err)
	rs := redis.NewScript("return redis.call('GET', KEYS[1])")
	v, err = rs.Run(ctx, c, []string{"ev:k"}).Result()
	sCheck(t, err == nil && v == "ev", "redis.Script.Run (EVALSHA then EVAL) = %v, %v", v, err)
	v, err = c.EvalRO(ctx, "return redis.call('GET', KEYS[1])", []string{"ev:k"}).Result()
	sCheck(t, err == nil && v == "ev", "EVAL_RO = %v, %v", v, err)
	bogus := sha1hex("no such script")
	for _, n := range env.all {
		cn := sClient(t, n.Addr, 0)
		eventually(t, appliedTimeout, func() error {
			ex, err := cn.ScriptExists(ctx, sha, strings.ToUpper(sha), bogus).Result()
			if err != nil || fmt.Sprint(ex) != "[true true false]" {
				return fmt.Errorf("%s SCRIPT EXISTS = %v, %v", n, ex, err)
			}
			return nil
		})
		surfaceChecks.Add(1)
	}
	eventually(t, appliedTimeout, func() error {
		v, err := f.Do("GET", "ev:ctr")
		if err != nil || v != "5" {
			return fmt.Errorf("%s GET ev:ctr = %v, %v", f, v, err)
		}
		return nil
	})
	// Script errors read like Redis's, including the script's own SHA.
	sameReplies(t, "script errors", l, env.bare,
		[]string{"EVAL", "return redis.call('nosuchcmd')", "0"},
		[]string{"EVAL", "return redis.call('SET', KEYS[1])", "1", "ev:x"},
		[]string{"EVAL_RO", "return redis.call('SET', KEYS[1], 1)", "1", "ev:x"},
		[]string{"EVAL", "syntax error here", "0"},
		[]string{"EVALSHA", bogus, "0"},
	)
	sCheck(t, c.ScriptFlush(ctx).Err() == nil, "SCRIPT FLUSH failed")
	for _, n := range env.all {
		cn := sClient(t, n.Addr, 0)
		eventually(t, appliedTimeout, func() error {
			ex, err := cn.ScriptExists(ctx, sha).Result()
			if err != nil || fmt.Sprint(ex) != "[false]" {
				return fmt.Errorf("%s SCRIPT EXISTS after FLUSH = %v, %v", n, ex, err)
			}
			return nil
		})
		surfaceChecks.Add(1)
	}
	_, err = c.EvalSha(ctx, sha, []string{"ev:ctr"}, 1).Result()
	sCheck(t, err != nil && err.Error() == "NOSCRIPT No matching script. Please use EVAL.", "EVALSHA after SCRIPT FLUSH: %v", err)

	// Functions.
	c.FunctionDelete(ctx, "surflib") // leftovers, if any
	name, err := c.FunctionLoad(ctx, surfaceLib).Result()
	sCheck(t, err == nil && name == "surflib", "FUNCTION LOAD = %q, %v", name, err)
	v, err = c.FCall(ctx, "sset", []string{"fn:k"}, "fv").Result()
	sCheck(t, err == nil && v == "OK", "FCALL sset = %v, %v", v, err)
	v, err = c.FCallRO(ctx, "sget", []string{"fn:k"}).Result()
	sCheck(t, err == nil && v == "fv", "FCALL_RO sget = %v, %v", v, err)
	v, err = c.FCall(ctx, "sargs", []string{"a", "b"}, "x", "y", "z").Result()
	sCheck(t, err == nil && fmt.Sprint(v) == "[2 3 z]", "FCALL sargs sees keys/args as given: %v, %v", v, err)
	_, err = c.FCallRO(ctx, "sset", []string{"fn:k"}, "x").Result()
	sCheck(t, err != nil && err.Error() == "ERR Can not execute a script with write flag using *_ro command.", "FCALL_RO of a write function: %v", err)
	for _, n := range []*Node{l, f} {
		cn := sClient(t, n.Addr, 0)
		eventually(t, appliedTimeout, func() error {
			libs, err := cn.FunctionList(ctx, redis.FunctionListQuery{WithCode: true}).Result()
			if err != nil || len(libs) != 1 {
				return fmt.Errorf("%s FUNCTION LIST WITHCODE = %+v, %v", n, libs, err)
			}
			if libs[0].Name != "surflib" || libs[0].Code != surfaceLib || len(libs[0].Functions) != 3 {
				return stopPolling(fmt.Errorf("%s FUNCTION LIST: library %q with %d functions, code differs from what was loaded: %s",
					n, libs[0].Name, len(libs[0].Functions), showDiff(libs[0].Code, surfaceLib)))
			}
			return nil
		})
		surfaceChecks.Add(1)
	}
	// FUNCTION DUMP / RESTORE round trip within redraft.
	dump, err := c.FunctionDump(ctx).Result()
	sMust(t, err == nil && dump != "", "FUNCTION DUMP: %v", err)
	sCheck(t, c.FunctionFlush(ctx).Err() == nil, "FUNCTION FLUSH failed")
	_, err = c.FCall(ctx, "sset", []string{"fn:k"}, "gone").Result()
	sCheck(t, err != nil && err.Error() == "ERR Function not found", "FCALL after FUNCTION FLUSH: %v", err)
	sCheck(t, c.FunctionRestore(ctx, dump).Err() == nil, "FUNCTION RESTORE of redraft's own dump failed")
	v, err = c.FCall(ctx, "sargs", []string{"k"}, "p", "q").Result()
	sCheck(t, err == nil && fmt.Sprint(v) == "[1 2 q]", "FCALL after FUNCTION RESTORE = %v, %v", v, err)
	// A dump taken from redraft is a dump of the user's libraries: it loads
	// into a plain Redis and the functions work there unchanged.
	bc := sClient(t, env.bare.Addr, 0)
	bc.FunctionFlush(ctx)
	err = bc.FunctionRestore(ctx, dump).Err()
	sCheck(t, err == nil, "FUNCTION RESTORE of redraft's dump into redis-server: %v", err)
	bv, berr := bc.FCall(ctx, "sargs", []string{"k"}, "p", "q").Result()
	sCheck(t, berr == nil && fmt.Sprint(bv) == "[1 2 q]", "redraft's FUNCTION DUMP restored into redis-server: FCALL sargs k p q = %v, %v (want [1 2 q])", bv, berr)
	// The dump carries redraft's library prelude (documented), which is
	// inert outside redraft: the functions above behave unchanged.
	libs, _ := bc.FunctionList(ctx, redis.FunctionListQuery{WithCode: true}).Result()
	sCheck(t, len(libs) == 1 && strings.HasSuffix(libs[0].Code, surfaceLib[strings.IndexByte(surfaceLib, '\n')+1:]), "redraft's FUNCTION DUMP lost the user's code: %s", func() string {
		if len(libs) == 0 {
			return "no library"
		}
		return showDiff(libs[0].Code, surfaceLib)
	}())
	bc.FunctionFlush(ctx)
	// FUNCTION DELETE reaches every node.
	sCheck(t, c.FunctionDelete(ctx, "surflib").Err() == nil, "FUNCTION DELETE failed")
	_, err = c.FunctionDelete(ctx, "surflib").Result()
	sCheck(t, err != nil && err.Error() == "ERR Library not found", "second FUNCTION DELETE: %v", err)
	for _, n := range []*Node{l, f} {
		cn := sClient(t, n.Addr, 0)
		eventually(t, appliedTimeout, func() error {
			libs, err := cn.FunctionList(ctx, redis.FunctionListQuery{}).Result()
			if err != nil || len(libs) != 0 {
				return fmt.Errorf("%s FUNCTION LIST after DELETE = %+v, %v", n, libs, err)
			}
			return nil
		})
		surfaceChecks.Add(1)
	}
	waitApplied(t, env.all...)
	surfaceChecks.Add(1)
}

// ---------------------------------------------------------------------------
// 3. Pub/Sub

func surfacePubSub(t *testing.T, env *surfaceEnv) {
	l := env.leader(t)
	f := env.lowFollower(t, l)
	ctx, cancel := sCtx()
	defer cancel()
	c := sClient(t, l.Addr, 0)

	subF := sClient(t, f.Addr, 0).Subscribe(ctx, "news")
	defer subF.Close()
	subL := c.Subscribe(ctx, "news")
	defer subL.Close()
	psub := sClient(t, env.n3.Addr, 0).PSubscribe(ctx, "ne*")
	defer psub.Close()
	for _, s := range []*redis.PubSub{subF, subL, psub} {
		m, err := s.Receive(ctx)
		_, ok := m.(*redis.Subscription)
		sMust(t, err == nil && ok, "subscription confirmation: %#v, %v", m, err)
	}
	// PING inside subscribe mode.
	sCheck(t, subF.Ping(ctx, "hi") == nil, "PING in subscribe mode failed to send")
	m, err := subF.ReceiveTimeout(ctx, 5*time.Second)
	pong, ok := m.(*redis.Pong)
	sCheck(t, err == nil && ok && pong.Payload == "hi", "PING hi in subscribe mode: %#v, %v", m, err)
	// PUBSUB introspection on the follower.
	v, err := f.Do("PUBSUB", "CHANNELS")
	sCheck(t, err == nil && fmt.Sprint(v) == "[news]", "%s PUBSUB CHANNELS = %v, %v", f, v, err)
	v, err = f.Do("PUBSUB", "NUMSUB", "news", "other")
	sCheck(t, err == nil && fmt.Sprint(v) == "[news 1 other 0]", "%s PUBSUB NUMSUB = %v, %v", f, v, err)
	v, err = env.n3.Do("PUBSUB", "NUMPAT")
	sCheck(t, err == nil && v == int64(1), "%s PUBSUB NUMPAT = %v, %v", env.n3, v, err)

	// PUBLISH on the leader: every subscriber on every node gets each
	// message exactly once, in order.
	n, err := c.Publish(ctx, "news", "m1").Result()
	sCheck(t, err == nil && n == 1, "PUBLISH on leader = %d, %v (want 1: the leader's own subscriber)", n, err)
	for _, m := range []string{"m2", "m3"} {
		_, err = c.Publish(ctx, "news", m).Result()
		sCheck(t, err == nil, "PUBLISH %s: %v", m, err)
	}
	for _, s := range []struct {
		name string
		ps   *redis.PubSub
	}{{"follower " + f.Name, subF}, {"leader " + l.Name, subL}, {"pattern on " + env.n3.Name, psub}} {
		var got []string
		for i := 0; i < 3; i++ {
			mctx, mcancel := context.WithTimeout(ctx, 10*time.Second)
			msg, err := s.ps.ReceiveMessage(mctx)
			mcancel()
			if err != nil {
				got = append(got, "error: "+err.Error())
				break
			}
			got = append(got, msg.Channel+"/"+msg.Pattern+"/"+msg.Payload)
		}
		want := []string{"news//m1", "news//m2", "news//m3"}
		if s.ps == psub {
			want = []string{"news/ne*/m1", "news/ne*/m2", "news/ne*/m3"}
		}
		sCheck(t, fmt.Sprint(got) == fmt.Sprint(want), "%s subscriber received %q, want %q", s.name, got, want)
	}
	// ... and nothing more (no duplicate deliveries): a short quiet window.
	for _, ps := range []*redis.PubSub{subF, subL, psub} {
		m, err := ps.ReceiveTimeout(ctx, 500*time.Millisecond)
		sCheck(t, err != nil, "extra message after the three published: %#v", m)
	}
	// Sharded Pub/Sub: SSUBSCRIBE on the follower, SPUBLISH on the leader.
	ssub := sClient(t, f.Addr, 0).SSubscribe(ctx, "shard")
	defer ssub.Close()
	_, err = ssub.Receive(ctx)
	sMust(t, err == nil, "SSUBSCRIBE confirmation: %v", err)
	v, err = f.Do("PUBSUB", "SHARDCHANNELS")
	sCheck(t, err == nil && fmt.Sprint(v) == "[shard]", "%s PUBSUB SHARDCHANNELS = %v, %v", f, v, err)
	sCheck(t, c.SPublish(ctx, "shard", "s1").Err() == nil, "SPUBLISH failed")
	sm, err := ssub.ReceiveMessage(ctx)
	sCheck(t, err == nil && sm.Channel == "shard" && sm.Payload == "s1", "SSUBSCRIBE on follower received %+v, %v", sm, err)
	// Raw subscribe mode on a follower, byte for byte with Redis.
	rawSeq := func(addr string) []string {
		rc := dialAddrRaw(t, addr)
		return []string{rc.do(t, "SUBSCRIBE", "rawch"), rc.do(t, "PING"), rc.do(t, "PING", "x"), rc.do(t, "GET", "k"),
			rc.do(t, "UNSUBSCRIBE", "rawch"), rc.do(t, "PING")}
	}
	gotRaw, wantRaw := rawSeq(f.Addr), rawSeq(env.bare.Addr)
	sCheck(t, fmt.Sprint(gotRaw) == fmt.Sprint(wantRaw), "subscribe mode:\n  redraft:      %q\n  redis-server: %q", gotRaw, wantRaw)

	// Keyspace notifications configured on the leader reach a subscriber
	// on a follower.
	ks := sClient(t, f.Addr, 0).PSubscribe(ctx, "__keyspace@0__:ks:*")
	defer ks.Close()
	_, err = ks.Receive(ctx)
	sMust(t, err == nil, "PSUBSCRIBE keyspace: %v", err)
	sMust(t, c.ConfigSet(ctx, "notify-keyspace-events", "KEA").Err() == nil, "CONFIG SET notify-keyspace-events KEA failed")
	defer c.ConfigSet(context.Background(), "notify-keyspace-events", "")
	eventually(t, appliedTimeout, func() error {
		v, err := f.Do("CONFIG", "GET", "notify-keyspace-events")
		if err != nil || fmt.Sprint(v) != "[notify-keyspace-events AKE]" {
			return fmt.Errorf("%s CONFIG GET notify-keyspace-events = %v, %v", f, v, err)
		}
		return nil
	})
	c.Set(ctx, "ks:a", "1", 0)
	c.LPush(ctx, "ks:a2", "x")
	c.Set(ctx, "ks:e", "1", 300*time.Millisecond)
	var events []string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && len(events) < 5 {
		mctx, mcancel := context.WithDeadline(ctx, deadline)
		msg, err := ks.ReceiveMessage(mctx)
		mcancel()
		if err != nil {
			break
		}
		events = append(events, strings.TrimPrefix(msg.Channel, "__keyspace@0__:")+"="+msg.Payload)
	}
	want := []string{"ks:a=set", "ks:a2=lpush", "ks:e=set", "ks:e=expire", "ks:e=expired"}
	sCheck(t, fmt.Sprint(events) == fmt.Sprint(want), "keyspace events on follower %s: %q, want %q (Redis reports an expiry as \"expired\")", f, events, want)
}

// ---------------------------------------------------------------------------
// 4. Blocking commands

func surfaceBlocking(t *testing.T, env *surfaceEnv) {
	l := env.leader(t)
	f := env.lowFollower(t, l)
	ctx, cancel := sCtx()
	defer cancel()
	c := sClient(t, l.Addr, 0)
	// The pusher is a client of another node: n3 relays to the leader.
	pusher := sClient(t, env.n3.Addr, 0)
	if env.n3 == l {
		pusher = sClient(t, l.Addr, 0)
	}

	type res struct {
		v   interface{}
		err error
	}
	async := func(f func() (interface{}, error)) chan res {
		ch := make(chan res, 1)
		go func() { v, err := f(); ch <- res{v, err} }()
		return ch
	}
	await := func(ch chan res, what string) res {
		select {
		case r := <-ch:
			return r
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no reply within 20s", what)
		}
		return res{}
	}
	blpop := func(cl *redis.Client, timeout time.Duration, key string) chan res {
		return async(func() (interface{}, error) { return cl.BLPop(ctx, timeout, key).Result() })
	}

	// BLPOP on the leader woken by a push from another node's client.
	before := appliedIndex(t, l)
	ch := blpop(c, 15*time.Second, "b:l1")
	waitProposed(t, l, before, "BLPOP b:l1")
	sCheck(t, pusher.RPush(ctx, "b:l1", "v1").Err() == nil, "RPUSH via %s failed", env.n3)
	r := await(ch, "BLPOP b:l1")
	sCheck(t, r.err == nil && fmt.Sprint(r.v) == "[b:l1 v1]", "BLPOP woken by another node's push = %v, %v", r.v, r.err)

	// FIFO among two waiters on one key.
	ca, cb := sClient(t, l.Addr, 0), sClient(t, l.Addr, 0)
	before = appliedIndex(t, l)
	chA := blpop(ca, 15*time.Second, "b:fifo")
	waitProposed(t, l, before, "first BLPOP b:fifo")
	before = appliedIndex(t, l)
	chB := blpop(cb, 15*time.Second, "b:fifo")
	waitProposed(t, l, before, "second BLPOP b:fifo")
	sCheck(t, pusher.RPush(ctx, "b:fifo", "first", "second").Err() == nil, "RPUSH b:fifo failed")
	ra, rb := await(chA, "first waiter"), await(chB, "second waiter")
	sCheck(t, ra.err == nil && rb.err == nil && fmt.Sprint(ra.v) == "[b:fifo first]" && fmt.Sprint(rb.v) == "[b:fifo second]",
		"FIFO: first waiter got %v (%v), second got %v (%v)", ra.v, ra.err, rb.v, rb.err)

	// Timeout: nil after about the timeout.
	st := time.Now()
	_, err := c.BLPop(ctx, time.Second, "b:none").Result()
	el := time.Since(st)
	sCheck(t, err == redis.Nil && el >= 900*time.Millisecond && el < 8*time.Second, "BLPOP 1s on an empty key: %v after %v", err, el)
	st = time.Now()
	v, err := l.Do("BLPOP", "b:none", "0.3")
	el = time.Since(st)
	sCheck(t, err == nil && v == nil && el >= 250*time.Millisecond, "BLPOP with a fractional timeout: %v, %v after %v", v, err, el)

	// BLPOP 0, then the client leaves, then a push: the element stays.
	rc := dialAddrRaw(t, l.Addr)
	rc.do(t, "CLIENT", "SETNAME", "b-leaver")
	before = appliedIndex(t, l)
	rc.send(t, "BLPOP", "b:left", "0")
	waitProposed(t, l, before, "BLPOP b:left 0")
	rc.c.Close()
	err = poll(10*time.Second, func() error {
		list, err := c.ClientList(ctx).Result()
		if err != nil || strings.Contains(list, "name=b-leaver") {
			return fmt.Errorf("CLIENT LIST still lists the departed blocked client: %v", err)
		}
		return nil
	})
	sCheck(t, err == nil, "%v", err)
	sCheck(t, c.RPush(ctx, "b:left", "keep").Err() == nil, "RPUSH b:left failed")
	waitApplied(t, running(env.all)...)
	for _, n := range []*Node{l, f} {
		v, err := n.Do("LRANGE", "b:left", "0", "-1")
		sCheck(t, err == nil && fmt.Sprint(v) == "[keep]", "%s: element pushed after the blocked client left: LRANGE = %v, %v (lost?)", n, v, err)
	}

	// BLMOVE and BRPOPLPUSH.
	before = appliedIndex(t, l)
	ch = async(func() (interface{}, error) {
		return c.BLMove(ctx, "b:src", "b:dst", "LEFT", "RIGHT", 15*time.Second).Result()
	})
	waitProposed(t, l, before, "BLMOVE")
	pusher.RPush(ctx, "b:src", "a", "b")
	r = await(ch, "BLMOVE")
	sCheck(t, r.err == nil && r.v == "a", "BLMOVE = %v, %v", r.v, r.err)
	s, err := c.BRPopLPush(ctx, "b:src", "b:dst", time.Second).Result()
	sCheck(t, err == nil && s == "b", "BRPOPLPUSH (non-empty) = %q, %v", s, err)
	before = appliedIndex(t, l)
	ch = async(func() (interface{}, error) { return c.BRPopLPush(ctx, "b:src2", "b:dst", 15*time.Second).Result() })
	waitProposed(t, l, before, "BRPOPLPUSH")
	pusher.RPush(ctx, "b:src2", "c")
	r = await(ch, "BRPOPLPUSH")
	sCheck(t, r.err == nil && r.v == "c", "BRPOPLPUSH (woken) = %v, %v", r.v, r.err)
	lr, _ := c.LRange(ctx, "b:dst", 0, -1).Result()
	sCheck(t, fmt.Sprint(lr) == "[c b a]", "b:dst after BLMOVE/BRPOPLPUSH = %v", lr)

	// BLMPOP and BZPOPMIN.
	before = appliedIndex(t, l)
	ch = async(func() (interface{}, error) {
		k, vals, err := c.BLMPop(ctx, 15*time.Second, "left", 2, "b:mp0", "b:mp").Result()
		return fmt.Sprintf("%s %v", k, vals), err
	})
	waitProposed(t, l, before, "BLMPOP")
	pusher.RPush(ctx, "b:mp", "x", "y", "z")
	r = await(ch, "BLMPOP")
	sCheck(t, r.err == nil && r.v == "b:mp [x y]", "BLMPOP = %v, %v", r.v, r.err)
	before = appliedIndex(t, l)
	ch = async(func() (interface{}, error) {
		z, err := c.BZPopMin(ctx, 15*time.Second, "b:z").Result()
		if err != nil {
			return nil, err
		}
		return fmt.Sprintf("%s %v %v", z.Key, z.Member, z.Score), nil
	})
	waitProposed(t, l, before, "BZPOPMIN")
	pusher.ZAdd(ctx, "b:z", redis.Z{Score: 2, Member: "two"}, redis.Z{Score: 1, Member: "one"})
	r = await(ch, "BZPOPMIN")
	sCheck(t, r.err == nil && r.v == "b:z one 1", "BZPOPMIN = %v, %v", r.v, r.err)

	// Writes other than pushes that make the key non-empty wake the waiter,
	// as in Redis (which serves blocked clients from any write that adds
	// the key: rename, transaction, script, move between keys or dbs).
	c1, c11, c12 := sClient(t, l.Addr, 1), sClient(t, l.Addr, 11), sClient(t, l.Addr, 12)
	wakers := []struct {
		name   string
		waiter *redis.Client
		key    string
		do     func() error
	}{
		{"RENAME", c, "b:w:ren", func() error {
			c.RPush(ctx, "b:w:tmp", "v")
			return c.Rename(ctx, "b:w:tmp", "b:w:ren").Err()
		}},
		{"MULTI/EXEC", c, "b:w:tx", func() error {
			_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error { p.RPush(ctx, "b:w:tx", "v"); return nil })
			return err
		}},
		{"EVAL", c, "b:w:eval", func() error {
			return c.Eval(ctx, "return redis.call('RPUSH', KEYS[1], 'v')", []string{"b:w:eval"}).Err()
		}},
		{"FCALL", c, "b:w:fcall", func() error {
			c.FunctionLoad(ctx, "#!lua name=bwlib\nredis.register_function('bwpush', function(keys, args) return redis.call('RPUSH', keys[1], args[1]) end)\n")
			return c.FCall(ctx, "bwpush", []string{"b:w:fcall"}, "v").Err()
		}},
		{"LMOVE", c, "b:w:lmove", func() error {
			c.RPush(ctx, "b:w:lsrc", "v")
			return c.LMove(ctx, "b:w:lsrc", "b:w:lmove", "LEFT", "LEFT").Err()
		}},
		{"COPY", c, "b:w:copy", func() error {
			c.RPush(ctx, "b:w:csrc", "v")
			return c.Copy(ctx, "b:w:csrc", "b:w:copy", 0, false).Err()
		}},
		{"SORT ... STORE", c, "b:w:sort", func() error {
			c.RPush(ctx, "b:w:ssrc", "v")
			return c.SortStore(ctx, "b:w:ssrc", "b:w:sort", &redis.Sort{Alpha: true}).Err()
		}},
		{"MOVE from db 1", c, "b:w:move", func() error {
			c1.RPush(ctx, "b:w:move", "v")
			return c1.Move(ctx, "b:w:move", 0).Err()
		}},
		{"SWAPDB 11 12", c11, "b:w:swap", func() error {
			c12.RPush(ctx, "b:w:swap", "v")
			return c.Do(ctx, "SWAPDB", 11, 12).Err()
		}},
	}
	for _, w := range wakers {
		before = appliedIndex(t, l)
		ch := blpop(w.waiter, 5*time.Second, w.key)
		waitProposed(t, l, before, "BLPOP "+w.key)
		sCheck(t, w.do() == nil, "%s failed", w.name)
		r := await(ch, "BLPOP "+w.key)
		sCheck(t, r.err == nil && fmt.Sprint(r.v) == "["+w.key+" v]", "BLPOP %s 5 not woken by %s: %v, %v (Redis serves it at once)", w.key, w.name, r.v, r.err)
	}
	c.FunctionDelete(ctx, "bwlib")

	// XREAD BLOCK with $ returns only an entry added after it started.
	c.XAdd(ctx, &redis.XAddArgs{Stream: "b:x", ID: "1-1", Values: []string{"old", "1"}})
	ch = async(func() (interface{}, error) {
		return c.XRead(ctx, &redis.XReadArgs{Streams: []string{"b:x", "$"}, Block: 15 * time.Second, Count: 10}).Result()
	})
	added := map[string]bool{}
	var xr res
	for i := 0; xr.v == nil && xr.err == nil; i++ {
		id, err := pusher.XAdd(ctx, &redis.XAddArgs{Stream: "b:x", Values: []string{"n", strconv.Itoa(i)}}).Result()
		sMust(t, err == nil, "XADD b:x: %v", err)
		added[id] = true
		select {
		case xr = <-ch:
		case <-time.After(300 * time.Millisecond):
			if i > 50 {
				t.Fatalf("XREAD BLOCK $ not woken by %d XADDs", i+1)
			}
		}
	}
	streams, _ := xr.v.([]redis.XStream)
	sCheck(t, xr.err == nil && len(streams) == 1 && streams[0].Stream == "b:x" && len(streams[0].Messages) == 1 && added[streams[0].Messages[0].ID],
		"XREAD BLOCK $ = %+v, %v (want one entry added after the call)", xr.v, xr.err)

	// XREADGROUP BLOCK woken by XADD; the delivery is in every node's PEL.
	sMust(t, c.XGroupCreateMkStream(ctx, "b:g", "grp", "$").Err() == nil, "XGROUP CREATE MKSTREAM failed")
	before = appliedIndex(t, l)
	ch = async(func() (interface{}, error) {
		return c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "grp", Consumer: "c1", Streams: []string{"b:g", ">"}, Block: 15 * time.Second, Count: 1}).Result()
	})
	waitProposed(t, l, before, "XREADGROUP BLOCK")
	pusher.XAdd(ctx, &redis.XAddArgs{Stream: "b:g", ID: "5-1", Values: []string{"f", "v"}})
	r = await(ch, "XREADGROUP")
	streams, _ = r.v.([]redis.XStream)
	sCheck(t, r.err == nil && len(streams) == 1 && len(streams[0].Messages) == 1 && streams[0].Messages[0].ID == "5-1",
		"XREADGROUP BLOCK = %+v, %v", r.v, r.err)
	for _, n := range []*Node{l, f} {
		eventually(t, appliedTimeout, func() error {
			v, err := n.Do("XPENDING", "b:g", "grp")
			if err != nil || fmt.Sprint(v) != "[1 5-1 5-1 [[c1 1]]]" {
				return fmt.Errorf("%s XPENDING b:g grp = %v, %v", n, v, err)
			}
			return nil
		})
		surfaceChecks.Add(1)
	}
	waitApplied(t, running(env.all)...)
	surfaceChecks.Add(1)
}

// ---------------------------------------------------------------------------
// 7. Data commands of every type

// surfaceDataCmds run on the leader and on the bare redis-server; replies
// must match. A leading "~" marks a command whose reply legitimately
// differs from a separate server (randomness): it is only run, and the
// nodes compared with each other.
var surfaceDataCmds = [][]string{
	// strings
	{"SET", "d:str", "hello"}, {"APPEND", "d:str", " world"}, {"GETRANGE", "d:str", "0", "4"}, {"SETRANGE", "d:str", "6", "W"},
	{"STRLEN", "d:str"}, {"GET", "d:str"}, {"INCR", "d:n"}, {"INCRBY", "d:n", "10"}, {"DECRBY", "d:n", "3"}, {"DECR", "d:n"},
	{"INCRBYFLOAT", "d:f", "1.5"}, {"INCRBYFLOAT", "d:f", "2.25"}, {"MSET", "d:m1", "a", "d:m2", "b"}, {"MGET", "d:m1", "d:m2", "d:none"},
	{"GETSET", "d:m1", "c"}, {"GETDEL", "d:m2"}, {"SETNX", "d:m1", "z"}, {"MSETNX", "d:m3", "x", "d:m1", "y"}, {"SET", "d:m1", "new", "GET"},
	{"SET", "d:nx", "1", "NX"}, {"SET", "d:nx", "2", "NX"}, {"SET", "d:xx", "1", "XX"}, {"LCS", "d:str", "d:m1"}, {"SET", "d:lcs", "Wold"},
	{"LCS", "d:str", "d:lcs", "LEN"}, {"SET", "d:big", "1", "EX", "100000"}, {"GETEX", "d:big", "PERSIST"}, {"TTL", "d:big"},
	{"SET", "d:num", "12"}, {"INCRBY", "d:str", "1"},
	// bitmaps and bitfields
	{"SETBIT", "d:b", "7", "1"}, {"SETBIT", "d:b", "100", "1"}, {"SETBIT", "d:b", "7", "0"}, {"SETBIT", "d:b", "9", "1"}, {"GETBIT", "d:b", "100"},
	{"BITCOUNT", "d:b"}, {"BITCOUNT", "d:b", "0", "1"}, {"BITPOS", "d:b", "1"}, {"SET", "d:b2", "\xff\x0f"},
	{"BITOP", "AND", "d:band", "d:b", "d:b2"}, {"BITOP", "OR", "d:bor", "d:b", "d:b2"}, {"BITOP", "XOR", "d:bxor", "d:b", "d:b2"},
	{"BITOP", "NOT", "d:bnot", "d:b2"}, {"GET", "d:band"}, {"GET", "d:bnot"},
	{"BITFIELD", "d:bf", "SET", "u8", "0", "200", "INCRBY", "u8", "0", "100", "GET", "u8", "0", "OVERFLOW", "SAT", "INCRBY", "u8", "8", "300", "OVERFLOW", "FAIL", "INCRBY", "i4", "16", "100"},
	{"BITFIELD_RO", "d:bf", "GET", "u8", "0", "GET", "u8", "8"},
	// lists
	{"RPUSH", "d:l", "a", "b", "c", "d", "e"}, {"LPUSH", "d:l", "z"}, {"LINSERT", "d:l", "BEFORE", "c", "x"}, {"LSET", "d:l", "0", "Z"},
	{"LREM", "d:l", "1", "x"}, {"LTRIM", "d:l", "0", "4"}, {"LPOS", "d:l", "c"}, {"LMOVE", "d:l", "d:l2", "LEFT", "RIGHT"},
	{"LMPOP", "1", "d:l", "RIGHT", "COUNT", "2"}, {"RPOPLPUSH", "d:l", "d:l2"}, {"LINDEX", "d:l2", "0"}, {"LLEN", "d:l2"},
	{"LRANGE", "d:l2", "0", "-1"}, {"LPUSHX", "d:l2", "p"}, {"RPUSHX", "d:nolist", "p"}, {"LPOP", "d:l2"}, {"RPOP", "d:l2", "1"}, {"LRANGE", "d:l", "0", "-1"},
	// hashes
	{"HSET", "d:h", "f1", "v1", "f2", "v2", "n", "5"}, {"HINCRBY", "d:h", "n", "3"}, {"HINCRBYFLOAT", "d:h", "fl", "1.25"},
	{"HSETNX", "d:h", "f1", "x"}, {"HDEL", "d:h", "f2"}, {"HMGET", "d:h", "f1", "f2", "n"}, {"HGETALL", "d:h"}, {"HLEN", "d:h"},
	{"HSTRLEN", "d:h", "f1"}, {"HEXISTS", "d:h", "f2"}, {"HKEYS", "d:h"}, {"HVALS", "d:h"}, {"HMSET", "d:h2", "a", "1"},
	// sets (hash table order may differ between processes: compare via SORT)
	{"SADD", "d:s1", "a", "b", "c", "d"}, {"SADD", "d:s2", "c", "d", "e"}, {"SINTERSTORE", "d:si", "d:s1", "d:s2"},
	{"SUNIONSTORE", "d:su", "d:s1", "d:s2"}, {"SDIFFSTORE", "d:sd", "d:s1", "d:s2"}, {"SMOVE", "d:s1", "d:s2", "a"}, {"SREM", "d:s1", "b"},
	{"SISMEMBER", "d:s2", "a"}, {"SMISMEMBER", "d:s1", "a", "c", "zz"}, {"SINTERCARD", "2", "d:s1", "d:s2"}, {"SCARD", "d:su"},
	{"SORT", "d:su", "ALPHA"}, {"SORT", "d:si", "ALPHA"}, {"SORT", "d:sd", "ALPHA"}, {"SADD", "d:si2", "3", "1", "2"}, {"SMEMBERS", "d:si2"},
	{"SADD", "d:sp", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "a", "b", "c"}, {"~SPOP", "d:sp", "3"}, {"~SPOP", "d:sp"},
	// sorted sets
	{"ZADD", "d:z", "1", "a", "2", "b", "3", "c", "4", "d"}, {"ZINCRBY", "d:z", "10", "a"}, {"ZRANGE", "d:z", "0", "-1", "WITHSCORES"},
	{"ZRANGEBYSCORE", "d:z", "2", "4"}, {"ZREVRANGE", "d:z", "0", "1"}, {"ZRANK", "d:z", "c"}, {"ZSCORE", "d:z", "a"},
	{"ZMSCORE", "d:z", "a", "zz"}, {"ZCOUNT", "d:z", "-inf", "+inf"}, {"ZADD", "d:zl", "0", "a", "0", "b", "0", "c"},
	{"ZLEXCOUNT", "d:zl", "[a", "[b"}, {"ZRANGEBYLEX", "d:zl", "-", "(c"}, {"ZREM", "d:z", "b"}, {"ZPOPMIN", "d:z"}, {"ZPOPMAX", "d:z"},
	{"ZADD", "d:z2", "5", "x", "6", "d", "7", "y"}, {"ZUNIONSTORE", "d:zu", "2", "d:z", "d:z2", "WEIGHTS", "1", "2"},
	{"ZINTERSTORE", "d:zi", "2", "d:z", "d:z2"}, {"ZDIFFSTORE", "d:zd", "2", "d:z2", "d:z"}, {"ZRANGESTORE", "d:zr", "d:zu", "0", "1"},
	{"ZMPOP", "1", "d:zu", "MIN", "COUNT", "1"}, {"ZRANGE", "d:zu", "0", "-1", "WITHSCORES"}, {"ZADD", "d:z", "GT", "CH", "1", "d", "9", "d"},
	{"ZINTERCARD", "2", "d:z", "d:z2"}, {"ZUNION", "2", "d:z", "d:z2", "WITHSCORES"}, {"~ZRANDMEMBER", "d:z2"},
	// HyperLogLog: see the dedicated step below.
	// geo
	{"GEOADD", "d:g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania", "12.496366", "41.902782", "Rome"},
	{"GEODIST", "d:g", "Palermo", "Catania", "km"}, {"GEOPOS", "d:g", "Palermo", "Nowhere"}, {"GEOHASH", "d:g", "Palermo", "Catania"},
	{"GEOSEARCH", "d:g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC", "WITHDIST"},
	{"GEOSEARCHSTORE", "d:gs", "d:g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC"},
	{"GEOSEARCHSTORE", "d:gsd", "d:g", "FROMMEMBER", "Rome", "BYBOX", "1000", "1000", "km", "ASC", "STOREDIST"},
	{"GEORADIUS", "d:g", "15", "37", "500", "km", "ASC", "STORE", "d:gr"}, {"ZRANGE", "d:gs", "0", "-1", "WITHSCORES"}, {"ZRANGE", "d:gr", "0", "-1"},
	// streams with consumer groups
	{"XADD", "d:x", "1-1", "a", "1"}, {"XADD", "d:x", "2-1", "b", "2"}, {"XADD", "d:x", "3-1", "c", "3"}, {"XADD", "d:x", "MAXLEN", "10", "4-1", "d", "4"},
	{"XLEN", "d:x"}, {"XRANGE", "d:x", "-", "+", "COUNT", "2"}, {"XREVRANGE", "d:x", "+", "-"}, {"XGROUP", "CREATE", "d:x", "g", "0"},
	{"XGROUP", "CREATECONSUMER", "d:x", "g", "c0"}, {"XREADGROUP", "GROUP", "g", "c1", "COUNT", "3", "STREAMS", "d:x", ">"},
	{"XACK", "d:x", "g", "1-1"}, {"XCLAIM", "d:x", "g", "c2", "0", "2-1"}, {"XCLAIM", "d:x", "g", "c2", "0", "3-1", "JUSTID"},
	{"XAUTOCLAIM", "d:x", "g", "c3", "0", "0-0", "COUNT", "1"}, {"XPENDING", "d:x", "g"}, {"XPENDING", "d:x", "g", "-", "+", "10", "c2", "~"},
	{"XREADGROUP", "GROUP", "g", "c1", "STREAMS", "d:x", "0"}, {"XDEL", "d:x", "4-1"}, {"XTRIM", "d:x", "MAXLEN", "3"},
	{"XINFO", "STREAM", "d:x"}, {"XINFO", "GROUPS", "d:x"}, {"XGROUP", "SETID", "d:x", "g", "0"}, {"XGROUP", "DELCONSUMER", "d:x", "g", "c0"},
	{"XREAD", "COUNT", "1", "STREAMS", "d:x", "0"}, {"XSETID", "d:x", "10-1"}, {"XADD", "d:x", "11-1", "late", "1"}, {"XGROUP", "CREATE", "d:x", "g2", "$"},
	{"~XADD", "d:xauto", "*", "auto", "1"}, {"~XADD", "d:xauto", "*", "auto", "2"}, {"~XADD", "d:xauto", "MAXLEN", "1", "*", "auto", "3"},
	// generic: COPY, MOVE, RENAME, SORT ... STORE, types
	{"COPY", "d:h", "d:hcopy"}, {"COPY", "d:str", "d:strcopy", "DB", "3"}, {"COPY", "d:h", "d:hcopy"}, {"COPY", "d:z2", "d:hcopy", "REPLACE"},
	{"SET", "d:mv", "m"}, {"MOVE", "d:mv", "4"}, {"MOVE", "d:mv", "4"}, {"SET", "d:rn1", "r"}, {"RENAME", "d:rn1", "d:rn2"},
	{"RENAMENX", "d:rn2", "d:str"}, {"RENAME", "d:none", "d:x2"}, {"RPUSH", "d:sl", "3", "1", "2", "10"}, {"SORT", "d:sl", "STORE", "d:sorted"},
	{"LRANGE", "d:sorted", "0", "-1"}, {"SORT_RO", "d:sl", "DESC", "LIMIT", "0", "2"}, {"SORT", "d:sl", "BY", "nosort", "GET", "#"},
	{"TYPE", "d:x"}, {"TYPE", "d:g"}, {"EXISTS", "d:str", "d:none", "d:h"}, {"TOUCH", "d:str", "d:h"}, {"DEL", "d:m3", "d:none"},
	{"UNLINK", "d:nx"}, {"EXPIRE", "d:xx", "100"}, {"PERSIST", "d:str"}, {"OBJECT", "ENCODING", "d:l2"}, {"OBJECT", "ENCODING", "d:z"},
	{"DUMP", "d:h"}, {"DUMP", "d:str"}, {"DUMP", "d:z2"},
}

func surfaceData(t *testing.T, env *surfaceEnv) {
	l := env.leader(t)
	f := env.lowFollower(t, l)
	ctx, cancel := sCtx()
	defer cancel()
	c := sClient(t, l.Addr, 0)
	bc := sClient(t, env.bare.Addr, 0)
	bc.FlushAll(ctx)

	for _, cmd := range surfaceDataCmds {
		args := make([]interface{}, len(cmd))
		for i, a := range cmd {
			args[i] = a
		}
		noBare := strings.HasPrefix(cmd[0], "~")
		args[0] = strings.TrimPrefix(cmd[0], "~")
		timed := cmd[len(cmd)-1] == "~" // reply holds times: both must only succeed
		if timed {
			args = args[:len(args)-1]
		}
		got := render(c.Do(ctx, args...).Result())
		if noBare {
			sCheck(t, !strings.HasPrefix(got, "ERR<"), "%q on leader: %s", cmd, got)
			continue
		}
		want := render(bc.Do(ctx, args...).Result())
		if timed {
			sCheck(t, !strings.HasPrefix(got, "ERR<") && !strings.HasPrefix(want, "ERR<"), "%q: redraft %s, redis-server %s", cmd, got, want)
			continue
		}
		sCheck(t, got == want, "%q:\n  redraft:      %s\n  redis-server: %s", cmd, showDiff(got, want), showDiff(want, got))
	}
	// DUMP / RESTORE with the leader's own payloads.
	for _, k := range []string{"d:h", "d:z2", "d:l2", "d:x"} {
		payload, err := c.Dump(ctx, k).Result()
		sMust(t, err == nil, "DUMP %s: %v", k, err)
		err = c.Restore(ctx, k+":restored", 0, payload).Err()
		sCheck(t, err == nil, "RESTORE %s:restored: %v", k, err)
		err = c.Restore(ctx, k+":restored", 0, payload).Err()
		sCheck(t, err != nil && err.Error() == "BUSYKEY Target key name already exists.", "RESTORE onto an existing key: %v", err)
		err = c.RestoreReplace(ctx, k+":restored", time.Hour, payload).Err()
		sCheck(t, err == nil, "RESTORE ... REPLACE with TTL: %v", err)
		bp, _ := bc.Dump(ctx, k).Result()
		bc.RestoreReplace(ctx, k+":restored", time.Hour, bp)
	}

	// Keys of several dbs via go-redis clients bound to them.
	c3 := sClient(t, l.Addr, 3)
	v, err := c3.Get(ctx, "d:strcopy").Result()
	sCheck(t, err == nil && v == "hello World", "COPY ... DB 3 then GET in db 3 = %q, %v", v, err)
	c4 := sClient(t, l.Addr, 4)
	v, err = c4.Get(ctx, "d:mv").Result()
	sCheck(t, err == nil && v == "m", "MOVE d:mv 4 then GET in db 4 = %q, %v", v, err)

	// Every node holds the same data, and the same as a plain Redis that ran
	// the same commands (absolute TTLs aside).
	waitApplied(t, running(env.all)...)
	surfaceChecks.Add(1)
	stL, stF := clusterState(t, l), clusterState(t, f)
	sCheck(t, diffStates(stL, stF, 0) == nil, "leader and follower differ: %v", diffStates(stL, stF, 0))
	stB, err := readState(&Node{Addr: env.bare.Addr})
	sMust(t, err == nil, "read bare redis state: %v", err)
	dL := filterState(stL, "0:d:", "3:d:", "4:d:")
	for _, k := range []string{"0:d:sp", "0:d:xauto"} { // random / time-based: compared between nodes only
		delete(dL, k)
		delete(stB, k)
	}
	err = diffStates(dL, filterState(stB, "0:d:", "3:d:", "4:d:"), -1)
	sCheck(t, len(dL) > 40 && err == nil, "leader (%d d: keys) differs from redis-server: %v", len(dL), err)
	// Consumer-group state is not in clusterState: compare it directly.
	for _, q := range [][]interface{}{{"XPENDING", "d:x", "g"}, {"XPENDING", "d:x", "g", "-", "+", "10"}, {"XINFO", "GROUPS", "d:x"}, {"XINFO", "STREAM", "d:x"}} {
		a, errA := l.Do(q...)
		b, errB := f.Do(q...)
		want := render(bc.Do(ctx, q...).Result())
		ra, rb := render(a, errA), render(b, errB)
		if q[0] == "XPENDING" && len(q) > 3 {
			// idle times differ between servers; compare ids/consumers/counts
			ra, rb, want = stripIdle(a), stripIdle(b), "-"
			sCheck(t, ra == rb, "%v: leader %s, follower %s", q, ra, rb)
			continue
		}
		sCheck(t, ra == rb && ra == want, "%v:\n  leader:       %s\n  follower:     %s\n  redis-server: %s", q, ra, rb, want)
	}

	// HyperLogLog: PFADD/PFMERGE/PFCOUNT, then the nodes must still agree
	// byte for byte (RAFTDIGEST). In Redis, PFCOUNT may rewrite the key's
	// cached cardinality and is then propagated to replicas.
	for _, cmd := range [][]interface{}{
		{"PFADD", "hll:a", "a", "b", "c"}, {"PFADD", "hll:b", "c", "d"}, {"PFCOUNT", "hll:a"}, {"PFMERGE", "hll:m", "hll:a", "hll:b"},
		{"PFCOUNT", "hll:m"}, {"PFCOUNT", "hll:a", "hll:b"}, {"PFADD", "hll:a", "e"}, {"PFCOUNT", "hll:a"},
	} {
		got := render(c.Do(ctx, cmd...).Result())
		want := render(bc.Do(ctx, cmd...).Result())
		sCheck(t, got == want, "%v: redraft %s, redis-server %s", cmd, got, want)
	}
	l.Do("SET", "hll:barrier", "1")
	eventually(t, appliedTimeout, func() error {
		a, b := appliedIndex(t, l), appliedIndex(t, f)
		if a != b {
			return fmt.Errorf("applied %d vs %d", a, b)
		}
		return nil
	})
	dl, _ := raftDigest(l)
	df, _ := raftDigest(f)
	hl, _ := l.Do("GET", "hll:a")
	hf, _ := f.Do("GET", "hll:a")
	sCheck(t, dl == df && hl == hf, "after PFCOUNT on the leader the nodes diverge: RAFTDIGEST %+v vs %+v; GET hll:a leader %x, follower %x", dl, df, hl, hf)
	l.Do("DEL", "hll:a", "hll:b", "hll:m") // do not poison later digest comparisons

	// SCAN iterator over 2000 keys: every key exactly once, on leader and
	// follower.
	c10 := sClient(t, l.Addr, 10)
	for b := 0; b < 10; b++ {
		var kv []interface{}
		for i := b * 200; i < (b+1)*200; i++ {
			kv = append(kv, fmt.Sprintf("scan:%04d", i), i)
		}
		sMust(t, c10.MSet(ctx, kv...).Err() == nil, "MSET batch %d failed", b)
	}
	waitApplied(t, running(env.all)...)
	for _, n := range []*Node{l, f} {
		cn := sClient(t, n.Addr, 10)
		seen := map[string]int{}
		it := cn.Scan(ctx, 0, "scan:*", 97).Iterator()
		for it.Next(ctx) {
			seen[it.Val()]++
		}
		dups := 0
		for _, k := range seen {
			if k != 1 {
				dups++
			}
		}
		sCheck(t, it.Err() == nil && len(seen) == 2000 && dups == 0, "%s SCAN iterator: %d distinct keys, %d repeated, err %v", n, len(seen), dups, it.Err())
	}
	// SSCAN / HSCAN / ZSCAN on values large enough to be hash tables.
	var members []interface{}
	var hashKV []interface{}
	var zs []redis.Z
	for i := 0; i < 600; i++ {
		members = append(members, fmt.Sprintf("m%d", i))
		hashKV = append(hashKV, fmt.Sprintf("f%d", i), i)
		zs = append(zs, redis.Z{Score: float64(i), Member: fmt.Sprintf("z%d", i)})
	}
	c.SAdd(ctx, "scan:set", members...)
	c.HSet(ctx, "scan:hash", hashKV...)
	c.ZAdd(ctx, "scan:zset", zs...)
	waitApplied(t, running(env.all)...)
	for _, n := range []*Node{l, f} {
		cn := sClient(t, n.Addr, 0)
		for _, sc := range []struct {
			name string
			it   *redis.ScanIterator
			step int
		}{
			{"SSCAN", cn.SScan(ctx, "scan:set", 0, "", 50).Iterator(), 1},
			{"HSCAN", cn.HScan(ctx, "scan:hash", 0, "", 50).Iterator(), 2},
			{"ZSCAN", cn.ZScan(ctx, "scan:zset", 0, "", 50).Iterator(), 2},
		} {
			seen := map[string]int{}
			for i := 0; sc.it.Next(ctx); i++ {
				if i%sc.step == 0 {
					seen[sc.it.Val()]++
				}
			}
			dups := 0
			for _, k := range seen {
				if k != 1 {
					dups++
				}
			}
			sCheck(t, sc.it.Err() == nil && len(seen) == 600 && dups == 0, "%s %s: %d distinct, %d repeated, err %v", n, sc.name, len(seen), dups, sc.it.Err())
		}
	}
	d := waitApplied(t, running(env.all)...)
	surfaceChecks.Add(1)
	t.Logf("all nodes at applied index %d, digest %s", d.Applied, d.Hash)
}

// canonical renders a reply with every array's elements sorted.
func canonical(v interface{}) string {
	if arr, ok := v.([]interface{}); ok {
		parts := make([]string, len(arr))
		for i, e := range arr {
			parts[i] = canonical(e)
		}
		sort.Strings(parts)
		return "[" + strings.Join(parts, ",") + "]"
	}
	return strconv.Quote(fmt.Sprint(v))
}

// stripIdle renders an extended XPENDING reply without idle times.
func stripIdle(v interface{}) string {
	arr, _ := v.([]interface{})
	var out []string
	for _, e := range arr {
		f, _ := e.([]interface{})
		if len(f) == 4 {
			out = append(out, fmt.Sprintf("%v/%v/%v", f[0], f[1], f[3]))
		}
	}
	return strings.Join(out, " ")
}

// ---------------------------------------------------------------------------
// 8. --follower-proxy

func surfaceFollowerProxy(t *testing.T, env *surfaceEnv) {
	l := env.leader(t)
	p := env.n3
	if p == l {
		t.Skipf("%s (--follower-proxy) is the leader; nothing to forward", p)
	}
	plain := env.n2
	if plain == l {
		plain = env.n1
	}
	ctx, cancel := sCtx()
	defer cancel()
	cp := sClient(t, p.Addr, 0)
	cl := sClient(t, l.Addr, 0)
	try := "TRY " + l.Addr

	// Without the flag: TRY for writes and transactions.
	sErr(t, plain, try, "SET", "fp:plain", "1")
	rc := dialAddrRaw(t, plain.Addr)
	got := []string{rc.do(t, "MULTI"), rc.do(t, "SET", "fp:plain", "1"), rc.do(t, "EXEC")}
	sCheck(t, fmt.Sprint(got) == fmt.Sprint([]string{"+OK", "+QUEUED", "-" + try}), "MULTI/SET/EXEC on %s without --follower-proxy: %q", plain, got)
	sErr(t, plain, try, "BLPOP", "fp:plain", "1")

	// With it: writes, reads (medium consistency: forwarded) and
	// read-your-writes.
	v, err := cp.Set(ctx, "fp:a", "1", 0).Result()
	sCheck(t, err == nil && v == "OK", "SET via %s = %v, %v", p, v, err)
	v, err = cp.Get(ctx, "fp:a").Result()
	sCheck(t, err == nil && v == "1", "GET via %s right after SET = %v, %v", p, v, err)
	v, err = cl.Get(ctx, "fp:a").Result()
	sCheck(t, err == nil && v == "1", "leader GET fp:a = %v, %v", v, err)
	// Pipelines keep their order.
	var cmds []redis.Cmder
	_, err = cp.Pipelined(ctx, func(pp redis.Pipeliner) error {
		for i := 1; i <= 50; i++ {
			cmds = append(cmds, pp.Incr(ctx, "fp:ctr"), pp.Get(ctx, "fp:ctr"))
		}
		cmds = append(cmds, pp.Ping(ctx), pp.Echo(ctx, "e"), pp.RPush(ctx, "fp:l", "a", "b"), pp.LRange(ctx, "fp:l", 0, -1))
		return nil
	})
	bad := 0
	for i := 1; i <= 50 && err == nil; i++ {
		if cmds[2*(i-1)].(*redis.IntCmd).Val() != int64(i) || cmds[2*(i-1)+1].(*redis.StringCmd).Val() != strconv.Itoa(i) {
			bad++
		}
	}
	sCheck(t, err == nil && bad == 0 && fmt.Sprint(cmds[103].(*redis.StringSliceCmd).Val()) == "[a b]", "pipeline via %s: err %v, %d out of order, tail %v", p, err, bad, cmds[100:])
	// MULTI/EXEC through it.
	var tx []redis.Cmder
	_, err = cp.TxPipelined(ctx, func(pp redis.Pipeliner) error {
		tx = []redis.Cmder{pp.Incr(ctx, "fp:t"), pp.Incr(ctx, "fp:t"), pp.Get(ctx, "fp:t")}
		return nil
	})
	sCheck(t, err == nil && tx[0].(*redis.IntCmd).Val() == 1 && tx[1].(*redis.IntCmd).Val() == 2 && tx[2].(*redis.StringCmd).Val() == "2",
		"TxPipelined via %s: %v, %v", p, tx, err)
	_, err = cp.TxPipelined(ctx, func(pp redis.Pipeliner) error {
		pp.Set(ctx, "fp:abort", "1", 0)
		pp.Do(ctx, "NOSUCHCMD")
		return nil
	})
	sCheck(t, err != nil && strings.HasPrefix(err.Error(), "EXECABORT"), "EXECABORT via %s: %v", p, err)
	// WATCH through it, with a conflicting writer on the leader.
	cl.Set(ctx, "fp:w", "orig", 0)
	err = cp.Watch(ctx, func(txn *redis.Tx) error {
		v, err := txn.Get(ctx, "fp:w").Result()
		if err != nil {
			return err
		}
		cl.Set(ctx, "fp:w", "conflict", 0)
		_, err = txn.TxPipelined(ctx, func(pp redis.Pipeliner) error { pp.Set(ctx, "fp:w", v+"+mine", 0); return nil })
		return err
	}, "fp:w")
	sCheck(t, errors.Is(err, redis.TxFailedErr), "WATCH via %s with a conflicting writer: %v", p, err)
	err = cp.Watch(ctx, func(txn *redis.Tx) error {
		v, err := txn.Get(ctx, "fp:w").Result()
		if err != nil {
			return err
		}
		_, err = txn.TxPipelined(ctx, func(pp redis.Pipeliner) error { pp.Set(ctx, "fp:w", v+"+mine", 0); return nil })
		return err
	}, "fp:w")
	v, _ = cl.Get(ctx, "fp:w").Result()
	sCheck(t, err == nil && v == "conflict+mine", "WATCH via %s without conflict: %v, fp:w = %q", p, err, v)
	// SELECT is honoured on the relay connection.
	cp2 := sClient(t, p.Addr, 2)
	sCheck(t, cp2.Set(ctx, "fp:db2", "two", 0).Err() == nil, "SET in db 2 via %s failed", p)
	v, err = sClient(t, l.Addr, 2).Get(ctx, "fp:db2").Result()
	sCheck(t, err == nil && v == "two", "leader db 2 fp:db2 = %q, %v", v, err)
	n, _ := cl.Exists(ctx, "fp:db2").Result()
	sCheck(t, n == 0, "SET in db 2 via %s landed in db 0", p)
	// Scripts and PUBLISH through it.
	ev, err := cp.Eval(ctx, "return redis.call('INCR', KEYS[1])", []string{"fp:ev"}).Result()
	sCheck(t, err == nil && ev == int64(1), "EVAL via %s = %v, %v", p, ev, err)
	_, err = cp.Publish(ctx, "fp:ch", "x").Result()
	sCheck(t, err == nil, "PUBLISH via %s: %v", p, err)
	// Blocking commands, XREAD BLOCK and WAIT: a client that does not
	// understand TRY must not get it from a --follower-proxy node.
	cp.RPush(ctx, "fp:bl", "v")
	r, err := cp.BLPop(ctx, 2*time.Second, "fp:bl").Result()
	sCheck(t, err == nil && fmt.Sprint(r) == "[fp:bl v]", "BLPOP on a non-empty list via %s = %v, %v (want [fp:bl v])", p, r, err)
	cp.XAdd(ctx, &redis.XAddArgs{Stream: "fp:x", ID: "1-1", Values: []string{"f", "v"}})
	xs, err := cp.XRead(ctx, &redis.XReadArgs{Streams: []string{"fp:x", "0"}, Block: time.Second}).Result()
	sCheck(t, err == nil && len(xs) == 1, "XREAD BLOCK via %s = %v, %v", p, xs, err)
	w, err := cp.Wait(ctx, 1, 0).Result()
	sCheck(t, err == nil && w >= 1, "WAIT 1 0 via %s after a forwarded write = %d, %v", p, w, err)
	waitApplied(t, running(env.all)...)
	surfaceChecks.Add(1)
}

// ---------------------------------------------------------------------------
// 9. redis-cli

func surfaceRedisCli(t *testing.T, env *surfaceEnv) {
	l := env.leader(t)
	port := strconv.Itoa(l.Port)
	run := func(stdin string, name string, args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Env = append(os.Environ(), "TERM=dumb")
		out, err := cmd.CombinedOutput()
		sCheck(t, err == nil && ctx.Err() == nil, "%s %v: %v (output %q)", name, args, err, out)
		return string(out)
	}
	// Commands piped on stdin (no terminal).
	out := run("PING\nSET rc:a b\nGET rc:a\n", "redis-cli", "-h", "127.0.0.1", "-p", port)
	sCheck(t, out == "PONG\nOK\nb\n", "redis-cli with piped commands printed %q", out)
	// A real interactive session on a terminal (util-linux script provides
	// the pty): redis-cli fetches COMMAND DOCS at startup for its hints.
	if _, err := exec.LookPath("script"); err == nil {
		out = run("PING\nSET rc:b c\nGET rc:b\nHELP GET\n", "script", "-qfec", "redis-cli -h 127.0.0.1 -p "+port, "/dev/null")
		out = strings.ReplaceAll(out, "\r", "")
		prompt := "127.0.0.1:" + port + "> "
		sCheck(t, strings.Contains(out, prompt+"PONG\n") && strings.Contains(out, prompt+"OK\n") && strings.Contains(out, prompt+"\"c\"\n") &&
			strings.Contains(out, "Get the value of a key") && !strings.Contains(out, "ERR"), "interactive redis-cli session printed %q", out)
	} else {
		t.Logf("script(1) not found: interactive redis-cli session skipped")
	}
	out = cli(t, l.Port, "COMMAND", "DOCS", "GET")
	sCheck(t, strings.Contains(out, "summary") && strings.Contains(out, "Get the value of a key"), "redis-cli COMMAND DOCS GET printed %q", out)
	// What interactive redis-cli sends at startup, compared with Redis.
	// (Redis lists commands in hash-table order, which differs between
	// processes: compared order-insensitively.)
	for _, q := range [][]interface{}{{"COMMAND", "DOCS"}, {"COMMAND"}, {"COMMAND", "INFO"}, {"COMMAND", "LIST", "FILTERBY", "PATTERN", "x*"}} {
		a, errA := l.Do(q...)
		bc := newClient(env.bare.Addr, 0)
		ctx, cancel := sCtx()
		b, errB := bc.Do(ctx, q...).Result()
		cancel()
		bc.Close()
		ca, cb := canonical(a), canonical(b)
		sCheck(t, errA == nil && errB == nil && ca == cb, "%v: redraft (%v) %s\n  redis-server (%v) %s", q, errA, showDiff(ca, cb), errB, showDiff(cb, ca))
	}
}

// ---------------------------------------------------------------------------
// 2b. Scripts and functions survive a leader change

func surfaceLeaderChange(t *testing.T, env *surfaceEnv) {
	l := env.leader(t)
	ctx, cancel := sCtx()
	defer cancel()
	c := sClient(t, l.Addr, 0)
	src := "return {KEYS[1], redis.call('INCR', KEYS[1])}"
	sha, err := c.ScriptLoad(ctx, src).Result()
	sMust(t, err == nil, "SCRIPT LOAD: %v", err)
	_, err = c.FunctionLoad(ctx, strings.Replace(surfaceLib, "surflib", "surflib2", 1)).Result()
	sMust(t, err == nil, "FUNCTION LOAD: %v", err)
	waitApplied(t, running(env.all)...)
	l.Kill9()
	rest := running(env.all)
	nl := waitLeader(t, rest...)
	t.Logf("leader %s killed; new leader %s", l, nl)
	cn := sClient(t, nl.Addr, 0)
	var v interface{}
	eventually(t, 20*time.Second, func() error {
		v, err = cn.EvalSha(ctx, sha, []string{"lc:ctr"}).Result()
		if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			return stopPolling(err)
		}
		return err
	})
	sCheck(t, fmt.Sprint(v) == "[lc:ctr 1]", "EVALSHA on the new leader = %v", v)
	for _, n := range rest {
		ex, err := sClient(t, n.Addr, 0).ScriptExists(ctx, sha).Result()
		sCheck(t, err == nil && fmt.Sprint(ex) == "[true]", "%s SCRIPT EXISTS after leader change = %v, %v", n, ex, err)
	}
	v, err = cn.FCall(ctx, "sset", []string{"lc:fn"}, "x").Result()
	sCheck(t, err == nil && v == "OK", "FCALL on the new leader = %v, %v", v, err)
	libs, err := cn.FunctionList(ctx, redis.FunctionListQuery{WithCode: true}).Result()
	sCheck(t, err == nil && len(libs) == 1 && libs[0].Code == strings.Replace(surfaceLib, "surflib", "surflib2", 1), "FUNCTION LIST on the new leader: %+v, %v", libs, err)
}

// ---------------------------------------------------------------------------
// 4b. A blocked client learns that its node lost leadership

func surfaceLeadershipLoss(t *testing.T, env *surfaceEnv) {
	live := running(env.all)
	if len(live) < 2 {
		t.Skipf("only %d node(s) running", len(live))
	}
	l := waitLeader(t, live...)
	rc := dialAddrRaw(t, l.Addr)
	before := appliedIndex(t, l)
	rc.send(t, "BLPOP", "ll:never", "0")
	waitProposed(t, l, before, "BLPOP ll:never 0")
	for _, n := range others(live, l) {
		n.Kill9()
	}
	st := time.Now()
	got := rc.reply(t, 30*time.Second)
	t.Logf("blocked BLPOP on %s answered %q %v after its peers died", l, got, time.Since(st).Round(time.Millisecond))
	sCheck(t, strings.HasPrefix(got, "-"), "blocked BLPOP 0 after the leader lost its quorum got %q, want an error", got)
	eventually(t, 20*time.Second, func() error {
		if s, err := l.Do("RAFTSTATE"); err != nil || s == "Leader" {
			return fmt.Errorf("%s RAFTSTATE = %v, %v", l, s, err)
		}
		return nil
	})
	surfaceChecks.Add(1)
}
