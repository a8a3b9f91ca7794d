package tests

// Snapshots: a restart rebuilds from snapshot and log, and a node that
// joins after the log was compacted is brought up by snapshot install.

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// 4. RAFTSNAPSHOT, more writes, then restart: values and TTLs come back.
func TestSnapshotRestart(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		n := startNode(t, nodeOpts{Name: "n1"})
		waitLeader(t, n)
		populate(t, n, "a")
		mustEqual(t, "RAFTSNAPSHOT", n.MustDo("RAFTSNAPSHOT"), "OK")
		populate(t, n, "b") // entries after the snapshot: replayed from the log
		before := clusterState(t, n)
		checkPopulated(t, before, "a")
		checkPopulated(t, before, "b")

		n.Kill9()
		n.Restart()
		waitLeader(t, n)
		// Expiry deadlines are absolute: they must come back to the ms.
		waitSameState(t, before, 0, n)

		// Snapshot + restart again, this time graceful.
		mustEqual(t, "RAFTSNAPSHOT after restart", n.DoEventually(10*time.Second, "RAFTSNAPSHOT"), "OK")
		if err := n.Stop(); err != nil {
			t.Logf("note: SIGTERM exit: %v", err)
		}
		n.Restart()
		waitLeader(t, n)
		waitSameState(t, before, 0, n)
		n.DoEventually(10*time.Second, "SET", "post", "restart")
	})

	t.Run("cluster", func(t *testing.T) {
		nodes := startCluster(t, 3, nodeOpts{Consistency: "low"})
		l := waitLeader(t, nodes...)
		populate(t, l, "a")
		waitApplied(t, nodes...)
		for _, n := range nodes {
			mustEqual(t, n.Name+" RAFTSNAPSHOT", n.MustDo("RAFTSNAPSHOT"), "OK")
		}
		populate(t, l, "b")
		waitApplied(t, nodes...)
		before := clusterState(t, l)
		checkPopulated(t, before, "a")
		checkPopulated(t, before, "b")

		for _, n := range nodes {
			if err := n.Stop(); err != nil {
				t.Logf("note: %s SIGTERM exit: %v", n, err)
			}
		}
		for _, n := range nodes {
			n.Restart() // joiners have state now: -join must be ignored
		}
		waitMembers(t, nodes...)
		l = waitLeader(t, nodes...)
		waitApplied(t, nodes...)
		waitSameState(t, before, 0, nodes...)
		l.DoEventually(10*time.Second, "SET", "post", "restart")
		waitApplied(t, nodes...)
	})
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
