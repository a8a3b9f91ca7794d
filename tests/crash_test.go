package tests

// Crash recovery: the raft-wal truncated-tail scenario in a loop, kill -9 at
// random moments (mid-append, mid-snapshot, mid-install), and damaged data
// files. (A full disk and an unwritable data directory: disk_test.go.)

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// crashLoops is REDRAFT_CRASH_LOOPS, or def.
func crashLoops(t testing.TB, def int) int {
	if s := os.Getenv("REDRAFT_CRASH_LOOPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("REDRAFT_CRASH_LOOPS=%q: want a positive number", s)
		}
		return n
	}
	return def
}

// statInt reads one integer field of RAFTSTATS.
func statInt(t *testing.T, n *Node, field string) int64 {
	t.Helper()
	s := statsOf(t, n, field)[0]
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%s RAFTSTATS %s = %q", n, field, s)
	}
	return v
}

// TestCrashTruncatedTail reproduces the scenario of raft-wal v0.4.0's bug
// (a follower that truncates its log tail seals a segment without an index
// block and then panics at every start), in a loop: in a 5-node cluster the
// leader and one follower x are cut off together while clients write to the
// leader, so entries it appends after the cut reach x but can never commit;
// the majority elects a new leader and writes; the old leader is killed; the
// partition heals and the new leader overwrites x's uncommitted tail
// ("clearing log suffix"); then x is killed -9 and restarted, and must start
// and catch up. The old leader is restarted too (it truncates its own tail).
// Every round ends with all five nodes at the same RAFTDIGEST; no write to
// the cut-off side is acknowledged or survives, and every acknowledged write
// does. REDRAFT_CRASH_LOOPS sets the number of rounds
// (default 3; `make torture` runs 40). With raft-wal v0.4.0 the first
// restart of x fails.
func TestCrashTruncatedTail(t *testing.T) {
	c := startFaultCluster(t, 5, nodeOpts{})
	rnd := rand.New(rand.NewSource(time.Now().UnixNano()))
	acked := map[string]string{}
	var doomed []string
	loops := crashLoops(t, 3)
	for round := 0; round < loops; round++ {
		old := waitLeader(t, c.nodes...)
		fs := others(c.nodes, old)
		x := fs[rnd.Intn(len(fs))]
		rest := others(c.nodes, old, x)
		t.Logf("--- round %d: old leader %s, follower %s", round+1, old, x)
		suffixBefore := countIn(x, "clearing log suffix")
		// Every entry so far is committed and x knows it, so from here on
		// an entry x holds beyond its commit index is one from after the
		// cut.
		waitApplied(t, c.nodes...)

		// Writers connect to the old leader and send PINGs; from the cut on
		// they write. The old leader appends what they write while it still
		// leads (for its lease); those entries reach x, but two of five
		// never commit them.
		var writers []*prober
		var cut atomic.Bool
		prefix := fmt.Sprintf("doomed-%d", round)
		for w := 0; w < 4; w++ {
			writers = append(writers, startProbe(c.direct(old.Addr), func(j int) []interface{} {
				if !cut.Load() {
					return []interface{}{"PING"}
				}
				return []interface{}{"SET", fmt.Sprintf("%s:%d:%d", prefix, w, j), "x"}
			}))
		}
		start := time.Now()
		eventually(t, leaderTimeout, func() error {
			for i, w := range writers {
				if _, ok := w.answered(start); ok < 1 {
					return fmt.Errorf("writer %d: no PING answered by %s", i, old)
				}
			}
			return nil
		})
		c.partition([]*Node{old, x}, rest)
		cut.Store(true)
		eventually(t, leaderTimeout, func() error {
			last, commit := statInt(t, x, "last_log_index"), statInt(t, x, "commit_index")
			if last <= commit {
				return fmt.Errorf("%s: last_log_index %d, commit_index %d: no uncommitted entries yet", x, last, commit)
			}
			return nil
		})
		xLast, xCommit := statInt(t, x, "last_log_index"), statInt(t, x, "commit_index")
		var results []probe
		for _, w := range writers {
			results = append(results, w.halt()...)
		}

		newLeader := waitLeader(t, rest...)
		for j := 0; j < 20; j++ {
			k := fmt.Sprintf("kept-%d:%d", round, j)
			newLeader.DoEventually(leaderTimeout, "SET", k, "v")
			acked[k] = "v"
		}
		old.Kill9()
		c.heal()
		waitApplied(t, c.nodes...) // x catches up with the majority
		eventually(t, appliedTimeout, func() error {
			if countIn(x, "clearing log suffix") <= suffixBefore {
				return fmt.Errorf("%s never truncated its log tail (it held entries %d..%d uncommitted)", x, xCommit+1, xLast)
			}
			return nil
		})
		t.Logf("%s held uncommitted entries %d..%d, then truncated its tail; killing it", x, xCommit+1, xLast)
		x.Kill9()
		x.Restart()
		old.Restart()
		waitLeader(t, c.nodes...)
		d := waitApplied(t, c.nodes...)
		t.Logf("round %d: all 5 nodes at index %d", round+1, d.Applied)

		for _, p := range results {
			if p.args[0] != "SET" {
				continue
			}
			k := p.args[1].(string)
			doomed = append(doomed, k)
			if p.err == nil {
				t.Errorf("the old leader acknowledged SET %s, sent after the cut, which no majority held: %v", k, p.val)
			}
		}
	}
	leader := waitLeader(t, c.nodes...)
	args := []interface{}{"EXISTS"}
	for _, k := range doomed {
		args = append(args, k)
	}
	if v := leader.DoEventually(leaderTimeout, args...); v != int64(0) {
		t.Errorf("%v writes that only the old leader and x held survived", v)
	}
	for k, v := range acked {
		if got := leader.DoEventually(leaderTimeout, "GET", k); got != v {
			t.Errorf("acknowledged %s=%s, now %v", k, v, got)
		}
	}
}

