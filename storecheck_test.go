package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
)

// walWithBatches writes three batches of two command entries to a new
// raft-wal in a temporary directory and returns the data directory (the
// wal is in its "wal" subdirectory, as redraft lays it out) and the segment.
func walWithBatches(t *testing.T) (string, string) {
	t.Helper()
	dataDir := t.TempDir()
	dir := filepath.Join(dataDir, "wal")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := wal.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx := uint64(1)
	for _, batch := range []string{"first", "second", "third"} {
		var logs []*raft.Log
		for i := 0; i < 2; i++ {
			data := encodeEntry(&entry{Kind: entryCommands, T: 1, Cmds: []entryCmd{{
				Args: [][]byte{[]byte("SET"), []byte("k"), []byte(batch + "-batch-value")},
			}}})
			logs = append(logs, &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: data})
			idx++
		}
		if err := w.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	segs := walSegments(dir)
	if len(segs) != 1 {
		t.Fatalf("segments: %v", segs)
	}
	return dataDir, segs[0]
}

// flipIn changes one byte of the first occurrence of marker in the first
// MiB of path and returns a function that restores it.
func flipIn(t *testing.T, path, marker string) func() {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1<<20)
	n, _ := f.ReadAt(b, 0)
	i := bytes.Index(b[:n], []byte(marker))
	if i < 0 {
		t.Fatalf("%q not in %s", marker, path)
	}
	orig := b[i]
	if _, err := f.WriteAt([]byte{orig ^ 0x20}, int64(i)); err != nil {
		t.Fatal(err)
	}
	return func() {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte{orig}, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCheckSegmentChecksums: an intact segment passes; a value changed in
// a committed batch fails with the file and the way back; a torn last batch
// passes only in the tail segment; a file cut inside its header passes only
// as the tail.
func TestCheckSegmentChecksums(t *testing.T) {
	dataDir, seg := walWithBatches(t)
	if err := checkSegment(seg, true); err != nil {
		t.Fatalf("intact tail: %v", err)
	}
	if err := checkSegments(dataDir); err != nil {
		t.Fatalf("intact wal: %v", err)
	}

	// A changed value in an earlier batch: the entry still decodes, only
	// the batch checksum tells.
	restore := flipIn(t, seg, "first-batch-value")
	err := checkSegments(dataDir)
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") || !strings.Contains(err.Error(), seg) ||
		!strings.Contains(err.Error(), "-join") {
		t.Errorf("altered first batch: %v", err)
	}
	restore()

	// The last batch of the tail is a possible torn write: raft-wal drops it
	// on open, so it is not damage there, but it is in a sealed segment.
	restore = flipIn(t, seg, "third-batch-value")
	if err := checkSegment(seg, true); err != nil {
		t.Errorf("torn last batch of the tail: %v", err)
	}
	if err := checkSegment(seg, false); err == nil {
		t.Errorf("altered last batch of a sealed segment passed")
	}
	restore()

	// A file cut inside its header.
	if err := os.Truncate(seg, 10); err != nil {
		t.Fatal(err)
	}
	if err := checkSegment(seg, false); err == nil {
		t.Errorf("truncated sealed segment passed")
	}
	if err := checkSegment(seg, true); err != nil {
		t.Errorf("truncated tail (a crash before the first write): %v", err)
	}
}

// TestCheckLogGaps: a log that does not continue the newest snapshot, an
// entry that does not decode and unreadable snapshot metadata are damage;
// an incomplete (.tmp) snapshot is removed.
func TestCheckLogGaps(t *testing.T) {
	dataDir := t.TempDir()
	snaps, err := raft.NewFileSnapshotStore(filepath.Join(dataDir, "snapshots"), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logs := raft.NewInmemStore()
	data := encodeEntry(&entry{Kind: entryCommands, T: 1, Cmds: []entryCmd{{Args: [][]byte{[]byte("SET"), []byte("k"), []byte("v")}}}})
	for i := uint64(5); i <= 8; i++ {
		if err := logs.StoreLog(&raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	// Entries 1..4 are in no snapshot.
	if err := checkStores(dataDir, "bolt", logs, snaps); err == nil || !strings.Contains(err.Error(), "entries 1 to 4 are missing") {
		t.Errorf("log starting at 5 without a snapshot: %v", err)
	}
	// An entry that does not decode.
	logs = raft.NewInmemStore()
	for i := uint64(1); i <= 8; i++ {
		if err := logs.StoreLog(&raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	if err := checkStores(dataDir, "bolt", logs, snaps); err != nil {
		t.Errorf("intact log 1..8: %v", err)
	}
	if err := logs.StoreLog(&raft.Log{Index: 9, Term: 1, Type: raft.LogCommand, Data: []byte{99}}); err != nil {
		t.Fatal(err)
	}
	if err := checkStores(dataDir, "bolt", logs, snaps); err == nil || !strings.Contains(err.Error(), "entry 9") {
		t.Errorf("undecodable entry 9: %v", err)
	}
	// A snapshot directory whose metadata is unreadable.
	bad := filepath.Join(dataDir, "snapshots", "snapshots", "1-3-123")
	if err := os.MkdirAll(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkStores(dataDir, "bolt", logs, snaps); err == nil || !strings.Contains(err.Error(), filepath.Join(bad, "meta.json")) {
		t.Errorf("unreadable snapshot metadata: %v", err)
	}
	// A snapshot left incomplete by a crash is removed, not reported.
	tmp := filepath.Join(dataDir, "snapshots", "snapshots", "1-4-124.tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	removeTempSnapshots(dataDir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("%s not removed: %v", tmp, err)
	}
}

// TestCheckSnapshotsBeyondRetained: more complete snapshots than the store
// retains (a crash between writing one and reaping the oldest) are not
// mistaken for damaged ones; the newest one's checksum is checked, and a
// damaged newest snapshot is named.
func TestCheckSnapshotsBeyondRetained(t *testing.T) {
	dataDir := t.TempDir()
	snaps, err := raft.NewFileSnapshotStore(filepath.Join(dataDir, "snapshots"), 3, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 3; i++ {
		sink, err := snaps.Create(raft.SnapshotVersionMax, 10*i, 1, raft.Configuration{}, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sink.Write([]byte(strings.Repeat("snapshot-data ", 100))); err != nil {
			t.Fatal(err)
		}
		if err := sink.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Reopened as redraft opens it, retaining 2.
	snaps, err = raft.NewFileSnapshotStore(filepath.Join(dataDir, "snapshots"), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := checkSnapshots(dataDir, snaps)
	if err != nil || idx != 30 {
		t.Fatalf("three intact snapshots, two retained: index %d, %v", idx, err)
	}
	metas, _ := snaps.List()
	state := filepath.Join(snapshotsDir(dataDir), metas[0].ID, "state.bin")
	flipIn(t, state, "snapshot-data")
	if _, err := checkSnapshots(dataDir, snaps); err == nil || !strings.Contains(err.Error(), state) || !strings.Contains(err.Error(), "-join") {
		t.Errorf("newest snapshot altered: %v", err)
	}
}
