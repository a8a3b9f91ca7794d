package peer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// The handshake, right after the mux's Raft byte (0x01) and, with TLS,
// inside the TLS session. D is the dialing node, A the accepting one.
//
//	D→A  hello      "RDPEER1" purpose:1 nonceD:32
//	A→D  challenge  "RDPEER1" nonceA:32 hasID:1 idA:16
//	D→A  proof      hasID:1 idD:16 nameLen:1 name macD:32
//	A→D  verdict    0 macA:32                 (accepted)
//	                1 code:1 len:1 reason     (refused; A closes)
//
//	macD = HMAC-SHA256(secret, "redraft peer dialer v1"   ‖ transcript)
//	macA = HMAC-SHA256(secret, "redraft peer acceptor v1" ‖ transcript)
//	transcript = purpose ‖ nonceD ‖ nonceA ‖ hasID ‖ idA ‖ hasID ‖ idD ‖ nameLen ‖ name
//
// Each side proves that it knows the secret over the other's fresh nonce,
// so nothing recorded can be replayed, and the secret itself never crosses
// the wire. A proves itself only after D has, so a stranger never obtains a
// MAC without knowing the secret. Both cluster IDs are inside the MAC: a
// node of another cluster is refused even when it shares the secret. A
// tries each accepted secret and answers with the one that matched.

// Purpose says what an authenticated peer stream is for.
type Purpose byte

// The purposes of a peer stream.
const (
	// PurposeRaft carries hashicorp/raft's RPCs.
	PurposeRaft Purpose = 1
	// PurposeJoin asks a member to add the dialer (-join).
	PurposeJoin Purpose = 2
	// PurposeRelay carries a client's requests relayed by a follower to the
	// leader (--follower-proxy); the leader serves it as an authenticated
	// client.
	PurposeRelay Purpose = 3
)

// String names the purpose for logs.
func (p Purpose) String() string {
	switch p {
	case PurposeRaft:
		return "raft"
	case PurposeJoin:
		return "join"
	case PurposeRelay:
		return "relay"
	}
	return fmt.Sprintf("purpose(%d)", byte(p))
}

const (
	magic     = "RDPEER1"
	nonceSize = 32
	macSize   = sha256.Size
	idSize    = len(ClusterID{})
	// MaxName bounds a node's name (its advertise address) in the proof.
	MaxName = 255

	labelDialer   = "redraft peer dialer v1"
	labelAcceptor = "redraft peer acceptor v1"
)

// Config is what a node brings to its handshakes.
type Config struct {
	Secrets  *Secrets
	Identity *Identity
	Name     string // this node's ID, its advertise address
}

// Peer is what the accepting side learned about an authenticated dialer.
type Peer struct {
	Name    string // the dialer's advertise address, as it claims it
	Purpose Purpose
}

// ErrNotPeer means the connection did not start a redraft peer handshake
// (a stranger, or a node of an older version).
var ErrNotPeer = errors.New("not a redraft peer handshake")

// ErrWrongSecret means the dialer's proof matched none of the accepted
// secrets.
var ErrWrongSecret = errors.New("wrong cluster secret")

// ErrPeerWithoutSecret means the accepting node could not prove that it
// knows this node's secret.
var ErrPeerWithoutSecret = errors.New("the peer could not prove that it knows the cluster secret")

// ErrOtherCluster means the two nodes belong to different clusters.
var ErrOtherCluster = errors.New("the nodes belong to different clusters")

// RefusedError is a refusal the other side sent: why, in its words, and
// ErrWrongSecret or ErrOtherCluster (through errors.Is) when that was why.
type RefusedError struct {
	Reason string
	cause  error
}

func (e *RefusedError) Error() string { return "refused by the peer: " + e.Reason }

// Unwrap is the refusal's cause, if the peer named a known one.
func (e *RefusedError) Unwrap() error { return e.cause }

// ClusterMismatchError means the two nodes belong to different clusters.
type ClusterMismatchError struct{ Local, Remote ClusterID }

func (e *ClusterMismatchError) Error() string {
	return fmt.Sprintf("the peer belongs to cluster %s, this node to cluster %s", e.Remote, e.Local)
}

// Unwrap makes errors.Is(err, ErrOtherCluster) hold.
func (e *ClusterMismatchError) Unwrap() error { return ErrOtherCluster }

// Refusal codes in the verdict, after the status byte 1.
const (
	codeOther        byte = 0
	codeWrongSecret  byte = 1
	codeOtherCluster byte = 2
)

// NoClusterError means a node that has not bootstrapped or joined a
// cluster yet took part in a handshake that needs one.
type NoClusterError struct{ Remote bool }

func (e *NoClusterError) Error() string {
	if e.Remote {
		return "the peer belongs to no cluster yet"
	}
	return "this node belongs to no cluster yet"
}

