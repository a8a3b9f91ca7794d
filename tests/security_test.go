package tests

// Security on the one port, against the real binary: client passwords
// (AUTH, HELLO AUTH, redis-cli -a, go-redis Password, redis-py password=,
// CONFIG SET requirepass through the log, across restarts and snapshots),
// peers that do not hold the cluster secret, raw Raft bytes from a
// stranger, TLS for clients and between peers, and two clusters that must
// never mix.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/redraft/redraft/internal/tlsconf/tlstest"
)

// statsOf reads RAFTSTATS fields of n as strings.
func statsOf(t *testing.T, n *Node, fields ...string) []string {
	t.Helper()
	st, err := raftStats(n)
	if err != nil {
		t.Fatalf("%s RAFTSTATS: %v", n, err)
	}
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = st[f]
	}
	return out
}

// countIn counts the lines of n's log that contain every one of parts.
func countIn(n *Node, parts ...string) int {
	count := 0
	for _, line := range strings.Split(n.Log(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			count++
		}
	}
	return count
}

// waitLog polls n's log until a line contains every one of parts.
func waitLog(t *testing.T, n *Node, timeout time.Duration, parts ...string) {
	t.Helper()
	eventually(t, timeout, func() error {
		if countIn(n, parts...) == 0 {
			return fmt.Errorf("%s's log has no line with %q", n, parts)
		}
		return nil
	})
}

