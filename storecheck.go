package main

// Start-up checks of the data directory. Before Raft starts, the log and
// the snapshots on disk are checked, so that damage (a truncated or
// corrupted file) stops the node with an error that names the file and the
// way back, instead of a panic inside hashicorp/raft (which panics on
// entries it cannot find) or a state machine silently built from altered
// entries. Errors of the operating system (permissions, a full disk, a file
// size limit) are not damage: they are reported as they are.

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/hashicorp/raft"
)

// damagedError describes damaged Raft state and how to recover from it.
func damagedError(dataDir, format string, args ...any) error {
	return fmt.Errorf("%s. This node cannot start from its data directory. To recover, stop it, "+
		"delete %s and start it again with -join <address of a running member>: it rejoins under the "+
		"same address and copies the data from the cluster (README: \"A node whose data directory was wiped\"; "+
		"a single-node cluster can only be restored from a copy of the directory)", fmt.Sprintf(format, args...), dataDir)
}

// isIOError reports whether err comes from the operating system (permissions,
// a full disk, a file size limit) rather than from the content of a file.
func isIOError(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno)
}

// snapshotsDir is where hashicorp/raft's file snapshot store keeps its
// snapshots inside the data directory.
func snapshotsDir(dataDir string) string {
	return filepath.Join(dataDir, "snapshots", "snapshots")
}

// removeTempSnapshots deletes snapshots left incomplete by a crash: they
// keep their ".tmp" suffix until complete, and hashicorp/raft neither uses
// nor deletes them, so each crash during a snapshot would leak a dataset's
// worth of disk.
func removeTempSnapshots(dataDir string, log *slog.Logger) {
	tmps, _ := filepath.Glob(filepath.Join(snapshotsDir(dataDir), "*.tmp"))
	for _, p := range tmps {
		if err := os.RemoveAll(p); err == nil {
			log.Info("removed a snapshot left incomplete by a crash", "path", p)
		}
	}
}

// checkStores verifies the snapshots and the log: every snapshot's metadata
// is readable and the newest one's checksum matches; every raft-wal segment's
// checksums match (only the last write of the last segment may be torn,
// which raft-wal itself discards); every entry from the first to the last
// index can be read and decoded; and the log continues the newest snapshot
// without a gap.
func checkStores(dataDir, backend string, logs raft.LogStore, snaps raft.SnapshotStore) (err error) {
	if backend == "inmem" {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = damagedError(dataDir, "reading the Raft log in %s failed: %v", dataDir, r)
		}
	}()
	snapIdx, err := checkSnapshots(dataDir, snaps)
	if err != nil {
		return err
	}
	if backend == "wal" {
		if err := checkSegments(dataDir); err != nil {
			return err
		}
	}
	return checkLog(dataDir, backend, logs, snapIdx)
}

// checkSnapshots checks every snapshot's metadata and the newest one's
// checksum, and returns the newest one's index (0 if none).
func checkSnapshots(dataDir string, snaps raft.SnapshotStore) (uint64, error) {
	base := snapshotsDir(dataDir)
	ents, err := os.ReadDir(base)
	if err != nil && !os.IsNotExist(err) {
		return 0, fmt.Errorf("list snapshots in %s: %w", base, err)
	}
	for _, e := range ents {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		// Read directly: the store's List skips unreadable metadata and
		// lists no more snapshots than it retains.
		path := filepath.Join(base, e.Name(), "meta.json")
		b, err := os.ReadFile(path)
		if err != nil && isIOError(err) && !os.IsNotExist(err) {
			return 0, fmt.Errorf("read %s: %w", path, err)
		}
		var meta raft.SnapshotMeta
		if err == nil {
			err = json.Unmarshal(b, &meta)
		}
		if err == nil && meta.ID != e.Name() {
			err = fmt.Errorf("it names snapshot %q", meta.ID)
		}
		if err != nil {
			return 0, damagedError(dataDir, "snapshot %s is damaged: its metadata cannot be read: %v", path, err)
		}
	}
	metas, err := snaps.List()
	if err != nil {
		return 0, fmt.Errorf("list snapshots in %s: %w", base, err)
	}
	if len(metas) == 0 {
		return 0, nil
	}
	newest := metas[0] // List sorts newest first
	_, rc, err := snaps.Open(newest.ID)
	if err != nil {
		if isIOError(err) {
			return 0, fmt.Errorf("open snapshot %s: %w", filepath.Join(base, newest.ID), err)
		}
		return 0, damagedError(dataDir, "snapshot %s is damaged: %v", filepath.Join(base, newest.ID, "state.bin"), err)
	}
	_ = rc.Close()
	return newest.Index, nil
}

