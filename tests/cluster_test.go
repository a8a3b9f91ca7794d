package tests

// A cluster as the README shows it: the walkthrough, redirects to the
// leader, membership changes, databases, no quorum, redis-benchmark.

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// populate writes a mix of types, TTLs and dbs on the leader n.
func populate(t *testing.T, n *Node, prefix string) {
	t.Helper()
	// The first write after an election may race the leader's no-op commit.
	n.DoEventually(10*time.Second, "SET", prefix+":str", "hello world")
	cmds := [][]interface{}{
		{"SET", prefix + ":ttl", "v", "EX", "1000"},
		{"SET", prefix + ":pttl", "v", "PX", "5000000"},
		{"RPUSH", prefix + ":list", "a", "b", "c"},
		{"LPUSH", prefix + ":list", "z"},
		{"HSET", prefix + ":hash", "f1", "v1", "f2", "v2"},
		{"EXPIRE", prefix + ":hash", "2000"},
		{"SADD", prefix + ":set", "x", "y", "z"},
		{"ZADD", prefix + ":zset", "1", "one", "2.5", "two"},
		{"INCR", prefix + ":counter"},
		{"INCRBY", prefix + ":counter", "41"},
		{"SET", prefix + ":binary", "\x00\x01\xff\r\n*3\r\n"},
		{"SET", prefix + ":gone", "x"},
		{"DEL", prefix + ":gone"},
	}
	for i := 0; i < 30; i++ {
		cmds = append(cmds, []interface{}{"SET", fmt.Sprintf("%s:k:%d", prefix, i), strconv.Itoa(i)})
	}
	for _, c := range cmds {
		n.MustDo(c...)
	}
	c3 := n.ClientDB(3)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if err := c3.Set(ctx, prefix+":db3", "three", 0).Err(); err != nil {
		t.Fatalf("%s: SET in db 3: %v", n, err)
	}
}

// checkPopulated verifies that a state dump holds what populate(prefix)
// wrote, so that comparing two dumps cannot pass vacuously (e.g. with TTLs
// silently dropped by the node).
func checkPopulated(t *testing.T, st map[string]keyState, prefix string) {
	t.Helper()
	now := time.Now().UnixMilli()
	want := map[string]struct {
		typ, val string
		ttl      time.Duration // 0 = no expiry
	}{
		"0:" + prefix + ":str":     {"string", `"hello world"`, 0},
		"0:" + prefix + ":ttl":     {"string", `"v"`, 1000 * time.Second},
		"0:" + prefix + ":pttl":    {"string", `"v"`, 5000 * time.Second},
		"0:" + prefix + ":list":    {"list", `["z","a","b","c"]`, 0},
		"0:" + prefix + ":hash":    {"hash", `"f1"="v1","f2"="v2"`, 2000 * time.Second},
		"0:" + prefix + ":set":     {"set", `["x","y","z"]`, 0},
		"0:" + prefix + ":zset":    {"zset", `"one"=1,"two"=2.5`, 0},
		"0:" + prefix + ":counter": {"string", `"42"`, 0},
		"0:" + prefix + ":binary":  {"string", strconv.Quote("\x00\x01\xff\r\n*3\r\n"), 0},
		"0:" + prefix + ":k:29":    {"string", `"29"`, 0},
		"3:" + prefix + ":db3":     {"string", `"three"`, 0},
	}
	for k, w := range want {
		got, ok := st[k]
		if !ok {
			t.Errorf("key %s missing", k)
			continue
		}
		if got.Type != w.typ || got.Value != w.val {
			t.Errorf("key %s = %s %s, want %s %s", k, got.Type, got.Value, w.typ, w.val)
		}
		switch {
		case w.ttl == 0 && got.PExpireTime != -1:
			t.Errorf("key %s has PEXPIRETIME %d, want none", k, got.PExpireTime)
		case w.ttl > 0 && (got.PExpireTime <= now || got.PExpireTime > now+w.ttl.Milliseconds()):
			t.Errorf("key %s PEXPIRETIME %d is not within (now, now+%v]", k, got.PExpireTime, w.ttl)
		}
	}
	if _, ok := st["0:"+prefix+":gone"]; ok {
		t.Errorf("deleted key %s:gone is present", prefix)
	}
}