// pyRedis runs a redis-py script (Debian's python3-redis) with args and
// returns its output.
func pyRedis(t *testing.T, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/bin/python3", append([]string{"-c", script}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-py (python3-redis; .ci/run installs it): %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// mustRefuse checks redis-cli's output for a refused password: AUTH
// fails, and the command then gets NOAUTH (as with redis-server).
func mustRefuse(t *testing.T, what, out string) {
	t.Helper()
	mustEqual(t, what, out, "AUTH failed: WRONGPASS invalid username-password pair or user is disabled.\nNOAUTH Authentication required.")
}

// Passwords: every way a client authenticates, NOAUTH for everything else
// (RAFT* included), CONFIG SET requirepass rotated through the log while
// the cluster secret stays the --requirepass the nodes started with, and
// the rotated password surviving a snapshot and a restart.
func TestSecurityPasswords(t *testing.T) {
	nodes := startCluster(t, 3, nodeOpts{Password: "old-pass", Args: []string{"--requirepass", "old-pass", "--follower-proxy"}})
	l := waitLeader(t, nodes...)
	f := others(nodes, l)[0]

	// Strangers get NOAUTH, RAFT* commands included.
	for _, n := range nodes {
		rc := dialRaw(t, n)
		for _, cmd := range [][]string{{"GET", "k"}, {"RAFTSTATS"}, {"RAFTADDPEER", "127.0.0.1:1"}, {"FLUSHALL"}} {
			rc.send(t, cmd...)
			mustEqual(t, n.Name+" "+cmd[0]+" without AUTH", rc.reply(t, cmdTimeout), "-NOAUTH Authentication required.")
		}
	}
	mustEqual(t, "redis-cli without -a", cli(t, l.Port, "SET", "k", "v"), "NOAUTH Authentication required.")
	mustRefuse(t, "redis-cli -a wrong", cli(t, l.Port, "--no-auth-warning", "-a", "wrong", "PING"))

	// redis-cli -a, go-redis Password (HELLO 2 AUTH default …), redis-py password=.
	mustEqual(t, "redis-cli -a", cli(t, l.Port, "--no-auth-warning", "-a", "old-pass", "SET", "k", "v"), "OK")
	mustEqual(t, "go-redis GET", l.MustDo("GET", "k"), "v")
	mustEqual(t, "redis-py", pyRedis(t, `import redis, sys
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), password=sys.argv[2])
r.set("py", "1")
print(r.ping(), r.get("py").decode())`, strconv.Itoa(l.Port), "old-pass"), "True 1")
	// A follower relays a write to the leader over an authenticated peer
	// stream (--follower-proxy), whatever the client password.
	mustEqual(t, "relayed SET", f.MustDo("SET", "relayed", "1"), "OK")

	// Rotate: CONFIG SET requirepass goes through the log to every node.
	mustEqual(t, "CONFIG SET requirepass", l.MustDo("CONFIG", "SET", "requirepass", "new-pass"), "OK")
	waitApplied(t, nodes...)
	for _, n := range nodes {
		mustRefuse(t, n.Name+" old password", cli(t, n.Port, "--no-auth-warning", "-a", "old-pass", "PING"))
		mustEqual(t, n.Name+" new password", cli(t, n.Port, "--no-auth-warning", "-a", "new-pass", "CONFIG", "GET", "requirepass"), "requirepass\nnew-pass")
		n.SetPassword("new-pass")
	}
	// The child never got the password (redraft's own connections to it
	// would need AUTH): writes and relays still work everywhere.
	mustEqual(t, "SET after rotation", l.MustDo("SET", "after", "1"), "OK")
	mustEqual(t, "relayed SET after rotation", f.MustDo("SET", "relayed2", "1"), "OK")

	// The peer secret is still old-pass on every node: a follower restarted
	// with its original command line rejoins, and the rotated password
	// comes back from the snapshot and the log.
	mustEqual(t, "RAFTSNAPSHOT", l.MustDo("RAFTSNAPSHOT"), "OK")
	f.Stop()
	f.Restart()
	waitApplied(t, nodes...)
	mustRefuse(t, "restarted follower, old password", cli(t, f.Port, "--no-auth-warning", "-a", "old-pass", "PING"))
	mustEqual(t, "restarted follower, new password", cli(t, f.Port, "--no-auth-warning", "-a", "new-pass", "GET", "after"), "1")
}

// A node with the wrong cluster secret, or none, cannot join, and a member
// whose secret is wrong after a restart cannot disturb the others: its
// votes are refused (the cluster's term does not move) and the refusal is
// logged once for its address, not once per attempt.
func TestSecurityWrongSecret(t *testing.T) {
	nodes := startCluster(t, 3, nodeOpts{Password: "s3cret", Args: []string{"--requirepass", "s3cret"}})
	l := waitLeader(t, nodes...)
	l.DoEventually(10*time.Second, "SET", "k", "v")
	waitApplied(t, nodes...)

	for _, tc := range []struct{ name, args string }{
		{"wrong", "--requirepass wrong"},
		{"none", ""},
		{"wrong-secret", "--requirepass s3cret --cluster-secret other"},
	} {
		x := startNode(t, nodeOpts{Name: "x-" + tc.name, Join: l.Addr, Args: strings.Fields(tc.args), NoWait: true})
		if err := x.waitExit(startTimeout); err == nil {
			t.Fatalf("%s: a node with the %s secret exited cleanly", x, tc.name)
		}
		if !strings.Contains(x.Log(), "wrong cluster secret") {
			t.Errorf("%s: the log does not say why it could not join:\n%s", x, x.Log())
		}
	}
	waitMembers(t, nodes...)

	// A member restarted with a wrong secret: it campaigns, and is refused.
	victim := others(nodes, l)[0]
	rest := others(nodes, victim)
	term := statsOf(t, l, "term")[0]
	victim.Stop()
	victim.args = append(victim.args, "--cluster-secret", "wrong")
	victim.Restart()
	// It campaigns (pre-vote first) and every vote request is refused.
	eventually(t, leaderTimeout, func() error {
		if c := countIn(victim, "failed to make requestVote RPC"); c < 2*len(rest) {
			return fmt.Errorf("%s made %d refused vote requests; waiting for two rounds", victim, c)
		}
		return nil
	})
	for _, n := range rest {
		mustEqual(t, n.Name+" term while a node without the secret campaigns", statsOf(t, n, "term")[0], term)
		if c := countIn(n, "refused a peer connection", victim.Addr, "wrong cluster secret"); c != 1 {
			t.Errorf("%s logged %d refusals of %s, want exactly 1 (rate-limited by address)", n, c, victim.Addr)
		}
	}
	mustEqual(t, "write while it campaigns", l.MustDo("SET", "k", "v2"), "OK")
	waitApplied(t, rest...)
}

// rawStreams is a hashicorp/raft stream layer that sends the Raft byte and
// then raw RPCs, as a stranger with hashicorp/raft would, without the
// handshake.
type rawStreams struct {
	prefix []byte
	closed chan struct{}
}

func (r rawStreams) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(append([]byte{0x01}, r.prefix...)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
func (r rawStreams) Accept() (net.Conn, error) {
	<-r.closed
	return nil, errors.New("closed")
}
func (r rawStreams) Close() error { close(r.closed); return nil }
func (rawStreams) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

// Raw Raft RPCs (RequestVote and AppendEntries with a huge term), with and
// without a forged handshake, are refused before the transport sees them:
// the cluster's term and log do not change.
func TestSecurityRawRaftBytes(t *testing.T) {
	nodes := startCluster(t, 3, nodeOpts{})
	l := waitLeader(t, nodes...)
	l.DoEventually(10*time.Second, "SET", "k", "v")
	waitApplied(t, nodes...)
	before := statsOf(t, l, "term", "last_log_index", "commit_index")

	forged := append([]byte("RDPEER1\x01"), make([]byte, 32)...)
	for _, prefix := range [][]byte{nil, forged} {
		trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: rawStreams{prefix: prefix, closed: make(chan struct{})}, MaxPool: 1, Timeout: 3 * time.Second,
		})
		for _, n := range nodes {
			// The stranger poses as another member, with the current
			// protocol version: without the handshake, hashicorp/raft
			// would take both RPCs, and the huge term with them.
			member := others(nodes, n)[0].Addr
			header := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(member), Addr: []byte(member)}
			for i := 0; i < 3; i++ {
				var vote raft.RequestVoteResponse
				err := trans.RequestVote(raft.ServerID(n.Addr), raft.ServerAddress(n.Addr), &raft.RequestVoteRequest{
					RPCHeader: header,
					Term:      1 << 40, LastLogIndex: 1 << 40, LastLogTerm: 1 << 40, LeadershipTransfer: true,
				}, &vote)
				if err == nil && vote.Granted {
					t.Fatalf("%s granted a vote to a stranger", n)
				}
				var app raft.AppendEntriesResponse
				err = trans.AppendEntries(raft.ServerID(n.Addr), raft.ServerAddress(n.Addr), &raft.AppendEntriesRequest{
					RPCHeader: header,
					Term:      1 << 40, PrevLogEntry: 0, LeaderCommitIndex: 1 << 40,
					Entries: []*raft.Log{{Index: 1, Term: 1 << 40, Type: raft.LogCommand, Data: []byte("x")}},
				}, &app)
				if err == nil {
					t.Fatalf("%s answered a stranger's AppendEntries: %+v", n, app)
				}
			}
		}
		trans.Close()
	}
	// A client connection that starts with the Raft byte is not a client
	// either: it is closed without an answer.
	c, err := net.DialTimeout("tcp", l.Addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("\x01*1\r\n$8\r\nFLUSHALL\r\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Errorf("a raw Raft stream got %q, %v; want the connection closed", b, err)
	}

	waitLeader(t, nodes...)
	mustEqual(t, "term, last log index and commit index after the attacks", statsOf(t, l, "term", "last_log_index", "commit_index"), before)
	mustEqual(t, "data after the attacks", l.MustDo("GET", "k"), "v")
	for _, n := range nodes {
		mustEqual(t, n.Name+" leader after the attacks", n.MustDo("RAFTLEADER"), l.Addr)
		if c := countIn(n, "refused a peer connection", "not a redraft peer handshake"); c != 1 {
			t.Errorf("%s logged %d refusals of raw streams, want 1 (rate-limited by address)", n, c)
		}
	}
}