// checkLog reads and decodes every entry of the log.
func checkLog(dataDir, backend string, logs raft.LogStore, snapIdx uint64) error {
	first, err := logs.FirstIndex()
	if err != nil {
		return damagedError(dataDir, "the Raft log in %s is damaged: %v", logFile(dataDir, backend, 0), err)
	}
	last, err := logs.LastIndex()
	if err != nil {
		return damagedError(dataDir, "the Raft log in %s is damaged: %v", logFile(dataDir, backend, 0), err)
	}
	if last == 0 {
		return nil
	}
	switch {
	case first == 0 || first > last:
		return damagedError(dataDir, "the Raft log in %s is damaged: it runs from index %d to %d", logFile(dataDir, backend, 0), first, last)
	case first > snapIdx+1:
		return damagedError(dataDir, "the Raft log in %s starts at index %d, but the newest snapshot in %s ends at %d: entries %d to %d are missing",
			logFile(dataDir, backend, first), first, snapshotsDir(dataDir), snapIdx, snapIdx+1, first-1)
	}
	var l raft.Log
	for i := first; i <= last; i++ {
		if err := logs.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) && i <= snapIdx {
				continue // bolt keeps no entries the snapshot covers after an install
			}
			if isIOError(err) {
				return fmt.Errorf("read entry %d of the Raft log in %s: %w", i, logFile(dataDir, backend, i), err)
			}
			return damagedError(dataDir, "entry %d of the Raft log in %s cannot be read: %v", i, logFile(dataDir, backend, i), err)
		}
		if l.Index != i {
			return damagedError(dataDir, "entry %d of the Raft log in %s reads as entry %d", i, logFile(dataDir, backend, i), l.Index)
		}
		if l.Type == raft.LogCommand {
			if _, err := decodeEntry(l.Data); err != nil {
				return damagedError(dataDir, "entry %d of the Raft log in %s does not decode: %v", i, logFile(dataDir, backend, i), err)
			}
		}
	}
	return nil
}

// logFile names the file that holds entry idx (0: the log as a whole).
func logFile(dataDir, backend string, idx uint64) string {
	if backend == "bolt" {
		return filepath.Join(dataDir, "raft.db")
	}
	dir := filepath.Join(dataDir, "wal")
	best := dir
	var bestBase uint64
	for _, s := range walSegments(dir) {
		if base := segmentBase(s); idx > 0 && base <= idx && base >= bestBase {
			best, bestBase = s, base
		}
	}
	return best
}

// walSegments lists raft-wal's segment files, oldest first.
func walSegments(dir string) []string {
	names, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	sort.Strings(names) // the names start with the zero-padded base index
	return names
}

// segmentBase parses the base index from a segment file name
// (<base:20 digits>-<id:16 hex digits>.wal).
func segmentBase(path string) uint64 {
	var base, id uint64
	_, _ = fmt.Sscanf(filepath.Base(path), "%020d-%016x.wal", &base, &id)
	return base
}

// checkSegments verifies the checksum of every committed write in every
// raft-wal segment file.
func checkSegments(dataDir string) error {
	segs := walSegments(filepath.Join(dataDir, "wal"))
	for i, s := range segs {
		if err := checkSegment(s, i == len(segs)-1); err != nil {
			if isIOError(err) {
				return fmt.Errorf("read %s: %w", s, err)
			}
			return damagedError(dataDir, "the Raft log segment %s is damaged: %v", s, err)
		}
	}
	return nil
}

// walCRC is raft-wal's checksum (CRC-32C).
var walCRC = crc32.MakeTable(crc32.Castagnoli)

// raft-wal's frame types.
const (
	walFrameEntry  = 1
	walFrameIndex  = 2
	walFrameCommit = 3
)

// checkSegment walks one raft-wal segment file: a 32-byte header, then
// frames aligned to 8 bytes, each an 8-byte header (type; 3 reserved
// bytes; a little-endian uint32 that is the payload length, or for a commit
// frame the CRC-32C of every byte since the previous commit frame, the file
// header included for the first). It stops at zeros or the end of the file.
// In the tail segment (the one still written), a last commit whose checksum
// fails or a frame that does not parse is a torn write, which raft-wal
// discards on open; anywhere else either is damage.
func checkSegment(path string, tail bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	h := crc32.New(walCRC)
	var hdr [32]byte
	if n, err := io.ReadFull(r, hdr[:]); err != nil {
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			if tail {
				return nil // created, then the crash came before the first write
			}
			return fmt.Errorf("the file ends after %d bytes, inside its header", n)
		}
		return err
	}
	h.Write(hdr[:])
	off := int64(len(hdr))
	var fh [8]byte
	tornAt := int64(-1) // offset of a commit whose checksum failed
	for {
		n, err := io.ReadFull(r, fh[:])
		if n < len(fh) {
			if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				return err
			}
			break
		}
		if fh == [8]byte{} {
			break
		}
		v := binary.LittleEndian.Uint32(fh[4:])
		switch fh[0] {
		case walFrameEntry, walFrameIndex:
			h.Write(fh[:])
			padded := int64(v) + int64((8-v%8)%8)
			if m, err := io.CopyN(h, r, padded); err != nil {
				if !errors.Is(err, io.EOF) {
					return err
				}
				if !tail {
					return fmt.Errorf("the file ends inside the frame at offset %d (%d of %d bytes)", off, m, padded)
				}
				return nil
			}
			off += 8 + padded
		case walFrameCommit:
			if tornAt >= 0 {
				return fmt.Errorf("checksum mismatch in the write committed at offset %d", tornAt)
			}
			if h.Sum32() != v {
				if !tail {
					return fmt.Errorf("checksum mismatch in the write committed at offset %d", off)
				}
				tornAt = off
			}
			h.Reset()
			off += 8
		default:
			if !tail {
				return fmt.Errorf("unknown frame type %d at offset %d", fh[0], off)
			}
			return nil
		}
	}
	return nil
}
