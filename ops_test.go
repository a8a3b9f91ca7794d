package main

import (
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// MONITOR lines in redis-server 7.0's format (replicationFeedMonitors and
// sdscatrepr), checked against lines a real redis-server printed.
func TestMonitorLine(t *testing.T) {
	at := time.Unix(1796004402, 342827000)
	for _, c := range []struct {
		db   int
		args []string
		want string
	}{
		{0, []string{"SET", "k", "a\"b\\c\nd"}, `+1796004402.342827 [0 127.0.0.1:50818] "SET" "k" "a\"b\\c\nd"` + "\r\n"},
		{3, []string{"GET", "\r\t\a\b\x00\xff é"}, `+1796004402.342827 [3 127.0.0.1:50818] "GET" "\r\t\a\b\x00\xff \xc3\xa9"` + "\r\n"},
		{0, []string{"AUTH", "user", "pass"}, `+1796004402.342827 [0 127.0.0.1:50818] "AUTH" "(redacted)" "(redacted)"` + "\r\n"},
		{0, []string{"HELLO", "3", "AUTH", "default", "pw", "SETNAME", "x"}, `+1796004402.342827 [0 127.0.0.1:50818] "HELLO" "3" "AUTH" "(redacted)" "(redacted)" "SETNAME" "x"` + "\r\n"},
		{0, []string{"HELLO", "3", "AUTH", "default"}, `+1796004402.342827 [0 127.0.0.1:50818] "HELLO" "3" "AUTH" "default"` + "\r\n"},
	} {
		args := make([][]byte, len(c.args))
		for i, a := range c.args {
			args[i] = []byte(a)
		}
		if got := string(monitorLine(at, c.db, "127.0.0.1:50818", strings.ToLower(c.args[0]), args)); got != c.want {
			t.Errorf("monitorLine(%q)\n got %s want %s", c.args, got, c.want)
		}
	}
	// Microseconds keep their leading zeros.
	if got := string(monitorLine(time.Unix(5, 7000), 0, "a:1", "ping", [][]byte{[]byte("PING")})); got != "+5.000007 [0 a:1] \"PING\"\r\n" {
		t.Errorf("leading zeros: %q", got)
	}
}

// avg_ttl comes back unshifted; other fields and an average of 0 stay.
func TestKeyspaceInfoUnshifts(t *testing.T) {
	shifted := strconv.FormatInt(deadlineShift+1500, 10)
	lines := keyspaceInfo([]string{"# Keyspace", "db0:keys=3,expires=1,avg_ttl=" + shifted, "db3:keys=1,expires=0,avg_ttl=0"})
	if lines[1] != "db0:keys=3,expires=1,avg_ttl=1500" || lines[2] != "db3:keys=1,expires=0,avg_ttl=0" {
		t.Errorf("keyspace %q", lines)
	}
}

// REPLCONF answers as a 7.0 master does to the options redis-cli sends,
// and keeps them for SYNC.
func TestReplconf(t *testing.T) {
	_, addr := newTestFrontEnd(t, nil)
	c := dialTest(t, addr)
	for _, step := range []struct{ cmd, want string }{
		{"REPLCONF capa eof\r\n", "+OK\r\n"},
		{"REPLCONF rdb-only 1\r\n", "+OK\r\n"},
		{"REPLCONF rdb-filter-only functions\r\n", "+OK\r\n"},
		{"REPLCONF rdb-only 2\r\n", "-ERR value is out of range, value must between 0 and 1\r\n"},
		{"REPLCONF rdb-filter-only keys\r\n", "-ERR Unsupported rdb-filter-only option: keys\r\n"},
		{"REPLCONF capa\r\n", "-ERR syntax error\r\n"},
		{"REPLCONF foo bar\r\n", "-ERR Unrecognized REPLCONF option: foo\r\n"},
		{"REPLCONF listening-port 6380\r\n", "-ERR REPLCONF listening-port is not supported: replication is done by Raft (see RAFTADDPEER)\r\n"},
		{"REPLCONF ack 10\r\nPING\r\n", "+PONG\r\n"}, // no reply to ACK, as from a client that is not a replica
		{"PSYNC ? -1\r\n", "-ERR Filtered replica requires EOF capability\r\n"},
	} {
		if step.cmd == "PSYNC ? -1\r\n" {
			c.do("REPLCONF capa none\r\n") // capa eof cannot be taken back: use a new connection
			c = dialTest(t, addr)
			c.do("REPLCONF rdb-only 1 rdb-filter-only functions\r\n")
		}
		if got := c.do(step.cmd); got != step.want {
			t.Errorf("%q: %q, want %q", step.cmd, got, step.want)
		}
	}
	c = dialTest(t, addr)
	if got := c.do("PSYNC ? -1\r\n"); !strings.HasPrefix(got, "-ERR PSYNC is only served for backups") {
		t.Errorf("PSYNC without rdb-only: %q", got)
	}
}

// --restore and -join exclude each other; --nonvoter needs -join.
func TestRestoreAndNonvoterFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--restore", "x.rdb", "-join", "7481"}, "cannot be combined with -join"},
		{[]string{"--nonvoter"}, "--nonvoter needs -join"},
	} {
		_, _, err := parseConfig(c.args, nil, func() string { return "" })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.args, err, c.want)
		}
	}
	cfg, _, err := parseConfig([]string{"--nonvoter", "-join", "7481", "--metrics-addr", "127.0.0.1:9121"}, []string{"REDRAFT_RESTORE=b.rdb"}, func() string { return "" })
	if err == nil {
		t.Errorf("REDRAFT_RESTORE with -join accepted: %+v", cfg)
	}
	cfg, _, err = parseConfig([]string{"--nonvoter", "-join", "7481", "--metrics-addr", "127.0.0.1:9121"}, nil, func() string { return "" })
	if err != nil || !cfg.nonvoter || cfg.metricsAddr != "127.0.0.1:9121" {
		t.Errorf("parse: %+v %v", cfg, err)
	}
}