// TLS: a three-node cluster on certificates the test makes (mutual TLS
// between peers), clients with go-redis TLSConfig and redis-cli --tls, a
// plain-text client refused with a clear error, a client without a
// certificate refused (tls-auth-clients yes), a node with a certificate
// from another CA unable to join, and certificates replaced without a
// restart (when the files change, and on SIGHUP).
func TestSecurityTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "redraft test CA")
	lo := net.IPv4(127, 0, 0, 1)
	files := map[string]*tlstest.Files{}
	optsFor := func(name string, f tlstest.Files) nodeOpts {
		return nodeOpts{Password: "pw", Args: []string{"--requirepass", "pw",
			"--tls-cert-file", f.Cert, "--tls-key-file", f.Key, "--tls-ca-cert-file", f.CA}}
	}
	var nodes []*Node
	clientFiles := ca.WriteFiles(t, dir, "client", lo)
	clientTLS := ca.ClientConfig(t, &clientFiles)
	clientTLS.ServerName = "127.0.0.1"
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("n%d", i)
		f := ca.WriteFiles(t, dir, name, lo)
		files[name] = &f
		o := optsFor(name, f)
		o.Name, o.TLS = name, clientTLS
		if i > 1 {
			o.Join = nodes[0].Addr
		}
		nodes = append(nodes, startNode(t, o))
		if i == 1 {
			waitLeader(t, nodes[0])
		}
	}
	waitMembers(t, nodes...)
	l := waitLeader(t, nodes...)
	mustEqual(t, "go-redis over TLS", l.DoEventually(10*time.Second, "SET", "k", "tls"), "OK")
	waitApplied(t, nodes...)

	tlsCli := []string{"--tls", "--cacert", clientFiles.CA, "--cert", clientFiles.Cert, "--key", clientFiles.Key, "--no-auth-warning", "-a", "pw"}
	for _, n := range nodes {
		mustEqual(t, n.Name+" redis-cli --tls", cli(t, n.Port, append(tlsCli, "RAFTLEADER")...), l.Addr)
	}
	// Plain text on the TLS port: a clear error, then the connection closes.
	rc := dialRaw(t, l)
	rc.send(t, "PING")
	mustEqual(t, "plain-text client", rc.reply(t, cmdTimeout), "-ERR TLS required: this port accepts TLS connections only")
	if out := cli(t, l.Port, "-a", "pw", "--no-auth-warning", "PING"); strings.Contains(out, "PONG") {
		t.Errorf("redis-cli without --tls got %q", out)
	}
	// tls-auth-clients yes: a client without a certificate gets nowhere.
	noCert := ca.ClientConfig(t, nil)
	noCert.ServerName = "127.0.0.1"
	if v, err := newClientWith(l.Addr, 0, "pw", noCert).Ping(context.Background()).Result(); err == nil {
		t.Errorf("a client without a certificate got %v", v)
	}

	// A node whose certificate another CA signed cannot join.
	other := tlstest.NewCA(t, "another CA")
	of := other.WriteFiles(t, t.TempDir(), "intruder", lo)
	x := startNode(t, nodeOpts{Name: "intruder", Join: l.Addr, NoWait: true, Args: []string{"--requirepass", "pw",
		"--tls-cert-file", of.Cert, "--tls-key-file", of.Key, "--tls-ca-cert-file", files["n1"].CA}})
	if err := x.waitExit(startTimeout); err == nil || !strings.Contains(x.Log(), "join failed") {
		t.Errorf("a node with another CA's certificate: exit %v, log:\n%s", err, x.Log())
	}
	waitMembers(t, nodes...)

	// Certificates replaced without a restart: when the files change, and
	// on SIGHUP (checked against a node's served certificate serial).
	n1 := nodes[0]
	served := func() int64 {
		conn, err := tls.Dial("tcp", n1.Addr, clientTLS)
		if err != nil {
			return -1
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	for _, how := range []string{"files changed", "SIGHUP"} {
		ca.Rewrite(t, files["n1"], "n1", lo)
		if how == "SIGHUP" {
			n1.signal(syscall.SIGHUP)
		}
		want := files["n1"].Serial
		eventually(t, 15*time.Second, func() error {
			if got := served(); got != want {
				return fmt.Errorf("%s: n1 serves certificate %d, want %d", how, got, want)
			}
			return nil
		})
	}
	// The cluster still works over the renewed certificates.
	mustEqual(t, "write after renewal", l.MustDo("SET", "k2", "v2"), "OK")
	waitApplied(t, nodes...)
	if countIn(n1, "TLS certificates reloaded") < 2 {
		t.Errorf("n1 logged fewer than 2 reloads:\n%s", n1.Log())
	}
}

// Two clusters never mix, even with the same secret. A member of cluster A
// added to cluster B by mistake is refused both ways; the bootstrap node of
// A, wiped and restarted with its original command line (no -join),
// bootstraps a new cluster that A's members refuse (and it refuses
// theirs), and nothing of either reaches the other; started again with
// -join to a member, it rejoins A and catches up.
func TestSecurityTwoClusters(t *testing.T) {
	a := startCluster(t, 3, nodeOpts{Consistency: "low"})
	la := waitLeader(t, a...)
	la.DoEventually(10*time.Second, "SET", "a-key", "a")
	waitApplied(t, a...)
	b := startNode(t, nodeOpts{Name: "b1", Consistency: "low"})
	waitLeader(t, b)
	b.DoEventually(10*time.Second, "SET", "b-key", "b")
	idA, idB := statsOf(t, la, "cluster_id")[0], statsOf(t, b, "cluster_id")[0]
	if idA == "" || idA == idB {
		t.Fatalf("cluster IDs %q and %q", idA, idB)
	}
	bBefore, err := raftDigest(b)
	if err != nil {
		t.Fatal(err)
	}

	// B's node added to A by mistake.
	mustEqual(t, "RAFTADDPEER of another cluster's node", la.MustDo("RAFTADDPEER", b.Addr), "OK")
	waitLog(t, b, 15*time.Second, "refused a peer connection", "belongs to cluster", "hint=")
	la.MustDo("SET", "a-key2", "a2")
	mustEqual(t, "RAFTREMOVEPEER", la.MustDo("RAFTREMOVEPEER", b.Addr), "OK")
	if got, err := raftDigest(b); err != nil || got != bBefore {
		t.Errorf("B's node changed while A tried to replicate to it: %+v -> %+v (%v)", bBefore, got, err)
	}
	mustEqual(t, "B's leader", b.MustDo("RAFTLEADER"), b.Addr)

	// A's bootstrap node, wiped and restarted with its original command line.
	n1 := a[0]
	n1.Kill9()
	wipeDir(t, n1)
	n1.Restart()
	waitLeader(t, n1)
	idC := statsOf(t, n1, "cluster_id")[0]
	if idC == idA || idC == "" {
		t.Fatalf("the wiped node's cluster ID %q, A's %q", idC, idA)
	}
	rest := a[1:]
	lr := waitLeader(t, rest...)
	waitLog(t, n1, 15*time.Second, "refused a peer connection", "belongs to cluster", "hint=")
	n1.DoEventually(10*time.Second, "SET", "c-key", "c")
	mustEqual(t, "A's write", lr.MustDo("SET", "a-key3", "a3"), "OK")
	waitApplied(t, rest...)
	if v, err := n1.Do("GET", "a-key"); v != nil || err != nil {
		t.Errorf("the wiped node got A's data: %v %v", v, err)
	}
	for _, n := range rest {
		if v, err := n.Do("GET", "c-key"); v != nil || err != nil {
			t.Errorf("%s got the wiped node's write: %v %v", n, v, err)
		}
		mustEqual(t, n.Name+" cluster ID", statsOf(t, n, "cluster_id")[0], idA)
	}

	// Brought back as the README says: empty data directory, -join a member.
	n1.Stop()
	wipeDir(t, n1)
	n1.args = append(n1.args, "-join", lr.Addr)
	n1.Restart()
	waitMembers(t, a...)
	waitApplied(t, a...)
	mustEqual(t, "rejoined node's cluster ID", statsOf(t, n1, "cluster_id")[0], idA)
	mustEqual(t, "rejoined node has A's data", n1.MustDo("GET", "a-key3"), "a3")
	if b, err := os.ReadFile(filepath.Join(n1.Dir, "cluster-id")); err != nil || strings.TrimSpace(string(b)) != idA {
		t.Errorf("cluster-id file %q %v, want %s", b, err, idA)
	}
}
