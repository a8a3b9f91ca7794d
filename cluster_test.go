package main

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Redis Cluster's own examples and the hash-tag rules (cluster-spec).
func TestKeySlot(t *testing.T) {
	for key, want := range map[string]int{
		"123456789": 12739, // CRC16/XMODEM check value 0x31C3
		"foo":       12182, "a": 15495, "": 0,
		"{user1000}.following": 3443, "{user1000}.followers": 3443,
		"foo{}{bar}": keySlot([]byte("foo{}{bar}")), // empty first tag: the whole key
		"{}a":        10875, "a{}b": 13694,
		"foo{{bar}}zap": keySlot([]byte("{bar")), "foo{bar}{zap}": keySlot([]byte("bar")),
	} {
		if got := keySlot([]byte(key)); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
	if keySlot([]byte("foo{}{bar}")) == keySlot([]byte("bar")) {
		t.Error(`"foo{}{bar}" hashes its second tag`)
	}
}

// clusterOptions are a one-node test's options with --cluster-mode.
func clusterOptions() *options {
	return &options{consistency: consistencyMedium, maxClients: 10000, outputLimits: defaultOutputLimits,
		queryBufferLimit: 1 << 30, protoMaxBulkLen: 512 << 20, clusterMode: true}
}

// startClusterRedis runs a real redis-server with cluster-enabled yes as a
// one-node cluster that owns every slot (CLUSTER ADDSLOTSRANGE 0 16383).
func startClusterRedis(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	// The cluster bus port would be the port + 10000, past 65535 for a
	// high ephemeral port: give it one of its own.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bus := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	addr := startRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", dir+"/nodes.conf",
		"--cluster-announce-ip", "127.0.0.1", "--cluster-port", bus)
	c := dialTest(t, addr)
	if got := c.do("CLUSTER ADDSLOTSRANGE 0 16383\r\n"); got != "+OK\r\n" {
		t.Fatalf("ADDSLOTSRANGE: %q", got)
	}
	eventuallyT(t, func() bool { return strings.Contains(c.do("CLUSTER INFO\r\n"), "cluster_state:ok") })
	return addr
}

// What differs between any two cluster nodes: IDs, ports, the cluster bus
// port (Redis: port+10000; redraft: its one port), times, epochs (redraft:
// the Raft term), replication offsets (redraft: the applied index), client
// IDs; and the lengths of bulks that hold them.
var clusterVolatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`[0-9a-f]{40}`), "<id>"},
	{regexp.MustCompile(`:\d+@\d+ `), ":<port>@<cport> "},
	{regexp.MustCompile(`(master|slave) (-|<id>) 0 \d+ \d+ connected`), "$1 $2 0 <pong> <epoch> connected"},
	{regexp.MustCompile(`(cluster_(current|my)_epoch):\d+`), "$1:<epoch>"},
	{regexp.MustCompile(`replication-offset\r\n:\d+`), "replication-offset\r\n:<offset>"},
	{regexp.MustCompile(`\$2\r\nid\r\n:\d+`), "$$2\r\nid\r\n:<client>"},
	{regexp.MustCompile(`\$\d+\r\n(cluster_state|<id> )`), "$$<len>\r\n$1"},
}

// normalizeCluster hides clusterVolatile and the server's port in raw.
func normalizeCluster(raw, port string) string {
	for _, v := range clusterVolatile {
		raw = v.re.ReplaceAllString(raw, v.with)
	}
	return strings.ReplaceAll(raw, ":"+port+"\r\n", ":<port>\r\n")
}

