package tests

// A script that never ends costs its caller, not the cluster: after
// busy-reply-threshold the leader stops it through the log, every node
// stops it the same way (a script that wrote is undone by a replay), other
// clients' writes go on, and no restart replays into the hang. SCRIPT KILL
// and FUNCTION KILL work as in Redis for scripts that have not written.

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// stopMessage starts the reply to a script redraft stopped.
const stopMessage = "ERR Script stopped by redraft after running longer than busy-reply-threshold (500 ms)"

// startScriptCluster starts 3 nodes whose scripts may run 500 ms.
func startScriptCluster(t *testing.T) ([]*Node, *Node) {
	nodes := startCluster(t, 3, nodeOpts{Consistency: "low"})
	l := waitLeader(t, nodes...)
	mustEqual(t, "CONFIG SET busy-reply-threshold", l.MustDo("CONFIG", "SET", "busy-reply-threshold", "500"), "OK")
	return nodes, l
}

// slowDo runs a command that may take several seconds.
func slowDo(n *Node, args ...interface{}) (interface{}, error) {
	c := n.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Do(ctx, args...).Result()
}

func TestNeverEndingScriptIsStoppedOnEveryNode(t *testing.T) {
	nodes, l := startScriptCluster(t)
	l.MustDo("SET", "before", "1")

	// Another client's write, sent while the script runs, completes after
	// the stop.
	var wg sync.WaitGroup
	var otherErr error
	start := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(100 * time.Millisecond) // lets the script start first; not synchronisation
		_, otherErr = slowDo(l, "SET", "other", "ok")
	}()
	_, err := slowDo(l, "EVAL", "while true do end", "0")
	if err == nil || !strings.HasPrefix(err.Error(), stopMessage) {
		t.Fatalf("EVAL of a never-ending script: %v", err)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("stopped after %v, before busy-reply-threshold", d)
	}
	wg.Wait()
	if otherErr != nil {
		t.Fatalf("another client's write: %v", otherErr)
	}

	// A script that wrote before looping leaves nothing on any node.
	_, err = slowDo(l, "EVAL", "redis.call('SET', KEYS[1], 'dirty'); redis.call('INCR', 'counter'); while true do end", "1", "x")
	if err == nil || !strings.HasPrefix(err.Error(), stopMessage) {
		t.Fatalf("EVAL of a script that wrote, then loops: %v", err)
	}
	l.MustDo("SET", "after", "1")
	d := waitApplied(t, nodes...)
	for _, n := range nodes {
		for _, k := range []string{"x", "counter"} {
			if v, err := n.Do("GET", k); err != nil || v != nil {
				t.Errorf("%s: GET %s = %v, %v after the stopped script", n, k, v, err)
			}
		}
		mustEqual(t, n.Name+" GET before", n.MustDo("GET", "before"), "1")
		mustEqual(t, n.Name+" GET after", n.MustDo("GET", "after"), "1")
	}

	// Every node restarts (kill -9, then all together): none replays into
	// the hang, and the data is the same.
	for _, n := range nodes {
		n.Kill9()
	}
	for _, n := range nodes {
		n.Restart()
	}
	l = waitLeader(t, nodes...)
	l.DoEventually(20*time.Second, "SET", "restarted", "1")
	d2 := waitApplied(t, nodes...)
	if d2.Hash == d.Hash {
		t.Error("the digest did not change after a write")
	}
	for _, n := range nodes {
		if v, _ := n.Do("GET", "x"); v != nil {
			t.Errorf("%s: the stopped script's write came back after a restart: %v", n, v)
		}
		if strings.Contains(n.Log(), "Slow script detected") && strings.Count(n.Log(), "=== ") > 1 {
			after := n.Log()[strings.LastIndex(n.Log(), "=== "):]
			if strings.Contains(after, "Slow script detected") {
				t.Errorf("%s replayed into the never-ending script after its restart", n)
			}
		}
	}
}

