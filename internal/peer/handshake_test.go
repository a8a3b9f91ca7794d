package peer

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	clusterA = ClusterID{0xa}
	clusterB = ClusterID{0xb}
)

// node builds a handshake configuration.
func node(t *testing.T, name string, id *ClusterID, secrets ...string) *Config {
	t.Helper()
	ident, err := OpenIdentity("")
	if err != nil {
		t.Fatal(err)
	}
	if id != nil {
		if err := ident.Set(*id); err != nil {
			t.Fatal(err)
		}
	}
	return &Config{Secrets: NewSecrets(secrets...), Identity: ident, Name: name}
}

// tap records everything written through it.
type tap struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *tap) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.out.Write(b)
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// handshake runs both sides over a pipe and returns their results and
// every byte that crossed it.
func handshake(t *testing.T, dialer, acceptor *Config, purpose Purpose) (Peer, error, error, []byte) {
	t.Helper()
	a, d := net.Pipe()
	defer a.Close()
	defer d.Close()
	deadline := time.Now().Add(5 * time.Second)
	a.SetDeadline(deadline)
	d.SetDeadline(deadline)
	ta, td := &tap{Conn: a}, &tap{Conn: d}
	var p Peer
	var acceptErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		p, acceptErr = Accept(ta, acceptor)
		if acceptErr != nil {
			a.Close()
		}
	}()
	dialErr := Dial(td, dialer, purpose)
	d.Close()
	<-done
	wire := append(ta.out.Bytes(), td.out.Bytes()...)
	return p, acceptErr, dialErr, wire
}

func TestHandshakeAccepts(t *testing.T) {
	for _, purpose := range []Purpose{PurposeRaft, PurposeRelay, PurposeJoin} {
		d := node(t, "10.0.0.2:7481", &clusterA, "s3cret")
		p, aerr, derr, wire := handshake(t, d, node(t, "10.0.0.1:7481", &clusterA, "s3cret"), purpose)
		if aerr != nil || derr != nil {
			t.Fatalf("%v: accept %v, dial %v", purpose, aerr, derr)
		}
		if p.Name != "10.0.0.2:7481" || p.Purpose != purpose {
			t.Errorf("%v: acceptor learned %+v", purpose, p)
		}
		if bytes.Contains(wire, []byte("s3cret")) {
			t.Errorf("%v: the secret crossed the wire", purpose)
		}
	}
}

func TestHandshakeWithoutSecretStillComparesClusters(t *testing.T) {
	if _, aerr, derr, _ := handshake(t, node(t, "d", &clusterA), node(t, "a", &clusterA), PurposeRaft); aerr != nil || derr != nil {
		t.Fatalf("no secret on both sides: %v %v", aerr, derr)
	}
	_, aerr, derr, _ := handshake(t, node(t, "d", &clusterB), node(t, "a", &clusterA), PurposeRaft)
	if !errors.Is(aerr, ErrOtherCluster) || !errors.Is(derr, ErrOtherCluster) {
		t.Fatalf("other cluster without secret: accept %v, dial %v", aerr, derr)
	}
}

func TestHandshakeRefusesWrongSecret(t *testing.T) {
	for _, secrets := range [][]string{{"guess"}, nil, {"s3cret-but-longer"}} {
		_, aerr, derr, _ := handshake(t, node(t, "d", &clusterA, secrets...), node(t, "a", &clusterA, "s3cret"), PurposeRaft)
		if !errors.Is(aerr, ErrWrongSecret) {
			t.Errorf("secrets %q: acceptor said %v", secrets, aerr)
		}
		var refused *RefusedError
		if !errors.As(derr, &refused) || !errors.Is(derr, ErrWrongSecret) {
			t.Errorf("secrets %q: dialer said %v", secrets, derr)
		}
	}
	// And the other way round: a node with a secret refuses to be
	// accepted by... it is refused by a node without one.
	_, aerr, _, _ := handshake(t, node(t, "d", &clusterA, "s3cret"), node(t, "a", &clusterA), PurposeRaft)
	if !errors.Is(aerr, ErrWrongSecret) {
		t.Errorf("acceptor without a secret: %v", aerr)
	}
}

func TestHandshakeRefusesOtherCluster(t *testing.T) {
	_, aerr, derr, _ := handshake(t, node(t, "d", &clusterB, "s"), node(t, "a", &clusterA, "s"), PurposeRaft)
	var mismatch *ClusterMismatchError
	if !errors.As(aerr, &mismatch) || mismatch.Local != clusterA || mismatch.Remote != clusterB {
		t.Errorf("acceptor: %v", aerr)
	}
	if !errors.As(derr, &mismatch) || mismatch.Local != clusterB || mismatch.Remote != clusterA {
		t.Errorf("dialer: %v", derr)
	}
	// A joiner that already belongs to another cluster is refused too.
	_, aerr, _, _ = handshake(t, node(t, "d", &clusterB, "s"), node(t, "a", &clusterA, "s"), PurposeJoin)
	if !errors.Is(aerr, ErrOtherCluster) {
		t.Errorf("join from another cluster: %v", aerr)
	}
}

