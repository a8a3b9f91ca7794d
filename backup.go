package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Backups and restores (README, "Backups"). A backup is a snapshot taken
// now, exactly as an automatic one (the child's BGSAVE fork under the FSM
// lock is the point in time, so writes stall no longer than for any
// snapshot), converted into an RDB file (rdb.go). A restore loads an RDB
// file into a throwaway redis-server, streams it out in the snapshot
// format (snapshot.go) and hands that to Raft as a user snapshot on a new
// one-member cluster, which then replicates it to every node that joins.

// snapshotRetryFor bounds how long a backup retries a snapshot that Raft
// refuses for a moment (a configuration change not yet applied).
const snapshotRetryFor = 10 * time.Second

// openSnapshotNow takes a snapshot of everything applied so far and opens
// it. Raft refuses (ErrNothingNewToSnapshot) when its FSM has applied
// nothing since the process started: the child then holds exactly the
// newest snapshot, which Raft restored at start (a follower restarted
// after a snapshot, with no write since, is such a node), so that one is
// opened; a node with no snapshot at all has an empty child.
func (n *raftNode) openSnapshotNow() (io.ReadCloser, error) {
	deadline := time.Now().Add(snapshotRetryFor)
	for {
		fut := n.raft.Snapshot()
		err := fut.Error()
		switch {
		case err == nil:
			_, rc, err := fut.Open()
			if err != nil {
				return nil, fmt.Errorf("open snapshot: %w", err)
			}
			return rc, nil
		case errors.Is(err, raft.ErrNothingNewToSnapshot):
			return n.openNewestSnapshot()
		case strings.Contains(err.Error(), "wait until the configuration entry") && time.Now().Before(deadline):
			time.Sleep(100 * time.Millisecond)
		default:
			return nil, fmt.Errorf("snapshot: %w", err)
		}
	}
}

// openNewestSnapshot opens the newest snapshot in the store, or the empty
// snapshot when there is none.
func (n *raftNode) openNewestSnapshot() (io.ReadCloser, error) {
	metas, err := n.snaps.List()
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	if len(metas) == 0 {
		return io.NopCloser(bytes.NewReader(emptySnapshot())), nil
	}
	_, rc, err := n.snaps.Open(metas[0].ID)
	if err != nil {
		return nil, fmt.Errorf("open snapshot %s: %w", metas[0].ID, err)
	}
	return rc, nil
}

// backup writes a point-in-time RDB file of the whole dataset to w.
func (n *raftNode) backup(w io.Writer, opts rdbOptions) (rdbStats, error) {
	rc, err := n.openSnapshotNow()
	if err != nil {
		return rdbStats{}, err
	}
	defer rc.Close()
	st, err := writeRDB(w, rc, opts)
	if err != nil {
		return st, fmt.Errorf("backup: %w", err)
	}
	n.metrics.BackedUp()
	return st, nil
}

// backupToFile writes a backup to path: to a temporary file beside it,
// synced, then renamed over path, so path is never a partial backup. It
// refuses paths inside the data directory dataDir (as given, or with its
// symbolic links followed).
func (n *raftNode) backupToFile(path, dataDir string, opts rdbOptions) (rdbStats, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return rdbStats{}, err
	}
	dirs := []string{dataDir}
	if real, err := filepath.EvalSymlinks(dataDir); err == nil {
		dirs = append(dirs, real)
	}
	for _, d := range dirs {
		if rel, err := filepath.Rel(d, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return rdbStats{}, fmt.Errorf("%s is inside the data directory %s; write backups elsewhere", abs, dataDir)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(abs), "."+filepath.Base(abs)+".tmp-*")
	if err != nil {
		return rdbStats{}, fmt.Errorf("create backup file: %w", err)
	}
	defer os.Remove(tmp.Name())
	st, err := n.backup(tmp, opts)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), abs)
	}
	if err != nil {
		return st, fmt.Errorf("write backup %s: %w", abs, err)
	}
	return st, nil
}

// backupPath is where RAFTBACKUP name writes: name itself when it is an
// absolute path, else name in dir. Either way the file must be in dir or
// below it once symbolic links are followed (its own name excepted: the
// backup replaces it), so that a client cannot write elsewhere.
func backupPath(name, dir string) (string, error) {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	path = filepath.Clean(path)
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("--backup-dir: %w", err)
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return "", fmt.Errorf("backup directory: %w", err)
	}
	rel, err := filepath.Rel(root, parent)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.Base(path) == string(filepath.Separator) {
		return "", fmt.Errorf("%s is outside --backup-dir %s", name, dir)
	}
	return filepath.Join(parent, filepath.Base(path)), nil
}

// checkRDBFile fails unless path is a readable file that starts like an
// RDB file ("REDIS" and a 4-digit version).
func checkRDBFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	var magic [9]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil || !bytes.HasPrefix(magic[:], []byte("REDIS")) || !allDigits(magic[5:]) {
		return fmt.Errorf("%s is not an RDB file (it does not start with REDIS and a version number)", path)
	}
	return nil
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// restoreResult describes a seeded cluster.
type restoreResult struct {
	index       uint64
	keys        int64
	convertTook time.Duration
	loadTook    time.Duration
}

// seedFromRDB makes this node, a new one-member cluster that has just
// been bootstrapped, hold the data of the RDB file at path: the file is
// converted by a throwaway redis-server into a snapshot stream in work,
// and Raft installs that as a user snapshot (and sends it on to every node
// that joins).
func (n *raftNode) seedFromRDB(path, redisServer, work string, log *slog.Logger) (restoreResult, error) {
	var res restoreResult
	if err := checkRDBFile(path); err != nil {
		return res, err
	}
	if err := os.RemoveAll(work); err != nil {
		return res, err
	}
	defer os.RemoveAll(work)
	start := time.Now()
	body := filepath.Join(work, "records")
	keys, err := convertRDBFile(path, redisServer, work, body, log)
	if err != nil {
		return res, err
	}
	res.keys, res.convertTook = keys, time.Since(start)
	if err := n.waitLeaderReady(2 * time.Minute); err != nil {
		return res, err
	}
	start = time.Now()
	f, err := os.Open(body)
	if err != nil {
		return res, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return res, err
	}
	last := n.raft.LastIndex()
	header := snapshotHeader(last+1, time.Now().UnixMilli())
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: last, Size: int64(len(header)) + st.Size()}
	if err := n.raft.Restore(meta, io.MultiReader(bytes.NewReader(header), f), 0); err != nil {
		return res, fmt.Errorf("install the restored data: %w", err)
	}
	res.index, res.loadTook = last+1, time.Since(start)
	return res, nil
}

// convertRDBFile writes the snapshot records of the RDB file at path to
// body and returns the number of keys.
func convertRDBFile(path, redisServer, work, body string, log *slog.Logger) (int64, error) {
	if err := os.MkdirAll(work, 0o700); err != nil {
		return 0, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return 0, err
	}
	if err := os.Symlink(abs, filepath.Join(work, "restore.rdb")); err != nil {
		return 0, err
	}
	out, err := os.Create(body)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	w := bufio.NewWriterSize(out, 256<<10)
	keys, err := snapshotFromRDB(w, redisServer, work, "restore.rdb", log)
	if err != nil {
		return 0, fmt.Errorf("--restore %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	return keys, out.Sync()
}

// waitLeaderReady waits until this node leads and has applied its barrier.
func (n *raftNode) waitLeaderReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !n.readyFast.Load() || !n.isLeader() {
		if time.Now().After(deadline) {
			return fmt.Errorf("this node did not become a ready leader within %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
