package tests

// Operations: backups with redis-cli --rdb loaded into a bare redis-server,
// RAFTBACKUP and /backup, a cluster seeded with --restore, metrics and
// health checks over HTTP, INFO, leadership transfer, non-voting members,
// removing members, MONITOR against redis-server's, and readiness
// (/readyz, systemd's READY) after a whole-cluster restart.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// writeOpsData writes, on the leader, what populate writes plus a stream
// with a consumer group, a function library, a far deadline and db 15.
func writeOpsData(t *testing.T, l *Node) {
	t.Helper()
	populate(t, l, "ops")
	for _, c := range [][]interface{}{
		{"XADD", "ops:stream", "1-1", "f", "v"},
		{"XADD", "ops:stream", "2-1", "g", "w"},
		{"XGROUP", "CREATE", "ops:stream", "grp", "0"},
		{"XREADGROUP", "GROUP", "grp", "alice", "COUNT", "1", "STREAMS", "ops:stream", ">"},
		{"SET", "ops:far", "v", "PXAT", "4102444800000"}, // 2100-01-01
		{"FUNCTION", "LOAD", "#!lua name=opslib\nredis.register_function('ops_echo', function(keys, args) return args[1] end)"},
	} {
		l.MustDo(c...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if err := l.ClientDB(15).Set(ctx, "ops:db15", "fifteen", time.Hour).Err(); err != nil {
		t.Fatalf("SET in db 15: %v", err)
	}
}

// stateOf reads every database of a bare redis-server.
func stateOf(t *testing.T, addr string) map[string]keyState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]keyState{}
	for db := 0; db < 16; db++ {
		c := newClient(addr, db)
		err := readDB(ctx, c, db, out)
		c.Close()
		if err != nil {
			t.Fatalf("%s db %d: %v", addr, db, err)
		}
	}
	return out
}

// doAddr runs one command on any server and returns the reply.
func doAddr(t *testing.T, addr string, args ...interface{}) interface{} {
	t.Helper()
	c := newClient(addr, 0)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	v, err := c.Do(ctx, args...).Result()
	if err != nil {
		t.Fatalf("%s %v: %v", addr, args, err)
	}
	return v
}