func TestHandshakeNoCluster(t *testing.T) {
	// A node that belongs to no cluster neither dials Raft nor accepts it.
	_, _, derr, _ := handshake(t, node(t, "d", nil, "s"), node(t, "a", &clusterA, "s"), PurposeRaft)
	var none *NoClusterError
	if !errors.As(derr, &none) || none.Remote {
		t.Errorf("dialer without a cluster: %v", derr)
	}
	_, aerr, derr, _ := handshake(t, node(t, "d", &clusterA, "s"), node(t, "a", nil, "s"), PurposeRaft)
	if !errors.As(aerr, &none) || !errors.As(derr, &none) || !none.Remote {
		t.Errorf("acceptor without a cluster: accept %v, dial %v", aerr, derr)
	}
	_, aerr, _, _ = handshake(t, node(t, "d", nil, "s"), node(t, "a", nil, "s"), PurposeJoin)
	if !errors.As(aerr, &none) {
		t.Errorf("join via a node without a cluster: %v", aerr)
	}
}

func TestHandshakeJoinAdoptsClusterID(t *testing.T) {
	d := node(t, "d", nil, "s")
	if _, aerr, derr, _ := handshake(t, d, node(t, "a", &clusterA, "s"), PurposeJoin); aerr != nil || derr != nil {
		t.Fatalf("join: %v %v", aerr, derr)
	}
	if id, ok := d.Identity.Get(); !ok || id != clusterA {
		t.Fatalf("joiner's ID %v %v, want %v", id, ok, clusterA)
	}
	// Not when the member is refused for its secret.
	d = node(t, "d", nil, "wrong")
	handshake(t, d, node(t, "a", &clusterA, "s"), PurposeJoin)
	if _, ok := d.Identity.Get(); ok {
		t.Fatal("a joiner adopted the ID of a cluster that refused it")
	}
}

// During a rotation a node accepts the old and the new secret; it proves
// itself with the first.
func TestHandshakeRotation(t *testing.T) {
	acceptor := node(t, "a", &clusterA, "new", "old")
	for _, s := range []string{"old", "new"} {
		if _, aerr, derr, _ := handshake(t, node(t, "d", &clusterA, s), acceptor, PurposeRaft); aerr != nil || derr != nil {
			t.Errorf("proving with %q: %v %v", s, aerr, derr)
		}
	}
	if _, aerr, _, _ := handshake(t, node(t, "d", &clusterA, "older"), acceptor, PurposeRaft); !errors.Is(aerr, ErrWrongSecret) {
		t.Errorf("a third secret: %v", aerr)
	}
	acceptor.Secrets.Set([]string{"new"})
	if _, aerr, _, _ := handshake(t, node(t, "d", &clusterA, "old"), acceptor, PurposeRaft); !errors.Is(aerr, ErrWrongSecret) {
		t.Errorf("the old secret after it was dropped: %v", aerr)
	}
}

// fakeAcceptor plays the accepting side without the secret: it accepts
// any proof and answers with a made-up MAC.
func fakeAcceptor(c net.Conn) {
	buf := make([]byte, len(magic)+1+nonceSize)
	io.ReadFull(c, buf)
	challenge := append([]byte(magic), make([]byte, nonceSize)...)
	challenge = append(append(challenge, 1), clusterA[:]...)
	c.Write(challenge)
	head := make([]byte, 1+idSize+1)
	io.ReadFull(c, head)
	io.ReadFull(c, make([]byte, int(head[1+idSize])+macSize))
	c.Write(append([]byte{0}, bytes.Repeat([]byte{7}, macSize)...))
}

// The dialer checks the acceptor too: an impostor at a peer's address
// cannot pass for a member.
func TestHandshakeDialerChecksAcceptor(t *testing.T) {
	a, d := net.Pipe()
	defer a.Close()
	defer d.Close()
	d.SetDeadline(time.Now().Add(5 * time.Second))
	go fakeAcceptor(a)
	if err := Dial(d, node(t, "d", &clusterA, "s"), PurposeRaft); !errors.Is(err, ErrPeerWithoutSecret) {
		t.Fatalf("impostor: %v", err)
	}
}

// A proof recorded from one handshake is useless in another: the
// acceptor's nonce differs.
func TestHandshakeReplayRefused(t *testing.T) {
	_, _, _, wire := handshake(t, node(t, "d", &clusterA, "s"), node(t, "a", &clusterA, "s"), PurposeRaft)
	// The acceptor's bytes come first in wire (challenge 56, verdict 33),
	// then the dialer's (hello 40, proof).
	dialerBytes := wire[len(magic)+nonceSize+1+idSize+1+macSize:]
	a, d := net.Pipe()
	defer a.Close()
	defer d.Close()
	a.SetDeadline(time.Now().Add(5 * time.Second))
	d.SetDeadline(time.Now().Add(5 * time.Second))
	go io.Copy(io.Discard, d)
	go d.Write(dialerBytes)
	if _, err := Accept(a, node(t, "a", &clusterA, "s")); !errors.Is(err, ErrWrongSecret) {
		t.Fatalf("replayed proof: %v", err)
	}
}