// With a password set, /backup wants it (HTTP basic authentication).
func TestBackupHTTPNeedsThePassword(t *testing.T) {
	s, _, _ := newTestNode(t, &options{consistency: consistencyMedium, maxClients: 10000, outputLimits: defaultOutputLimits,
		queryBufferLimit: 1 << 30, protoMaxBulkLen: 512 << 20, requirePass: "s3cret"})
	s.fsm.setStartupConfig("s3cret", 0) // as runNode does
	for _, c := range []struct {
		user, pass string
		set        bool
		want       int
	}{
		{want: 401},
		{user: "default", pass: "wrong", set: true, want: 401},
		{user: "alice", pass: "s3cret", set: true, want: 401},
		{user: "default", pass: "s3cret", set: true, want: 200},
		{user: "", pass: "s3cret", set: true, want: 200},
	} {
		req := httptest.NewRequest("GET", "/backup", nil)
		if c.set {
			req.SetBasicAuth(c.user, c.pass)
		}
		rec := httptest.NewRecorder()
		s.backupHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%q:%q: %d, want %d", c.user, c.pass, rec.Code, c.want)
		}
		if c.want == 200 && !strings.HasPrefix(rec.Body.String(), "REDIS0") {
			t.Errorf("body %.9q is not an RDB file", rec.Body.String())
		}
	}
}

// entryOfTerm finds an entry's term in the log, or in the newest snapshot
// once the log no longer has it; index 0 is never of any term.
func TestEntryOfTerm(t *testing.T) {
	logs := raft.NewInmemStore()
	if err := logs.StoreLogs([]*raft.Log{{Index: 1, Term: 1}, {Index: 2, Term: 1}, {Index: 3, Term: 2}}); err != nil {
		t.Fatal(err)
	}
	snaps, err := raft.NewFileSnapshotStore(t.TempDir(), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	check := func(index, term uint64, want bool) {
		t.Helper()
		if got := entryOfTerm(index, term, logs, snaps); got != want {
			t.Errorf("entryOfTerm(%d, %d) = %v, want %v", index, term, got, want)
		}
	}
	check(0, 0, false)
	check(0, 1, false)
	check(2, 1, true)
	check(2, 2, false) // committed in an earlier term: not yet known
	check(3, 2, true)
	check(7, 3, false) // neither in the log nor in a snapshot
	sink, err := snaps.Create(raft.SnapshotVersionMax, 7, 3, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	check(7, 3, true)  // installed with the snapshot, log emptied
	check(7, 4, false) // the snapshot's term is older
	check(6, 3, false) // not where the snapshot ends
}

// RAFTBACKUP writes only into --backup-dir, symbolic links followed.
func TestBackupPath(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "backups")
	outside := filepath.Join(base, "elsewhere")
	for _, d := range []string{filepath.Join(dir, "sub"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, want string }{
		{"b.rdb", filepath.Join(dir, "b.rdb")},
		{"sub/b.rdb", filepath.Join(dir, "sub", "b.rdb")},
		{"sub/../b.rdb", filepath.Join(dir, "b.rdb")},
		{filepath.Join(dir, "b.rdb"), filepath.Join(dir, "b.rdb")},
		{filepath.Join(base, "link", "b.rdb"), filepath.Join(dir, "b.rdb")},
		{"out", filepath.Join(dir, "out")}, // replaces the link itself
		{"../b.rdb", ""},
		{filepath.Join(outside, "b.rdb"), ""},
		{"out/b.rdb", ""},
		{"", ""},
		{".", ""},
		{dir, ""},
		{"nosuch/b.rdb", ""},
	} {
		got, err := backupPath(c.name, dir)
		if c.want == "" {
			if err == nil {
				t.Errorf("backupPath(%q) = %q, want an error", c.name, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("backupPath(%q) = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	// The directory itself may be given through a link.
	if got, err := backupPath("b.rdb", filepath.Join(base, "link")); err != nil || got != filepath.Join(dir, "b.rdb") {
		t.Errorf("through a linked --backup-dir: %q, %v", got, err)
	}
}

// lastFSMEntry skips the entries Raft never hands to the FSM, and stops at
// the start of the log (the rest is in the snapshot).
func TestLastFSMEntry(t *testing.T) {
	logs := raft.NewInmemStore()
	if err := logs.StoreLogs([]*raft.Log{
		{Index: 10, Type: raft.LogNoop}, {Index: 11, Type: raft.LogConfiguration}, {Index: 12, Type: raft.LogNoop},
		{Index: 13, Type: raft.LogCommand}, {Index: 14, Type: raft.LogBarrier}, {Index: 15, Type: raft.LogNoop},
	}); err != nil {
		t.Fatal(err)
	}
	for index, want := range map[uint64]uint64{15: 13, 14: 13, 13: 13, 12: 11, 11: 11, 10: 0, 9: 0, 0: 0} {
		if got := lastFSMEntry(index, logs); got != want {
			t.Errorf("lastFSMEntry(%d) = %d, want %d", index, got, want)
		}
	}
}
