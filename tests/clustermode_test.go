package tests

// --cluster-mode with real Redis Cluster clients: a 3-node group presents
// itself as one shard; redis-cli -c, go-redis's ClusterClient and redis-py's
// RedisCluster find the leader by themselves, through MOVED and CLUSTER
// SLOTS, from any node, also across a kill -9 of the leader; READONLY
// clients read on the followers.

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// clusterModeEnv is a 3-node group started with --cluster-mode.
type clusterModeEnv struct {
	nodes []*Node
}

func TestClusterMode(t *testing.T) {
	e := &clusterModeEnv{nodes: startCluster(t, 3, nodeOpts{Args: []string{"--cluster-mode"}})}
	t.Run("Topology", e.topology)
	t.Run("FollowerRedirects", e.followerRedirects)
	t.Run("RedisCliFollowsMoved", e.redisCliFollowsMoved)
	t.Run("GoRedisDefaultOptions", e.goRedisDefaultOptions)
	t.Run("ReadOnlyReadsOnFollowers", e.readOnlyReadsOnFollowers)
	t.Run("GoRedisThroughLeaderKill", e.goRedisThroughLeaderKill)
	t.Run("RedisPyThroughLeaderKill", e.redisPyThroughLeaderKill)
	t.Run("ClusterDownWithoutQuorum", e.clusterDownWithoutQuorum)
}

// nodeID is the node ID redraft derives from a member's Raft ID.
func nodeID(addr string) string {
	sum := sha1.Sum([]byte(addr))
	return hex.EncodeToString(sum[:])
}

// addrs are the nodes' addresses.
func addrs(nodes []*Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Addr)
	}
	return out
}

// newClusterClient is a go-redis ClusterClient of the nodes (RESP2, no
// identity handshake), with the options set.
func newClusterClient(nodes []*Node, set func(*redis.ClusterOptions)) *redis.ClusterClient {
	o := &redis.ClusterOptions{
		Addrs: addrs(nodes), Protocol: 2, DisableIdentity: true,
		DialTimeout: time.Second, ReadTimeout: cmdTimeout, WriteTimeout: cmdTimeout,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if set != nil {
		set(o)
	}
	return redis.NewClusterClient(o)
}

// wantTopology checks that n describes the shard with leader as master and
// the other members as its replicas, in CLUSTER SLOTS, SHARDS, NODES, INFO
// and MYID.
func wantTopology(n, leader *Node, members []*Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	c := n.Client()
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return fmt.Errorf("%s CLUSTER SLOTS: %w", n, err)
	}
	want := []string{leader.Addr + "/" + nodeID(leader.Addr)}
	var replicas []string
	for _, m := range others(members, leader) {
		replicas = append(replicas, m.Addr+"/"+nodeID(m.Addr))
	}
	sort.Strings(replicas)
	want = append(want, replicas...)
	if len(slots) != 1 || slots[0].Start != 0 || slots[0].End != 16383 {
		return fmt.Errorf("%s CLUSTER SLOTS = %+v, want one range 0-16383", n, slots)
	}
	var got []string
	for _, sn := range slots[0].Nodes {
		got = append(got, sn.Addr+"/"+sn.ID)
	}
	sort.Strings(got[1:])
	if strings.Join(got, " ") != strings.Join(want, " ") {
		return fmt.Errorf("%s CLUSTER SLOTS nodes = %v, want %v", n, got, want)
	}
	shards, err := c.ClusterShards(ctx).Result()
	if err != nil || len(shards) != 1 || len(shards[0].Nodes) != len(members) || shards[0].Nodes[0].Role != "master" ||
		shards[0].Nodes[0].Endpoint != "127.0.0.1" || shards[0].Nodes[0].Port != int64(leader.Port) || shards[0].Nodes[1].Role != "replica" {
		return fmt.Errorf("%s CLUSTER SHARDS = %+v, %v", n, shards, err)
	}
	nodesText, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSuffix(nodesText, "\n"), "\n")
	if len(lines) != len(members) {
		return fmt.Errorf("%s CLUSTER NODES has %d lines: %q", n, len(lines), nodesText)
	}
	for _, m := range members {
		flags, master, slotsText := "master", "-", " 0-16383"
		if m != leader {
			flags, master, slotsText = "slave", nodeID(leader.Addr), ""
		}
		if m == n {
			flags = "myself," + flags
		}
		re := regexp.MustCompile("(?m)^" + nodeID(m.Addr) + " " + regexp.QuoteMeta(fmt.Sprintf("%s@%d %s %s", m.Addr, m.Port, flags, master)) +
			` 0 \d+ \d+ connected` + slotsText + "$")
		if !re.MatchString(nodesText) {
			return fmt.Errorf("%s CLUSTER NODES: no line for %s like %s in %q", n, m, re, nodesText)
		}
	}
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil || !strings.Contains(info, "cluster_state:ok\r\n") || !strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d\r\n", len(members))) {
		return fmt.Errorf("%s CLUSTER INFO = %q, %v", n, info, err)
	}
	if id, err := c.Do(ctx, "CLUSTER", "MYID").Result(); err != nil || id != nodeID(n.Addr) {
		return fmt.Errorf("%s CLUSTER MYID = %v, %v, want %s", n, id, err, nodeID(n.Addr))
	}
	return nil
}