// Backups with the standard tool, from a follower, loaded into a bare
// redis-server: every key of every database with its value and its real
// deadline to the millisecond, the stream's consumer group, the function
// library; so is a backup of a follower restarted after a snapshot.
// RAFTBACKUP writes one on the node, in --backup-dir only. Then the
// backup seeds a new cluster (--restore) whose data digest equals the
// original's, and files that are not loadable RDBs stop the node with a
// clear error.
func TestBackupRestore(t *testing.T) {
	root := testRoot(t)
	nodes := startCluster(t, 3, nodeOpts{Consistency: "low", Args: []string{"--backup-dir", root}})
	l := waitLeader(t, nodes...)
	writeOpsData(t, l)
	orig := waitApplied(t, nodes...)
	want := clusterState(t, l)
	checkPopulated(t, want, "ops")
	var f *Node
	for _, n := range nodes {
		if n != l {
			f = n
		}
	}

	dir := filepath.Join(root, "backups")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "backup.rdb")
	out := cli(t, f.Port, "--rdb", path)
	if !strings.Contains(out, "Transfer finished with success") {
		t.Fatalf("redis-cli --rdb: %s", out)
	}
	bare := startBareRedis(t, "--dir", dir, "--dbfilename", "backup.rdb")
	if err := diffStates(want, stateOf(t, bare.Addr), 0); err != nil {
		t.Fatalf("the backup loaded into redis-server differs from the cluster: %v", err)
	}
	groups := doAddr(t, bare.Addr, "XINFO", "GROUPS", "ops:stream")
	if g := fmt.Sprint(groups); !strings.Contains(g, "grp") || !strings.Contains(g, "pending 1") {
		t.Errorf("consumer group after loading the backup: %v", g)
	}
	if got := doAddr(t, bare.Addr, "FCALL", "ops_echo", "0", "hi"); got != "hi" {
		t.Errorf("FCALL on the loaded backup: %v", got)
	}

	// The backup took a snapshot on the follower. Restarted, with no write
	// since, the follower applies nothing (Raft has "nothing new to
	// snapshot"): its backup is the snapshot its child was restored from,
	// not an empty file.
	if err := f.Stop(); err != nil {
		t.Fatalf("stop %s: %v", f, err)
	}
	f.Restart()
	path3 := filepath.Join(dir, "restarted.rdb")
	if out := cli(t, f.Port, "--rdb", path3); !strings.Contains(out, "Transfer finished with success") {
		t.Fatalf("redis-cli --rdb after a restart: %s", out)
	}
	bare3 := startBareRedis(t, "--dir", dir, "--dbfilename", "restarted.rdb")
	if err := diffStates(want, stateOf(t, bare3.Addr), 0); err != nil {
		t.Errorf("the backup of a restarted follower differs from the cluster: %v", err)
	}

	// RAFTBACKUP: the same, written by the leader into --backup-dir (a
	// relative name is in it); paths outside it, or in the data directory,
	// are refused.
	mustEqual(t, "RAFTBACKUP", l.MustDo("RAFTBACKUP", "backups/raftbackup.rdb"), "OK")
	path2 := filepath.Join(dir, "raftbackup.rdb")
	if out, err := exec.Command("redis-check-rdb", path2).CombinedOutput(); err != nil || !strings.Contains(string(out), "RDB looks OK") {
		t.Errorf("redis-check-rdb %s: %v %s", path2, err, out)
	}
	bare2 := startBareRedis(t, "--dir", dir, "--dbfilename", "raftbackup.rdb")
	if err := diffStates(want, stateOf(t, bare2.Addr), 0); err != nil {
		t.Errorf("RAFTBACKUP loaded into redis-server differs from the cluster: %v", err)
	}
	for _, c := range []struct{ path, want string }{
		{filepath.Join(l.Dir, "x.rdb"), "inside the data directory"},
		{"../x.rdb", "is outside --backup-dir"},
		{filepath.Join(os.TempDir(), "x.rdb"), "is outside --backup-dir"},
	} {
		if _, err := l.Do("RAFTBACKUP", c.path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("RAFTBACKUP %s: %v, want %q", c.path, err, c.want)
		}
	}

	// Restore into a new cluster: same data, same digest.
	r1 := startNode(t, nodeOpts{Name: "r1", Consistency: "low", Args: []string{"--restore", path}})
	waitLeader(t, r1)
	r2 := startNode(t, nodeOpts{Name: "r2", Consistency: "low", Join: r1.Addr})
	r3 := startNode(t, nodeOpts{Name: "r3", Consistency: "low", Join: r1.Addr})
	waitMembers(t, r1, r2, r3)
	got := waitApplied(t, r1, r2, r3)
	if got.Hash != orig.Hash {
		t.Errorf("restored cluster's digest %s, want the original's %s", got.Hash, orig.Hash)
	}
	sameStateAs(t, l, r1, r3)
	if v := r1.MustDo("FCALL", "ops_echo", "0", "again"); v != "again" {
		t.Errorf("FCALL on a restored node: %v", v)
	}
	r1.DoEventually(10*time.Second, "SET", "after", "restore")
	if _, err := r1.Do("RAFTBACKUP", filepath.Join(dir, "r1.rdb")); err == nil || !strings.Contains(err.Error(), "RAFTBACKUP is disabled: start the node with --backup-dir") {
		t.Errorf("RAFTBACKUP without --backup-dir: %v", err)
	}

	// Not an RDB file, and a damaged one: the node does not start.
	notRDB := filepath.Join(dir, "notrdb.rdb")
	if err := os.WriteFile(notRDB, []byte("hello, world\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(dir, "damaged.rdb")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(damaged, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, want string }{
		{notRDB, "is not an RDB file"},
		{damaged, "redis-server could not load it"},
		{filepath.Join(dir, "missing.rdb"), "no such file"},
	} {
		n := startNode(t, nodeOpts{Args: []string{"--restore", c.file}, NoWait: true})
		if err := n.waitExit(startTimeout); err == nil || !strings.Contains(err.Error(), "exit status 1") {
			t.Errorf("--restore %s: exit %v, want status 1", filepath.Base(c.file), err)
		}
		if !strings.Contains(n.Log(), c.want) {
			t.Errorf("--restore %s: log lacks %q:\n%s", filepath.Base(c.file), c.want, tail(n.Log(), 2000))
		}
	}
}