func TestAcceptRefusesStrangers(t *testing.T) {
	for _, in := range []string{
		"*1\r\n$4\r\nPING\r\n", // a RESP client after a stray 0x01
		"\x01\x85\xa4Term\xcf", // hashicorp/raft's RequestVote, no handshake
		"RDPEER1",              // the magic, then nothing
		"RDPEER1\x09" + strings.Repeat("n", 32) + "x", // unknown purpose
	} {
		a, d := net.Pipe()
		a.SetDeadline(time.Now().Add(time.Second))
		d.SetDeadline(time.Now().Add(time.Second))
		go io.Copy(io.Discard, d)
		go d.Write([]byte(in))
		if _, err := Accept(a, node(t, "a", &clusterA, "s")); err == nil {
			t.Errorf("%q accepted", in)
		}
		a.Close()
		d.Close()
	}
}

func TestDialRefusesBadName(t *testing.T) {
	a, d := net.Pipe()
	defer a.Close()
	defer d.Close()
	if err := Dial(d, node(t, "bad name", &clusterA), PurposeRaft); err == nil {
		t.Fatal("a name with a space was sent")
	}
}

func TestIdentityFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), IdentityFile)
	i, err := OpenIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := i.Get(); ok {
		t.Fatal("a new identity is known")
	}
	id, err := NewClusterID()
	if err != nil {
		t.Fatal(err)
	}
	if err := i.Set(id); err != nil {
		t.Fatal(err)
	}
	again, err := OpenIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := again.Get(); !ok || got != id {
		t.Fatalf("reopened: %v %v, want %v", got, ok, id)
	}
	if err := again.Forget(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("forgotten ID file still there: %v", err)
	}
	os.WriteFile(path, []byte("not hex\n"), 0o644)
	if _, err := OpenIdentity(path); err == nil || !strings.Contains(err.Error(), "bad cluster ID") {
		t.Fatalf("a corrupt file: %v", err)
	}
}

func TestReadSecretFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(path, []byte("\n  new secret \r\nold\n\n"), 0o600)
	got, err := ReadSecretFile(path)
	if err != nil || len(got) != 2 || got[0] != "new secret" || got[1] != "old" {
		t.Fatalf("got %q %v", got, err)
	}
	os.WriteFile(path, []byte("\n \n"), 0o600)
	if _, err := ReadSecretFile(path); err == nil {
		t.Fatal("an empty secret file was accepted")
	}
	if _, err := ReadSecretFile(path + ".missing"); err == nil {
		t.Fatal("a missing file was accepted")
	}
}

func TestJoinFrames(t *testing.T) {
	for _, nonvoter := range []bool{false, true} {
		a, d := net.Pipe()
		got := make(chan bool, 1)
		go func() {
			nv, err := ReadJoinRequest(a)
			if err == nil {
				got <- nv
				WriteJoinReply(a, JoinReply{Status: JoinTry, Text: "10.0.0.1:7481"})
			}
		}()
		r, err := RequestJoin(d, nonvoter)
		if err != nil || r.Status != JoinTry || r.Text != "10.0.0.1:7481" {
			t.Fatalf("got %+v %v", r, err)
		}
		if nv := <-got; nv != nonvoter {
			t.Errorf("asked to join as a non-voter %v, read %v", nonvoter, nv)
		}
		a.Close()
		d.Close()
	}
}

// The refusal log writes the first refusal of an address at once, then at
// most one line per interval with the count left out.
func TestRefusalLogRateLimit(t *testing.T) {
	var buf bytes.Buffer
	l := NewRefusalLog(slog.New(slog.NewTextHandler(&buf, nil)), time.Minute)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	for i := 0; i < 50; i++ {
		l.Refused("10.0.0.9", "refused")
		l.Refused("10.0.0.8", "refused")
	}
	if n := strings.Count(buf.String(), "\n"); n != 2 {
		t.Fatalf("%d lines for 2 addresses:\n%s", n, buf.String())
	}
	now = now.Add(time.Minute)
	l.Refused("10.0.0.9", "refused")
	if !strings.Contains(buf.String(), "refused_since_last_line=49") {
		t.Fatalf("the next line does not count the ones left out:\n%s", buf.String())
	}
	// The table is bounded; past it, new addresses share one line.
	buf.Reset()
	for i := 0; i < 3*maxRefusalAddrs; i++ {
		l.Refused("addr"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String(), "refused")
	}
	if len(l.seen) > maxRefusalAddrs+1 {
		t.Fatalf("%d addresses kept", len(l.seen))
	}
	if n := strings.Count(buf.String(), "\n"); n > maxRefusalAddrs+1 {
		t.Fatalf("%d lines for a flood of addresses", n)
	}
}
