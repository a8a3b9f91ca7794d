package mux

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/redraft/redraft/internal/peer"
	"github.com/redraft/redraft/internal/tlsconf"
	"github.com/redraft/redraft/internal/tlsconf/tlstest"
)

// testPeers is a node of one test cluster, with a secret.
func testPeers(t *testing.T, name string, id peer.ClusterID, secret string) *peer.Config {
	t.Helper()
	ident, err := peer.OpenIdentity("")
	if err != nil {
		t.Fatal(err)
	}
	if err := ident.Set(id); err != nil {
		t.Fatal(err)
	}
	return &peer.Config{Secrets: peer.NewSecrets(secret), Identity: ident, Name: name}
}

var testCluster = peer.ClusterID{1, 2, 3}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testDialer dials the test mux as a member of its cluster.
func testDialer(t *testing.T) *Dialer {
	return &Dialer{Peers: testPeers(t, "127.0.0.1:1", testCluster, "s3cret"), Refusals: peer.NewRefusalLog(discardLog(), time.Minute)}
}

// dialPeer opens an authenticated stream for purpose to addr.
func dialPeer(t *testing.T, addr string, purpose peer.Purpose) net.Conn {
	t.Helper()
	c, err := testDialer(t).Dial(addr, purpose, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startMux listens on loopback and serves a mux until the test ends.
func startMux(t *testing.T) (*Mux, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := New(ln, discardLog(), Options{
		Peers:    testPeers(t, "127.0.0.1:2", testCluster, "s3cret"),
		Refusals: peer.NewRefusalLog(discardLog(), time.Minute),
	})
	done := make(chan struct{})
	go func() { m.Serve(); close(done) }()
	t.Cleanup(func() {
		ln.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("serve did not return after the listener closed")
		}
	})
	return m, ln.Addr().String()
}

// acceptWithin accepts one connection from l or fails after d.
func acceptWithin(t *testing.T, l net.Listener, d time.Duration) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.Accept()
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("accept: %v", r.err)
		}
		t.Cleanup(func() { r.c.Close() })
		return r.c
	case <-time.After(d):
		t.Fatalf("no connection routed within %v", d)
		return nil
	}
}

