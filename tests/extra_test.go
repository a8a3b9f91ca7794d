package tests

// Tests beyond the core list: quorum loss, replica determinism (random
// commands, expiry times), snapshot installation on a joining node, and a
// frozen (SIGSTOP) leader coming back.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

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

// Replicas must hold identical data, including for commands whose effect is
// random or time-relative (SPOP, XADD *, EXPIRE/EX/SETEX/GETEX, INCRBYFLOAT):
// expiry times are compared to the millisecond, on live replicas and after
// a follower rebuilt its state from the log on restart.
func TestReplicasIdentical(t *testing.T) {
	nodes := startCluster(t, 3, nodeOpts{Consistency: "low"})
	l := waitLeader(t, nodes...)
	l.DoEventually(10*time.Second, "SET", "warm", "1")
	cmds := [][]interface{}{
		{"SET", "e1", "v", "EX", "1000"},
		{"SETEX", "e2", "500", "v"},
		{"SET", "e3", "v"}, {"EXPIRE", "e3", "3000"},
		{"SET", "e4", "v"}, {"PEXPIRE", "e4", "4000000"},
		{"SET", "e5", "v"}, {"GETEX", "e5", "EX", "700"},
		{"SET", "e1", "v2", "KEEPTTL"},
		{"HSET", "h", "f", "1"}, {"HINCRBYFLOAT", "h", "f", "1.5"},
		{"INCRBYFLOAT", "fl", "0.1"},
		{"XADD", "st", "*", "f", "v"},
		{"XADD", "st", "*", "f", "w"},
	}
	members := []interface{}{"SADD", "s"}
	for i := 0; i < 40; i++ {
		members = append(members, "m"+strconv.Itoa(i))
	}
	cmds = append(cmds, members, []interface{}{"SPOP", "s", "7"}, []interface{}{"SPOP", "s"})
	cmds = append(cmds, []interface{}{"SADD", "s2", "a", "b", "c", "d", "e", "f"}, []interface{}{"SMOVE", "s2", "s3", "a"})
	for _, c := range cmds {
		l.MustDo(c...)
	}
	sameAsLeader := func() {
		t.Helper()
		eventually(t, appliedTimeout, func() error {
			want, err := readState(l)
			if err != nil {
				return err
			}
			for _, f := range others(nodes, l) {
				got, err := readState(f)
				if err != nil {
					return fmt.Errorf("%s: %v", f, err)
				}
				if err := diffStates(want, got, 0); err != nil {
					return fmt.Errorf("%s differs from leader %s: %v", f, l, err)
				}
			}
			return nil
		})
		waitApplied(t, nodes...)
	}
	sameAsLeader()

	f := others(nodes, l)[0]
	f.Kill9()
	f.Restart()
	waitLeader(t, nodes...)
	sameAsLeader()
}

// A node joining after the leader compacted its log must be brought up to
// date by snapshot installation, then keep following the log.
func TestSnapshotInstallOnJoin(t *testing.T) {
	// bolt, because raft-wal only drops whole segments when compacting, so
	// with the default backend the joiner could still be fed from the log.
	args := []string{"-trailing-logs", "5", "-backend", "bolt"}
	n1 := startNode(t, nodeOpts{Name: "n1", Consistency: "low", Args: args})
	waitLeader(t, n1)
	n1.DoEventually(10*time.Second, "SET", "k:0", "0")
	for i := 1; i < 300; i++ {
		n1.MustDo("SET", fmt.Sprintf("k:%d", i), strconv.Itoa(i))
	}
	n1.MustDo("SET", "ttl", "v", "EX", "1000")
	n1.MustDo("RPUSH", "list", "a", "b")
	mustEqual(t, "RAFTSNAPSHOT", n1.MustDo("RAFTSNAPSHOT"), "OK")
	if st, err := raftStats(n1); err == nil {
		t.Logf("n1 stats after snapshot: last_log_index=%s applied_index=%s last_snapshot_index=%s",
			st["last_log_index"], st["applied_index"], st["last_snapshot_index"])
	}
	n1.MustDo("SET", "after-snapshot", "1")

	n2 := startNode(t, nodeOpts{Name: "n2", Consistency: "low", Join: n1.Addr, Args: args})
	nodes := []*Node{n1, n2}
	waitMembers(t, nodes...)
	waitLeader(t, nodes...)
	waitSameState(t, clusterState(t, n1), 0, n2)
	n1.MustDo("SET", "after-join", "1")
	waitApplied(t, nodes...)
	mustEqual(t, "n2 GET after-join", n2.MustDo("GET", "after-join"), "1")

	n2.Kill9()
	n2.Restart()
	waitApplied(t, nodes...)
	waitSameState(t, clusterState(t, n1), 0, n2)
}

// A leader frozen with SIGSTOP loses leadership; when thawed it must neither
// serve a stale read at --consistency high nor acknowledge a write, and it
// must rejoin as a follower and converge.
func TestPausedLeader(t *testing.T) {
	nodes := startCluster(t, 3, nodeOpts{Consistency: "high"})
	old := waitLeader(t, nodes...)
	old.DoEventually(10*time.Second, "SET", "k", "v1")
	waitApplied(t, nodes...)

	// A connection established while the old leader is healthy; commands
	// written to it while the process is frozen sit in the kernel buffer and
	// are the first thing the node sees when it resumes.
	raw := dialRaw(t, old)
	raw.send(t, "PING")
	mustEqual(t, "raw PING", raw.reply(t, cmdTimeout), "+PONG")

	old.Pause()
	rest := others(nodes, old)
	nl := waitLeader(t, rest...)
	t.Logf("leader %s frozen, new leader %s", old, nl)
	nl.DoEventually(10*time.Second, "SET", "k", "v2")
	raw.send(t, "GET", "k")
	raw.send(t, "SET", "k", "stale-write")
	old.Resume()

	// Neither may be answered from the old leader's stale view.
	if got := raw.reply(t, 15*time.Second); got != "$v2" && !strings.HasPrefix(got, "-") {
		t.Errorf("stale read at --consistency high: thawed old leader answered GET k with %q, want \"$v2\" or an error", got)
	} else {
		t.Logf("GET on thawed old leader: %q", got)
	}
	if got := raw.reply(t, 15*time.Second); !strings.HasPrefix(got, "-") {
		t.Errorf("thawed old leader acknowledged a write (%q) although a new leader exists", got)
	} else {
		t.Logf("SET on thawed old leader: %q", got)
	}
	cur := waitLeader(t, nodes...)
	if cur == old {
		t.Fatalf("thawed old leader %s became leader again", old)
	}
	if _, err := old.Do("SET", "k", "x"); err == nil || err.Error() != "TRY "+cur.Addr {
		t.Errorf("SET on old leader after it rejoined: got %v, want TRY %s", err, cur.Addr)
	}
	waitApplied(t, nodes...)
	mustEqual(t, "GET k on leader", cur.MustDo("GET", "k"), "v2")
}
