package tests

// Partition tests: clusters whose peer traffic passes through the netFault
// proxy (netfault_test.go), cut in various ways while a write load runs.

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// leaseBound is how soon after losing contact with the majority a leader
// must stop serving --consistency medium reads: hashicorp/raft's
// LeaderLeaseTimeout is 500 ms (raft.go), checked on a timer of the same
// length, plus slack for a loaded 2-core machine.
const leaseBound = 1500 * time.Millisecond

// TestNetFaultCluster checks the wiring every partition test relies on:
// nodes join through advertised proxy addresses (with a cluster secret, so
// the peer handshake passes the proxy), RAFTPEERS and -TRY name those
// addresses, a client following -TRY reaches the leader, and peers dial
// each other from their own -bind IP (so the proxy can tell them apart):
// joins, Raft streams and --follower-proxy relays.
func TestNetFaultCluster(t *testing.T) {
	c := startFaultCluster(t, 3, nodeOpts{Args: []string{"--cluster-secret", "fault-secret"}},
		nil, nil, []string{"--follower-proxy"})
	leader := waitLeader(t, c.nodes...)
	if leader != c.nodes[0] {
		t.Fatalf("leader is %s, want the bootstrap node %s", leader, c.nodes[0])
	}
	for _, n := range c.nodes {
		peers, err := raftPeers(n)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, n.Name+" RAFTPEERS", peers, sortedAddrs(c.nodes))
	}
	f := c.nodes[1]
	_, err := f.Do("SET", "k", "v")
	if err == nil || err.Error() != "TRY "+leader.Addr {
		t.Fatalf("SET on follower: %v, want TRY %s", err, leader.Addr)
	}
	rc := newRedirectClient(c.nodeAddrs(), nil, cmdTimeout, 1)
	defer rc.close()
	rc.cur = f.Addr
	if _, _, err := rc.do("SET", "k", "v"); err != nil && err.Error() == "TRY "+leader.Addr {
		if _, _, err = rc.do("SET", "k", "v"); err != nil {
			t.Fatalf("SET after following TRY: %v", err)
		}
	} else {
		t.Fatalf("SET on follower through the redirect client: %v", err)
	}
	mustEqual(t, "GET on leader", leader.MustDo("GET", "k"), "v")
	// Node 2 relays a write to the leader over a relay stream of its own.
	relays := c.net.accepted(2, 0)
	mustEqual(t, "SET relayed by node 2", c.nodes[2].MustDo("SET", "k", "relayed"), "OK")
	mustEqual(t, "GET on leader after the relay", leader.MustDo("GET", "k"), "relayed")
	if c.net.accepted(2, 0) == relays {
		t.Errorf("node 2's relay stream to the leader did not come from its own IP")
	}
	// Joins came from the joiners' IPs; replication from the leader's.
	for i := 1; i < 3; i++ {
		if c.net.accepted(i, 0) == 0 {
			t.Errorf("node %d opened no connection to node 0 from its own IP (join dialled from elsewhere?)", i)
		}
		if c.net.accepted(0, i) == 0 {
			t.Errorf("node 0 opened no connection to node %d from its own IP", i)
		}
	}
	waitApplied(t, c.nodes...)
}

// sortedAddrs lists the nodes' addresses, sorted like raftPeers.
func sortedAddrs(nodes []*Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Addr)
	}
	sort.Strings(out)
	return out
}

// probe is one command sent to one node: what, when, and what came back.
type probe struct {
	args           []interface{}
	sent, returned time.Time
	val            interface{}
	err            error
}

// prober sends one command after another to one node and records each.
type prober struct {
	stop chan struct{}
	cl   *redis.Client
	wg   sync.WaitGroup
	mu   sync.Mutex
	out  []probe
}

// startProbe sends args(0), args(1), … one at a time to addr until halt.
func startProbe(addr string, args func(i int) []interface{}) *prober {
	p := &prober{stop: make(chan struct{}), cl: newClient(addr, 0)}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			default:
			}
			pr := probe{args: args(i), sent: time.Now()}
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			pr.val, pr.err = p.cl.Do(ctx, pr.args...).Result()
			cancel()
			if pr.err == redis.Nil {
				pr.val, pr.err = nil, nil
			}
			pr.returned = time.Now()
			p.mu.Lock()
			p.out = append(p.out, pr)
			p.mu.Unlock()
			if pr.err != nil {
				select { // don't spin on errors
				case <-p.stop:
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
	}()
	return p
}