// 1. The README walkthrough: bootstrap, SET/GET via redis-cli and go-redis,
// join with both -join forms, everyone sees the value, kill -9 the first
// node, a new leader emerges and writes continue.
func TestReadmeWalkthrough(t *testing.T) {
	n1 := startNode(t, nodeOpts{Name: "n1", Consistency: "low"})
	if l := waitLeader(t, n1); l != n1 {
		t.Fatalf("single bootstrapped node is not leader")
	}
	eventually(t, 10*time.Second, func() error {
		if out := cli(t, n1.Port, "SET", "mykey", "my value"); out != "OK" {
			return fmt.Errorf("redis-cli SET mykey: %q", out)
		}
		return nil
	})
	mustEqual(t, "redis-cli GET mykey", cli(t, n1.Port, "GET", "mykey"), "my value")
	mustEqual(t, "go-redis GET mykey", n1.MustDo("GET", "mykey"), "my value")

	n2 := startNode(t, nodeOpts{Name: "n2", Consistency: "low", Join: strconv.Itoa(n1.Port)}) // bare port form
	n3 := startNode(t, nodeOpts{Name: "n3", Consistency: "low", Join: n1.Addr})               // host:port form
	nodes := []*Node{n1, n2, n3}
	waitMembers(t, nodes...)
	if l := waitLeader(t, nodes...); l != n1 {
		t.Logf("note: leader moved to %s after joins", l)
	}
	for _, n := range nodes {
		n := n
		eventually(t, appliedTimeout, func() error {
			v, err := n.Do("GET", "mykey")
			if err != nil || v != "my value" {
				return fmt.Errorf("%s GET mykey = %#v, %v", n, v, err)
			}
			return nil
		})
		mustEqual(t, n.Name+" redis-cli GET mykey", cli(t, n.Port, "GET", "mykey"), "my value")
	}
	waitApplied(t, nodes...)

	n1.Kill9()
	l := waitLeader(t, n2, n3)
	t.Logf("new leader after kill -9 of n1: %s", l)
	l.DoEventually(10*time.Second, "SET", "mykey", "after failover")
	mustEqual(t, "redis-cli SET on new leader", cli(t, l.Port, "SET", "k2", "v2"), "OK")
	for _, n := range []*Node{n2, n3} {
		n := n
		eventually(t, appliedTimeout, func() error {
			v, err := n.Do("GET", "mykey")
			if err != nil || v != "after failover" {
				return fmt.Errorf("%s GET mykey = %#v, %v", n, v, err)
			}
			return nil
		})
	}
	waitApplied(t, n2, n3)
}

// 2. A write on a follower is answered with "TRY <leader addr>"; so is a
// read at the default (medium) consistency. Also sanity-checks the RAFT*
// introspection commands on every node.
func TestFollowerRedirect(t *testing.T) {
	nodes := startCluster(t, 3, nodeOpts{})
	l := waitLeader(t, nodes...)
	l.DoEventually(10*time.Second, "SET", "k", "v")
	want := "TRY " + l.Addr

	for _, f := range others(nodes, l) {
		_, err := f.Do("SET", "k", "from-follower")
		if err == nil || err.Error() != want {
			t.Errorf("%s: SET on follower: got err %v, want %q", f, err, want)
		}
		_, err = f.Do("INCR", "ctr")
		if err == nil || err.Error() != want {
			t.Errorf("%s: INCR on follower: got err %v, want %q", f, err, want)
		}
		_, err = f.Do("GET", "k")
		if err == nil || err.Error() != want {
			t.Errorf("%s: GET on follower at medium consistency: got err %v, want %q", f, err, want)
		}
		if out := cli(t, f.Port, "SET", "k", "x"); out != want {
			t.Errorf("%s: redis-cli SET on follower printed %q, want %q", f, out, want)
		}
		mustEqual(t, f.Name+" RAFTSTATE", f.MustDo("RAFTSTATE"), "Follower")
		mustEqual(t, f.Name+" RAFTLEADER", f.MustDo("RAFTLEADER"), l.Addr)
	}
	mustEqual(t, "leader GET k", l.MustDo("GET", "k"), "v")
	if _, err := l.Do("GET", "ctr"); err != nil {
		t.Errorf("leader GET ctr: %v", err)
	}

	for _, n := range nodes {
		st, err := raftStats(n)
		if err != nil {
			t.Fatalf("%s RAFTSTATS: %v", n, err)
		}
		for _, k := range []string{"applied_index", "commit_index", "state", "last_log_index"} {
			if _, ok := st[k]; !ok {
				t.Errorf("%s RAFTSTATS lacks %q: %v", n, k, st)
			}
		}
		wantState := "Follower"
		if n == l {
			wantState = "Leader"
		}
		if st["state"] != wantState {
			t.Errorf("%s RAFTSTATS state = %q, want %q", n, st["state"], wantState)
		}
		if _, err := strconv.ParseUint(st["applied_index"], 10, 64); err != nil {
			t.Errorf("%s RAFTSTATS applied_index %q not a number", n, st["applied_index"])
		}
	}
}

