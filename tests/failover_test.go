package tests

// Failures of a node or of its child: kill -9 of the leader, a paused
// leader, a child that dies or is missing.

import (
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// 3. kill -9 of the leader: a new leader is elected, writes go on, and the
// old node restarted on the same dir/port catches up.
func TestLeaderKill9Restart(t *testing.T) {
	nodes := startCluster(t, 3, nodeOpts{Consistency: "low"})
	old := waitLeader(t, nodes...)
	old.DoEventually(10*time.Second, "SET", "before:0", "0")
	for i := 1; i < 50; i++ {
		old.MustDo("SET", fmt.Sprintf("before:%d", i), strconv.Itoa(i))
	}
	old.MustDo("INCR", "counter")
	waitApplied(t, nodes...)

	old.Kill9()
	rest := others(nodes, old)
	nl := waitLeader(t, rest...)
	t.Logf("leader %s killed, new leader %s", old, nl)
	nl.DoEventually(10*time.Second, "SET", "after:0", "0")
	for i := 1; i < 50; i++ {
		nl.MustDo("SET", fmt.Sprintf("after:%d", i), strconv.Itoa(i))
	}
	mustEqual(t, "INCR counter on new leader", nl.MustDo("INCR", "counter"), int64(2))
	waitApplied(t, rest...)

	old.Restart()
	l := waitLeader(t, nodes...)
	waitMembers(t, nodes...)
	waitApplied(t, nodes...)
	want := clusterState(t, l)
	if len(want) != 101 {
		t.Errorf("leader has %d keys, want 101", len(want))
	}
	sameStateAs(t, l, nodes...)
	mustEqual(t, "restarted node GET after:49", old.MustDo("GET", "after:49"), "49")
	mustEqual(t, "restarted node GET counter", old.MustDo("GET", "counter"), "2")
	if st := old.MustDo("RAFTSTATE"); l != old && st != "Follower" {
		t.Errorf("restarted old leader RAFTSTATE = %v, want Follower", st)
	}
}

// 8. A missing redis-server binary makes redraft exit non-zero, promptly,
// with an error that says so.
func TestMissingRedisServer(t *testing.T) {
	n := startNode(t, nodeOpts{Name: "n1", Args: []string{"--redis-server", "/nonexistent"}, NoWait: true})
	start := time.Now()
	err := n.waitExit(15 * time.Second)
	t.Logf("exited after %v with %v", time.Since(start).Round(time.Millisecond), exitDesc(err))
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("want a non-zero exit, got %v", exitDesc(err))
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Errorf("process died from signal %v instead of exiting with an error", ws.Signal())
	}
	if ee.ExitCode() == 0 {
		t.Errorf("exit code 0, want non-zero")
	}
	// Only the process's own output, not the harness's header/footer lines.
	var own []string
	for _, ln := range strings.Split(n.Log(), "\n") {
		if !strings.HasPrefix(ln, "=== ") {
			own = append(own, ln)
		}
	}
	msg := strings.Join(own, "\n")
	if !strings.Contains(strings.ToLower(msg), "redis-server") {
		t.Errorf("error output does not mention redis-server:\n%s", msg)
	}
	if strings.Contains(msg, "panic:") || strings.Contains(msg, "goroutine ") {
		t.Errorf("process panicked instead of reporting an error:\n%s", tail(msg, 3000))
	}
}

// 9. The child redis-server never outlives its node, however the node dies;
// and a node killed with -9 keeps acknowledged writes across a restart.
func TestChildDiesWithNode(t *testing.T) {
	for _, mode := range []string{"kill9", "sigterm"} {
		mode := mode
		t.Run(mode, func(t *testing.T) {
			n := startNode(t, nodeOpts{Name: "n1"})
			waitLeader(t, n)
			n.DoEventually(10*time.Second, "SET", "durable", mode)
			var kids []procID
			eventually(t, startTimeout, func() error {
				kids = n.redisChildren()
				if len(kids) == 0 {
					return fmt.Errorf("no redis-server child of %s (pid %d) found in /proc", n, n.Pid())
				}
				return nil
			})
			t.Logf("%s pid %d has redis-server children %v", n, n.Pid(), kids)
			if mode == "kill9" {
				n.Kill9()
			} else if err := n.Stop(); err != nil {
				t.Logf("note: SIGTERM exit: %v", err)
			}
			eventually(t, 10*time.Second, func() error {
				for _, k := range kids {
					if k.alive() {
						return fmt.Errorf("redis-server pid %d still alive after node died", k.pid)
					}
				}
				if l := n.liveChildren(); len(l) > 0 {
					return fmt.Errorf("redis-server(s) referencing %s still alive: %v", n.Dir, l)
				}
				return nil
			})
			n.Restart()
			waitLeader(t, n)
			eventually(t, appliedTimeout, func() error {
				v, err := n.Do("GET", "durable")
				if err != nil || v != mode {
					return fmt.Errorf("GET durable after restart = %#v, %v; want %q", v, err, mode)
				}
				return nil
			})
		})
	}
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