// nothingWithin checks that l has no routed connection queued after d.
func nothingWithin(t *testing.T, l *chanListener, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	if n := len(l.conns); n != 0 {
		t.Errorf("%d unexpected connections routed", n)
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func randomBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func readExactly(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return buf
}

func TestMuxRaftStreamPayloadIntact(t *testing.T) {
	m, addr := startMux(t)
	payload := randomBytes(300_000, 1) // far more than the sniffing buffer
	payload[0] = raftHeader            // a header byte in the payload is data
	c := dialPeer(t, addr, peer.PurposeRaft)
	go func() { c.Write(payload) }()
	sc := acceptWithin(t, m.raftLn, 5*time.Second)
	if got := readExactly(t, sc, len(payload)); !bytes.Equal(got, payload) {
		t.Fatalf("raft payload corrupted (first bytes %x, want %x)", got[:8], payload[:8])
	}
	// The stream is bidirectional.
	if _, err := sc.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	if got := readExactly(t, c, 5); string(got) != "reply" {
		t.Fatalf("client read %q", got)
	}
	nothingWithin(t, m.redisLn, 50*time.Millisecond)
}

// Raft bytes without the handshake never reach the Raft listener (nor the
// clients').
func TestMuxRaftBytesWithoutHandshakeRefused(t *testing.T) {
	m, addr := startMux(t)
	c := dial(t, addr)
	// A RequestVote as hashicorp/raft's transport frames it (type 1,
	// msgpack body), sent straight after the Raft byte.
	c.Write([]byte{raftHeader, 1, 0x85, 0xa4, 'T', 'e', 'r', 'm', 0xcf, 0, 0, 0, 0, 0, 0, 0x10, 0})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("the refused connection must be closed: %v", err)
	}
	nothingWithin(t, m.raftLn, 50*time.Millisecond)
	nothingWithin(t, m.redisLn, 0)
}

// The purposes go to their own listeners, as PeerConn where the receiver
// needs to know the peer.
func TestMuxPeerPurposes(t *testing.T) {
	m, addr := startMux(t)
	dialPeer(t, addr, peer.PurposeJoin).Write([]byte("J"))
	jc := acceptWithin(t, m.joinLn, 5*time.Second)
	if pc, ok := jc.(*PeerConn); !ok || pc.Peer.Name != "127.0.0.1:1" || pc.Peer.Purpose != peer.PurposeJoin {
		t.Fatalf("join stream routed as %T %+v", jc, jc)
	}
	if got := readExactly(t, jc, 1); string(got) != "J" {
		t.Fatalf("join stream read %q", got)
	}
	dialPeer(t, addr, peer.PurposeRelay).Write([]byte("PING\r\n"))
	rc := acceptWithin(t, m.redisLn, 5*time.Second)
	if pc, ok := rc.(*PeerConn); !ok || pc.Peer.Purpose != peer.PurposeRelay {
		t.Fatalf("relay stream routed as %T", rc)
	}
	if got := readExactly(t, rc, 6); string(got) != "PING\r\n" {
		t.Fatalf("relay stream read %q", got)
	}
	nothingWithin(t, m.raftLn, 50*time.Millisecond)
}

// A node with another secret, or of another cluster, is refused; the
// refusal names the reason on the dialing side.
func TestMuxRefusesWrongSecretAndOtherCluster(t *testing.T) {
	m, addr := startMux(t)
	for _, tc := range []struct {
		name   string
		peers  *peer.Config
		reason string
	}{
		{"wrong secret", testPeers(t, "127.0.0.1:3", testCluster, "guess"), "wrong cluster secret"},
		{"no secret", testPeers(t, "127.0.0.1:3", testCluster, ""), "wrong cluster secret"},
		{"other cluster", testPeers(t, "127.0.0.1:3", peer.ClusterID{9}, "s3cret"), "cluster"},
	} {
		d := &Dialer{Peers: tc.peers, Refusals: peer.NewRefusalLog(discardLog(), time.Minute)}
		_, err := d.Dial(addr, peer.PurposeRaft, 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: dial error %v, want one mentioning %q", tc.name, err, tc.reason)
		}
	}
	nothingWithin(t, m.raftLn, 50*time.Millisecond)
}

func TestMuxRESPBytesIntact(t *testing.T) {
	m, addr := startMux(t)
	cmd := []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
	c := dial(t, addr)
	if _, err := c.Write(cmd); err != nil {
		t.Fatal(err)
	}
	sc := acceptWithin(t, m.redisLn, 5*time.Second)
	if got := readExactly(t, sc, len(cmd)); !bytes.Equal(got, cmd) {
		t.Fatalf("redis side read %q, want %q", got, cmd)
	}
	// Bytes sent after routing arrive after the replayed ones.
	more := []byte("*1\r\n$4\r\nPING\r\n")
	c.Write(more)
	if got := readExactly(t, sc, len(more)); !bytes.Equal(got, more) {
		t.Fatalf("second command %q", got)
	}
	sc.Write([]byte("+OK\r\n"))
	if got := readExactly(t, c, 5); string(got) != "+OK\r\n" {
		t.Fatalf("client read %q", got)
	}
	nothingWithin(t, m.raftLn, 50*time.Millisecond)
}

func TestMuxRESPLargePipelineIntact(t *testing.T) {
	m, addr := startMux(t)
	var pipe bytes.Buffer
	for i := 0; pipe.Len() < 200_000; i++ {
		pipe.WriteString("*3\r\n$3\r\nSET\r\n$6\r\nkey:")
		pipe.WriteByte(byte('0' + i%10))
		pipe.WriteString("\r\n$5\r\nvalue\r\n")
	}
	want := pipe.Bytes()
	c := dial(t, addr)
	go func() { c.Write(want) }()
	sc := acceptWithin(t, m.redisLn, 5*time.Second)
	if got := readExactly(t, sc, len(want)); !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && got[i] == want[i] {
			i++
		}
		t.Fatalf("pipeline corrupted at byte %d", i)
	}
}

func TestMuxInlineCommand(t *testing.T) {
	m, addr := startMux(t)
	c := dial(t, addr)
	c.Write([]byte("PING\r\n"))
	sc := acceptWithin(t, m.redisLn, 5*time.Second)
	if got := readExactly(t, sc, 6); string(got) != "PING\r\n" {
		t.Fatalf("got %q", got)
	}
}

func TestMuxSilentClientGoesToRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for sniffTimeout")
	}
	m, addr := startMux(t)
	start := time.Now()
	silent := dial(t, addr)
	// A silent client must not hold up others.
	dialPeer(t, addr, peer.PurposeRaft)
	acceptWithin(t, m.raftLn, sniffTimeout/2)
	sc := acceptWithin(t, m.redisLn, sniffTimeout+5*time.Second)
	if waited := time.Since(start); waited < sniffTimeout-100*time.Millisecond {
		t.Errorf("silent client routed after %v, before sniffTimeout %v", waited, sniffTimeout)
	}
	// The routed connection carries no read deadline and gets what the
	// client sends later.
	silent.Write([]byte("*1\r\n$4\r\nPING\r\n"))
	buf := make([]byte, 14)
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "*1\r\n$4\r\nPING\r\n" {
		t.Fatalf("read %q %v", buf, err)
	}
}