// scrape fetches and parses /metrics.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// metricValue is the value of the series of name whose labels include
// labels ("k=v"), summed; ok is false when there is none.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	fam, ok := fams[name]
	if !ok {
		return 0, false
	}
	sum, found := 0.0, false
	for _, m := range fam.Metric {
		match := true
		for _, want := range labels {
			k, v, _ := strings.Cut(want, "=")
			has := false
			for _, lp := range m.Label {
				has = has || (lp.GetName() == k && lp.GetValue() == v)
			}
			match = match && has
		}
		if !match {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Summary != nil:
			sum += float64(m.Summary.GetSampleCount())
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum, found
}

// httpStatus is the status code of GET url ("" and the error on failure).
func httpStatus(url string) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// metricsNode starts a node serving --metrics-addr on a free port.
func metricsNode(t *testing.T, name, join string) (*Node, string) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	return startNode(t, nodeOpts{Name: name, Join: join, Consistency: "low", Args: []string{"--metrics-addr", addr}}), addr
}

// /metrics is scraped and parsed: commands by kind move with the commands
// sent, latencies and batch sizes are recorded, Raft's state and indexes
// and hashicorp/raft's own metrics are there. /readyz flips to 503 on a
// follower that loses its leader and back to 200 when a leader returns.
func TestMetricsAndReadiness(t *testing.T) {
	n1, m1 := metricsNode(t, "n1", "")
	waitLeader(t, n1)
	n2, m2 := metricsNode(t, "n2", n1.Addr)
	n3, _ := metricsNode(t, "n3", n1.Addr)
	waitMembers(t, n1, n2, n3)
	l := waitLeader(t, n1, n2, n3)
	if l != n1 {
		t.Fatalf("leader %s, want n1", l)
	}
	waitApplied(t, n1, n2, n3)

	before := scrape(t, m1)
	for i := 0; i < 10; i++ {
		n1.MustDo("SET", fmt.Sprintf("m:%d", i), i)
	}
	for i := 0; i < 5; i++ {
		n1.MustDo("GET", "m:1")
	}
	if _, err := n1.Do("NOSUCHCOMMAND"); err == nil {
		t.Fatal("an unknown command succeeded")
	}
	mustEqual(t, "RAFTSNAPSHOT", n1.MustDo("RAFTSNAPSHOT"), "OK")
	after := scrape(t, m1)
	delta := func(name string, labels ...string) float64 {
		a, ok := metricValue(after, name, labels...)
		if !ok {
			t.Errorf("metric %s%v missing", name, labels)
		}
		b, _ := metricValue(before, name, labels...)
		return a - b
	}
	for kind, want := range map[string]float64{"write": 10, "read": 5, "refused": 1} {
		if got := delta("redraft_commands_total", "kind="+kind); got != want {
			t.Errorf("redraft_commands_total{kind=%q} grew by %v, want %v", kind, got, want)
		}
	}
	if got := delta("redraft_commands_total", "kind=local"); got < 1 {
		t.Errorf("redraft_commands_total{kind=local} grew by %v (RAFTSNAPSHOT at least)", got)
	}
	if got := delta("redraft_proposal_duration_seconds"); got < 1 {
		t.Errorf("proposal latency histogram: %v new samples", got)
	}
	for _, name := range []string{"redraft_apply_duration_seconds", "redraft_entry_commands", "redraft_apply_batch_entries", "redraft_log_fsync_duration_seconds"} {
		if got := delta(name); got < 1 {
			t.Errorf("%s: %v new samples", name, got)
		}
	}
	if got := delta("redraft_snapshots_total"); got != 1 {
		t.Errorf("redraft_snapshots_total grew by %v, want 1", got)
	}
	if got := delta("redraft_snapshot_duration_seconds"); got != 1 {
		t.Errorf("snapshot duration: %v new samples, want 1", got)
	}
	gauges := map[string]func(float64) bool{
		"redraft_raft_term":                func(v float64) bool { return v >= 1 },
		"redraft_raft_commit_index":        func(v float64) bool { return v >= 10 },
		"redraft_raft_applied_index":       func(v float64) bool { return v >= 10 },
		"redraft_raft_last_log_index":      func(v float64) bool { return v >= 10 },
		"redraft_raft_log_entries":         func(v float64) bool { return v >= 0 },
		"redraft_raft_log_bytes":           func(v float64) bool { return v > 0 },
		"redraft_raft_last_snapshot_bytes": func(v float64) bool { return v > 0 },
		"redraft_raft_members":             func(v float64) bool { return v == 3 },
		"redraft_child_up":                 func(v float64) bool { return v == 1 },
		"redraft_child_restarts_total":     func(v float64) bool { return v == 0 },
		"redraft_connected_clients":        func(v float64) bool { return v >= 1 },
		"redraft_blocked_clients":          func(v float64) bool { return v == 0 },
		"redraft_ready":                    func(v float64) bool { return v == 1 },
	}
	for name, ok := range gauges {
		if v, found := metricValue(after, name); !found || !ok(v) {
			t.Errorf("%s = %v (found %v)", name, v, found)
		}
	}
	if v, _ := metricValue(after, "redraft_raft_state", "state=Leader"); v != 1 {
		t.Errorf(`redraft_raft_state{state="Leader"} = %v on the leader`, v)
	}
	for _, name := range []string{"raft_commitTime", "raft_fsm_applyBatch", "raft_replication_appendEntries_rpc"} {
		if _, found := metricValue(after, name); !found {
			t.Errorf("hashicorp/raft's %s is not exported", name)
		}
	}
	// A client blocked in BLPOP shows up.
	blocked := make(chan error, 1)
	go func() {
		_, err := n1.Do("BLPOP", "m:nolist", "3")
		blocked <- err
	}()
	eventually(t, 5*time.Second, func() error {
		if v, _ := metricValue(scrape(t, m1), "redraft_blocked_clients"); v != 1 {
			return fmt.Errorf("redraft_blocked_clients = %v", v)
		}
		return nil
	})
	<-blocked

	for _, path := range []string{"/livez", "/readyz", "/debug/pprof/heap"} {
		if code, body := httpStatus("http://" + m2 + path); code != 200 {
			t.Errorf("GET %s on a follower: %d %s", path, code, body)
		}
	}
	if v, _ := metricValue(scrape(t, m2), "redraft_raft_state", "state=Follower"); v != 1 {
		t.Errorf(`redraft_raft_state{state="Follower"} = %v on a follower`, v)
	}

	// The follower loses its leader (and its quorum): not ready.
	n1.Kill9()
	n3.Kill9()
	eventually(t, 15*time.Second, func() error {
		if code, body := httpStatus("http://" + m2 + "/readyz"); code != 503 || !strings.Contains(body, "no leader") {
			return fmt.Errorf("/readyz: %d %s", code, body)
		}
		return nil
	})
	if code, _ := httpStatus("http://" + m2 + "/livez"); code != 200 {
		t.Errorf("/livez without a leader: %d", code)
	}
	n1.Restart()
	n3.Restart()
	eventually(t, leaderTimeout, func() error {
		if code, body := httpStatus("http://" + m2 + "/readyz"); code != 200 {
			return fmt.Errorf("/readyz: %d %s", code, body)
		}
		return nil
	})

	// /backup over HTTP is an RDB file.
	resp, err := http.Get("http://" + m2 + "/backup")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "REDIS0") {
		t.Errorf("GET /backup: %s, %d bytes starting %.9q", resp.Status, len(body), body)
	}
}

