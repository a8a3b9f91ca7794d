package tests

// Client-side helpers for the fault tests: a client that follows -TRY to
// the leader, the classification of a command's outcome (applied, not
// applied, or unknown), and a write load that records every acknowledged
// write so that none can be lost unnoticed.

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// outcome says what a command's reply proves about its effect.
type outcome int

const (
	applied outcome = iota // a reply from the command itself
	notDone                // definitely not applied: -TRY, -CLUSTERDOWN, refused dial
	mayBe                  // may or may not have been applied
)

// String names the outcome for logs.
func (o outcome) String() string {
	return [...]string{"applied", "not applied", "unknown"}[o]
}

// classify maps a command's error to its outcome. Anything not known to be
// a refusal before the command was proposed counts as unknown, so a
// linearizability check can never be fooled by a guess.
func classify(err error) outcome {
	if err == nil || err == redis.Nil {
		return applied
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return notDone // nothing was sent
	}
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "TRY "), strings.HasPrefix(msg, "CLUSTERDOWN"):
		return notDone
	}
	return mayBe
}

// redirectClient sends commands to the leader of a cluster: it follows -TRY
// replies and moves to another node after a connection error or
// -CLUSTERDOWN. It is used by one goroutine at a time.
type redirectClient struct {
	targets func() []string     // advertised addresses of the nodes
	dial    func(string) string // advertised address -> address to dial
	timeout time.Duration       // per command
	rnd     *rand.Rand
	cur     string
	clients map[string]*redis.Client
}

// newRedirectClient returns a client over the nodes targets lists, dialing
// the address dial maps each to (nil: as advertised).
func newRedirectClient(targets func() []string, dial func(string) string, timeout time.Duration, seed int64) *redirectClient {
	if dial == nil {
		dial = func(s string) string { return s }
	}
	return &redirectClient{targets: targets, dial: dial, timeout: timeout,
		rnd: rand.New(rand.NewSource(seed)), clients: map[string]*redis.Client{}}
}

// client returns the connection pool to the node advertised at addr: the
// harness's client options (newClient), with this client's timeout.
func (rc *redirectClient) client(addr string) *redis.Client {
	c := rc.clients[addr]
	if c == nil {
		o := clientOptions(rc.dial(addr), 0, "", nil)
		o.DialTimeout = time.Second
		o.ReadTimeout, o.WriteTimeout = rc.timeout, rc.timeout
		o.PoolSize = 2
		c = redis.NewClient(o)
		rc.clients[addr] = c
	}
	return c
}

// hop moves to another node, at random.
func (rc *redirectClient) hop() {
	ts := rc.targets()
	if len(ts) > 0 {
		rc.cur = ts[rc.rnd.Intn(len(ts))]
	}
}

// do runs args once on the current target. A -TRY reply moves the client to
// the leader it names; a refused connection or -CLUSTERDOWN to another node.
// It returns the reply, what it proves, and the error.
func (rc *redirectClient) do(args ...interface{}) (interface{}, outcome, error) {
	if rc.cur == "" {
		rc.hop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), rc.timeout)
	defer cancel()
	v, err := rc.client(rc.cur).Do(ctx, args...).Result()
	o := classify(err)
	if err != nil && err != redis.Nil {
		if msg := err.Error(); strings.HasPrefix(msg, "TRY ") {
			rc.cur = strings.TrimPrefix(msg, "TRY ")
		} else if o == notDone || o == mayBe && !strings.Contains(msg, "may or may not") {
			rc.hop() // node down, paused, cut off or leaderless
		}
	}
	if err == redis.Nil {
		err = nil
	}
	return v, o, err
}

// close releases the connections.
func (rc *redirectClient) close() {
	for _, c := range rc.clients {
		c.Close()
	}
}

// ---------------------------------------------------------------------------
// A write load with a record of acknowledged writes

// writeLoad runs workers that SET unique keys through redirect clients and
// records each key's fate: acknowledged (must survive anything), refused
// (never applied) or unknown.
type writeLoad struct {
	prefix  string
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	acked   map[string]string
	unknown map[string]string
	refused int
	gate    sync.RWMutex // held for reading by each write; pause takes it
}