// topology: every node shows the same shard: the leader as master (node
// IDs from the Raft IDs), the followers as its replicas.
func (e *clusterModeEnv) topology(t *testing.T) {
	leader := waitLeader(t, e.nodes...)
	for _, n := range e.nodes {
		if err := wantTopology(n, leader, e.nodes); err != nil {
			t.Error(err)
		}
	}
}

// followerRedirects: a follower answers what only the leader may serve
// with -MOVED (the slot of the first key, 0 without keys), serves reads
// after READONLY, refuses keys in different slots like the leader.
func (e *clusterModeEnv) followerRedirects(t *testing.T) {
	leader := waitLeader(t, e.nodes...)
	leader.DoEventually(10*time.Second, "SET", "foo", "bar")
	waitApplied(t, e.nodes...)
	f := others(e.nodes, leader)[0]
	moved := func(slot int) string { return fmt.Sprintf("-MOVED %d %s", slot, leader.Addr) }
	c := dialRaw(t, f)
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"SET", "foo", "x"}, moved(12182)},
		{[]string{"GET", "foo"}, moved(12182)}, // --consistency medium: the leader reads
		{[]string{"TTL", "foo"}, moved(12182)},
		{[]string{"INCR", "{user1000}.n"}, moved(3443)},
		{[]string{"PUBLISH", "ch", "m"}, moved(0)}, // no key: slot 0
		{[]string{"DBSIZE"}, moved(0)},
		{[]string{"WATCH", "foo"}, moved(12182)},
		{[]string{"MSET", "a", "1", "b", "2"}, "-CROSSSLOT Keys in request don't hash to the same slot"},
		{[]string{"MULTI"}, "+OK"},
		{[]string{"SET", "foo", "y"}, moved(12182)},
		{[]string{"EXEC"}, "-EXECABORT Transaction discarded because of previous errors."},
		{[]string{"SELECT", "1"}, "-ERR SELECT is not allowed in cluster mode"},
		{[]string{"CLUSTER", "KEYSLOT", "foo"}, ":12182"},
		{[]string{"READONLY"}, "+OK"},
		{[]string{"GET", "foo"}, "$bar"},
		{[]string{"TTL", "foo"}, ":-1"},
		{[]string{"SET", "foo", "x"}, moved(12182)},
		{[]string{"READWRITE"}, "+OK"},
		{[]string{"GET", "foo"}, moved(12182)},
		{[]string{"READONLY"}, "+OK"},
		{[]string{"RESET"}, "+RESET"}, // RESET drops READONLY, as in Redis
		{[]string{"GET", "foo"}, moved(12182)},
	} {
		c.send(t, step.args...)
		if got := c.reply(t, cmdTimeout); got != step.want {
			t.Errorf("%s %q: got %q, want %q", f, step.args, got, step.want)
		}
	}
	if _, err := leader.Do("MSET", "a", "1", "b", "2"); err == nil || err.Error() != "CROSSSLOT Keys in request don't hash to the same slot" {
		t.Errorf("leader MSET across slots: %v", err)
	}
}

// redisCliFollowsMoved: redis-cli -c writes and reads through any node,
// following -MOVED from a follower to the leader; without -c it shows the
// redirect.
func (e *clusterModeEnv) redisCliFollowsMoved(t *testing.T) {
	leader := waitLeader(t, e.nodes...)
	cliThroughEvery(t, "cli", e.nodes, leader)
	f := others(e.nodes, leader)[1]
	mustEqual(t, "redis-cli without -c", cli(t, f.Port, "SET", "cli:key", "x"), fmt.Sprintf("MOVED %v %s", leader.MustDo("CLUSTER", "KEYSLOT", "cli:key"), leader.Addr))
}