// infoFields parses an INFO reply into name → value.
func infoFields(v interface{}) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(fmt.Sprint(v), "\r\n") {
		if k, val, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			out[k] = val
		}
	}
	return out
}

// Cluster operations: a non-voter receives the log and serves low reads,
// never votes (a voter left with only a non-voter elects nobody) and is
// promoted; leadership moves to a named node or the best one; INFO
// describes the Raft roles; a member that is down is removed; a live
// member that is removed stops and says why.
func TestClusterOperations(t *testing.T) {
	nodes := startCluster(t, 3, nodeOpts{Consistency: "low"})
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	nv := startNode(t, nodeOpts{Name: "nv", Consistency: "low", Join: n1.Addr, Args: []string{"--nonvoter"}})
	waitMembers(t, n1, n2, n3, nv)
	l := waitLeader(t, n1, n2, n3)
	if peers := fmt.Sprint(l.MustDo("RAFTPEERS")); !strings.Contains(peers, nv.Addr+" "+nv.Addr+" Nonvoter") {
		t.Fatalf("RAFTPEERS: %s", peers)
	}
	l.DoEventually(10*time.Second, "SET", "ops:nv", "seen")
	eventually(t, appliedTimeout, func() error {
		if v, err := nv.Do("GET", "ops:nv"); err != nil || v != "seen" {
			return fmt.Errorf("GET on the non-voter: %v %v", v, err)
		}
		return nil
	})

	// INFO on the leader and on a follower.
	rep := infoFields(l.MustDo("INFO", "replication"))
	if rep["role"] != "master" || rep["connected_slaves"] != "3" || !strings.Contains(rep["slave0"], "match_index=") {
		t.Errorf("leader's INFO replication: %v", rep)
	}
	nvRep := infoFields(nv.MustDo("INFO", "replication"))
	if nvRep["role"] != "slave" || nvRep["raft_role"] != "nonvoter" || nvRep["master_host"]+":"+nvRep["master_port"] != l.Addr || nvRep["master_link_status"] != "up" {
		t.Errorf("non-voter's INFO replication: %v", nvRep)
	}
	raftOnly := fmt.Sprint(nv.MustDo("INFO", "raft"))
	if !strings.HasPrefix(raftOnly, "# Raft\r\n") || strings.Contains(raftOnly, "# Server") {
		t.Errorf("INFO raft is not the Raft section alone: %.200q", raftOnly)
	}
	rf := infoFields(raftOnly)
	if rf["raft_members"] != "4" || !strings.Contains(rf["raft_member3"]+rf["raft_member2"]+rf["raft_member1"], "suffrage=nonvoter") {
		t.Errorf("INFO raft members: %v", rf)
	}
	for _, k := range []string{"raft_log_entries", "raft_log_bytes", "raft_last_snapshot_bytes", "raft_fsync_count", "raft_fsync_avg_usec"} {
		if _, ok := rf[k]; !ok {
			t.Errorf("INFO raft lacks %s", k)
		}
	}
	srv := infoFields(l.MustDo("INFO", "server"))
	if srv["redraft_version"] == "" || srv["redis_version"] == "" || srv["tcp_port"] != strconv.Itoa(l.Port) {
		t.Errorf("INFO server: redraft_version %q redis_version %q tcp_port %q", srv["redraft_version"], srv["redis_version"], srv["tcp_port"])
	}
	// avg_ttl is the child's running average of sampled TTLs (0 until its
	// expiry cycle, about every 100 ms, has sampled one), without the
	// shift: close to the only TTL, 1000 s.
	l.MustDo("SET", "ops:ttl", "v", "EX", "1000")
	avgTTL := regexp.MustCompile(`^keys=2,expires=1,avg_ttl=(\d+)$`)
	eventually(t, 10*time.Second, func() error {
		db0 := infoFields(l.MustDo("INFO", "keyspace"))["db0"]
		m := avgTTL.FindStringSubmatch(db0)
		if m == nil {
			return stopPolling(fmt.Errorf("INFO keyspace db0:%s", db0))
		}
		switch ttl, _ := strconv.ParseInt(m[1], 10, 64); {
		case ttl == 0:
			return fmt.Errorf("avg_ttl still 0")
		case ttl < 990*1000 || ttl > 1000*1000:
			return stopPolling(fmt.Errorf("avg_ttl %d ms, want about 1000 s (db0:%s)", ttl, db0))
		}
		return nil
	})

	// Leadership to a named voter, then to the best one; not to a non-voter.
	target := n2
	if l == n2 {
		target = n3
	}
	mustEqual(t, "RAFTTRANSFERLEADER", l.MustDo("RAFTTRANSFERLEADER", target.Addr), "OK")
	if got := waitLeader(t, n1, n2, n3); got != target {
		t.Fatalf("leader after RAFTTRANSFERLEADER %s: %s", target, got)
	}
	if _, err := target.Do("RAFTTRANSFERLEADER", nv.Addr); err == nil || !strings.Contains(err.Error(), "does not vote") {
		t.Errorf("RAFTTRANSFERLEADER to a non-voter: %v", err)
	}
	mustEqual(t, "RAFTTRANSFERLEADER", target.MustDo("RAFTTRANSFERLEADER"), "OK")
	l = waitLeader(t, n1, n2, n3)
	if l == target {
		t.Fatalf("RAFTTRANSFERLEADER without a target kept %s leading", l)
	}

	// The non-voter never votes: with two of three voters down (the
	// leader among them), the one left and the non-voter elect nobody, and
	// the non-voter never stands.
	down := []*Node{l}
	var alive *Node
	for _, n := range []*Node{n1, n2, n3} {
		switch {
		case n == l:
		case len(down) < 2:
			down = append(down, n)
		default:
			alive = n
		}
	}
	// The non-voter first learns the current term from the leader.
	var termBefore string
	eventually(t, appliedTimeout, func() error {
		lt := infoFields(l.MustDo("INFO", "raft"))["raft_term"]
		termBefore = infoFields(nv.MustDo("INFO", "raft"))["raft_term"]
		if termBefore != lt {
			return fmt.Errorf("non-voter's term %s, leader's %s", termBefore, lt)
		}
		return nil
	})
	for _, n := range down {
		n.Kill9()
	}
	for deadline := time.Now().Add(6 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if st := nv.MustDo("RAFTSTATE"); st != "Follower" {
			t.Fatalf("the non-voter became %v", st)
		}
		if st := alive.MustDo("RAFTSTATE"); st == "Leader" {
			t.Fatalf("%s was elected with only a non-voter beside it", alive)
		}
	}
	if term := infoFields(nv.MustDo("INFO", "raft"))["raft_term"]; term != termBefore {
		t.Errorf("the non-voter's term moved from %s to %s: it stood for election", termBefore, term)
	}
	for _, n := range down {
		n.Restart()
	}
	l = waitLeader(t, n1, n2, n3)
	mustEqual(t, "RAFTPROMOTE", l.MustDo("RAFTPROMOTE", nv.Addr), "OK")
	if peers := fmt.Sprint(l.MustDo("RAFTPEERS")); strings.Contains(peers, "Nonvoter") {
		t.Errorf("RAFTPEERS after RAFTPROMOTE: %s", peers)
	}

	// A member that is down is removed; then a live one, which stops.
	var gone, removed *Node
	for _, n := range []*Node{n1, n2, n3} {
		if n != l && gone == nil {
			gone = n
		}
	}
	removed = nv
	gone.Kill9()
	mustEqual(t, "RAFTREMOVEPEER (down)", l.MustDo("RAFTREMOVEPEER", gone.Addr), "OK")
	if _, err := l.Do("RAFTREMOVEPEER", "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "not a member") {
		t.Errorf("RAFTREMOVEPEER of a stranger: %v", err)
	}
	mustEqual(t, "RAFTREMOVEPEER (live)", l.MustDo("RAFTREMOVEPEER", removed.Addr), "OK")
	if err := removed.waitExit(20 * time.Second); err != nil {
		t.Errorf("the removed node exited with %v, want status 0", err)
	}
	if !strings.Contains(removed.Log(), "no longer a member of the cluster") {
		t.Errorf("the removed node does not say why it stopped:\n%s", tail(removed.Log(), 2000))
	}
	peers, err := raftPeers(l)
	if err != nil || len(peers) != 2 || contains(peers, gone.Addr) || contains(peers, removed.Addr) {
		t.Errorf("RAFTPEERS after the removals: %v %v", peers, err)
	}
	l.DoEventually(10*time.Second, "SET", "ops:after", "removals")
}