// transcript is what both MACs cover.
type transcript struct {
	purpose    Purpose
	nonceD     []byte
	nonceA     []byte
	hasA, hasD bool
	idA, idD   ClusterID
	name       string
}

func (t *transcript) mac(key []byte, label string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(label))
	h.Write([]byte{byte(t.purpose)})
	h.Write(t.nonceD)
	h.Write(t.nonceA)
	h.Write([]byte{flag(t.hasA)})
	h.Write(t.idA[:])
	h.Write([]byte{flag(t.hasD)})
	h.Write(t.idD[:])
	h.Write([]byte{byte(len(t.name))})
	h.Write([]byte(t.name))
	return h.Sum(nil)
}

func flag(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func nonce() ([]byte, error) {
	b := make([]byte, nonceSize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("random nonce: %w", err)
	}
	return b, nil
}

// Accept runs the accepting side on rw, which has just delivered the Raft
// byte. It returns the authenticated dialer, or why it was refused (the
// refusal has then been sent when the dialer spoke the protocol). The
// caller bounds it with a deadline and closes the connection on error.
func Accept(rw io.ReadWriter, cfg *Config) (Peer, error) {
	hello := make([]byte, len(magic)+1+nonceSize)
	// The magic is checked before waiting for the rest, so a stranger's
	// bytes are refused at once.
	if _, err := io.ReadFull(rw, hello[:len(magic)]); err != nil {
		return Peer{}, fmt.Errorf("%w: %w", ErrNotPeer, err)
	}
	if string(hello[:len(magic)]) != magic {
		return Peer{}, ErrNotPeer
	}
	if _, err := io.ReadFull(rw, hello[len(magic):]); err != nil {
		return Peer{}, fmt.Errorf("read hello: %w", err)
	}
	t := transcript{purpose: Purpose(hello[len(magic)]), nonceD: hello[len(magic)+1:]}
	var err error
	if t.nonceA, err = nonce(); err != nil {
		return Peer{}, err
	}
	t.idA, t.hasA = cfg.Identity.Get()
	challenge := append(append([]byte(magic), t.nonceA...), flag(t.hasA))
	if _, err := rw.Write(append(challenge, t.idA[:]...)); err != nil {
		return Peer{}, err
	}
	proof := make([]byte, 1+idSize+1)
	if _, err := io.ReadFull(rw, proof); err != nil {
		return Peer{}, fmt.Errorf("read proof: %w", err)
	}
	t.hasD = proof[0] == 1
	copy(t.idD[:], proof[1:1+idSize])
	rest := make([]byte, int(proof[1+idSize])+macSize)
	if _, err := io.ReadFull(rw, rest); err != nil {
		return Peer{}, fmt.Errorf("read proof: %w", err)
	}
	t.name = string(rest[:len(rest)-macSize])
	p := Peer{Name: t.name, Purpose: t.purpose}
	key, ok := matchingSecret(cfg.Secrets.accepted(), &t, rest[len(rest)-macSize:])
	if !ok {
		return p, refuse(rw, ErrWrongSecret)
	}
	if err := acceptable(&t); err != nil {
		return p, refuse(rw, err)
	}
	if _, err := rw.Write(append([]byte{0}, t.mac(key, labelAcceptor)...)); err != nil {
		return p, err
	}
	return p, nil
}

// matchingSecret finds the accepted secret the dialer's MAC was made with.
func matchingSecret(secrets [][]byte, t *transcript, got []byte) ([]byte, bool) {
	found, key := 0, []byte(nil)
	for _, s := range secrets {
		// Every secret is tried, so the time taken does not tell which
		// one matched.
		if hmac.Equal(t.mac(s, labelDialer), got) && found == 0 {
			found, key = 1, s
		}
	}
	return key, found == 1
}

// acceptable applies the cluster rules on the accepting side, once the
// dialer is known to hold the secret.
func acceptable(t *transcript) error {
	switch {
	case t.purpose != PurposeRaft && t.purpose != PurposeJoin && t.purpose != PurposeRelay:
		return fmt.Errorf("unknown purpose %d", byte(t.purpose))
	case !ValidName(t.name):
		return fmt.Errorf("bad node name %q", t.name)
	case !t.hasA:
		return &NoClusterError{}
	case t.purpose == PurposeJoin && t.hasD && t.idD != t.idA:
		return &ClusterMismatchError{Local: t.idA, Remote: t.idD}
	case t.purpose != PurposeJoin && !t.hasD:
		return &NoClusterError{Remote: true}
	case t.purpose != PurposeJoin && t.idD != t.idA:
		return &ClusterMismatchError{Local: t.idA, Remote: t.idD}
	}
	return nil
}

// ValidName reports whether s can be a node's name: printable ASCII
// without spaces, as addresses are, at most MaxName bytes.
func ValidName(s string) bool {
	if s == "" || len(s) > MaxName {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// refuse sends the verdict "refused" with why, and returns why.
func refuse(w io.Writer, why error) error {
	msg := why.Error()
	var mismatch *ClusterMismatchError
	var none *NoClusterError
	switch {
	case errors.As(why, &mismatch):
		// Told from the dialer's side of things.
		msg = (&ClusterMismatchError{Local: mismatch.Remote, Remote: mismatch.Local}).Error()
	case errors.As(why, &none):
		msg = (&NoClusterError{Remote: !none.Remote}).Error()
	}
	code := codeOther
	switch {
	case errors.Is(why, ErrWrongSecret):
		code = codeWrongSecret
	case errors.Is(why, ErrOtherCluster):
		code = codeOtherCluster
	}
	if len(msg) > 255 {
		msg = msg[:255]
	}
	_, _ = w.Write(append([]byte{1, code, byte(len(msg))}, msg...))
	return why
}

// Dial runs the dialing side on rw, after the Raft byte was written. For
// PurposeJoin, a node without a cluster ID adopts the accepting member's
// once that member has proved the secret; otherwise both IDs must match.
// The caller bounds it with a deadline.
func Dial(rw io.ReadWriter, cfg *Config, purpose Purpose) error {
	if !ValidName(cfg.Name) {
		return fmt.Errorf("bad node name %q", cfg.Name)
	}
	t := transcript{purpose: purpose, name: cfg.Name}
	var err error
	if t.nonceD, err = nonce(); err != nil {
		return err
	}
	hello := append(append([]byte(magic), byte(purpose)), t.nonceD...)
	if _, err := rw.Write(hello); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	challenge := make([]byte, len(magic)+nonceSize+1+idSize)
	if _, err := io.ReadFull(rw, challenge); err != nil {
		return fmt.Errorf("read challenge: %w", err)
	}
	if string(challenge[:len(magic)]) != magic {
		return ErrNotPeer
	}
	t.nonceA = challenge[len(magic) : len(magic)+nonceSize]
	t.hasA = challenge[len(magic)+nonceSize] == 1
	copy(t.idA[:], challenge[len(magic)+nonceSize+1:])
	t.idD, t.hasD = cfg.Identity.Get()
	if !t.hasD && purpose != PurposeJoin {
		return &NoClusterError{}
	}
	// The proof goes even to a node this one will not talk to, so that it
	// can tell why in its own log; the local reason wins.
	refusal := dialable(&t)
	key := cfg.Secrets.proving()
	proof := append([]byte{flag(t.hasD)}, t.idD[:]...)
	proof = append(append(proof, byte(len(t.name))), t.name...)
	if _, err := rw.Write(append(proof, t.mac(key, labelDialer)...)); err != nil {
		return errors.Join(refusal, fmt.Errorf("send proof: %w", err))
	}
	if err := readVerdict(rw, &t, key); err != nil || refusal != nil {
		if refusal != nil {
			return refusal
		}
		return err
	}
	if purpose == PurposeJoin && !t.hasD {
		return cfg.Identity.Set(t.idA)
	}
	return nil
}

// dialable applies the cluster rules on the dialing side.
func dialable(t *transcript) error {
	switch {
	case !t.hasA:
		return &NoClusterError{Remote: true}
	case t.purpose == PurposeJoin:
		if t.hasD && t.idD != t.idA {
			return &ClusterMismatchError{Local: t.idD, Remote: t.idA}
		}
	case !t.hasD:
		return &NoClusterError{}
	case t.idD != t.idA:
		return &ClusterMismatchError{Local: t.idD, Remote: t.idA}
	}
	return nil
}

// readVerdict reads the acceptor's answer and checks its proof.
func readVerdict(r io.Reader, t *transcript, key []byte) error {
	status := make([]byte, 1)
	if _, err := io.ReadFull(r, status); err != nil {
		return fmt.Errorf("read verdict: %w", err)
	}
	if status[0] != 0 {
		head := make([]byte, 2)
		if _, err := io.ReadFull(r, head); err != nil {
			return &RefusedError{Reason: "(no reason given)"}
		}
		msg := make([]byte, head[1])
		_, _ = io.ReadFull(r, msg)
		e := &RefusedError{Reason: string(msg)}
		switch head[0] {
		case codeWrongSecret:
			e.cause = ErrWrongSecret
		case codeOtherCluster:
			e.cause = ErrOtherCluster
		}
		return e
	}
	got := make([]byte, macSize)
	if _, err := io.ReadFull(r, got); err != nil {
		return fmt.Errorf("read verdict: %w", err)
	}
	if !hmac.Equal(got, t.mac(key, labelAcceptor)) {
		return ErrPeerWithoutSecret
	}
	return nil
}