// 5. Membership: nodes join (the joiner asks the leader to RAFTADDPEER it),
// one is removed with RAFTREMOVEPEER, then re-added explicitly with
// RAFTADDPEER after its state was wiped; RAFTPEERS tracks every step.
func TestAddRemovePeer(t *testing.T) {
	n1 := startNode(t, nodeOpts{Name: "n1", Consistency: "low"})
	waitLeader(t, n1)
	waitMembers(t, n1)
	n1.DoEventually(10*time.Second, "SET", "x", "1")

	n2 := startNode(t, nodeOpts{Name: "n2", Consistency: "low", Join: n1.Addr})
	waitMembers(t, n1, n2)
	n3 := startNode(t, nodeOpts{Name: "n3", Consistency: "low", Join: n1.Addr})
	nodes := []*Node{n1, n2, n3}
	waitMembers(t, nodes...)
	l := waitLeader(t, nodes...)
	waitApplied(t, nodes...)

	victim := n3
	if victim == l {
		victim = n2
	}
	remaining := others(nodes, victim)
	mustEqual(t, "RAFTREMOVEPEER "+victim.Addr, l.MustDo("RAFTREMOVEPEER", victim.Addr), "OK")
	waitMembers(t, remaining...)
	l = waitLeader(t, remaining...)
	l.DoEventually(10*time.Second, "SET", "y", "2")
	waitApplied(t, remaining...)

	// Re-add the removed node with a fresh data dir.
	victim.Kill9()
	wipeDir(t, victim)
	mustEqual(t, "RAFTADDPEER "+victim.Addr, l.MustDo("RAFTADDPEER", victim.Addr), "OK")
	eventually(t, leaderTimeout, func() error {
		got, err := raftPeers(l)
		if err != nil {
			return err
		}
		if len(got) != 3 || !contains(got, victim.Addr) {
			return fmt.Errorf("leader RAFTPEERS = %v, want 3 members incl. %s", got, victim.Addr)
		}
		return nil
	})
	victim.Restart()
	waitMembers(t, nodes...)
	waitLeader(t, nodes...)
	waitApplied(t, nodes...)
	mustEqual(t, victim.Name+" GET y", victim.MustDo("GET", "y"), "2")
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// 6. SELECT isolation: connections in db 0 and db 5 see their own value of
// the same key, on the leader and (replicated) on followers.
func TestSelectIsolation(t *testing.T) {
	nodes := startCluster(t, 3, nodeOpts{Consistency: "low"})
	l := waitLeader(t, nodes...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	c0, c5 := l.ClientDB(0), l.ClientDB(5)
	l.DoEventually(10*time.Second, "SET", "warmup", "1")
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	check("db0 SET", c0.Set(ctx, "shared", "zero", 0).Err())
	check("db5 SET", c5.Set(ctx, "shared", "five", 0).Err())
	check("db5 SET only5", c5.Set(ctx, "only5", "x", 0).Err())
	check("db0 RPUSH", c0.RPush(ctx, "list", "a0").Err())
	check("db5 RPUSH", c5.RPush(ctx, "list", "a5").Err())
	mustEqual(t, "db0 GET shared", c0.Get(ctx, "shared").Val(), "zero")
	mustEqual(t, "db5 GET shared", c5.Get(ctx, "shared").Val(), "five")
	if err := c0.Get(ctx, "only5").Err(); err != redis.Nil {
		t.Errorf("db0 GET only5: want nil reply, got %v", err)
	}

	// One connection switching dbs with SELECT.
	conn := l.Client().Conn()
	defer conn.Close()
	check("SELECT 5", conn.Select(ctx, 5).Err())
	mustEqual(t, "conn db5 GET shared", conn.Get(ctx, "shared").Val(), "five")
	check("conn db5 SET viaconn", conn.Set(ctx, "viaconn", "in5", 0).Err())
	check("SELECT 0", conn.Select(ctx, 0).Err())
	mustEqual(t, "conn db0 GET shared", conn.Get(ctx, "shared").Val(), "zero")
	if err := conn.Get(ctx, "viaconn").Err(); err != redis.Nil {
		t.Errorf("conn db0 GET viaconn: want nil reply, got %v", err)
	}
	// The pooled db-0 client must not have been affected by conn's SELECTs.
	mustEqual(t, "db0 client GET shared", c0.Get(ctx, "shared").Val(), "zero")

	// redis-cli -n, on the leader and on every follower once replicated.
	waitApplied(t, nodes...)
	for _, n := range nodes {
		mustEqual(t, n.Name+" redis-cli -n 0 GET shared", cli(t, n.Port, "-n", "0", "GET", "shared"), "zero")
		mustEqual(t, n.Name+" redis-cli -n 5 GET shared", cli(t, n.Port, "-n", "5", "GET", "shared"), "five")
		mustEqual(t, n.Name+" redis-cli -n 5 GET viaconn", cli(t, n.Port, "-n", "5", "GET", "viaconn"), "in5")
		mustEqual(t, n.Name+" redis-cli -n 0 GET viaconn", cli(t, n.Port, "-n", "0", "GET", "viaconn"), "")
		mustEqual(t, n.Name+" redis-cli -n 5 LRANGE list", cli(t, n.Port, "-n", "5", "LRANGE", "list", "0", "-1"), "a5")
		mustEqual(t, n.Name+" redis-cli -n 0 DBSIZE", cli(t, n.Port, "-n", "0", "DBSIZE"), "3")
		mustEqual(t, n.Name+" redis-cli -n 5 DBSIZE", cli(t, n.Port, "-n", "5", "DBSIZE"), "4")
	}
	sameStateAs(t, l, others(nodes, l)...)
}

// 7. redis-benchmark's default test list against the leader of 3 nodes.
func TestRedisBenchmark(t *testing.T) {
	nodes := startCluster(t, 3, nodeOpts{})
	l := waitLeader(t, nodes...)
	l.DoEventually(10*time.Second, "SET", "warmup", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "redis-benchmark", "-h", "127.0.0.1", "-p", strconv.Itoa(l.Port), "-q", "-n", "2000")
	out, err := cmd.CombinedOutput()
	// -q output uses \r progress lines; keep only the final result lines.
	var lines []string
	for _, ln := range strings.Split(strings.ReplaceAll(string(out), "\r", "\n"), "\n") {
		if strings.Contains(ln, "requests per second") || strings.Contains(strings.ToLower(ln), "err") {
			lines = append(lines, strings.TrimSpace(ln))
		}
	}
	t.Logf("redis-benchmark took %v:\n%s", time.Since(start).Round(time.Millisecond), strings.Join(lines, "\n"))
	if ctx.Err() != nil {
		t.Fatalf("redis-benchmark did not finish within 120s; output tail: %s", tail(string(out), 2000))
	}
	if err != nil {
		t.Fatalf("redis-benchmark failed: %v; output tail: %s", err, tail(string(out), 2000))
	}
	if m := regexp.MustCompile(`(Error|ERR |WRONGTYPE|TRY |CLUSTERDOWN)[^\n\r]*`).FindString(string(out)); m != "" {
		t.Errorf("redis-benchmark output contains an error: %q", m)
	}
	if got := strings.Count(string(out), "requests per second"); got < 10 {
		t.Errorf("only %d benchmark results reported", got)
	}
	waitApplied(t, nodes...)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// With 2 of 3 nodes dead there is no leader: writes answer CLUSTERDOWN and
// RAFTLEADER is an error. Bringing one node back restores service.
func TestNoQuorumClusterdown(t *testing.T) {
	nodes := startCluster(t, 3, nodeOpts{})
	l := waitLeader(t, nodes...)
	l.DoEventually(10*time.Second, "SET", "k", "v")
	fs := others(nodes, l)
	fs[0].Kill9()
	fs[1].Kill9()

	eventually(t, 15*time.Second, func() error {
		_, err := l.Do("SET", "k", "v2")
		if err == nil || !strings.HasPrefix(err.Error(), "CLUSTERDOWN") {
			return fmt.Errorf("SET without quorum: got err %v, want CLUSTERDOWN...", err)
		}
		return nil
	})
	if v, err := l.Do("RAFTLEADER"); err == nil {
		t.Errorf("RAFTLEADER without quorum: got %#v, want an error", v)
	}
	if st := l.MustDo("RAFTSTATE"); st == "Leader" {
		t.Errorf("RAFTSTATE without quorum = Leader")
	}

	fs[0].Restart()
	nl := waitLeader(t, l, fs[0])
	nl.DoEventually(10*time.Second, "SET", "k", "v3")
	waitApplied(t, l, fs[0])
}
