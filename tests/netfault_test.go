package tests

// A fault-injecting TCP proxy for the peer path, and clusters wired through
// it, so partitions can be tested without root.
//
// Every node of a faultCluster binds its own loopback IP (127.B.C.11,
// 127.B.C.12, …; all of 127/8 is loopback on Linux) and advertises a proxy
// listener on 127.0.0.1 that forwards to its real port. redraft dials peers
// from its -bind address, so the proxy tells which node a connection comes
// from by its source IP, and which node it goes to by the listener it
// arrived on. Clients (source 127.0.0.1) are never cut or delayed.
//
// A TCP connection carries both directions: cutting i→j drops what i sends on
// connections i dialed to j, and what i sends back on connections j dialed to
// i. Dropped bytes are read and discarded, so the sender sees no error, only
// silence, as in a real partition. A connection that lost bytes can no
// longer be parsed, so it is closed when the link heals (or when it would
// carry data again); both sides then redial.

import (
	"fmt"
	"math/rand"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clientSide is the node index of connections that come from no node
// (test clients): their traffic is never cut or delayed.
const clientSide = -1

// link is one direction between two nodes (indexes into the proxy's nodes).
type link struct{ from, to int }

// netFault is the fault-injecting proxy. Nodes are numbered from 0.
type netFault struct {
	t      testing.TB
	mu     sync.Mutex
	byIP   map[string]int // source IP -> node index
	cuts   map[link]bool
	delays map[link]time.Duration
	lns    []net.Listener
	conns  map[*proxyConn]bool
	seen   map[link]int // connections accepted per (source, destination)
	held   map[link]int // chunks read and not yet written or dropped
	closed bool
	wg     sync.WaitGroup
}

// newNetFault returns an empty proxy; it is shut down at test cleanup.
func newNetFault(t testing.TB) *netFault {
	p := &netFault{
		t:      t,
		byIP:   map[string]int{},
		cuts:   map[link]bool{},
		delays: map[link]time.Duration{},
		conns:  map[*proxyConn]bool{},
		held:   map[link]int{},
		seen:   map[link]int{},
	}
	t.Cleanup(p.close)
	return p
}

// listen registers node idx, whose outgoing connections come from srcIP and
// whose real address is target, and returns the proxy address ("127.0.0.1:P")
// that the node advertises and that peers and clients dial.
func (p *netFault) listen(idx int, srcIP, target string) string {
	p.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.t.Fatalf("netFault: listen: %v", err)
	}
	p.mu.Lock()
	p.byIP[srcIP] = idx
	p.lns = append(p.lns, ln)
	p.mu.Unlock()
	p.wg.Add(1)
	go p.accept(ln, idx, target)
	return ln.Addr().String()
}

// accept serves the connections to node dst's proxy listener ln, each
// forwarded to target, until ln is closed.
func (p *netFault) accept(ln net.Listener, dst int, target string) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		src := clientSide
		if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			p.mu.Lock()
			if i, ok := p.byIP[a.IP.String()]; ok {
				src = i
			}
			p.mu.Unlock()
		}
		p.wg.Add(1)
		go p.serve(c, src, dst, target)
	}
}

// proxyConn is one proxied connection: a (from the dialer) and b (to the
// node it was meant for).
type proxyConn struct {
	a, b     net.Conn
	src, dst int
	tainted  atomic.Bool // bytes were dropped: the stream is broken
	once     sync.Once
}

// close closes both sides (once).
func (pc *proxyConn) close() {
	pc.once.Do(func() {
		pc.a.Close()
		pc.b.Close()
	})
}

// serve forwards connection a from node src (or a client) to node dst at
// target, both ways, until either side closes.
func (p *netFault) serve(a net.Conn, src, dst int, target string) {
	defer p.wg.Done()
	b, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil { // the node is down: the dialer sees a closed connection
		a.Close()
		return
	}
	pc := &proxyConn{a: a, b: b, src: src, dst: dst}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		pc.close()
		return
	}
	p.conns[pc] = true
	p.seen[link{src, dst}]++
	p.mu.Unlock()
	var done sync.WaitGroup
	done.Add(2)
	go func() { defer done.Done(); p.pump(pc, a, b, link{src, dst}) }()
	go func() { defer done.Done(); p.pump(pc, b, a, link{dst, src}) }()
	done.Wait()
	pc.close()
	p.mu.Lock()
	delete(p.conns, pc)
	p.mu.Unlock()
}

// chunk is data read from one side, to be written to the other at due.
type chunk struct {
	data []byte
	due  time.Time
}