// clusterScript is sent, in order and on one connection, to a one-node
// redraft in cluster mode and to a redis-server that is a one-node Redis
// Cluster owning every slot: every reply must be the same bytes (after
// normalizeCluster). Replies that depend on how many keys a slot holds use
// one key per slot, since the order of GETKEYSINSLOT differs (see README).
var clusterScript = []string{
	// Topology of a one-node shard.
	"CLUSTER SLOTS", "CLUSTER SHARDS", "CLUSTER NODES", "CLUSTER INFO", "CLUSTER MYID",
	// Arity, unknown subcommands, hostile arguments.
	"CLUSTER", "CLUSTER FOO", "CLUSTER foo bar", "CLUSTER " + strings.Repeat("x", 200),
	"CLUSTER SLOTS x", "CLUSTER SHARDS x", "CLUSTER NODES x", "CLUSTER INFO x", "CLUSTER MYID x",
	"CLUSTER KEYSLOT", "CLUSTER KEYSLOT a b", "CLUSTER COUNTKEYSINSLOT", "CLUSTER COUNTKEYSINSLOT 1 2",
	"CLUSTER GETKEYSINSLOT", "CLUSTER GETKEYSINSLOT 1", "CLUSTER GETKEYSINSLOT 1 1 1",
	"CLUSTER REPLICAS", "CLUSTER SLAVES a b", "CLUSTER REPLICAS nosuchnode", "CLUSTER SLAVES nosuchnode",
	"CLUSTER MEET", "CLUSTER ADDSLOTS", "CLUSTER SETSLOT 1",
	// Slots.
	"CLUSTER KEYSLOT foo", "CLUSTER KEYSLOT {user1000}.following", `CLUSTER KEYSLOT ""`, "CLUSTER KEYSLOT {}a",
	"CLUSTER KEYSLOT a{}b", "CLUSTER KEYSLOT foo{{bar}}", "CLUSTER KEYSLOT \"\\x00\\xff{\\x01}\"",
	"CLUSTER COUNTKEYSINSLOT x", "CLUSTER COUNTKEYSINSLOT -1", "CLUSTER COUNTKEYSINSLOT 16384", "CLUSTER COUNTKEYSINSLOT 1.5",
	"CLUSTER COUNTKEYSINSLOT 99999999999999999999", `CLUSTER COUNTKEYSINSLOT " 1"`, "CLUSTER COUNTKEYSINSLOT 16383",
	"CLUSTER GETKEYSINSLOT x 1", "CLUSTER GETKEYSINSLOT 1 x", "CLUSTER GETKEYSINSLOT 1 -1", "CLUSTER GETKEYSINSLOT -1 1",
	"CLUSTER GETKEYSINSLOT 16384 1", "CLUSTER GETKEYSINSLOT 1 0",
	"SET foo v", "SET {a}1 v", "CLUSTER COUNTKEYSINSLOT 12182", "CLUSTER GETKEYSINSLOT 12182 10",
	"CLUSTER COUNTKEYSINSLOT 15495", "CLUSTER GETKEYSINSLOT 15495 0", "CLUSTER GETKEYSINSLOT 15495 1",
	// READONLY, READWRITE, ASKING.
	"READONLY", "READWRITE", "ASKING", "READONLY x", "READWRITE x", "ASKING x", "READONLY", "GET foo", "READWRITE",
	// Database 0 only.
	"SELECT 0", "SELECT 1", "SELECT -1", "SELECT 16", "SELECT x", "SELECT 00", "SELECT -0", "SELECT 99999999999",
	"SELECT 2147483648", "SELECT -2147483649",
	"MOVE", "MOVE foo", "MOVE foo 1", "MOVE foo 0", "MOVE foo x", "SWAPDB 0", "SWAPDB 0 1", "SWAPDB a b",
	"COPY {a}1 {a}2 DB 1", "COPY {a}1 {a}2 DB 0", "COPY {a}1 {a}2 DB 1 bogus", "COPY {a}1 {a}2 bogus DB 1",
	"COPY {a}1 {a}2 DB x", "COPY {a}1 {a}2 DB 16", "COPY {a}1 {a}2 DB -1", "COPY {a}1 {a}2 REPLACE DB 1",
	"COPY {a}1 {a}2 DB 1 DB 0", "COPY {a}1 {a}2 DB", "COPY {a}1 {a}2 DB 99999999999", "COPY {a}1 {a}2 REPLACE",
	// Keys in different slots.
	"MSET a 1 b 2", "MSET {a}x 1 {a}y 2", "MGET a b", "DEL a b", "COPY a b", "RENAME a b", "SUNIONSTORE a b c",
	"EVAL 'return 1' 2 a b", "EVAL 'return 1' 2 {a}1 {a}2", "EVAL 'return 1' 0", "EXISTS foo foo",
	"BLPOP a b 0.01", "XREAD COUNT 1 STREAMS a b 0 0", "SINTERCARD 2 a b", "ZUNIONSTORE a 2 {a}b c",
	"WATCH a b", "UNWATCH",
	"MULTI", "SET a 1", "SET b 2", "EXEC",
	"MULTI", "SET a 1", "MSET a 1 b 2", "EXEC",
	"MULTI", "SET {a}1 1", "GET {a}2", "EXEC",
	"MULTI", "SELECT 0", "EXEC",
	// How the node presents itself.
	"HELLO 2", "INFO cluster",
}