// answered counts the probes sent after since that have returned, and
// those of them that succeeded.
func (p *prober) answered(since time.Time) (all, ok int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.out {
		if pr.sent.After(since) {
			all++
			if pr.err == nil {
				ok++
			}
		}
	}
	return all, ok
}

// halt stops the probe and returns every probe. The command in flight, if
// any, is cut short by closing the connection: it is recorded with an
// error (its outcome unknown), never as answered.
func (p *prober) halt() []probe {
	close(p.stop)
	p.cl.Close()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out
}

// TestPartitionLeaderIsolated cuts the leader off from both followers,
// twice: first a leader at --consistency medium, then one at high. Each time
// it checks that the old leader stops serving reads (medium: within its
// lease; high: at once, give or take one heartbeat round in flight at the
// cut; never a stale value), that nothing written to the
// minority side is acknowledged, that the majority elects a leader and keeps
// acknowledging writes, and after healing that no acknowledged write is lost,
// nothing written only to the minority survives, and every node converges to
// the same RAFTDIGEST at the same index.
func TestPartitionLeaderIsolated(t *testing.T) {
	c := startFaultCluster(t, 3, nodeOpts{}, []string{"--consistency", "medium"},
		[]string{"--consistency", "high"}, []string{"--consistency", "high"})
	load := startWriteLoad(t, "load", 3, c.nodeAddrs(), c.direct)
	load.waitProgress(t, 20, leaderTimeout)

	leader := c.nodes[0]
	if waitLeader(t, c.nodes...) != leader {
		t.Fatalf("the bootstrap node should lead")
	}
	var minority, kept []string
	for round, mode := range []string{"medium", "high"} {
		t.Logf("--- round %d: isolating leader %s (--consistency %s)", round+1, leader, mode)
		old := fmt.Sprintf("old-%d", round)
		leader.DoEventually(leaderTimeout, "SET", "reg", old)
		load.settled(t, c.nodes...)

		direct := c.direct(leader.Addr)
		start := time.Now()
		reads := startProbe(direct, func(int) []interface{} { return []interface{}{"GET", "reg"} })
		prefix := fmt.Sprintf("minority-%d", round)
		writes := startProbe(direct, func(i int) []interface{} {
			return []interface{}{"SET", fmt.Sprintf("%s:%d", prefix, i), "x"}
		})
		eventually(t, leaderTimeout, func() error { // both probes are being served
			_, r := reads.answered(start)
			_, w := writes.answered(start)
			if r < 3 || w < 3 {
				return fmt.Errorf("the leader served %d reads and %d writes of the probes", r, w)
			}
			return nil
		})
		c.isolate(leader)
		t0 := time.Now() // the cut is in effect: nothing crosses it from now on

		majority := others(c.nodes, leader)
		newLeader := waitLeader(t, majority...)
		load.waitProgress(t, 20, leaderTimeout)
		val := fmt.Sprintf("new-%d", round)
		newLeader.DoEventually(leaderTimeout, "SET", "reg", val)
		t2 := time.Now()
		t.Logf("new leader %s elected, reg=%s acknowledged %v after the cut", newLeader, val, t2.Sub(t0).Round(time.Millisecond))
		// Probe the old leader afresh until it has answered a read sent
		// after the new value was acknowledged (cut off, it answers one
		// only when it gives up waiting for a leader, after 3 s).
		late := startProbe(direct, func(int) []interface{} { return []interface{}{"GET", "reg"} })
		eventually(t, leaderTimeout, func() error {
			if n, _ := late.answered(t2); n < 1 {
				return fmt.Errorf("the old leader answered no read sent after %s was acknowledged", val)
			}
			return nil
		})
		rs := append(reads.halt(), late.halt()...)
		ws := writes.halt()

		var lastOK time.Time
		okAfter, stale := 0, 0
		for _, p := range rs {
			if p.err != nil {
				continue
			}
			if p.sent.After(lastOK) {
				lastOK = p.sent
			}
			if p.sent.After(t0) {
				okAfter++
			}
			if p.sent.After(t2) && p.val == old {
				if stale == 0 {
					t.Errorf("stale read: GET reg on the old leader sent %v after %s was acknowledged returned %v",
						p.sent.Sub(t2), val, p.val)
				}
				stale++
			}
		}
		if stale > 1 {
			t.Errorf("%d stale reads in all", stale)
		}
		switch mode {
		case "medium":
			if d := lastOK.Sub(t0); d > leaseBound {
				t.Errorf("medium: the isolated leader still served a read sent %v after the cut (lease bound %v)", d, leaseBound)
			}
			t.Logf("medium: %d reads served after the cut, the last one sent %v after it", okAfter, lastOK.Sub(t0).Round(time.Millisecond))
		case "high":
			// A read sent after the cut waits for a round that starts
			// after it, whose term probes cannot cross it (leadership.go).
			if okAfter > 0 {
				t.Errorf("high: the isolated leader served %d reads sent after the cut (the last sent %v after it)", okAfter, lastOK.Sub(t0))
			}
			t.Logf("high: %d reads served after the cut", okAfter)
		}
		sentAfter := 0
		for _, p := range ws {
			k := p.args[1].(string)
			if !p.sent.After(t0) {
				if p.err == nil { // acknowledged: must survive
					kept = append(kept, k)
				}
				continue
			}
			sentAfter++
			minority = append(minority, k)
			if p.err == nil {
				t.Errorf("the isolated leader acknowledged SET %s (sent %v after the cut, answered %v after): %v",
					k, p.sent.Sub(t0), p.returned.Sub(t0), p.val)
			}
		}
		if sentAfter == 0 {
			t.Errorf("no write reached the isolated leader")
		}

		c.heal()
		waitLeader(t, c.nodes...)
		d := load.settled(t, c.nodes...)
		t.Logf("converged at index %d after healing", d.Applied)
		leader = newLeader
	}
	// Nothing written only to a minority survives, nothing acknowledged is
	// lost.
	final := waitLeader(t, c.nodes...)
	args := []interface{}{"EXISTS"}
	for _, k := range minority {
		args = append(args, k)
	}
	if v := final.DoEventually(leaderTimeout, args...); v != int64(0) {
		t.Errorf("%v of the %d keys written only to an isolated leader exist after healing", v, len(minority))
	}
	for _, k := range kept {
		if v := final.DoEventually(leaderTimeout, "GET", k); v != "x" {
			t.Errorf("SET %s was acknowledged by the leader before the cut, but GET answers %v", k, v)
		}
	}
	load.check(t, final)
	waitApplied(t, c.nodes...)
}