// populateBig writes keys keys through n (the leader), in MSETs of 500 (one
// log entry each); each value is fill repeated to size bytes ("x" if "").
func populateBig(t testing.TB, n *Node, prefix string, keys, size int, fill ...string) {
	t.Helper()
	f := "x"
	if len(fill) > 0 {
		f = fill[0]
	}
	val := strings.Repeat(f, size/len(f))
	for i := 0; i < keys; i += 500 {
		args := []interface{}{"MSET"}
		for j := i; j < min(i+500, keys); j++ {
			args = append(args, fmt.Sprintf("%s:%d", prefix, j), val)
		}
		n.DoEventually(leaderTimeout, args...)
	}
}

// firstSegmentBase returns the lowest base index of n's raft-wal segment
// files (0 if none): n can no longer send entries below it.
func firstSegmentBase(t testing.TB, n *Node) uint64 {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(n.Dir, "wal", "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	var lowest uint64
	for _, name := range names {
		var base, id uint64
		if _, err := fmt.Sscanf(filepath.Base(name), "%020d-%016x.wal", &base, &id); err == nil && (lowest == 0 || base < lowest) {
			lowest = base
		}
	}
	return lowest
}

// pushPastSegments writes through leader until leader's log no longer holds
// entry idx (raft-wal compacts only whole 64 MiB segments), so a follower
// that needs idx must be sent a snapshot.
func pushPastSegments(t testing.TB, leader *Node, idx int64) {
	t.Helper()
	writeJunkUntil(t, leader, func() error {
		if first := firstSegmentBase(t, leader); first <= uint64(idx) {
			return fmt.Errorf("%s's log still holds entry %d (segments from %d)", leader, idx, first)
		}
		return nil
	})
}

// writeJunkUntil writes 1 MiB values to a scratch key through leader until
// cond returns nil, then deletes the key.
func writeJunkUntil(t testing.TB, leader *Node, cond func() error) {
	t.Helper()
	junk := strings.Repeat("j", 1<<20)
	eventually(t, 2*time.Minute, func() error {
		err := cond()
		if err == nil {
			return nil
		}
		for i := 0; i < 8; i++ {
			if _, err := leader.Do("SET", "junk", junk); err != nil {
				return stopPolling(fmt.Errorf("SET junk on %s: %v", leader, err))
			}
		}
		return err
	})
	leader.MustDo("DEL", "junk")
}

// TestCrashKillAtRandomMoments kills nodes with -9 at random moments while
// clients write and snapshots are frequent (-snapshot-threshold 64,
// -trailing-logs 32): the leader or a follower mid-append; a node a random
// time after RAFTSNAPSHOT was sent to it (mid-snapshot); a follower that
// fell behind the leader's compacted log, a random time after its restart
// (mid-install of the snapshot it is sent); and a new node a random time
// after it joins (mid-install of its first snapshot); for these two the
// leader's log is first pushed past a 64 MiB raft-wal segment, since
// raft-wal drops only whole segments and a follower is otherwise fed from
// the log. Every killed node is restarted and must catch up; at the end
// every member has the same RAFTDIGEST at the same index, no acknowledged
// write is lost, and no incomplete snapshot is left on disk.
// REDRAFT_CRASH_LOOPS raises the number of rounds (default 5, one of each).
func TestCrashKillAtRandomMoments(t *testing.T) {
	c := startFaultCluster(t, 3, nodeOpts{Args: []string{"-snapshot-threshold", "64", "-trailing-logs", "32", "-snapshot-interval", "1s"}})
	seed := time.Now().UnixNano()
	rnd := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	members := append([]*Node(nil), c.nodes...)
	populateBig(t, waitLeader(t, members...), "big", 20000, 200)
	load := startWriteLoad(t, "load", 2, c.nodeAddrs(), c.direct)
	load.waitProgress(t, 20, leaderTimeout)
	randomly := func(max time.Duration) time.Duration { return time.Duration(rnd.Int63n(int64(max))) }
	installs := func(n *Node) int { return countIn(n, "Installed remote snapshot") }

	rounds := max(5, crashLoops(t, 5))
	for round := 0; round < rounds; round++ {
		leader := waitLeader(t, members...)
		fs := others(members, leader)
		f := fs[rnd.Intn(len(fs))]
		switch round % 5 {
		case 0, 1: // mid-append
			victim := leader
			if round%5 == 1 {
				victim = f
			}
			time.Sleep(randomly(300 * time.Millisecond))
			t.Logf("--- round %d: kill -9 %s mid-append", round+1, victim)
			victim.Kill9()
			victim.Restart()
		case 2: // mid-snapshot
			victim := members[rnd.Intn(len(members))]
			done := make(chan error, 1)
			go func() { _, err := victim.Do("RAFTSNAPSHOT"); done <- err }()
			time.Sleep(randomly(400 * time.Millisecond))
			t.Logf("--- round %d: kill -9 %s after RAFTSNAPSHOT", round+1, victim)
			victim.Kill9()
			t.Logf("RAFTSNAPSHOT on %s: %v", victim, <-done)
			victim.Restart()
		case 3: // mid-install to a follower that fell behind
			f.Kill9()
			// f holds no entry the leader does not have.
			pushPastSegments(t, leader, statInt(t, leader, "last_log_index")+1)
			before := installs(f)
			f.Restart()
			time.Sleep(randomly(800 * time.Millisecond))
			t.Logf("--- round %d: kill -9 %s while it catches up from a snapshot", round+1, f)
			f.Kill9()
			f.Restart()
			eventually(t, appliedTimeout, func() error {
				if installs(f) == before {
					return fmt.Errorf("%s installed no snapshot", f)
				}
				return nil
			})
		case 4: // mid-install to a new node
			pushPastSegments(t, leader, 1)
			n := c.addNode(leader.Addr)
			time.Sleep(randomly(800 * time.Millisecond))
			t.Logf("--- round %d: kill -9 new node %s while it installs its first snapshot", round+1, n)
			n.Kill9()
			n.Restart()
			members = append(members, n)
			waitMembers(t, members...)
			load.settled(t, members...)
			if installs(n) == 0 {
				t.Errorf("new node %s installed no snapshot", n)
			}
			// Back to three members, so later rounds cost the same.
			old := members[0]
			raftMember(t, c, members, "RAFTREMOVEPEER", old.Addr)
			members = members[1:]
			waitMembers(t, members...)
			old.Stop()
		}
		waitLeader(t, members...)
		load.waitProgress(t, 20, leaderTimeout)
		d := load.settled(t, members...)
		t.Logf("round %d: members at index %d; %s", round+1, d.Applied, load.summary())
	}
	load.check(t, waitLeader(t, members...))
	waitApplied(t, members...)
	// A snapshot cut short by a crash stays a ".tmp" directory that
	// hashicorp/raft never deletes; a restart must remove it. (One being
	// written right now is fine: it is renamed when complete.)
	eventually(t, appliedTimeout, func() error {
		for _, n := range running(members) {
			if tmps, _ := filepath.Glob(filepath.Join(n.Dir, "snapshots", "snapshots", "*.tmp")); len(tmps) > 0 {
				return fmt.Errorf("%s keeps incomplete snapshots: %v", n, tmps)
			}
		}
		return nil
	})
}

// usedLength returns the offset just past the last non-zero byte of path
// (raft-wal preallocates segment files with zeros).
func usedLength(t testing.TB, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := len(b)
	for i > 0 && b[i-1] == 0 {
		i--
	}
	return int64(i)
}

// damage is one way of damaging a stopped node's data directory.
type damage struct {
	name   string
	sealed bool // the case needs entries after the snapshot in a sealed segment
	// apply damages dir and returns the path of the damaged file; marker is
	// in the values of the entries written after the snapshot.
	apply func(t testing.TB, dir, marker string) string
}

// newestSnapshot returns the directory of the newest complete snapshot in dir.
func newestSnapshot(t testing.TB, dir string) string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "snapshots", "snapshots", "*"))
	best := ""
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			continue
		}
		if best == "" || snapshotIndex(n) > snapshotIndex(best) {
			best = n
		}
	}
	if best == "" {
		t.Fatalf("no snapshot in %s", dir)
	}
	return best
}