// monitorLines sends MONITOR on its own connection to addr, runs cmds on
// another, and returns the MONITOR lines with the time and the client's
// port replaced, once the marker command has been shown.
func monitorLines(t *testing.T, addr string, cmds [][]string) []string {
	t.Helper()
	mon, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	br := bufio.NewReader(mon)
	fmt.Fprint(mon, "MONITOR\r\n")
	if line, err := br.ReadString('\n'); err != nil || line != "+OK\r\n" {
		t.Fatalf("MONITOR: %q %v", line, err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cr := bufio.NewReader(c)
	for _, cmd := range append(cmds, []string{"ECHO", "end-of-test"}) {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(cmd))
		for _, a := range cmd {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		fmt.Fprint(c, b.String())
		if _, err := readReplyRaw(cr); err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
	}
	stamp := regexp.MustCompile(`^\+\d+\.\d{6} \[(\d+) (?:127\.0\.0\.1:\d+|lua)\] `)
	var out []string
	_ = mon.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading MONITOR: %v (so far %q)", err, out)
		}
		if !stamp.MatchString(line) {
			t.Fatalf("MONITOR line %q is not in Redis's format", line)
		}
		if strings.Contains(line, "] \"ECHO\" \"end-of-test\"") {
			return out
		}
		if strings.Contains(line, " lua] ") {
			continue // commands run by scripts: redraft does not show them
		}
		out = append(out, stamp.ReplaceAllString(line, "[$1 client] "))
	}
}