// TestPartitionFollowerIsolated cuts a follower off while writes go on: the
// majority keeps acknowledging writes; after healing the follower catches up
// to the same RAFTDIGEST at the same index and nothing acknowledged is lost.
func TestPartitionFollowerIsolated(t *testing.T) {
	c := startFaultCluster(t, 3, nodeOpts{})
	load := startWriteLoad(t, "load", 3, c.nodeAddrs(), c.direct)
	load.waitProgress(t, 20, leaderTimeout)
	leader := waitLeader(t, c.nodes...)
	f := others(c.nodes, leader)[0]
	before, err := raftDigest(f)
	if err != nil {
		t.Fatal(err)
	}
	c.isolate(f)
	load.waitProgress(t, 200, leaderTimeout)
	if l := waitLeader(t, others(c.nodes, f)...); l != leader {
		t.Logf("note: leadership moved from %s to %s while a follower was isolated", leader, l)
	}
	// Cut off, the follower learns of no new commit: its applied index
	// stands still while the others go on.
	during, err := raftDigest(f)
	if err != nil {
		t.Fatal(err)
	}
	load.waitProgress(t, 100, leaderTimeout)
	still, err := raftDigest(f)
	if err != nil {
		t.Fatal(err)
	}
	lead, err := raftDigest(leader)
	if err != nil {
		t.Fatal(err)
	}
	if still.Applied != during.Applied || lead.Applied <= still.Applied {
		t.Fatalf("the isolated follower kept applying (%d, then %d; leader %d): is the cut working?", during.Applied, still.Applied, lead.Applied)
	}
	c.heal()
	load.waitProgress(t, 50, leaderTimeout)
	d := load.settled(t, c.nodes...)
	t.Logf("follower %s: applied %d before the cut, %d while cut (leader %d), %d after healing", f, before.Applied, during.Applied, lead.Applied, d.Applied)
	load.check(t, waitLeader(t, c.nodes...))
	waitApplied(t, c.nodes...)
}