// snapshotIndex parses term-index-time from a snapshot directory name.
func snapshotIndex(path string) uint64 {
	var term, idx, ts uint64
	fmt.Sscanf(filepath.Base(path), "%d-%d-%d", &term, &idx, &ts)
	return idx
}

// walSegmentFiles lists n's raft-wal segment files.
func walSegmentFiles(n *Node) []string {
	segs, _ := filepath.Glob(filepath.Join(n.Dir, "wal", "*.wal"))
	return segs
}

// tailSegment returns the newest raft-wal segment file in dir.
func tailSegment(t testing.TB, dir string) string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	if len(names) == 0 {
		t.Fatalf("no wal segment in %s", dir)
	}
	sort.Strings(names)
	return names[len(names)-1]
}

// overwrite writes b at off in path.
func overwrite(t testing.TB, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

var damages = []damage{
	{"sealed wal segment truncated", true, func(t testing.TB, dir, _ string) string {
		segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
		if len(segs) < 2 {
			t.Fatalf("want a sealed segment and a tail in %s, have %v", dir, segs)
		}
		sort.Strings(segs)
		p := segs[len(segs)-2]
		if err := os.Truncate(p, usedLength(t, p)*3/4); err != nil {
			t.Fatal(err)
		}
		return p
	}},
	{"wal segment truncated", false, func(t testing.TB, dir, _ string) string {
		p := tailSegment(t, dir)
		if err := os.Truncate(p, usedLength(t, p)/2); err != nil {
			t.Fatal(err)
		}
		return p
	}},
	{"wal segment corrupted", false, func(t testing.TB, dir, _ string) string {
		p := tailSegment(t, dir)
		overwrite(t, p, usedLength(t, p)/2, []byte(strings.Repeat("\xff", 64)))
		return p
	}},
	{"wal entry altered", false, func(t testing.TB, dir, marker string) string {
		// One byte of a value in the first entry after the snapshot: the
		// entry still decodes, only raft-wal's batch checksum can tell.
		p := tailSegment(t, dir)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		i := strings.Index(string(b), marker+marker)
		if i < 0 {
			t.Fatalf("%q not found in %s", marker, p)
		}
		overwrite(t, p, int64(i), []byte("#"))
		return p
	}},
	{"wal segment emptied", false, func(t testing.TB, dir, _ string) string {
		p := tailSegment(t, dir)
		if err := os.Truncate(p, 0); err != nil {
			t.Fatal(err)
		}
		return p
	}},
	{"wal metadata corrupted", false, func(t testing.TB, dir, _ string) string {
		p := filepath.Join(dir, "wal", "wal-meta.db")
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		overwrite(t, p, 0, []byte(strings.Repeat("garbage!", int(st.Size())/8)))
		return p
	}},
	{"snapshot truncated", false, func(t testing.TB, dir, _ string) string {
		p := filepath.Join(newestSnapshot(t, dir), "state.bin")
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, st.Size()/2); err != nil {
			t.Fatal(err)
		}
		return p
	}},
	{"snapshot corrupted", false, func(t testing.TB, dir, _ string) string {
		p := filepath.Join(newestSnapshot(t, dir), "state.bin")
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		overwrite(t, p, st.Size()/2, []byte(strings.Repeat("\xff", 16)))
		return p
	}},
	{"snapshot metadata corrupted", false, func(t testing.TB, dir, _ string) string {
		p := filepath.Join(newestSnapshot(t, dir), "meta.json")
		if err := os.WriteFile(p, []byte("{not json"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}},
	{"snapshot deleted", false, func(t testing.TB, dir, _ string) string {
		p := newestSnapshot(t, dir)
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
		return p
	}},
}

// TestCrashDamagedFiles damages a stopped follower's data directory in
// several ways (a raft-wal segment truncated, corrupted or emptied, the wal
// metadata corrupted, the newest snapshot truncated, corrupted, its
// metadata corrupted or deleted) and starts it: it must either exit with a
// non-zero status and an error that names the damaged file and the way
// back (wipe the directory, start again with -join), or start and converge
// to the cluster's RAFTDIGEST, never panic or serve a different state. Then
// it follows the way back: wipe, restart with -join, converge.
func TestCrashDamagedFiles(t *testing.T) {
	c := startFaultCluster(t, 3, nodeOpts{Consistency: "low"})
	leader := waitLeader(t, c.nodes...)
	f := others(c.nodes, leader)[0] // a joiner: its command line has -join
	populateBig(t, leader, "a", 1000, 100)
	for _, d := range damages {
		t.Run(strings.ReplaceAll(d.name, " ", "_"), func(t *testing.T) {
			// Entries before and after a snapshot on f.
			populateBig(t, leader, "b-"+d.name, 200, 100)
			waitApplied(t, c.nodes...)
			f.MustDo("RAFTSNAPSHOT")
			if d.sealed { // over a segment (64 MiB) of log after it
				segs := len(walSegmentFiles(f))
				writeJunkUntil(t, leader, func() error {
					if n := len(walSegmentFiles(f)); n <= segs {
						return fmt.Errorf("%s has %d wal segments", f, n)
					}
					return nil
				})
			}
			marker := fmt.Sprintf("<%s>", strings.ReplaceAll(d.name, " ", "-"))
			populateBig(t, leader, "c-"+d.name, 1000, 100, marker) // two entries
			want := waitApplied(t, c.nodes...)
			if err := f.Stop(); err != nil {
				t.Fatalf("%s: clean stop: %v", f, err)
			}
			path := d.apply(t, f.Dir, marker)
			t.Logf("damaged %s", path)
			before := len(f.Log())
			f.RestartNoWait()
			var exitErr error
			exited := poll(startTimeout, func() error {
				if !f.Running() {
					exitErr = f.waitExit(exitTimeout)
					return nil
				}
				d, err := raftDigest(f)
				if err == nil && d.Applied >= want.Applied {
					return stopPolling(nil)
				}
				return fmt.Errorf("%s: RAFTDIGEST %+v %v", f, d, err)
			}) == nil && !f.Running()
			out := f.Log()[before:]
			if strings.Contains(out, "panic:") || strings.Contains(out, "goroutine ") {
				t.Errorf("%s panicked:\n%s", f, tail(out, 3000))
			}
			if exited {
				t.Logf("%s exited (%v):\n%s", f, exitErr, tail(out, 1500))
				if exitErr == nil {
					t.Errorf("%s exited with status 0 on a damaged %s", f, path)
				}
				if !strings.Contains(out, path) && !strings.Contains(out, filepath.Dir(path)) {
					t.Errorf("the error does not name the damaged file %s", path)
				}
				if !strings.Contains(out, "-join") {
					t.Errorf("the error does not tell the way back (wipe %s and start again with -join)", f.Dir)
				}
			} else {
				t.Logf("%s started on the damaged directory; it must converge", f)
				err := poll(appliedTimeout, func() error { _, err := sameDigest(c.nodes); return err })
				if err == nil {
					return
				}
				t.Errorf("%s started on a damaged %s and serves a different state: %v", f, path, err)
				f.Kill9()
			}
			// The way back the error gives.
			wipeDir(t, f)
			f.Restart()
			waitMembers(t, c.nodes...)
			waitApplied(t, c.nodes...)
		})
	}
}