// cliThroughEvery writes prefix:<node> with redis-cli -c sent to each of
// nodes and reads it back the same way; leader must hold every value.
func cliThroughEvery(t *testing.T, prefix string, nodes []*Node, leader *Node) {
	t.Helper()
	for _, n := range nodes {
		key := prefix + ":" + n.Name
		mustEqual(t, "redis-cli -c SET via "+n.String(), cli(t, n.Port, "-c", "SET", key, "via-"+n.Name), "OK")
		mustEqual(t, "redis-cli -c GET via "+n.String(), cli(t, n.Port, "-c", "GET", key), "via-"+n.Name)
		mustEqual(t, "GET on the leader", leader.MustDo("GET", key), "via-"+n.Name)
	}
}

// goRedisDefaultOptions: the README's go-redis example, a ClusterClient
// with default options (its own protocol handshake) but a 1 s topology
// reload, given one follower's address: it discovers the shard, writes
// (on the leader) and reads back, also a pipeline and a transaction.
func (e *clusterModeEnv) goRedisDefaultOptions(t *testing.T) {
	leader := waitLeader(t, e.nodes...)
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                      []string{others(e.nodes, leader)[0].Addr},
		ClusterStateReloadInterval: time.Second,
	})
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*cmdTimeout)
	defer cancel()
	if err := cc.Set(ctx, "defaults:k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if v, err := cc.Get(ctx, "defaults:k").Result(); err != nil || v != "v" {
		t.Fatalf("GET: %q, %v", v, err)
	}
	if _, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "defaults:{n}a")
		p.Incr(ctx, "defaults:b")
		return nil
	}); err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	if _, err := cc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "defaults:{n}a")
		p.Incr(ctx, "defaults:{n}b")
		return nil
	}); err != nil {
		t.Fatalf("transaction: %v", err)
	}
	mustEqual(t, "counters on the leader", fmt.Sprint(leader.MustDo("MGET", "defaults:{n}a", "defaults:{n}b")), "[2 1]")
	mustEqual(t, "counter on the leader", leader.MustDo("GET", "defaults:b"), "1")
}

// getCalls is how many GETs n's child has run (INFO commandstats): reads
// served on that node (the log never runs GET).
func getCalls(t *testing.T, n *Node) int {
	t.Helper()
	v := n.MustDo("INFO", "commandstats")
	m := regexp.MustCompile(`cmdstat_get:calls=(\d+)`).FindStringSubmatch(fmt.Sprint(v))
	if m == nil {
		return 0
	}
	c, _ := strconv.Atoi(m[1])
	return c
}