// readReplyRaw reads one RESP reply (enough for the replies used here).
func readReplyRaw(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	switch line[0] {
	case '$':
		n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
		if n >= 0 {
			buf := make([]byte, n+2)
			_, err = io.ReadFull(br, buf)
			line += string(buf)
		}
	case '*':
		n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
		for i := 0; i < n; i++ {
			s, err := readReplyRaw(br)
			if err != nil {
				return "", err
			}
			line += s
		}
	}
	return line, err
}

// MONITOR on redraft shows what redis-server's shows for the same
// commands: the same lines, quoting, databases, transactions, redactions
// and omissions.
func TestMonitorMatchesRedis(t *testing.T) {
	n := startNode(t, nodeOpts{Name: "n1"})
	waitLeader(t, n)
	n.DoEventually(10*time.Second, "SET", "warm", "up")
	bare := startBareRedis(t)
	cmds := [][]string{
		{"SET", "k", "a\"b\\c\nd\r\t\x07\x08\x00\xff é"},
		{"GET", "k"},
		{"SET", "n", "12345"},
		{"INCR", "n"},
		{"AUTH", "secret"},
		{"AUTH", "user", "secret"},
		{"HELLO", "2", "AUTH", "default", "secret"},
		{"SELECT", "3"},
		{"SET", "in3", "x"},
		{"SELECT", "0"},
		{"NOSUCHCOMMAND", "x"},
		{"GET"},
		{"CONFIG", "GET", "maxmemory"},
		{"CLIENT", "SETNAME", "mon"},
		{"MULTI"},
		{"SET", "a", "1"},
		{"SELECT", "4"},
		{"SET", "b", "2"},
		{"EXEC"},
		{"SELECT", "0"},
		{"EVAL", "return redis.call('set', KEYS[1], ARGV[1])", "1", "e", "v"},
		{"BLPOP", "nolist", "0.01"},
		{"DEL", "k", "n"},
		{"PING"},
	}
	want := monitorLines(t, bare.Addr, cmds)
	got := monitorLines(t, n.Addr, cmds)
	if strings.Join(got, "") != strings.Join(want, "") {
		t.Errorf("MONITOR differs from redis-server's\nredraft:\n%s\nredis-server:\n%s", strings.Join(got, ""), strings.Join(want, ""))
	}
}

