package tests

// A full disk and an unwritable data directory. Without root, a full disk
// is simulated with RLIMIT_FSIZE: writes past the limit fail with EFBIG
// ("file too large") as they would with ENOSPC on a full file system.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// setFileSizeLimit sets the soft RLIMIT_FSIZE of process pid to limit
// bytes (noLimit: none), keeping its hard limit.
func setFileSizeLimit(t testing.TB, pid int, limit uint64) {
	t.Helper()
	var old syscall.Rlimit
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE, 0, uintptr(unsafe.Pointer(&old)), 0, 0); e != 0 {
		t.Fatalf("prlimit(%d) get: %v", pid, e)
	}
	lim := syscall.Rlimit{Cur: min(limit, old.Max), Max: old.Max}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE, uintptr(unsafe.Pointer(&lim)), 0, 0, 0); e != 0 {
		t.Fatalf("prlimit(%d, FSIZE=%d): %v", pid, limit, e)
	}
}

// noLimit is RLIM_INFINITY.
const noLimit = ^uint64(0)

// noPanic fails the test if out shows a Go panic.
func noPanic(t testing.TB, who string, out string) {
	t.Helper()
	if strings.Contains(out, "panic:") || strings.Contains(out, "goroutine ") {
		t.Errorf("%s panicked:\n%s", who, tail(out, 3000))
	}
}

// runRedraft runs the binary with args through sh (so the shell's ulimit can
// apply) and returns its combined output and exit error; it must exit
// within startTimeout.
func runRedraft(t testing.TB, shellPrefix string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", append([]string{"-c", shellPrefix + ` exec "$0" "$@"`, binPath}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("redraft %v did not exit within %v; output:\n%s", args, startTimeout, tail(out.String(), 3000))
	}
	return out.String(), err
}

// TestDiskUnwritableDir starts a node whose data directory cannot be
// created (it would be under a regular file), and one whose file size limit
// is below the size raft-wal preallocates for a segment (64 MiB): both must
// exit with status 1 and an error naming the path, without a panic.
func TestDiskUnwritableDir(t *testing.T) {
	root := testRoot(t)
	file := filepath.Join(root, "plainfile")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(freePort(t))
	out, err := runRedraft(t, "", "-p", port, "-dir", filepath.Join(file, "data"))
	t.Logf("-dir under a file: %v\n%s", err, tail(out, 600))
	noPanic(t, "redraft", out)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1", err)
	}
	if !strings.Contains(out, file) || !strings.Contains(out, "not a directory") {
		t.Errorf("the error does not name the path and the reason")
	}

	// 1 MiB file size limit (dash counts ulimit -f in 512-byte blocks).
	dir := filepath.Join(root, "small")
	out, err = runRedraft(t, "ulimit -f 2048;", "-p", port, "-dir", dir)
	t.Logf("file size limit 1 MiB: %v\n%s", err, tail(out, 600))
	noPanic(t, "redraft", out)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1", err)
	}
	if !strings.Contains(out, filepath.Join(dir, "wal")) || !strings.Contains(out, "file too large") {
		t.Errorf("the error does not name the wal directory and the reason")
	}
	if os.Geteuid() == 0 {
		t.Logf("running as root: a read-only data directory (chmod 0555) cannot be tested, root writes anyway")
		return
	}
	ro := filepath.Join(root, "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	out, err = runRedraft(t, "", "-p", port, "-dir", ro)
	t.Logf("read-only -dir: %v\n%s", err, tail(out, 600))
	noPanic(t, "redraft", out)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out, ro) {
		t.Errorf("exit %v; want status 1 and an error naming %s", err, ro)
	}
}

// TestDiskFull fills the "disk" of a running follower, then of the leader
// (RLIMIT_FSIZE below the current end of their raft-wal segment, so every
// append fails with "file too large") while clients write. The cluster must
// keep acknowledging writes with the other two nodes; the full node must log
// the error and not crash; once space is back it must catch up; and after a
// kill -9 and restart its log must be intact (same RAFTDIGEST as the others,
// every acknowledged write present).
func TestDiskFull(t *testing.T) {
	c := startFaultCluster(t, 3, nodeOpts{})
	load := startWriteLoad(t, "load", 2, c.nodeAddrs(), c.direct)
	load.waitProgress(t, 20, leaderTimeout)
	leader := waitLeader(t, c.nodes...)
	// Push every segment's write offset past 4 MiB; the dataset stays small.
	junk := strings.Repeat("j", 1<<20)
	for i := 0; i < 5; i++ {
		leader.DoEventually(leaderTimeout, "SET", "junk", junk)
	}
	leader.DoEventually(leaderTimeout, "DEL", "junk")
	load.settled(t, c.nodes...)

	for _, role := range []string{"follower", "leader"} {
		leader := waitLeader(t, c.nodes...)
		n := leader
		if role == "follower" {
			n = others(c.nodes, leader)[0]
		}
		st, err := os.Stat(n.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		// Room for the log file to grow by 1 MiB; the wal is already past.
		limit := uint64(st.Size()) + 1<<20
		if limit >= 4<<20 {
			t.Fatalf("%s's log file is %d bytes: too big for this test", n, st.Size())
		}
		t.Logf("--- %s %s: file size limit %d bytes", role, n, limit)
		before := len(n.Log())
		setFileSizeLimit(t, n.Pid(), limit)
		load.waitProgress(t, 50, 2*leaderTimeout)
		eventually(t, appliedTimeout, func() error {
			if !strings.Contains(n.Log()[before:], "file too large") {
				return fmt.Errorf("%s logged no write error", n)
			}
			return nil
		})
		if !n.Running() {
			t.Fatalf("%s exited when its disk filled: %v", n, n.exitErrLocked())
		}
		if role == "leader" { // it steps down, and another node leads
			eventually(t, leaderTimeout, func() error {
				l, err := agreedLeader(c.nodes)
				if err == nil && l == n {
					err = fmt.Errorf("%s still leads with a full disk", n)
				}
				return err
			})
		}
		out := n.Log()[before:]
		noPanic(t, n.String(), out)
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "file too large") {
				t.Logf("%s logged: %s", n, trunc(line))
				break
			}
		}
		setFileSizeLimit(t, n.Pid(), noLimit)
		load.waitProgress(t, 20, leaderTimeout)
		load.settled(t, c.nodes...)
		n.Kill9()
		n.Restart()
		load.waitProgress(t, 20, leaderTimeout)
		d := load.settled(t, c.nodes...)
		t.Logf("%s restarted and converged at index %d", n, d.Applied)
	}
	load.check(t, waitLeader(t, c.nodes...))
	waitApplied(t, c.nodes...)
}