// startWriteLoad starts workers writers over the nodes targets lists (dial
// maps an advertised address to the one to dial; nil: as advertised). Keys
// are prefix:worker:seq.
func startWriteLoad(t testing.TB, prefix string, workers int, targets func() []string, dial func(string) string) *writeLoad {
	w := &writeLoad{prefix: prefix, stop: make(chan struct{}), acked: map[string]string{}, unknown: map[string]string{}}
	for i := 0; i < workers; i++ {
		w.wg.Add(1)
		go func(id int) {
			defer w.wg.Done()
			rc := newRedirectClient(targets, dial, 3*time.Second, time.Now().UnixNano()+int64(id))
			defer rc.close()
			for seq := 0; ; seq++ {
				select {
				case <-w.stop:
					return
				default:
				}
				key := fmt.Sprintf("%s:%d:%d", prefix, id, seq)
				val := fmt.Sprintf("v%d", rc.rnd.Int63())
				w.gate.RLock()
				_, o, err := rc.do("SET", key, val)
				w.gate.RUnlock()
				w.mu.Lock()
				switch o {
				case applied:
					if err == nil {
						w.acked[key] = val
					} else {
						w.unknown[key] = val // an error reply from the child: unexpected
					}
				case notDone:
					w.refused++
				default:
					w.unknown[key] = val
				}
				w.mu.Unlock()
				if o != applied {
					time.Sleep(20 * time.Millisecond) // don't spin while there is no leader
				}
			}
		}(i)
	}
	t.Cleanup(w.halt)
	return w
}

// halt stops the workers and waits for them (idempotent).
func (w *writeLoad) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

// settled pauses the load (waiting for writes in flight), waits until all
// running nodes report the same RAFTDIGEST at the same index, resumes the
// load and returns that digest.
func (w *writeLoad) settled(t testing.TB, nodes ...*Node) digest {
	t.Helper()
	w.gate.Lock()
	defer w.gate.Unlock()
	return waitApplied(t, nodes...)
}

// count returns the number of acknowledged writes so far.
func (w *writeLoad) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitProgress waits until n more writes than now have been acknowledged:
// the cluster is available.
func (w *writeLoad) waitProgress(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	target := w.count() + n
	eventually(t, timeout, func() error {
		if got := w.count(); got < target {
			return fmt.Errorf("write load: %d acknowledged writes, waiting for %d", got, target)
		}
		return nil
	})
}

// summary describes the load's results.
func (w *writeLoad) summary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprintf("%d acknowledged, %d refused, %d unknown", len(w.acked), w.refused, len(w.unknown))
}

// check stops the load and verifies on n (which must serve reads: the
// leader, or any node at --consistency low) that every acknowledged write
// is there with its value, and that every key of the load is one it wrote.
func (w *writeLoad) check(t testing.TB, n *Node) {
	t.Helper()
	w.halt()
	w.mu.Lock()
	keys := make([]string, 0, len(w.acked))
	for k := range w.acked {
		keys = append(keys, k)
	}
	w.mu.Unlock()
	sort.Strings(keys)
	if len(keys) == 0 {
		t.Fatalf("write load %s: nothing was acknowledged", w.prefix)
	}
	var lost []string
	for i := 0; i < len(keys); i += 500 {
		batch := keys[i:min(i+500, len(keys))]
		args := []interface{}{"MGET"}
		for _, k := range batch {
			args = append(args, k)
		}
		v := n.DoEventually(appliedTimeout, args...)
		vals, ok := v.([]interface{})
		if !ok || len(vals) != len(batch) {
			t.Fatalf("MGET on %s: %#v", n, v)
		}
		for j, k := range batch {
			if vals[j] != w.acked[k] {
				lost = append(lost, fmt.Sprintf("%s=%v (acknowledged %s)", k, vals[j], w.acked[k]))
			}
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged writes lost or changed on %s, e.g. %s", len(lost), len(keys), n, strings.Join(lost[:min(5, len(lost))], "; "))
	}
	t.Logf("write load %s: %s; all acknowledged writes present on %s", w.prefix, w.summary(), n)
}
