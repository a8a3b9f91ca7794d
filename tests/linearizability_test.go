package tests

// A linearizability check of a register workload under faults, with
// porcupine (github.com/anishathalye/porcupine).
//
// Clients run GET, SET, INCR and a compare-and-set script (EVAL) on a few
// keys, following -TRY to the leader, against nodes at --consistency high,
// while a nemesis kills (-9) leaders and followers, pauses them (SIGSTOP),
// kills a node's child redis-server (the node exits and is restarted),
// partitions the network through the netFault proxy and delays links.
// Every operation is recorded with its invocation and response times.
//
// Outcomes a client cannot know (timeouts, dropped connections, "may or may
// not have been applied") are kept in the history as open-ended operations:
// a write of unknown outcome may take effect at any time after its call, so
// it gets a response time after everything else (porcupine may linearize it
// anywhere from its call onwards, including after every other operation,
// which is the same as never); a read of unknown outcome constrains nothing
// (any result is allowed) and ends when the client gave up. Only replies
// that prove a command was never proposed (-TRY, -CLUSTERDOWN, a refused
// connection) remove an operation from the history.
//
// By default every kind of fault is applied once, in a random order (about
// half a minute); REDRAFT_LIN_DURATION makes the faults go on, cycling
// through the kinds, for at least that long (`make torture`: 10 minutes).
// On a violation, porcupine's visualization is written to the test's
// artifact directory (go test -artifacts) or else to a kept temporary
// directory, and the path is logged.

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// casScript sets KEYS[1] to ARGV[2] if it holds ARGV[1]; returns 1 if it did.
const casScript = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end return 0`

// linInput is one register operation.
type linInput struct {
	Op  string // get, set, incr, cas
	Key string
	A   int64 // set: the value; cas: the expected value
	B   int64 // cas: the new value
}

// linOutput is what the client saw.
type linOutput struct {
	Unknown bool  // the outcome is not known
	Exists  bool  // get: the key existed
	Val     int64 // get: the value; incr: the new value
	Swapped bool  // cas: the swap happened
}

// regState is one key's value in the model.
type regState struct {
	Exists bool
	Val    int64
}

// registerModel is the sequential specification: one register per key.
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(linInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return regState{} },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		st, in, out := state.(regState), input.(linInput), output.(linOutput)
		switch in.Op {
		case "get":
			return out.Unknown || out.Exists == st.Exists && (!out.Exists || out.Val == st.Val), st
		case "set":
			return true, regState{true, in.A}
		case "incr":
			next := regState{true, st.Val + 1}
			return out.Unknown || out.Val == next.Val, next
		case "cas":
			swap := st.Exists && st.Val == in.A
			next := st
			if swap {
				next = regState{true, in.B}
			}
			return out.Unknown || out.Swapped == swap, next
		}
		return false, st
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(linInput), output.(linOutput)
		res := ""
		switch {
		case out.Unknown:
			res = "?"
		case in.Op == "get" && !out.Exists:
			res = "nil"
		case in.Op == "get" || in.Op == "incr":
			res = strconv.FormatInt(out.Val, 10)
		case in.Op == "cas":
			res = strconv.FormatBool(out.Swapped)
		default:
			res = "ok"
		}
		switch in.Op {
		case "set":
			return fmt.Sprintf("set(%d) -> %s", in.A, res)
		case "cas":
			return fmt.Sprintf("cas(%d, %d) -> %s", in.A, in.B, res)
		}
		return fmt.Sprintf("%s() -> %s", in.Op, res)
	},
	DescribeState: func(state interface{}) string {
		st := state.(regState)
		if !st.Exists {
			return "nil"
		}
		return strconv.FormatInt(st.Val, 10)
	},
}

// linHistory collects operations from many goroutines.
type linHistory struct {
	start   time.Time
	mu      sync.Mutex
	ops     []porcupine.Operation
	notes   []porcupine.Annotation
	clients atomic.Int64 // next client id
	counts  map[string]int
}

// now is the time since the history started, in nanoseconds (porcupine's
// Call and Return).
func (h *linHistory) now() int64 { return int64(time.Since(h.start)) }

// add records an operation and counts it under kind.
func (h *linHistory) add(op porcupine.Operation, kind string) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.counts[kind]++
	h.mu.Unlock()
}

// count counts an operation that is not recorded.
func (h *linHistory) count(kind string) {
	h.mu.Lock()
	h.counts[kind]++
	h.mu.Unlock()
}

// waitServed waits until the workers have completed n more operations with
// a known outcome than so far.
func (h *linHistory) waitServed(t testing.TB, n int) {
	t.Helper()
	h.mu.Lock()
	target := h.counts["ok"] + n
	h.mu.Unlock()
	eventually(t, leaderTimeout, func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if got := h.counts["ok"]; got < target {
			return fmt.Errorf("clients completed %d operations, waiting for %d", got, target)
		}
		return nil
	})
}

// note records a nemesis event for the visualization.
func (h *linHistory) note(start int64, what string) {
	h.mu.Lock()
	h.notes = append(h.notes, porcupine.Annotation{Tag: "nemesis", Start: start, End: h.now(), Description: what})
	h.mu.Unlock()
}

// linWorker runs register operations until stop closes.
func linWorker(h *linHistory, c *faultCluster, keys []string, seed int64, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	rc := newRedirectClient(c.nodeAddrs(), c.direct, 6*time.Second, seed)
	defer rc.close()
	client := int(h.clients.Add(1) - 1)
	seen := map[string]int64{}
	for {
		select {
		case <-stop:
			return
		default:
		}
		key := keys[rc.rnd.Intn(len(keys))]
		in := linInput{Key: key}
		var args []interface{}
		switch r := rc.rnd.Intn(100); {
		case r < 40:
			in.Op, args = "get", []interface{}{"GET", key}
		case r < 65:
			in.Op, in.A = "set", rc.rnd.Int63n(1e9)
			args = []interface{}{"SET", key, in.A}
		case r < 80:
			in.Op, args = "incr", []interface{}{"INCR", key}
		default:
			in.Op, in.A, in.B = "cas", seen[key], rc.rnd.Int63n(1e9)
			args = []interface{}{"EVAL", casScript, 1, key, in.A, in.B}
		}
		call := h.now()
		v, o, err := rc.do(args...)
		ret := h.now()
		var out linOutput
		switch o {
		case notDone:
			h.count("refused")                // never proposed: no effect to record
			time.Sleep(20 * time.Millisecond) // no leader yet: let time pass
			continue
		case mayBe:
			out.Unknown = true
		case applied:
			if err != nil { // an error reply from the child: not expected here
				out.Unknown = true
				break
			}
			switch in.Op {
			case "get":
				if v != nil {
					s, _ := v.(string)
					n, perr := strconv.ParseInt(s, 10, 64)
					if perr != nil {
						out.Unknown = true // cannot happen: only integers are written
						break
					}
					out.Exists, out.Val = true, n
					seen[key] = n
				}
			case "incr":
				out.Val, _ = v.(int64)
				seen[key] = out.Val
			case "cas":
				out.Swapped = v == int64(1)
				if out.Swapped {
					seen[key] = in.B
				}
			case "set":
				seen[key] = in.A
			}
		}
		kind := "ok"
		if out.Unknown {
			kind = "unknown " + in.Op
			if in.Op != "get" {
				// May take effect at any time from now on.
				ret = math.MaxInt64
			}
		}
		h.add(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}, kind)
		if out.Unknown {
			// This client's operation may still be pending: carry on as a
			// new client so the histories of clients stay sequential.
			client = int(h.clients.Add(1) - 1)
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// linDuration is how long the faults run at least: REDRAFT_LIN_DURATION, or
// 40 s (each fault kind at least once, then more in the same order; about
// a minute with the cluster's start and the check).
func linDuration(t testing.TB) time.Duration {
	if s := os.Getenv("REDRAFT_LIN_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("REDRAFT_LIN_DURATION: %v", err)
		}
		return d
	}
	return 40 * time.Second
}

// outputDir is where a failing test leaves evidence: its artifact directory
// with go test -artifacts, else a temporary directory that is kept.
func outputDir(t *testing.T) string {
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return t.ArtifactDir()
	}
	dir, err := os.MkdirTemp("", "redraft-"+t.Name()+"-")
	if err != nil {
		t.Fatalf("mkdtemp: %v", err)
	}
	return dir
}

// nemesis applies one fault at a time to a faultCluster.
type nemesis struct {
	t   *testing.T
	c   *faultCluster
	h   *linHistory
	rnd *rand.Rand
}

// leaderAndFollower returns the current leader and a random follower.
func (nm *nemesis) leaderAndFollower() (*Node, *Node) {
	l := waitLeader(nm.t, nm.c.nodes...)
	fs := others(nm.c.nodes, l)
	return l, fs[nm.rnd.Intn(len(fs))]
}

// hold lets a fault last between lo and hi.
func (nm *nemesis) hold(lo, hi time.Duration) {
	time.Sleep(lo + time.Duration(nm.rnd.Int63n(int64(hi-lo))))
}

// killChild kills n's child redis-server; n must exit with an error.
func (nm *nemesis) killChild(n *Node) {
	kids := n.redisChildren()
	if len(kids) == 0 {
		nm.t.Fatalf("%s has no redis-server child", n)
	}
	nm.t.Logf("%s: kill -9 its redis-server (pid %d)", n, kids[0].pid)
	n.recordChildren()
	if err := syscall.Kill(kids[0].pid, syscall.SIGKILL); err != nil {
		nm.t.Fatalf("kill child: %v", err)
	}
	if err := n.waitExit(exitTimeout); err == nil {
		nm.t.Fatalf("%s exited with status 0 after its redis-server was killed", n)
	}
}

// step applies fault number i (mod the number of faults), then heals.
func (nm *nemesis) step(i int) {
	c := nm.c
	start := nm.h.now()
	l, f := nm.leaderAndFollower()
	var what string
	switch i % 10 {
	case 0:
		what = "kill -9 leader " + l.Name
		l.Kill9()
		nm.hold(300*time.Millisecond, 2*time.Second)
		l.Restart()
	case 1:
		what = "kill -9 follower " + f.Name
		f.Kill9()
		nm.hold(300*time.Millisecond, 2*time.Second)
		f.Restart()
	case 2:
		what = "SIGSTOP leader " + l.Name
		l.Pause()
		nm.hold(500*time.Millisecond, 3*time.Second)
		l.Resume()
	case 3:
		what = "SIGSTOP follower " + f.Name
		f.Pause()
		nm.hold(500*time.Millisecond, 3*time.Second)
		f.Resume()
	case 4:
		what = "kill -9 the redis-server of leader " + l.Name
		nm.killChild(l)
		nm.hold(100*time.Millisecond, time.Second)
		l.Restart()
	case 5:
		what = "isolate leader " + l.Name
		c.isolate(l)
		nm.hold(time.Second, 4*time.Second)
		c.heal()
	case 6:
		what = "isolate follower " + f.Name
		c.isolate(f)
		nm.hold(time.Second, 3*time.Second)
		c.heal()
	case 7:
		if nm.rnd.Intn(2) == 0 {
			what = "cut leader " + l.Name + " -> follower " + f.Name
			c.cut(l, f)
		} else {
			what = "cut follower " + f.Name + " -> leader " + l.Name
			c.cut(f, l)
		}
		nm.hold(time.Second, 3*time.Second)
		c.heal()
	case 8:
		what = "kill -9 the redis-server of follower " + f.Name
		nm.killChild(f)
		nm.hold(100*time.Millisecond, time.Second)
		f.Restart()
	case 9:
		d := time.Duration(20+nm.rnd.Intn(180)) * time.Millisecond
		what = fmt.Sprintf("delay every link by %v", d)
		for _, a := range c.nodes {
			for _, b := range others(c.nodes, a) {
				c.net.delay(c.idx(a), c.idx(b), d)
			}
		}
		nm.hold(time.Second, 3*time.Second)
		c.heal()
	}
	nm.t.Logf("nemesis: %s (done)", what)
	nm.h.note(start, what)
}

// TestLinearizability runs the register workload under the nemesis and
// checks the history with porcupine, then checks that every node converged
// to the same RAFTDIGEST.
func TestLinearizability(t *testing.T) {
	c := startFaultCluster(t, 3, nodeOpts{Consistency: "high"})
	h := &linHistory{start: time.Now(), counts: map[string]int{}}
	keys := []string{"r0", "r1", "r2", "r3"}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go linWorker(h, c, keys, seed+int64(i), stop, &wg)
	}
	defer func() { // a failing nemesis must not leave workers running
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	nm := &nemesis{t: t, c: c, h: h, rnd: rand.New(rand.NewSource(seed))}
	order := nm.rnd.Perm(10)
	deadline := time.Now().Add(linDuration(t))
	steps := 0
	for ; steps < len(order) || time.Now().Before(deadline); steps++ {
		// Between faults the cluster must recover: one leader among all
		// nodes, and clients served again.
		waitLeader(t, c.nodes...)
		h.waitServed(t, 100)
		nm.step(order[steps%len(order)])
	}
	waitLeader(t, c.nodes...)
	h.waitServed(t, 100)
	close(stop)
	wg.Wait()

	// Final reads through the leader: the state everyone converged to.
	rc := newRedirectClient(c.nodeAddrs(), c.direct, 6*time.Second, seed)
	defer rc.close()
	final := int(h.clients.Add(1) - 1)
	for _, k := range keys {
		var v interface{}
		var err error
		eventually(t, leaderTimeout, func() error {
			call := h.now()
			v, _, err = rc.do("GET", k)
			if err != nil {
				return err
			}
			out := linOutput{}
			if v != nil {
				out.Exists = true
				out.Val, _ = strconv.ParseInt(v.(string), 10, 64)
			}
			h.add(porcupine.Operation{ClientId: final, Input: linInput{Op: "get", Key: k}, Call: call, Output: out, Return: h.now()}, "final")
			return nil
		})
	}
	d := waitApplied(t, c.nodes...)
	t.Logf("%d faults; all nodes at index %d, digest %s; operations: %v", steps, d.Applied, d.Hash, h.counts)

	// Open-ended operations end after everything else.
	end := h.now() + 1
	for i := range h.ops {
		if h.ops[i].Return == math.MaxInt64 {
			h.ops[i].Return = end
		}
	}
	res, info := porcupine.CheckOperationsVerbose(registerModel, h.ops, 5*time.Minute)
	t.Logf("porcupine: %s (%d operations)", res, len(h.ops))
	if res == porcupine.Ok {
		return
	}
	dir := outputDir(t)
	info.AddAnnotations(h.notes)
	html := filepath.Join(dir, "linearizability.html")
	if err := porcupine.VisualizePath(registerModel, info, html); err != nil {
		t.Errorf("writing the visualization: %v", err)
	}
	if b, err := json.Marshal(h.ops); err == nil {
		os.WriteFile(filepath.Join(dir, "history.json"), b, 0o644)
	}
	for _, n := range c.nodes {
		if b, err := os.ReadFile(n.LogPath); err == nil {
			os.WriteFile(filepath.Join(dir, n.Name+".log"), b, 0o644)
		}
	}
	if res == porcupine.Unknown {
		t.Fatalf("porcupine could not decide within its time limit; history, node logs and a partial visualization are in %s (open %s)", dir, html)
	}
	t.Fatalf("history is not linearizable; porcupine's visualization: %s (history and node logs beside it)", html)
}

// TestLinearizabilityModel checks the register model and the treatment of
// unknown outcomes on small histories, without a cluster: porcupine must
// accept the linearizable ones and reject the others, so that
// TestLinearizability can fail.
func TestLinearizabilityModel(t *testing.T) {
	const open = math.MaxInt64 // an unknown write: may take effect at any time after its call
	op := func(client int, call, ret int64, in linInput, out linOutput) porcupine.Operation {
		if ret == open {
			ret = 1 << 40 // after everything else, as TestLinearizability does
		}
		return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
	}
	set := func(v int64) linInput { return linInput{Op: "set", Key: "k", A: v} }
	get := linInput{Op: "get", Key: "k"}
	incr := linInput{Op: "incr", Key: "k"}
	cas := func(a, b int64) linInput { return linInput{Op: "cas", Key: "k", A: a, B: b} }
	val := func(v int64) linOutput { return linOutput{Exists: true, Val: v} }
	unknown := linOutput{Unknown: true}
	for _, tc := range []struct {
		name string
		want bool // linearizable
		ops  []porcupine.Operation
	}{
		{"sequential", true, []porcupine.Operation{
			op(0, 0, 10, get, linOutput{}), op(0, 20, 30, set(1), linOutput{}), op(0, 40, 50, incr, val(2)),
			op(0, 60, 70, cas(2, 5), linOutput{Swapped: true}), op(0, 80, 90, get, val(5)),
		}},
		{"stale read", false, []porcupine.Operation{
			op(0, 0, 10, set(1), linOutput{}), op(0, 20, 30, set(2), linOutput{}), op(1, 40, 50, get, val(1)),
		}},
		{"concurrent reads in either order", true, []porcupine.Operation{
			op(0, 0, 10, set(1), linOutput{}), op(1, 20, 60, set(2), linOutput{}),
			op(2, 30, 40, get, val(2)), op(3, 30, 40, get, val(1)),
		}},
		{"unknown write seen late", true, []porcupine.Operation{
			op(0, 0, 10, set(1), linOutput{}), op(1, 20, open, set(2), unknown),
			op(2, 30, 40, get, val(1)), op(2, 500, 510, get, val(2)),
		}},
		{"unknown write never seen", true, []porcupine.Operation{
			op(0, 0, 10, set(1), linOutput{}), op(1, 20, open, set(2), unknown), op(2, 500, 510, get, val(1)),
		}},
		{"unknown write undone", false, []porcupine.Operation{
			op(0, 0, 10, set(1), linOutput{}), op(1, 20, open, set(2), unknown),
			op(2, 30, 40, get, val(2)), op(2, 50, 60, get, val(1)),
		}},
		{"unknown read constrains nothing", true, []porcupine.Operation{
			op(0, 0, 10, set(1), linOutput{}), op(1, 20, 30, get, unknown),
		}},
		{"lost increment", false, []porcupine.Operation{
			op(0, 0, 10, incr, val(1)), op(1, 20, 30, incr, val(1)),
		}},
		{"compare-and-set twice from the same value", false, []porcupine.Operation{
			op(0, 0, 10, set(5), linOutput{}), op(1, 20, 30, cas(5, 6), linOutput{Swapped: true}),
			op(2, 40, 50, cas(5, 7), linOutput{Swapped: true}),
		}},
	} {
		if got := porcupine.CheckOperations(registerModel, tc.ops); got != tc.want {
			t.Errorf("%s: linearizable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