// pump copies from → to for direction l, dropping what a cut link carries
// and holding each chunk back by the link's delay.
func (p *netFault) pump(pc *proxyConn, from, to net.Conn, l link) {
	queue := make(chan chunk, 64)
	go func() {
		defer close(queue)
		buf := make([]byte, 64<<10)
		for {
			n, err := from.Read(buf)
			if n > 0 {
				d, cut := p.rule(l)
				if cut {
					pc.tainted.Store(true)
				} else {
					p.hold(l, 1)
					queue <- chunk{append([]byte(nil), buf[:n]...), time.Now().Add(d)}
				}
			}
			if err != nil {
				return
			}
		}
	}()
	for ch := range queue {
		if wait := time.Until(ch.due); wait > 0 {
			time.Sleep(wait) // the injected latency itself
		}
		p.hold(l, -1)
		if _, cut := p.rule(l); cut {
			pc.tainted.Store(true)
			continue
		}
		if pc.tainted.Load() {
			pc.close() // part of the stream is lost; make both sides redial
			continue
		}
		if _, err := to.Write(ch.data); err != nil {
			pc.close()
		}
	}
	if tc, ok := to.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// hold counts chunks of direction l held back by the proxy.
func (p *netFault) hold(l link, n int) {
	p.mu.Lock()
	p.held[l] += n
	p.mu.Unlock()
}

// holding is the number of chunks node from has sent to node to that the
// proxy has not delivered yet.
func (p *netFault) holding(from, to int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held[link{from, to}]
}

// rule returns the delay and whether direction l is cut.
func (p *netFault) rule(l link) (time.Duration, bool) {
	if l.from == clientSide || l.to == clientSide {
		return 0, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.delays[l], p.cuts[l]
}

// nodes lists the registered node indexes; the caller holds p.mu.
func (p *netFault) nodes() []int {
	var out []int
	for _, i := range p.byIP {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// cut drops everything from node from to node to (one direction).
func (p *netFault) cut(from, to int) {
	p.t.Helper()
	p.mu.Lock()
	p.cuts[link{from, to}] = true
	p.mu.Unlock()
	p.t.Logf("netfault: cut %d->%d", from, to)
}

// cutBoth cuts a→b and b→a.
func (p *netFault) cutBoth(a, b int) {
	p.cut(a, b)
	p.cut(b, a)
}

// isolate cuts node i from every other node, both ways.
func (p *netFault) isolate(i int) {
	p.t.Helper()
	p.mu.Lock()
	for _, j := range p.nodes() {
		if j != i {
			p.cuts[link{i, j}] = true
			p.cuts[link{j, i}] = true
		}
	}
	p.mu.Unlock()
	p.t.Logf("netfault: isolate %d", i)
}

// partition cuts every pair of nodes that are in different groups, both
// ways; nodes in no group are cut from everyone.
func (p *netFault) partition(groups ...[]int) {
	p.t.Helper()
	group := map[int]int{}
	for g, members := range groups {
		for _, i := range members {
			group[i] = g + 1
		}
	}
	p.mu.Lock()
	for _, i := range p.nodes() {
		for _, j := range p.nodes() {
			if i != j && (group[i] == 0 || group[i] != group[j]) {
				p.cuts[link{i, j}] = true
			}
		}
	}
	p.mu.Unlock()
	p.t.Logf("netfault: partition %v", groups)
}

// delay holds back what node from sends to node to by d (0 removes it).
func (p *netFault) delay(from, to int, d time.Duration) {
	p.t.Helper()
	p.mu.Lock()
	p.delays[link{from, to}] = d
	p.mu.Unlock()
	p.t.Logf("netfault: delay %d->%d by %v", from, to, d)
}

// heal removes every cut and delay and closes the connections that lost
// bytes, so the nodes redial at once instead of waiting for their timeouts.
func (p *netFault) heal() {
	p.t.Helper()
	p.mu.Lock()
	p.cuts = map[link]bool{}
	p.delays = map[link]time.Duration{}
	var broken []*proxyConn
	for pc := range p.conns {
		if pc.tainted.Load() {
			broken = append(broken, pc)
		}
	}
	p.mu.Unlock()
	for _, pc := range broken {
		pc.close()
	}
	p.t.Logf("netfault: heal (%d broken connections closed)", len(broken))
}

// accepted reports how many connections node from opened to node to so far
// (from = clientSide for clients).
func (p *netFault) accepted(from, to int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[link{from, to}]
}

// close stops every listener and connection and waits for the goroutines.
func (p *netFault) close() {
	p.mu.Lock()
	p.closed = true
	for _, ln := range p.lns {
		ln.Close()
	}
	var all []*proxyConn
	for pc := range p.conns {
		all = append(all, pc)
	}
	p.mu.Unlock()
	for _, pc := range all {
		pc.close()
	}
	p.wg.Wait()
}

// ---------------------------------------------------------------------------
// Clusters behind the proxy

// faultCluster is a redraft cluster whose peer traffic passes through a
// netFault proxy. Node i (from 0) binds 127.B.C.(11+i) and is proxy node i;
// it advertises its proxy address, which is also what its clients dial.
type faultCluster struct {
	t     testing.TB
	net   *netFault
	base  string // "127.B.C."
	opts  nodeOpts
	extra [][]string // extra flags per node index
	mu    sync.Mutex
	nodes []*Node // every node ever started, in index order
}

// startFaultCluster starts size nodes behind a new proxy: node 0 bootstraps,
// the others -join it through its proxy address. It waits for every member
// and one leader. o applies to every node (Name, Port, Bind, Advertise and
// Join are set per node); extra[i], if given, adds flags to node i.
func startFaultCluster(t testing.TB, size int, o nodeOpts, extra ...[]string) *faultCluster {
	t.Helper()
	c := &faultCluster{
		t:     t,
		net:   newNetFault(t),
		base:  fmt.Sprintf("127.%d.%d.", 100+rand.Intn(100), 1+rand.Intn(250)),
		opts:  o,
		extra: extra,
	}
	n0 := c.addNode("")
	waitLeader(t, n0)
	for i := 1; i < size; i++ {
		c.addNode(n0.Addr)
	}
	nodes := c.all()
	waitMembers(t, nodes...)
	waitLeader(t, nodes...)
	return c
}

// addNode starts the next node (with -join join, unless join is "") and
// waits for it to answer PING; it does not wait for it to become a member.
func (c *faultCluster) addNode(join string) *Node {
	c.t.Helper()
	c.mu.Lock()
	idx := len(c.nodes)
	c.mu.Unlock()
	ip := c.base + strconv.Itoa(11+idx)
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		c.t.Fatalf("listen on %s: %v (all of 127/8 should be loopback)", ip, err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	o := c.opts
	o.Name, o.Port, o.Bind, o.Join = fmt.Sprintf("n%d", idx+1), port, ip, join
	o.Advertise = c.net.listen(idx, ip, net.JoinHostPort(ip, strconv.Itoa(port)))
	o.Args = append([]string(nil), o.Args...)
	if idx < len(c.extra) {
		o.Args = append(o.Args, c.extra[idx]...)
	}
	n := startNode(c.t, o)
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	return n
}

// all returns every node started so far (safe to call from any goroutine).
func (c *faultCluster) all() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Node(nil), c.nodes...)
}

// direct maps a node's advertised (proxy) address to the address it
// listens on, for clients that bypass the proxy; other addresses are
// returned unchanged.
func (c *faultCluster) direct(addr string) string {
	for _, n := range c.all() {
		if n.Addr == addr {
			return n.Listen
		}
	}
	return addr
}

// nodeAddrs returns a targets function over the running nodes of c.
func (c *faultCluster) nodeAddrs() func() []string {
	return func() []string {
		var out []string
		for _, n := range running(c.all()) {
			out = append(out, n.Addr)
		}
		return out
	}
}

// idx is n's proxy index.
func (c *faultCluster) idx(n *Node) int {
	for i, m := range c.all() {
		if m == n {
			return i
		}
	}
	c.t.Fatalf("%s is not in this cluster", n)
	return 0
}

// isolate cuts n off from every other node, both ways.
func (c *faultCluster) isolate(n *Node) {
	c.t.Helper()
	c.net.isolate(c.idx(n))
}

// cut drops what from sends to to.
func (c *faultCluster) cut(from, to *Node) {
	c.t.Helper()
	c.net.cut(c.idx(from), c.idx(to))
}

// partition splits the nodes into groups that cannot reach each other.
func (c *faultCluster) partition(groups ...[]*Node) {
	c.t.Helper()
	var gs [][]int
	for _, g := range groups {
		var ids []int
		for _, n := range g {
			ids = append(ids, c.idx(n))
		}
		gs = append(gs, ids)
	}
	c.net.partition(gs...)
}

// heal removes every fault.
func (c *faultCluster) heal() {
	c.t.Helper()
	c.net.heal()
}

// ---------------------------------------------------------------------------
// Tests of the proxy itself (no redraft involved)

// TestNetFaultProxy checks the proxy's semantics on plain TCP: forwarding
// both ways, a one-way cut drops exactly one direction on connections dialed
// either way, heal closes broken connections and new ones work, delay holds
// data back, and clients are never cut.
func TestNetFaultProxy(t *testing.T) {
	p := newNetFault(t)
	base := fmt.Sprintf("127.%d.%d.", 100+rand.Intn(100), 1+rand.Intn(250))
	ips := []string{base + "11", base + "12"}
	// Two "nodes": each is an echo server that prefixes its replies with
	// its name, bound to its own IP.
	var proxyAddr []string
	for i, ip := range ips {
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatalf("listen %s: %v", ip, err)
		}
		t.Cleanup(func() { ln.Close() })
		name := fmt.Sprintf("n%d:", i)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					buf := make([]byte, 1024)
					for {
						n, err := c.Read(buf)
						if err != nil {
							return
						}
						c.Write(append([]byte(name), buf[:n]...))
					}
				}()
			}
		}()
		proxyAddr = append(proxyAddr, p.listen(i, ip, ln.Addr().String()))
	}
	dialFrom := func(ip, addr string) net.Conn {
		t.Helper()
		d := net.Dialer{Timeout: 2 * time.Second}
		if ip != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
		}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %s from %s: %v", addr, ip, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// roundTrip writes msg and returns what comes back within d ("" if
	// nothing, "EOF" if the connection closed).
	roundTrip := func(c net.Conn, msg string, d time.Duration) string {
		t.Helper()
		if _, err := c.Write([]byte(msg)); err != nil {
			return "EOF"
		}
		c.SetReadDeadline(time.Now().Add(d))
		buf := make([]byte, 1024)
		n, err := c.Read(buf)
		if n > 0 {
			return string(buf[:n])
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return ""
		}
		return "EOF"
	}
	c01 := dialFrom(ips[0], proxyAddr[1]) // node 0 dialed node 1
	c10 := dialFrom(ips[1], proxyAddr[0]) // node 1 dialed node 0
	cl := dialFrom("", proxyAddr[1])      // a client
	mustEqual(t, "0->1 before cut", roundTrip(c01, "a", 2*time.Second), "n1:a")
	mustEqual(t, "1->0 before cut", roundTrip(c10, "b", 2*time.Second), "n0:b")
	eventually(t, 2*time.Second, func() error {
		if p.accepted(0, 1) != 1 || p.accepted(1, 0) != 1 || p.accepted(clientSide, 1) != 1 {
			return fmt.Errorf("sources not identified: 0->1 %d, 1->0 %d, client->1 %d",
				p.accepted(0, 1), p.accepted(1, 0), p.accepted(clientSide, 1))
		}
		return nil
	})

	// Cut 0->1: 0's request on its own connection is dropped; on the
	// connection 1 dialed, 1's request reaches 0 but 0's answer is dropped.
	p.cut(0, 1)
	mustEqual(t, "0->1 request while cut", roundTrip(c01, "c", 300*time.Millisecond), "")
	mustEqual(t, "1->0 answer while cut", roundTrip(c10, "d", 300*time.Millisecond), "")
	mustEqual(t, "client while cut", roundTrip(cl, "e", 2*time.Second), "n1:e")
	// A fresh connection from 1 to 0 is accepted and 1's bytes reach 0, but
	// 0's echo is lost.
	c10b := dialFrom(ips[1], proxyAddr[0])
	mustEqual(t, "new 1->0 conn while cut", roundTrip(c10b, "f", 300*time.Millisecond), "")

	p.heal()
	// Connections that lost bytes are closed; a clean one keeps working.
	mustEqual(t, "broken 0->1 conn after heal", roundTrip(c01, "g", 2*time.Second), "EOF")
	mustEqual(t, "client after heal", roundTrip(cl, "h", 2*time.Second), "n1:h")
	c01 = dialFrom(ips[0], proxyAddr[1])
	mustEqual(t, "new 0->1 conn after heal", roundTrip(c01, "i", 2*time.Second), "n1:i")

	// Delay: 200 ms each way.
	p.delay(0, 1, 200*time.Millisecond)
	p.delay(1, 0, 200*time.Millisecond)
	start := time.Now()
	mustEqual(t, "delayed round trip", roundTrip(c01, "j", 3*time.Second), "n1:j")
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Errorf("delayed round trip took %v, want >= 400ms", el)
	}
	p.heal()
	if d, cut := p.rule(link{0, 1}); d != 0 || cut {
		t.Errorf("after heal: delay %v, cut %v", d, cut)
	}
	mustEqual(t, "round trip after removing the delay", roundTrip(c01, "k", 2*time.Second), "n1:k")

	// Isolation cuts both directions; partition with one group per node too.
	p.isolate(1)
	mustEqual(t, "0->1 while 1 isolated", roundTrip(c01, "l", 300*time.Millisecond), "")
	p.heal()
	p.partition([]int{0}, []int{1})
	c10 = dialFrom(ips[1], proxyAddr[0])
	mustEqual(t, "1->0 while partitioned", roundTrip(c10, "m", 300*time.Millisecond), "")
	p.mu.Lock()
	cuts := len(p.cuts)
	p.mu.Unlock()
	if cuts != 2 {
		t.Errorf("partition of two nodes set %d cuts, want 2", cuts)
	}
}