// notifyListener listens for sd_notify datagrams in dir.
func notifyListener(t *testing.T, dir string) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	msgs := make(chan string, 256)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return path, msgs
}

// After the whole cluster restarts, a follower is not ready, neither for
// systemd (READY=1) nor for /readyz, before it has applied what it held:
// Raft keeps no commit index on disk, and a new leader announces none
// until it has committed an entry of its term. n1 misses the last write,
// so when it and n2 come back n2 leads and n1 follows. Alone, n1 only
// reports what it waits for. /readyz is polled every millisecond and the
// first 200 is checked at once against a read of the last write.
func TestReadyAfterWholeClusterRestart(t *testing.T) {
	n1, m1 := metricsNode(t, "n1", "")
	waitLeader(t, n1)
	n2 := startNode(t, nodeOpts{Name: "n2", Consistency: "low", Join: n1.Addr})
	n3 := startNode(t, nodeOpts{Name: "n3", Consistency: "low", Join: n1.Addr})
	waitMembers(t, n1, n2, n3)
	waitLeader(t, n1, n2, n3).DoEventually(10*time.Second, "SET", "k1", "v1")
	waitApplied(t, n1, n2, n3)
	n1.Stop()
	waitLeader(t, n2, n3).DoEventually(10*time.Second, "SET", "k2", "v2")
	before := waitApplied(t, n2, n3)
	n2.Stop()
	n3.Stop()

	sock, msgs := notifyListener(t, testRoot(t))
	n1.env = []string{"NOTIFY_SOCKET=" + sock}
	n1.Restart()
	var seen []string
	waitStatus := time.After(leaderTimeout)
	for !strings.Contains(strings.Join(seen, "\n"), "STATUS=no leader is known") {
		select {
		case m := <-msgs:
			seen = append(seen, m)
			if strings.Contains(m, "READY=1") {
				t.Fatalf("READY=1 without a leader; messages: %q", seen)
			}
		case <-waitStatus:
			t.Fatalf("no status while waiting for a leader: %q", seen)
		}
	}
	if code, body := httpStatus("http://" + m1 + "/readyz"); code != 503 || !strings.Contains(body, "no leader") {
		t.Errorf("/readyz alone: %d %s", code, body)
	}

	type readyAt struct {
		k2    interface{}
		err   error
		polls int
	}
	first := make(chan readyAt, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		c := &http.Client{Timeout: 5 * time.Second}
		for polls := 1; ; polls++ {
			select {
			case <-stop:
				return
			default:
			}
			if resp, err := c.Get("http://" + m1 + "/readyz"); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					v, err := n1.Do("GET", "k2")
					first <- readyAt{v, err, polls}
					return
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	n2.Restart()
	select {
	case r := <-first:
		if r.err != nil || r.k2 != "v2" {
			t.Errorf("/readyz answered 200 (poll %d) while n1 reads k2 = %v, %v: ready before applying what it held", r.polls, r.k2, r.err)
		}
	case <-time.After(leaderTimeout):
		code, body := httpStatus("http://" + m1 + "/readyz")
		t.Fatalf("/readyz not 200 after n2 returned: %d %s", code, body)
	}
	if l := waitLeader(t, n1, n2); l != n2 {
		t.Fatalf("leader %s: want n2, as n1 misses the last write", l)
	}
	for deadline := time.After(leaderTimeout); !strings.Contains(strings.Join(seen, "\n"), "READY=1"); {
		select {
		case m := <-msgs:
			seen = append(seen, m)
		case <-deadline:
			t.Fatalf("no READY=1 after a leader returned; messages: %q", seen)
		}
	}
	// The node logs its applied index as it sends READY=1 (at notice).
	if lvl := os.Getenv("REDRAFT_TEST_LOGLEVEL"); lvl == "warning" || lvl == "quiet" {
		return
	}
	lines := regexp.MustCompile(`msg="redraft ready" .*applied=(\d+)`).FindAllStringSubmatch(n1.Log(), -1)
	if len(lines) < 2 {
		t.Fatalf("%d \"redraft ready\" lines in n1's log, want one per start", len(lines))
	}
	if applied, _ := strconv.ParseInt(lines[len(lines)-1][1], 10, 64); applied < before.Applied {
		t.Errorf("READY=1 at applied index %d, before the %d n1 held before the restart", applied, before.Applied)
	}
}