func TestScriptKillAsInRedis(t *testing.T) {
	nodes, l := startScriptCluster(t)

	// A script that has not written: SCRIPT KILL stops it, on every node.
	done := make(chan error, 1)
	go func() {
		_, err := slowDo(l, "EVAL", "local n = redis.call('GET', 'x'); while true do end", "0")
		done <- err
	}()
	var reply interface{}
	var skErr error
	eventually(t, 10*time.Second, func() error {
		reply, skErr = slowDo(l, "SCRIPT", "KILL")
		if skErr != nil && strings.HasPrefix(skErr.Error(), "NOTBUSY") {
			return skErr // not started yet
		}
		return nil
	})
	if skErr != nil || reply != "OK" {
		t.Errorf("SCRIPT KILL: %v, %v", reply, skErr)
	}
	if err := <-done; err == nil || !strings.HasPrefix(err.Error(), "ERR Script killed by user with SCRIPT KILL") {
		t.Errorf("the killed script's caller got %v", err)
	}

	// A script that has written: UNKILLABLE, as in Redis; the threshold
	// stops it anyway, without effect.
	go func() {
		_, err := slowDo(l, "EVAL", "redis.call('SET', 'w', '1'); while true do end", "0")
		done <- err
	}()
	var killErr error
	eventually(t, 10*time.Second, func() error {
		_, killErr = slowDo(l, "SCRIPT", "KILL")
		if killErr != nil && strings.HasPrefix(killErr.Error(), "NOTBUSY") {
			return killErr
		}
		return nil
	})
	if killErr == nil || !strings.HasPrefix(killErr.Error(), "UNKILLABLE") {
		t.Errorf("SCRIPT KILL of a script that wrote: %v", killErr)
	}
	if err := <-done; err == nil || !strings.HasPrefix(err.Error(), stopMessage) {
		t.Errorf("the unkillable script's caller got %v", err)
	}

	// FUNCTION KILL for a function.
	lib := "#!lua name=loop\nredis.register_function('spin', function(keys, args) while true do end end)"
	l.MustDo("FUNCTION", "LOAD", lib)
	go func() {
		_, err := slowDo(l, "FCALL", "spin", "0")
		done <- err
	}()
	var fkErr error
	eventually(t, 10*time.Second, func() error {
		reply, fkErr = slowDo(l, "FUNCTION", "KILL")
		if fkErr != nil && strings.HasPrefix(fkErr.Error(), "NOTBUSY") {
			return fkErr
		}
		return nil
	})
	if fkErr != nil || reply != "OK" {
		t.Errorf("FUNCTION KILL: %v, %v", reply, fkErr)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "killed by user") {
		t.Errorf("the killed function's caller got %v", err)
	}
	if _, err := l.Do("SCRIPT", "KILL"); err == nil || !strings.HasPrefix(err.Error(), "NOTBUSY") {
		t.Errorf("SCRIPT KILL with nothing running: %v", err)
	}
	l.MustDo("SET", "end", "1")
	waitApplied(t, nodes...)
	for _, n := range nodes {
		if v, _ := n.Do("GET", "w"); v != nil {
			t.Errorf("%s: the stopped script's write is there: %v", n, v)
		}
	}
}

// A read-only script runs on one node only; the node stops it on its own
// after the threshold, and its applies go on.
func TestReadOnlyScriptIsStoppedLocally(t *testing.T) {
	nodes, l := startScriptCluster(t)
	f := others(nodes, l)[0]
	waitApplied(t, nodes...)
	done := make(chan error, 1)
	go func() {
		_, err := slowDo(f, "EVAL_RO", "while true do end", "0")
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("EVAL_RO of a never-ending script on a follower: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the follower's read-only script was not stopped")
	}
	l.MustDo("SET", "k", "v")
	waitApplied(t, nodes...)
	mustEqual(t, "follower GET k", f.MustDo("GET", "k"), "v")
}