// A one-node redraft in cluster mode answers the cluster commands, the
// errors of Redis Cluster's redirection and its database-0 refusals with
// the same bytes as a real redis-server --cluster-enabled yes.
func TestClusterRepliesMatchRedis(t *testing.T) {
	redis := startClusterRedis(t)
	_, ours, _ := newTestNode(t, clusterOptions())
	theirs, mine := dialTest(t, redis), dialTest(t, ours)
	theirPort, myPort := redis[strings.LastIndexByte(redis, ':')+1:], ours[strings.LastIndexByte(ours, ':')+1:]
	for _, cmd := range clusterScript {
		want := normalizeCluster(theirs.do(cmd+"\r\n"), theirPort)
		got := normalizeCluster(mine.do(cmd+"\r\n"), myPort)
		if got != want {
			t.Errorf("%s:\n got %q\nwant %q", cmd, got, want)
		}
	}
}

// clusterOffScript: with cluster mode off (the default) the cluster commands
// answer as a redis-server without cluster-enabled does.
var clusterOffScript = []string{
	"CLUSTER", "CLUSTER FOO", "CLUSTER SLOTS", "CLUSTER HELP", "CLUSTER KEYSLOT a", "CLUSTER SLOTS x",
	"READONLY", "READWRITE", "ASKING", "READONLY x", "SELECT 1", "SELECT 99999999999", "MSET a 1 b 2", "HELLO 2",
	"INFO cluster",
}

func TestClusterModeOffMatchesRedis(t *testing.T) {
	redis := startRedis(t)
	_, ours, _ := newTestNode(t, nil)
	theirs, mine := dialTest(t, redis), dialTest(t, ours)
	for _, cmd := range clusterOffScript {
		want := normalizeCluster(theirs.do(cmd+"\r\n"), "")
		got := normalizeCluster(mine.do(cmd+"\r\n"), "")
		if got != want {
			t.Errorf("%s:\n got %q\nwant %q", cmd, got, want)
		}
	}
}

// In subscriber mode Redis Cluster still refuses keys in different slots
// first (SSUBSCRIBE's channels are keys).
func TestClusterCrossSlotWhileSubscribed(t *testing.T) {
	redis := startClusterRedis(t)
	_, ours, _ := newTestNode(t, clusterOptions())
	for _, addr := range []string{redis, ours} {
		c := dialTest(t, addr)
		c.do("SSUBSCRIBE {a}1\r\n")
		got := []string{c.do("SSUBSCRIBE a b\r\n"), c.do("MSET a 1 b 2\r\n"), c.do("GET a\r\n")}
		want := []string{"-CROSSSLOT Keys in request don't hash to the same slot\r\n", "-CROSSSLOT Keys in request don't hash to the same slot\r\n",
			"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: got %q, want %q", addr, got, want)
		}
	}
}

// The cluster bus port is the node's one port; a second member would show
// as a replica of the leader (tests/clustermode_test.go checks three).
func TestClusterNodesLine(t *testing.T) {
	sh := &shard{epoch: 7}
	sh.members = []shardMember{{id: "m", host: "10.0.0.1", port: 7481, master: true}, {id: "r", host: "::1", port: 7482, myself: true}}
	sh.master = &sh.members[0]
	want := "m 10.0.0.1:7481@7481 master - 0 5 7 connected 0-16383\n" +
		"r ::1:7482@7482 myself,slave m 0 0 7 connected\n"
	if got := sh.nodesText(5); got != want {
		t.Errorf("nodes:\n got %q\nwant %q", got, want)
	}
	if got := string(errorReply(&movedError{slot: 3, leader: "[::1]:7481"})); got != "-MOVED 3 ::1:7481\r\n" {
		t.Errorf("IPv6 MOVED: %q", got)
	}
}