// readOnlyReadsOnFollowers: go-redis with ReadOnly reads on the replicas
// only, with RouteRandomly on every member, and redis-py with
// read_from_replicas on every member; the followers' children count the
// GETs they served.
func (e *clusterModeEnv) readOnlyReadsOnFollowers(t *testing.T) {
	leader := waitLeader(t, e.nodes...)
	followers := others(e.nodes, leader)
	const keys = 60
	for i := 0; i < keys; i++ {
		leader.MustDo("SET", fmt.Sprintf("ro:%d", i), strconv.Itoa(i))
	}
	waitApplied(t, e.nodes...)
	count := func() []int {
		var out []int
		for _, n := range e.nodes {
			out = append(out, getCalls(t, n))
		}
		return out
	}
	readAll := func(what string, read func(ctx context.Context, key string) (string, error)) []int {
		before := count()
		for round := 0; round < 3; round++ {
			for i := 0; i < keys; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
				v, err := read(ctx, fmt.Sprintf("ro:%d", i))
				cancel()
				if err != nil || v != strconv.Itoa(i) {
					t.Fatalf("%s: GET ro:%d = %q, %v", what, i, v, err)
				}
			}
		}
		after := count()
		served := make([]int, len(after))
		for i := range after {
			served[i] = after[i] - before[i]
		}
		t.Logf("%s: GETs served by %v: %v (leader %s)", what, addrs(e.nodes), served, leader)
		return served
	}
	servedBy := func(served []int, n *Node) int {
		for i, m := range e.nodes {
			if m == n {
				return served[i]
			}
		}
		return 0
	}

	replicasOnly := newClusterClient(e.nodes, func(o *redis.ClusterOptions) { o.ReadOnly = true })
	defer replicasOnly.Close()
	served := readAll("go-redis ReadOnly", func(ctx context.Context, k string) (string, error) { return replicasOnly.Get(ctx, k).Result() })
	if servedBy(served, leader) != 0 || servedBy(served, followers[0])+servedBy(served, followers[1]) != 3*keys {
		t.Errorf("go-redis ReadOnly: GETs served %v; want all %d on the followers", served, 3*keys)
	}

	random := newClusterClient(e.nodes, func(o *redis.ClusterOptions) { o.ReadOnly, o.RouteRandomly = true, true })
	defer random.Close()
	served = readAll("go-redis ReadOnly+RouteRandomly", func(ctx context.Context, k string) (string, error) { return random.Get(ctx, k).Result() })
	for _, f := range followers {
		if servedBy(served, f) == 0 {
			t.Errorf("go-redis RouteRandomly: follower %s served no GET (%v)", f, served)
		}
	}

	before := count()
	out := pyRedis(t, pyReadFromReplicas, strings.Join(addrs(e.nodes), ","), strconv.Itoa(keys))
	mustEqual(t, "redis-py read_from_replicas", out, "ok")
	after := count()
	for i, n := range e.nodes {
		t.Logf("redis-py read_from_replicas: %s served %d GETs", n, after[i]-before[i])
		if n != leader && after[i] == before[i] {
			t.Errorf("redis-py read_from_replicas: follower %s served no GET", n)
		}
	}
}

// pyReadFromReplicas reads ro:0..n-1 three times with read_from_replicas.
const pyReadFromReplicas = `
import sys
from redis.cluster import RedisCluster, ClusterNode
nodes = [ClusterNode(a.split(":")[0], int(a.split(":")[1])) for a in sys.argv[1].split(",")]
rc = RedisCluster(startup_nodes=nodes, read_from_replicas=True)
for _ in range(3):
    for i in range(int(sys.argv[2])):
        v = rc.get("ro:%d" % i)
        if v != str(i).encode():
            print("ro:%d = %r" % (i, v)); sys.exit(1)
print("ok")
`

// failoverRun is a write loop's record across a leader kill. The loop
// writes <who>:i = i for i = 0, 1, … one at a time.
type failoverRun struct {
	mu         sync.Mutex
	acked      []int          // writes the client acknowledged, by index
	errs       map[string]int // errors the application saw, by message
	killedAt   time.Time      // when the killed leader had exited
	firstOK    time.Time      // first acknowledgement of a write started after the kill
	afterKill  int            // acknowledged writes started after the kill
	firstErr   time.Time      // first and last error seen by the application
	lastErr    time.Time
	errsBefore int // errors before the kill (there should be none)
}

// ack records that write i, started at started, was acknowledged.
func (r *failoverRun) ack(i int, started time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acked = append(r.acked, i)
	if !r.killedAt.IsZero() && started.After(r.killedAt) {
		r.afterKill++
		if r.firstOK.IsZero() {
			r.firstOK = time.Now()
		}
	}
}

// fail records an error the application saw.
func (r *failoverRun) fail(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.errs == nil {
		r.errs = map[string]int{}
	}
	r.errs[msg]++
	now := time.Now()
	if r.killedAt.IsZero() {
		r.errsBefore++
	}
	if r.firstErr.IsZero() {
		r.firstErr = now
	}
	r.lastErr = now
}

// killed notes that the leader has just been killed.
func (r *failoverRun) killed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.killedAt = time.Now()
}

// counts is the number of acknowledged writes, and of those started after
// the kill.
func (r *failoverRun) counts() (all, afterKill int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.acked), r.afterKill
}

// report logs what the client went through.
func (r *failoverRun) report(t *testing.T, who string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Logf("%s: %d writes acknowledged, %d of them started after the kill; first of those acknowledged %v after the kill; errors seen by the application: %v",
		who, len(r.acked), r.afterKill, r.firstOK.Sub(r.killedAt).Round(time.Millisecond), r.errs)
	if len(r.errs) > 0 {
		t.Logf("%s: errors from %v to %v after the kill", who, r.firstErr.Sub(r.killedAt).Round(time.Millisecond), r.lastErr.Sub(r.killedAt).Round(time.Millisecond))
	}
	if r.errsBefore > 0 {
		t.Errorf("%s: %d errors before the leader was killed", who, r.errsBefore)
	}
}

