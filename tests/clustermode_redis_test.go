package tests

// A redraft follower in --cluster-mode against a real Redis Cluster replica
// (redis-server --cluster-enabled yes, a master owning all 16384 slots and
// one replica of it): the same commands on one connection get the same
// reply bytes, IDs, ports, times, epochs and offsets aside. The few answers
// that differ by design are checked on their own (clusterReplicaDiffers),
// with the reason.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redraft/redraft/internal/resp"
)

// clusterRedis is one redis-server with cluster-enabled yes.
type clusterRedis struct {
	Addr string
	Port int
	Bus  int // the cluster bus port (cluster-port)
}

// freeBusPorts returns two ports that were free a moment ago: the client
// port and the cluster bus port (cluster-port) of a Redis Cluster node.
func freeBusPorts(t *testing.T) (int, int) {
	t.Helper()
	for {
		a, b := freePort(t), freePort(t)
		if a != b {
			return a, b
		}
	}
}

// startRedisClusterNode starts a redis-server in cluster mode, in its own
// directory of the test's root, killed (only that pid) when the test ends.
func startRedisClusterNode(t *testing.T, name string) *clusterRedis {
	t.Helper()
	dir := filepath.Join(testRoot(t), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port, bus := freeBusPorts(t)
	logf, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--cluster-port", strconv.Itoa(bus),
		"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning",
		"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
		"--cluster-announce-ip", "127.0.0.1", "--cluster-node-timeout", "5000")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start redis-server --cluster-enabled yes: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill() // only the pid this test started
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Logf("---- %s redis.log ----\n%s", name, tail(string(b), 4<<10))
		}
	})
	r := &clusterRedis{Addr: fmt.Sprintf("127.0.0.1:%d", port), Port: port, Bus: bus}
	eventually(t, startTimeout, func() error {
		c, err := net.DialTimeout("tcp", r.Addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	return r
}

// do sends one command on a fresh connection and returns the raw reply.
func (r *clusterRedis) do(t *testing.T, args ...string) string {
	t.Helper()
	c := dialAddrRaw(t, r.Addr)
	defer c.c.Close()
	c.send(t, args...)
	return c.rawReply(t, cmdTimeout)
}

// rawReply reads one reply, RESP2 or RESP3, and returns its bytes as sent.
func (rc *rawConn) rawReply(t testing.TB, timeout time.Duration) string {
	t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(timeout))
	raw, err := resp.ReadReply(rc.r, nil)
	if err != nil {
		t.Fatalf("raw reply: %v", err)
	}
	return string(raw)
}

// startRedisMasterReplica makes a real Redis Cluster of two nodes: a
// master that owns every slot and its replica, and waits until the replica
// is in sync and both see a healthy cluster.
func startRedisMasterReplica(t *testing.T) (master, replica *clusterRedis) {
	t.Helper()
	master, replica = startRedisClusterNode(t, "redis-master"), startRedisClusterNode(t, "redis-replica")
	mustEqual(t, "ADDSLOTSRANGE", master.do(t, "CLUSTER", "ADDSLOTSRANGE", "0", "16383"), "+OK\r\n")
	mustEqual(t, "MEET", replica.do(t, "CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(master.Port), strconv.Itoa(master.Bus)), "+OK\r\n")
	masterID := bulkText(master.do(t, "CLUSTER", "MYID"))
	eventually(t, 20*time.Second, func() error {
		if got := replica.do(t, "CLUSTER", "REPLICATE", masterID); got != "+OK\r\n" {
			return fmt.Errorf("CLUSTER REPLICATE: %q", got)
		}
		return nil
	})
	eventually(t, 30*time.Second, func() error {
		for _, r := range []*clusterRedis{master, replica} {
			if info := r.do(t, "CLUSTER", "INFO"); !strings.Contains(info, "cluster_state:ok\r\n") || !strings.Contains(info, "cluster_known_nodes:2\r\n") {
				return fmt.Errorf("%s CLUSTER INFO: %q", r.Addr, info)
			}
			if nodes := r.do(t, "CLUSTER", "NODES"); !strings.Contains(nodes, "slave "+masterID) {
				return fmt.Errorf("%s CLUSTER NODES: %q", r.Addr, nodes)
			}
		}
		if repl := replica.do(t, "INFO", "replication"); !strings.Contains(repl, "master_link_status:up") {
			return fmt.Errorf("replica not in sync: %q", repl)
		}
		return nil
	})
	return master, replica
}

// bulkText is the text of a raw bulk reply.
func bulkText(raw string) string {
	if i := strings.Index(raw, "\r\n"); i >= 0 && strings.HasPrefix(raw, "$") {
		return strings.TrimSuffix(raw[i+2:], "\r\n")
	}
	return raw
}

// replicaView names a shard's two nodes as one replica sees them.
type replicaView struct {
	masterAddr, selfAddr string
	masterPort, selfPort int
	masterID, selfID     string
}

// normalize hides in raw what differs between any two clusters: addresses,
// ports, node IDs, times, epochs, offsets, client IDs, cluster-bus message
// counts, the order of CLUSTER NODES lines (Redis prints them in hash-table
// order), and the lengths of bulks that hold them.
func (v replicaView) normalize(raw string) string {
	r := strings.NewReplacer(v.masterAddr, "<master>", v.selfAddr, "<self>", v.masterID, "<master-id>", v.selfID, "<self-id>",
		":"+strconv.Itoa(v.masterPort)+"\r\n", ":<master-port>\r\n", ":"+strconv.Itoa(v.selfPort)+"\r\n", ":<self-port>\r\n")
	raw = r.Replace(raw)
	for _, x := range []struct {
		re   *regexp.Regexp
		with string
	}{
		{regexp.MustCompile(`@\d+ `), "@<bus> "},
		{regexp.MustCompile(`(master|slave) (-|<master-id>) 0 \d+ \d+ connected`), "$1 $2 0 <pong> <epoch> connected"},
		{regexp.MustCompile(`(cluster_(current|my)_epoch):\d+`), "$1:<epoch>"},
		{regexp.MustCompile(`cluster_stats_messages_[a-z_]+:\d+\r\n`), ""},
		{regexp.MustCompile(`total_cluster_links_buffer_limit_exceeded:\d+\r\n`), ""},
		{regexp.MustCompile(`replication-offset\r\n:\d+`), "replication-offset\r\n:<offset>"},
		{regexp.MustCompile(`\$2\r\nid\r\n:\d+`), "$$2\r\nid\r\n:<client>"},
	} {
		raw = x.re.ReplaceAllString(raw, x.with)
	}
	// A bulk of text lines (CLUSTER NODES, REPLICAS' entries, INFO; a
	// verbatim string in RESP3): sort the lines and drop the length.
	if verbatim := strings.HasPrefix(raw, "="); (verbatim || strings.HasPrefix(raw, "$")) && strings.Count(raw, "\n") > 2 {
		body, head := bulkText(raw), "$<len>\r\n"
		if verbatim {
			body, head = strings.TrimSuffix(raw[strings.Index(raw, "\r\n")+2+len("txt:"):], "\r\n"), "=<len>\r\ntxt:"
		}
		sep := "\n"
		if strings.Contains(body, "\r\n") {
			sep = "\r\n"
		}
		lines := strings.Split(strings.TrimSuffix(body, sep), sep)
		sort.Strings(lines)
		raw = head + strings.Join(lines, sep) + sep + "\r\n"
	}
	return regexp.MustCompile(`\$\d+\r\n(<(master|self)-id> )`).ReplaceAllString(raw, "$$<len>\r\n$1")
}

// clusterReplicaScript is sent in order on one connection to the replica
// and to the follower: every reply must match. {master-id} and {self-id}
// stand for the server's own node IDs.
var clusterReplicaScript = [][]string{
	// Keys a replica may not serve without READONLY: MOVED to the master.
	{"GET", "foo"}, {"SET", "foo", "x"}, {"TTL", "foo"}, {"EXISTS", "foo"}, {"TYPE", "foo"}, {"OBJECT", "ENCODING", "foo"},
	{"INCR", "{user1000}.n"}, {"MGET", "foo", "{a}x"}, {"MGET", "{a}x", "{a}y"}, {"WATCH", "foo"},
	{"EVAL", "return 1", "1", "foo"}, {"EVAL_RO", "return 1", "1", "foo"}, {"XREAD", "STREAMS", "foo", "0"},
	{"BLPOP", "foo", "1"}, {"SORT", "foo"}, {"GETEX", "foo"}, {"DUMP", "foo"},
	// Keys in different slots come first, on a replica too.
	{"MSET", "a", "1", "b", "2"}, {"DEL", "a", "b"}, {"EVAL", "return 1", "2", "a", "b"},
	// Database 0 only.
	{"SELECT", "0"}, {"SELECT", "1"}, {"MOVE", "foo", "1"}, {"COPY", "foo", "{foo}2", "DB", "1"},
	// Transactions: a redirected command aborts the transaction.
	{"MULTI"}, {"SET", "foo", "y"}, {"EXEC"},
	{"MULTI"}, {"MSET", "a", "1", "b", "2"}, {"EXEC"},
	{"MULTI"}, {"SET", "{a}1", "1"}, {"GET", "{a}2"}, {"EXEC"},
	// How a replica describes the shard.
	{"CLUSTER", "SLOTS"}, {"CLUSTER", "SHARDS"}, {"CLUSTER", "NODES"}, {"CLUSTER", "INFO"}, {"CLUSTER", "MYID"},
	{"CLUSTER", "REPLICAS", "{master-id}"}, {"CLUSTER", "SLAVES", "{master-id}"}, {"CLUSTER", "REPLICAS", "{self-id}"},
	{"CLUSTER", "KEYSLOT", "foo"}, {"CLUSTER", "COUNTKEYSINSLOT", "12182"}, {"CLUSTER", "GETKEYSINSLOT", "12182", "10"},
	{"HELLO", "2"},
	// READONLY: reads are served here, writes still go to the master.
	{"READONLY"}, {"GET", "foo"}, {"TTL", "foo"}, {"EXISTS", "foo"}, {"TYPE", "foo"}, {"MGET", "foo", "foo"},
	{"EVAL_RO", "return redis.call('get', KEYS[1])", "1", "foo"}, {"GET", "{a}nothing"}, {"MGET", "foo", "{a}x"},
	{"SET", "foo", "x"}, {"BLPOP", "foo", "1"}, {"EVAL_RO", "return redis.call('set', KEYS[1], 'x')", "1", "foo"},
	{"MULTI"}, {"SET", "foo", "y"}, {"EXEC"},
	{"READWRITE"}, {"GET", "foo"},
	{"READONLY"}, {"RESET"}, {"GET", "foo"},
	{"ASKING"}, {"GET", "foo"},
}

// clusterReplicaScriptRESP3 is sent after HELLO 3: the topology in RESP3's
// maps and verbatim strings, redirects and reads.
var clusterReplicaScriptRESP3 = [][]string{
	{"CLUSTER", "SLOTS"}, {"CLUSTER", "SHARDS"}, {"CLUSTER", "NODES"}, {"CLUSTER", "INFO"}, {"CLUSTER", "MYID"},
	{"CLUSTER", "REPLICAS", "{master-id}"}, {"CLUSTER", "KEYSLOT", "foo"}, {"CLUSTER", "GETKEYSINSLOT", "12182", "10"},
	{"GET", "foo"}, {"MGET", "foo", "{a}x"}, {"SELECT", "1"},
	{"READONLY"}, {"GET", "foo"}, {"GET", "{a}nothing"}, {"TTL", "foo"}, {"HGETALL", "{a}nothing"}, {"SET", "foo", "x"},
}

// clusterReplicaDiffers are the commands a redraft follower answers
// differently from a Redis Cluster replica, by design: what it answers
// ("<leader>" is the leader's address) and why.
var clusterReplicaDiffers = []struct {
	args []string
	want string
	why  string
}{
	{[]string{"DBSIZE"}, "-MOVED 0 <leader>\r\n",
		"Redis never redirects a command without keys; a follower at --consistency medium serves no read, so it sends it to the leader (slot 0)"},
	{[]string{"PUBLISH", "ch", "m"}, "-MOVED 0 <leader>\r\n",
		"a replica accepts PUBLISH (the cluster bus spreads it); redraft's goes through the log, proposed by the leader"},
	{[]string{"SPUBLISH", "foo", "m"}, "-MOVED 12182 <leader>\r\n", "the same for shard channels"},
	{[]string{"EVAL", "return 1", "0"}, "-MOVED 0 <leader>\r\n", "a script that may write goes through the log"},
	{[]string{"SWAPDB", "0", "1"}, "-ERR SWAPDB is not allowed in cluster mode\r\n",
		"a replica refuses it as a write (-READONLY); redraft refuses it on every node as the leader would"},
	{[]string{"READONLY"}, "+OK\r\n", ""},
	{[]string{"EVAL", "return 1", "1", "foo"}, "-MOVED 12182 <leader>\r\n",
		"a READONLY replica runs a script without flags and fails it if it writes; redraft sends every EVAL to the leader (EVAL_RO is served)"},
	{[]string{"WATCH", "foo"}, "-MOVED 12182 <leader>\r\n",
		"WATCH goes through the log, so that every node decides EXEC the same way; a READONLY replica accepts it"},
	{[]string{"MULTI"}, "+OK\r\n", ""},
	{[]string{"GET", "foo"}, "+QUEUED\r\n", ""},
	{[]string{"EXEC"}, "-MOVED 12182 <leader>\r\n",
		"EXEC always goes through the log; a READONLY replica runs a transaction of reads itself"},
	{[]string{"READWRITE"}, "+OK\r\n", ""},
}

// TestClusterModeReplicaMatchesRedis: a redraft follower answers as a Redis
// Cluster replica does: -MOVED to the master for what it may not serve,
// READONLY reads, CROSSSLOT, SELECT, transactions, the shard's topology
// with itself as the replica, and -CLUSTERDOWN when the cluster is down.
// At --consistency low a follower serves every read, READONLY or not.
func TestClusterModeReplicaMatchesRedis(t *testing.T) {
	master, replica := startRedisMasterReplica(t)
	nodes := startCluster(t, 2, nodeOpts{Args: []string{"--cluster-mode"}})
	leader := waitLeader(t, nodes...)
	follower := others(nodes, leader)[0]

	for _, args := range [][]string{{"SET", "foo", "bar"}, {"SET", "{a}1", "v"}, {"RPUSH", "{user1000}.list", "x"}} {
		if got := master.do(t, args...); strings.HasPrefix(got, "-") {
			t.Fatalf("%q on the Redis master: %q", args, got)
		}
		leader.DoEventually(10*time.Second, toAny(args)...)
	}
	eventually(t, 20*time.Second, func() error {
		if got := replica.do(t, "CLUSTER", "COUNTKEYSINSLOT", "12182"); got != ":1\r\n" {
			return fmt.Errorf("replica has not foo yet: %q", got)
		}
		return nil
	})
	waitApplied(t, nodes...)

	theirs := replicaView{masterAddr: master.Addr, selfAddr: replica.Addr, masterPort: master.Port, selfPort: replica.Port,
		masterID: bulkText(master.do(t, "CLUSTER", "MYID")), selfID: bulkText(replica.do(t, "CLUSTER", "MYID"))}
	ours := replicaView{masterAddr: leader.Addr, selfAddr: follower.Addr, masterPort: leader.Port, selfPort: follower.Port,
		masterID: nodeID(leader.Addr), selfID: nodeID(follower.Addr)}
	expand := func(v replicaView, args []string) []string {
		out := make([]string, len(args))
		for i, a := range args {
			out[i] = strings.NewReplacer("{master-id}", v.masterID, "{self-id}", v.selfID).Replace(a)
		}
		return out
	}
	// replay sends script on one connection to each, after hello (nil: none;
	// HELLO's own reply names the server, so it is not compared).
	replay := func(proto string, hello []string, script [][]string) {
		rc, fc := dialAddrRaw(t, replica.Addr), dialRaw(t, follower)
		if hello != nil {
			rc.send(t, hello...)
			fc.send(t, hello...)
			rc.rawReply(t, cmdTimeout)
			fc.rawReply(t, cmdTimeout)
		}
		for _, args := range script {
			rc.send(t, expand(theirs, args)...)
			fc.send(t, expand(ours, args)...)
			want, got := theirs.normalize(rc.rawReply(t, cmdTimeout)), ours.normalize(fc.rawReply(t, cmdTimeout))
			if got != want {
				t.Errorf("%s %q:\n got %q\nwant %q (Redis Cluster replica)", proto, args, got, want)
			}
		}
	}
	replay("RESP2", nil, clusterReplicaScript)
	replay("RESP3", []string{"HELLO", "3"}, clusterReplicaScriptRESP3)

	// The differences by design.
	dc := dialRaw(t, follower)
	for _, d := range clusterReplicaDiffers {
		dc.send(t, d.args...)
		want := strings.ReplaceAll(d.want, "<leader>", leader.Addr)
		if got := dc.rawReply(t, cmdTimeout); got != want {
			t.Errorf("%q on a follower: got %q, want %q (%s)", d.args, got, want, d.why)
		}
	}

	// Without a leader, as in a Redis Cluster whose state is fail (the
	// master, once it no longer owns slot 0: a replica answers the same
	// way, by the same code, when its cluster is down).
	mustEqual(t, "DELSLOTS", master.do(t, "CLUSTER", "DELSLOTS", "0"), "+OK\r\n")
	eventually(t, 20*time.Second, func() error {
		if info := master.do(t, "CLUSTER", "INFO"); !strings.Contains(info, "cluster_state:fail\r\n") {
			return fmt.Errorf("master's cluster state: %q", info)
		}
		return nil
	})
	leader.Pause()
	defer leader.Resume()
	eventually(t, 20*time.Second, func() error {
		if l, err := follower.Do("RAFTLEADER"); err == nil {
			return fmt.Errorf("%s still knows leader %v", follower, l)
		}
		return nil
	})
	for _, args := range [][]string{{"GET", "foo"}, {"SET", "foo", "x"}, {"MGET", "foo", "foo"}} {
		want := master.do(t, args...)
		c := dialRaw(t, follower)
		c.send(t, args...)
		if got := c.rawReply(t, 10*time.Second); got != want {
			t.Errorf("%q without a leader: got %q, want %q (Redis Cluster, state fail)", args, got, want)
		}
	}
	leader.Resume()
	waitLeader(t, nodes...)

	// --consistency low: a follower serves reads without READONLY.
	low := startNode(t, nodeOpts{Name: "n3", Join: nodes[0].Addr, Consistency: "low", Args: []string{"--cluster-mode"}})
	nodes = append(nodes, low)
	waitMembers(t, nodes...)
	leader = waitLeader(t, nodes...)
	if low == leader {
		t.Skipf("%s, started to be a follower, leads", low)
	}
	waitApplied(t, nodes...)
	c := dialRaw(t, low)
	for _, step := range []struct{ args, want string }{
		{"GET foo", "$3\r\nbar\r\n"},
		{"DBSIZE", ":3\r\n"},
		{"SET foo x", fmt.Sprintf("-MOVED 12182 %s\r\n", leader.Addr)},
		{"LPOP {user1000}.list", fmt.Sprintf("-MOVED 3443 %s\r\n", leader.Addr)},
	} {
		c.send(t, strings.Fields(step.args)...)
		if got := c.rawReply(t, cmdTimeout); got != step.want {
			t.Errorf("%s on a follower at --consistency low: got %q, want %q", step.args, got, step.want)
		}
	}
}

// toAny converts command arguments for Node.Do.
func toAny(args []string) []interface{} {
	out := make([]interface{}, len(args))
	for i, a := range args {
		out[i] = a
	}
	return out
}