func TestMuxClosedBeforeSpeakingIsDropped(t *testing.T) {
	m, addr := startMux(t)
	c := dial(t, addr)
	c.Close()
	nothingWithin(t, m.redisLn, 300*time.Millisecond)
	nothingWithin(t, m.raftLn, 0)
}

func TestMuxManyConcurrentConnections(t *testing.T) {
	m, addr := startMux(t)
	const n = 40
	for i := 0; i < n; i++ {
		msg := []byte{byte('A' + i%26), byte(i)}
		var c net.Conn
		if i%2 == 0 {
			c = dialPeer(t, addr, peer.PurposeRaft)
		} else {
			c = dial(t, addr)
		}
		go c.Write(msg)
	}
	seen := map[byte]bool{}
	for i := 0; i < n; i++ {
		var sc net.Conn
		var want int
		if i < n/2 {
			sc = acceptWithin(t, m.raftLn, 5*time.Second)
		} else {
			sc = acceptWithin(t, m.redisLn, 5*time.Second)
		}
		got := readExactly(t, sc, 2)
		want = int(got[1])
		if (i < n/2) != (want%2 == 0) {
			t.Errorf("connection %d routed to the wrong side", want)
		}
		if got[0] != byte('A'+want%26) || seen[got[1]] {
			t.Errorf("bad or duplicate message %q", got)
		}
		seen[got[1]] = true
	}
}

func TestMuxServeClosesListeners(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := New(ln, discardLog(), Options{})
	if m.raftLn.Addr().String() != ln.Addr().String() || m.redisLn.Addr() != ln.Addr() {
		t.Error("routed listeners must report the shared address")
	}
	done := make(chan struct{})
	go func() { m.Serve(); close(done) }()
	ln.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return")
	}
	for _, l := range []*chanListener{m.raftLn, m.redisLn} {
		if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after close: %v", err)
		}
	}
}

func TestChanListenerPushAndAccept(t *testing.T) {
	l := newChanListener(&net.TCPAddr{})
	a, b := net.Pipe()
	defer b.Close()
	l.push(a)
	if c, err := l.Accept(); err != nil || c != a {
		t.Fatalf("Accept = %v, %v", c, err)
	}
	a.Close()
	l.Close()
	l.Close() // idempotent
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
}

// A connection routed after the listener closed must be closed, not left
// open in the queue where nobody will ever accept it.
func TestChanListenerPushAfterClose(t *testing.T) {
	l := newChanListener(&net.TCPAddr{})
	l.Close()
	leaked := 0
	for i := 0; i < 20; i++ {
		a, b := net.Pipe()
		l.push(a) // must not block
		b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := b.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			leaked++
		}
		a.Close()
		b.Close()
	}
	if leaked > 0 {
		t.Errorf("chanListener.push after Close left %d of 20 connections open", leaked)
	}
}

func TestPeekedConnReplaysFirst(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	p := &peekedConn{Conn: a, peeked: []byte("hello")}
	go b.Write([]byte(" world"))
	buf := make([]byte, 3)
	var got []byte
	for len(got) < len("hello world") {
		n, err := p.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "hello world" {
		t.Fatalf("got %q", got)
	}
}

func TestStreamLayerDialReachesRaftListener(t *testing.T) {
	m, addr := startMux(t)
	sl := NewStreamLayer(m, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 7000}, testDialer(t))
	if sl.Addr().String() != "10.0.0.1:7000" {
		t.Errorf("Addr = %v", sl.Addr())
	}
	c, err := sl.Dial(raft.ServerAddress(addr), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("append-entries"))
	sc := acceptWithin(t, sl, 5*time.Second)
	if got := readExactly(t, sc, 14); string(got) != "append-entries" {
		t.Fatalf("got %q", got)
	}
	if _, err := sl.Dial("127.0.0.1:1", time.Second); err == nil {
		t.Error("dial to a closed port succeeded")
	}
}

// TestDialerLeavesFromSource: with Source set, a peer stream leaves from
// that address (the acceptor sees it as the remote address); without it,
// the system's choice (127.0.0.1 for a loopback peer).
func TestDialerLeavesFromSource(t *testing.T) {
	m, addr := startMux(t)
	for _, src := range []net.IP{net.IPv4(127, 0, 0, 23), nil} {
		d := testDialer(t)
		d.Source = src
		c, err := d.Dial(addr, peer.PurposeRaft, 5*time.Second)
		if err != nil {
			t.Fatalf("dial from %v: %v", src, err)
		}
		sc := acceptWithin(t, m.Raft(), 5*time.Second)
		want := "127.0.0.1"
		if src != nil {
			want = src.String()
		}
		if got := sc.RemoteAddr().(*net.TCPAddr).IP.String(); got != want {
			t.Errorf("Source %v: the stream arrived from %s, want %s", src, got, want)
		}
		sc.Close()
		c.Close()
	}
}