// throughLeaderKill waits for the loop to acknowledge a few writes, kills
// the leader with -9, checks that the survivors' topology names the new
// leader at once, waits until 20 writes started after the kill are
// acknowledged (the client found the new leader by itself), stops the loop
// (stop), restarts the old leader and checks that every acknowledged write
// reads back, from every node.
func (e *clusterModeEnv) throughLeaderKill(t *testing.T, who string, r *failoverRun, stop func()) {
	leader := waitLeader(t, e.nodes...)
	eventually(t, 20*time.Second, func() error {
		if n, _ := r.counts(); n < 20 {
			return fmt.Errorf("%s: %d writes acknowledged before the kill", who, n)
		}
		return nil
	})
	leader.Kill9()
	r.killed()
	next := waitLeader(t, others(e.nodes, leader)...)
	t.Logf("%s: killed leader %s; new leader %s", who, leader, next)
	for _, n := range others(e.nodes, leader) {
		if err := poll(5*time.Second, func() error { return wantTopology(n, next, e.nodes) }); err != nil {
			t.Error(err)
		}
	}
	cliThroughEvery(t, who+"-cli", others(e.nodes, leader), next)
	eventually(t, 30*time.Second, func() error {
		if _, after := r.counts(); after < 20 {
			return fmt.Errorf("%s: %d writes started after the kill acknowledged, want 20", who, after)
		}
		return nil
	})
	stop()
	r.report(t, who)
	leader.Restart()
	waitMembers(t, e.nodes...)
	waitLeader(t, e.nodes...)
	waitApplied(t, e.nodes...)

	// Every node holds the same data (waitApplied compared their digests
	// at the same applied index); read it through the leader.
	cc := newClusterClient(e.nodes, nil)
	defer cc.Close()
	r.mu.Lock()
	acked := append([]int(nil), r.acked...)
	r.mu.Unlock()
	lost := 0
	for _, i := range acked {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		v, err := cc.Get(ctx, fmt.Sprintf("%s:%d", who, i)).Result()
		cancel()
		if err != nil || v != strconv.Itoa(i) {
			lost++
			if lost < 5 {
				t.Errorf("%s: acknowledged write %d reads back %q, %v", who, i, v, err)
			}
		}
	}
	if lost > 0 {
		t.Errorf("%s: %d of %d acknowledged writes lost", who, lost, len(acked))
	}
}

// goRedisThroughLeaderKill: a go-redis ClusterClient writes in a loop while
// the leader is killed with -9; after its retries it carries on against the
// new leader and no acknowledged write is lost.
//
// go-redis sends a slot's writes to the master its last CLUSTER SLOTS
// named, and reloads the topology after a MOVED or every
// ClusterStateReloadInterval (60 s by default), not after a connection
// error: a killed master never answers MOVED, so without a shorter interval
// it keeps dialing the dead node for up to a minute (the same happens with
// Redis Cluster). The README recommends the 1 s used here.
func (e *clusterModeEnv) goRedisThroughLeaderKill(t *testing.T) {
	cc := newClusterClient(e.nodes, func(o *redis.ClusterOptions) { o.ClusterStateReloadInterval = time.Second })
	defer cc.Close()
	r := &failoverRun{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			started := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
			err := cc.Set(ctx, fmt.Sprintf("goredis:%d", i), strconv.Itoa(i), 0).Err()
			cancel()
			if err != nil {
				r.fail(err.Error())
				time.Sleep(10 * time.Millisecond) // an application's pause before its next request
				continue
			}
			r.ack(i, started)
		}
	}()
	e.throughLeaderKill(t, "goredis", r, func() { close(done); wg.Wait() })
}