// TestPartitionOneWayCut cuts links in one direction only: leader→follower
// (the follower hears nothing, its requests still reach the leader),
// follower→leader (the leader never hears back), and leader→both followers
// (the leader can send nothing and must be replaced). Each time the cluster
// must keep acknowledging writes, and after healing converge with nothing
// acknowledged lost.
func TestPartitionOneWayCut(t *testing.T) {
	c := startFaultCluster(t, 3, nodeOpts{})
	load := startWriteLoad(t, "load", 3, c.nodeAddrs(), c.direct)
	load.waitProgress(t, 20, leaderTimeout)
	for _, tc := range []struct {
		name string
		cut  func(l *Node, fs []*Node)
	}{
		{"leader->follower", func(l *Node, fs []*Node) { c.cut(l, fs[0]) }},
		{"follower->leader", func(l *Node, fs []*Node) { c.cut(fs[0], l) }},
		{"leader->both followers", func(l *Node, fs []*Node) { c.cut(l, fs[0]); c.cut(l, fs[1]) }},
	} {
		leader := waitLeader(t, c.nodes...)
		fs := others(c.nodes, leader)
		t.Logf("--- cut %s (leader %s)", tc.name, leader)
		tc.cut(leader, fs)
		load.waitProgress(t, 100, 2*leaderTimeout)
		if tc.name == "leader->both followers" {
			// The followers elect one of themselves; the old leader hears
			// the new one and steps down.
			eventually(t, leaderTimeout, func() error {
				st, err := leader.Do("RAFTSTATE")
				if err != nil || st == "Leader" {
					return fmt.Errorf("old leader %s: RAFTSTATE %v %v", leader, st, err)
				}
				return nil
			})
		}
		c.heal()
		load.waitProgress(t, 20, leaderTimeout)
		d := load.settled(t, c.nodes...)
		t.Logf("healed; converged at index %d; %s", d.Applied, load.summary())
	}
	load.check(t, waitLeader(t, c.nodes...))
	waitApplied(t, c.nodes...)
}

// TestFrozenLeaderStaleReplies: a leader frozen while its followers'
// replies are on their way reads them when it thaws. They were sent before
// the others elected a new leader, so they must not confirm its leadership
// for a read at --consistency high (hashicorp/raft's VerifyLeader counts
// them; redraft asks for terms afresh, leadership.go). Each round delays
// what the followers send to the leader, so that heartbeat replies are held
// back, freezes the leader, lets the others elect a new leader and
// acknowledge a write, queues a GET on the frozen leader and thaws it: the
// GET must see the write or fail.
func TestFrozenLeaderStaleReplies(t *testing.T) {
	c := startFaultCluster(t, 3, nodeOpts{Consistency: "high"})
	nodes := c.all()
	const rounds = 6
	for round := 0; round < rounds; round++ {
		old := waitLeader(t, nodes...)
		old.DoEventually(leaderTimeout, "SET", "reg", fmt.Sprintf("before-%d", round))
		waitApplied(t, nodes...)
		raw := dialRaw(t, old)
		raw.send(t, "PING")
		mustEqual(t, "raw PING", raw.reply(t, cmdTimeout), "+PONG")

		followers := others(nodes, old)
		for _, f := range followers {
			c.net.delay(c.idx(f), c.idx(old), 300*time.Millisecond)
		}
		eventually(t, 10*time.Second, func() error { // replies are held back on every link
			for _, f := range followers {
				if n := c.net.holding(c.idx(f), c.idx(old)); n == 0 {
					return fmt.Errorf("nothing from %s to %s in flight", f, old)
				}
			}
			return nil
		})
		old.Pause()
		nl := waitLeader(t, followers...)
		after := fmt.Sprintf("after-%d", round)
		nl.DoEventually(leaderTimeout, "SET", "reg", after)
		raw.send(t, "GET", "reg")
		old.Resume()
		got := raw.reply(t, 15*time.Second)
		t.Logf("round %d: leader %s frozen, %s elected; GET on the thawed leader: %q", round+1, old, nl, got)
		if got != "$"+after && !strings.HasPrefix(got, "-") {
			t.Errorf("round %d: stale read at --consistency high: the thawed old leader answered %q after %q was acknowledged", round+1, got, after)
		}
		c.heal()
		eventually(t, leaderTimeout, func() error { // the old leader follows again
			if st, err := old.Do("RAFTSTATE"); err != nil || st != "Follower" {
				return fmt.Errorf("%s: RAFTSTATE %v, %v", old, st, err)
			}
			return nil
		})
	}
}