// FuzzMuxFirstBytes sends any bytes as the start of a connection: the mux
// never panics or blocks, and goes on routing: a Raft stream and a client
// opened afterwards both reach their listener.
func FuzzMuxFirstBytes(f *testing.F) {
	for _, seed := range []string{"", "\x01", "\x01\x00\x00", "*1\r\n$4\r\nPING\r\n", "PING\r\n", "\x16\x03\x01\x00", "\x00\xff", "\x02"} {
		f.Add([]byte(seed))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	ident, err := peer.OpenIdentity("")
	if err != nil {
		f.Fatal(err)
	}
	m := New(ln, discardLog(), Options{
		Peers:    &peer.Config{Secrets: peer.NewSecrets("s3cret"), Identity: ident, Name: "127.0.0.1:2"},
		Refusals: peer.NewRefusalLog(discardLog(), time.Minute),
	})
	go m.Serve()
	f.Cleanup(func() { ln.Close() })
	drain := func(l net.Listener) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}
	go drain(m.Raft())
	clients := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := m.Clients().Accept()
			if err != nil {
				return
			}
			clients <- c
		}
	}()
	addr := ln.Addr().String()
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(in)
		c.Close()
		// A client still gets through (its first byte decides at once).
		probe, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer probe.Close()
		if _, err := probe.Write([]byte("PING\r\n")); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(5 * time.Second)
		for {
			select {
			case sc := <-clients:
				sc.Close()
				if sameConn(sc, probe) {
					return
				}
			case <-deadline:
				t.Fatalf("after %q, a new client is not routed", in)
			}
		}
	})
}

// sameConn reports whether server side s is the other end of client c.
func sameConn(s, c net.Conn) bool { return s.RemoteAddr().String() == c.LocalAddr().String() }

// startTLSMux serves a mux whose port speaks TLS, with node certificates
// from ca, clients governed by auth.
func startTLSMux(t *testing.T, ca *tlstest.CA, auth tlsconf.ClientAuth) (*Mux, string, *tlsconf.Store) {
	t.Helper()
	f := ca.WriteFiles(t, t.TempDir(), "node", net.IPv4(127, 0, 0, 1))
	store, err := tlsconf.Load(tlsconf.Files{Cert: f.Cert, Key: f.Key, CA: f.CA}, auth)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := New(ln, discardLog(), Options{
		TLS:      store,
		Peers:    testPeers(t, "127.0.0.1:2", testCluster, "s3cret"),
		Refusals: peer.NewRefusalLog(discardLog(), time.Minute),
	})
	go m.Serve()
	t.Cleanup(func() { ln.Close() })
	return m, ln.Addr().String(), store
}

// TLS first, then the sniff: clients and peers share the TLS port; a
// plain-text client gets a clear error; a peer needs a certificate the CA
// signed even when clients do not.
func TestMuxTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	m, addr, store := startTLSMux(t, ca, tlsconf.ClientAuthNo)

	// A client without a certificate (tls-auth-clients no).
	cfg := ca.ClientConfig(t, nil)
	cfg.ServerName = "127.0.0.1"
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("PING\r\n"))
	sc := acceptWithin(t, m.redisLn, 5*time.Second)
	if got := readExactly(t, sc, 6); string(got) != "PING\r\n" {
		t.Fatalf("TLS client read %q", got)
	}

	// A peer over TLS.
	d := testDialer(t)
	d.TLS = store
	pc, err := d.Dial(addr, peer.PurposeRaft, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	acceptWithin(t, m.raftLn, 5*time.Second)

	// Plain text on the TLS port.
	plain := dial(t, addr)
	plain.Write([]byte("*1\r\n$4\r\nPING\r\n"))
	plain.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(plain)
	if string(got) != plainTextRefusal {
		t.Fatalf("plain-text client got %q", got)
	}

	// A peer over TLS without a certificate is not a peer.
	c2, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	c2.Write([]byte{raftHeader})
	if err := peer.Dial(c2, testPeers(t, "127.0.0.1:3", testCluster, "s3cret"), peer.PurposeRaft); err == nil {
		t.Fatal("a peer without a certificate got through")
	}
	// Nor is a plain-text one.
	raw := dial(t, addr)
	raw.Write([]byte{raftHeader})
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, _ := io.ReadAll(raw); len(b) != 0 {
		t.Fatalf("a plain-text peer got %q", b)
	}
	nothingWithin(t, m.raftLn, 50*time.Millisecond)
}