// pyWriteLoop writes redispy:i = i with RedisCluster until the stop file
// appears, printing "ack i <start time>" or "err i <exception>" for each
// write.
//
// Debian 12's python3-redis (4.3.4) cannot rebuild its topology once a node
// it knew has died, whatever the server: NodesManager.initialize deep-copies
// the connection options, which hold a bound method of the RedisCluster
// object, and that object holds a lock, so the copy fails with "cannot pickle
// '_thread.lock' object" (redis/redis-py#2480, seen with Redis Cluster).
// The one line after the constructor makes that option copyable (a plain
// function is copied by reference) without changing what it does.
const pyWriteLoop = `
import logging, os, sys, time
from redis.cluster import RedisCluster, ClusterNode
logging.disable(logging.CRITICAL)  # redis-py logs every retried error with its traceback
nodes = [ClusterNode(a.split(":")[0], int(a.split(":")[1])) for a in sys.argv[1].split(",")]
rc = RedisCluster(startup_nodes=nodes)
kw = rc.nodes_manager.connection_kwargs
kw["redis_connect_func"] = lambda conn, f=kw["redis_connect_func"]: f(conn)
i = 0
while not os.path.exists(sys.argv[2]):
    started = time.time()
    try:
        rc.set("redispy:%d" % i, str(i))
        print("ack %d %.6f" % (i, started), flush=True)
    except Exception as e:
        print("err %d %s: %s" % (i, type(e).__name__, str(e).replace("\n", " ")), flush=True)
        time.sleep(0.01)
    i += 1
print("done", flush=True)
`

// redisPyThroughLeaderKill: the same with redis-py's RedisCluster.
func (e *clusterModeEnv) redisPyThroughLeaderKill(t *testing.T) {
	stopFile := filepath.Join(t.TempDir(), "stop")
	cmd := exec.Command("/usr/bin/python3", "-c", pyWriteLoop, strings.Join(addrs(e.nodes), ","), stopFile)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-py (python3-redis; .ci/run installs it): %v", err)
	}
	defer cmd.Process.Kill() // only the process this test started
	r := &failoverRun{}
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.SplitN(sc.Text(), " ", 3)
			switch {
			case f[0] == "ack" && len(f) == 3:
				i, _ := strconv.Atoi(f[1])
				sec, _ := strconv.ParseFloat(f[2], 64)
				r.ack(i, time.UnixMicro(int64(sec*1e6)))
			case f[0] == "err" && len(f) == 3:
				r.fail(f[2])
			case f[0] != "done":
				r.fail("output: " + sc.Text())
			}
		}
	}()
	e.throughLeaderKill(t, "redispy", r, func() {
		if err := os.WriteFile(stopFile, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		select {
		case <-lines:
		case <-time.After(30 * time.Second):
			t.Fatal("the redis-py loop did not stop")
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("redis-py loop: %v\n%s", err, stderr.String())
		}
	})
}

// clusterDownWithoutQuorum: with two of three nodes frozen, the third knows
// no leader: a write gets -CLUSTERDOWN once the election wait is over,
// CLUSTER INFO says fail, and CLUSTER SLOTS still names the last leader.
func (e *clusterModeEnv) clusterDownWithoutQuorum(t *testing.T) {
	leader := waitLeader(t, e.nodes...)
	f := others(e.nodes, leader)[0]
	frozen := others(e.nodes, f)
	for _, n := range frozen {
		n.Pause()
	}
	defer func() {
		for _, n := range frozen {
			n.Resume()
		}
		waitLeader(t, e.nodes...)
	}()
	eventually(t, 20*time.Second, func() error {
		if l, err := f.Do("RAFTLEADER"); err == nil {
			return fmt.Errorf("%s still knows leader %v", f, l)
		}
		return nil
	})
	c := dialRaw(t, f)
	c.send(t, "SET", "down", "1")
	mustEqual(t, "write without a leader", c.reply(t, 10*time.Second), "-CLUSTERDOWN The cluster is down")
	info := fmt.Sprint(f.MustDo("CLUSTER", "INFO"))
	if !strings.Contains(info, "cluster_state:fail\r\n") {
		t.Errorf("CLUSTER INFO without a leader: %q", info)
	}
	c.send(t, "GET", "down")
	mustEqual(t, "read without a leader", c.reply(t, 10*time.Second), "-CLUSTERDOWN The cluster is down")
	c.send(t, "CLUSTER", "SLOTS")
	master := fmt.Sprintf("*1 *5 :0 :16383 *4 $127.0.0.1 :%d $%s *0 ", leader.Port, nodeID(leader.Addr))
	if got := c.reply(t, cmdTimeout); !strings.HasPrefix(got, master) {
		t.Errorf("CLUSTER SLOTS without a leader: %q, want the last leader %s as master (%q)", got, leader, master)
	}
}
