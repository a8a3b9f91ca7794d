package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/redraft/redraft/internal/child"
	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// Snapshot format (one place): a stream of records after a header.
//
//	header:  "RDRAFT1\n" uvarint(applied index) uvarint(last T)
//	record:  kind byte, then
//	  recKey:      uvarint(db) bytes(key) bytes(DUMP payload) varint(deadline ms, -1 none)
//	  recScript:   bytes(body)
//	  recFunctions bytes(FUNCTION DUMP payload)
//	  recConfig    bytes(name) bytes(value), one replicated CONFIG parameter
//	  recWatch     bytes(id) uvarint(created T) byte(dirty) uvarint(n) n×(uvarint(db) bytes(key))
//	  recHeld      bytes(name) bytes(value), a parameter redraft holds (requirepass, maxmemory), once set through the log
//	  recEnd:      nothing
//
// bytes(x) is uvarint(len) followed by x. Deadlines are absolute and
// unshifted, so the stream means the same to any node.
const (
	snapshotMagic = "RDRAFT1\n"

	recEnd       byte = 0
	recKey       byte = 1
	recScript    byte = 2
	recFunctions byte = 3
	recConfig    byte = 4
	recWatch     byte = 5
	recHeld      byte = 6
)

// scanBatch is how many keys are read from the frozen copy per round trip.
const scanBatch = 1000

// snapshotState is what the FSM hands to a snapshot besides the child's
// data, captured while applies are paused.
type snapshotState struct {
	applied uint64
	lastT   int64
	scripts []string
	watches []watchRecord
	// held are the parameters redraft holds, as set through the log.
	held map[string]string
}

// fsmSnapshot is a point-in-time copy of the child, frozen by BGSAVE's fork
// inside Snapshot(); Persist streams it out while applies go on.
type fsmSnapshot struct {
	snapshotState
	child  *child.Supervisor
	log    *slog.Logger
	rdb    string      // file the child writes
	config [][2]string // replicated CONFIG parameters at the snapshot's index
}

// beginSnapshot runs BGSAVE on the apply connection: the fork is the point
// in time, and applies resume as soon as it returns.
func beginSnapshot(conn *redisconn.Conn, c *child.Supervisor, log *slog.Logger, st snapshotState) (*fsmSnapshot, error) {
	raw, err := conn.Do("BGSAVE")
	if err != nil {
		return nil, err
	}
	if resp.ReplyIsError(raw) {
		s, _ := resp.ReplyString(raw)
		return nil, fmt.Errorf("BGSAVE: %s", s)
	}
	config, err := replicatedConfigValues(conn)
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{
		snapshotState: st, child: c, log: log, config: config,
		rdb: filepath.Join(c.Dir(), "snapshot.rdb"),
	}, nil
}

// Persist waits for the fork to finish writing, then loads the file into a
// throwaway redis-server and streams every key from it as DUMP records.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.persist(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) persist(sink raft.SnapshotSink) error {
	if err := s.waitBGSave(); err != nil {
		return err
	}
	frozen := filepath.Join(s.child.Dir(), fmt.Sprintf("frozen-%d.rdb", s.applied))
	if err := os.Rename(s.rdb, frozen); err != nil {
		return fmt.Errorf("move RDB: %w", err)
	}
	defer os.Remove(frozen)
	tmpDir := filepath.Join(s.child.Dir(), "frozen")
	copyProc, err := child.Start(s.child.Path(), tmpDir, child.SocketPath(tmpDir),
		child.Args(child.SocketPath(tmpDir), s.child.Dir(), "--dbfilename", filepath.Base(frozen)),
		s.log.With("src", "snapshot"))
	if err != nil {
		return fmt.Errorf("start throwaway redis-server: %w", err)
	}
	defer copyProc.Kill()
	conn, err := copyProc.Dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	w := bufio.NewWriterSize(sink, 256<<10)
	w.WriteString(snapshotMagic)
	writeUvarint(w, s.applied)
	writeUvarint(w, uint64(s.lastT))
	for _, kv := range s.config {
		w.WriteByte(recConfig)
		writeBytes(w, []byte(kv[0]))
		writeBytes(w, []byte(kv[1]))
	}
	for _, name := range slices.Sorted(maps.Keys(s.held)) {
		w.WriteByte(recHeld)
		writeBytes(w, []byte(name))
		writeBytes(w, []byte(s.held[name]))
	}
	for _, r := range s.watches {
		w.WriteByte(recWatch)
		writeBytes(w, []byte(r.id))
		writeUvarint(w, uint64(r.createdT))
		writeBool(w, r.dirty)
		writeUvarint(w, uint64(len(r.keys)))
		for _, k := range r.keys {
			writeUvarint(w, uint64(k.DB))
			writeBytes(w, []byte(k.Key))
		}
	}
	if _, err := writeSnapshot(w, conn, s.scripts, unshift); err != nil {
		return err
	}
	return w.Flush()
}

// waitBGSave polls the child until its background save has finished.
func (s *fsmSnapshot) waitBGSave() error {
	c, err := s.child.Dial()
	if err != nil {
		return err
	}
	defer c.Close()
	for {
		raw, err := c.Do("INFO", "persistence")
		if err != nil {
			return err
		}
		info, _ := resp.ReplyString(raw)
		if strings.Contains(info, "rdb_bgsave_in_progress:0") {
			if !strings.Contains(info, "rdb_last_bgsave_status:ok") {
				return errors.New("redis-server's background save failed (see its log)")
			}
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Release returns freed memory to the operating system: a snapshot comes
// after a stretch of writes, whose garbage (log batches, grown and
// abandoned index tables, the snapshot's own buffers) the Go runtime would
// otherwise keep mapped for reuse. The frozen file is removed by Persist.
func (s *fsmSnapshot) Release() { go debug.FreeOSMemory() }

// writeSnapshot streams scripts, functions and every key of the server
// behind conn, after the header. deadline turns the server's PEXPIRETIME
// into the absolute deadline the snapshot holds (unshift for a copy of a
// child). It returns the number of keys.
func writeSnapshot(w *bufio.Writer, conn *redisconn.Conn, scripts []string, deadline func(int64) int64) (int64, error) {
	for _, body := range scripts {
		w.WriteByte(recScript)
		writeBytes(w, []byte(body))
	}
	raw, err := conn.Do("FUNCTION", "DUMP")
	if err != nil {
		return 0, err
	}
	if payload, ok := resp.ReplyString(raw); ok && !resp.ReplyIsError(raw) && payload != "" {
		w.WriteByte(recFunctions)
		writeBytes(w, []byte(payload))
	}
	var keys int64
	for db := 0; db < 16; db++ {
		n, err := writeDB(w, conn, db, deadline)
		if err != nil {
			return keys, err
		}
		keys += n
	}
	return keys, w.WriteByte(recEnd)
}

// writeDB streams one database with SCAN, DUMP and PEXPIRETIME and returns
// the number of keys written.
func writeDB(w *bufio.Writer, conn *redisconn.Conn, db int, deadline func(int64) int64) (int64, error) {
	if err := conn.SelectNow(db); err != nil {
		return 0, err
	}
	var n int64
	cursor := "0"
	for {
		raw, err := conn.Do("SCAN", cursor, "COUNT", strconv.Itoa(scanBatch))
		if err != nil {
			return n, err
		}
		v, err := resp.Parse(raw)
		parts, ok := v.([]any)
		if err != nil || !ok || len(parts) != 2 {
			return n, fmt.Errorf("unexpected SCAN reply")
		}
		cursor = resp.AsString(parts[0])
		keys, _ := parts[1].([]any)
		for _, k := range keys {
			conn.SendStrings("DUMP", resp.AsString(k))
			conn.SendStrings("PEXPIRETIME", resp.AsString(k))
		}
		if err := conn.Flush(); err != nil {
			return n, err
		}
		for _, k := range keys {
			dump, err := conn.ReadReply()
			if err != nil {
				return n, err
			}
			ttl, err := conn.ReadReply()
			if err != nil {
				return n, err
			}
			payload, ok := resp.ReplyString(dump)
			if !ok || resp.ReplyIsError(dump) {
				continue // the key is gone (expired in a throwaway loaded from an RDB file)
			}
			at, _ := resp.ReplyInt(ttl)
			w.WriteByte(recKey)
			writeUvarint(w, uint64(db))
			writeBytes(w, []byte(resp.AsString(k)))
			writeBytes(w, []byte(payload))
			writeVarint(w, deadline(at))
			n++
		}
		if cursor == "0" {
			return n, nil
		}
	}
}

// snapshotHeader is the header of a snapshot stream.
func snapshotHeader(applied uint64, lastT int64) []byte {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	w.WriteString(snapshotMagic)
	writeUvarint(w, applied)
	writeUvarint(w, uint64(lastT))
	w.Flush()
	return b.Bytes()
}

// emptySnapshot is the snapshot of a node that has applied nothing.
func emptySnapshot() []byte {
	return append(snapshotHeader(0, 0), recEnd)
}

// snapshotFromRDB loads the RDB file dir/name into a throwaway
// redis-server and writes its data as snapshot records, without the
// header, to w (its deadlines are real ones already). Function libraries
// get redraft's prelude first, as after FUNCTION RESTORE. It returns the
// number of keys. A file redis-server cannot load is an error.
func snapshotFromRDB(w *bufio.Writer, redisServer, dir, name string, log *slog.Logger) (int64, error) {
	sock := child.SocketPath(filepath.Join(dir, "server"))
	proc, err := child.Start(redisServer, filepath.Join(dir, "server"), sock,
		child.Args(sock, dir, "--dbfilename", name), log.With("src", "restore"))
	if err != nil {
		return 0, fmt.Errorf("redis-server could not load it: %w", err)
	}
	defer proc.Kill()
	conn, err := proc.Dial()
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if err := addLibraryPreludes(conn); err != nil {
		return 0, err
	}
	return writeSnapshot(w, conn, nil, func(at int64) int64 { return at })
}

// addLibraryPreludes gives every function library loaded in the server
// behind conn that lacks redraft's prelude one (after FUNCTION RESTORE, or
// in data restored from an RDB file).
func addLibraryPreludes(conn *redisconn.Conn) error {
	raw, err := conn.Do("FUNCTION", "LIST", "WITHCODE")
	if err != nil {
		return err
	}
	v, _ := resp.Parse(raw)
	libs, _ := v.([]any)
	for _, lib := range libs {
		fields, _ := lib.([]any)
		for i := 0; i+1 < len(fields); i += 2 {
			if resp.AsString(fields[i]) != "library_code" {
				continue
			}
			code := resp.AsString(fields[i+1])
			if strings.Contains(code, functionPreludeMarker) {
				continue
			}
			// An error reply leaves the library as it was, the same on
			// every node.
			if _, err := conn.Do("FUNCTION", "LOAD", "REPLACE", libraryWithPrelude(code)); err != nil {
				return err
			}
		}
	}
	return nil
}

// restoredState is what a snapshot holds besides the keys, which
// loadSnapshot restores into the child directly.
type restoredState struct {
	applied uint64
	lastT   int64
	scripts []string
	watches []watchRecord
	held    map[string]string
}

// loadSnapshot empties the child behind conn and loads a snapshot stream
// into it, recording every key's deadline in idx.
func loadSnapshot(r io.Reader, conn *redisconn.Conn, idx *expiryIndex) (restoredState, error) {
	var st restoredState
	sr, err := newSnapshotReader(r)
	if err != nil {
		return st, err
	}
	st.applied, st.lastT = sr.applied, sr.lastT
	for _, cmd := range [][]string{{"FLUSHALL", "SYNC"}, {"SCRIPT", "FLUSH"}, {"FUNCTION", "FLUSH", "SYNC"}} {
		if raw, err := conn.Do(cmd...); err != nil || resp.ReplyIsError(raw) {
			return st, fmt.Errorf("%s: %q %v", strings.Join(cmd, " "), raw, err)
		}
	}
	b := &restoreBatch{conn: conn}
	for {
		rec, err := sr.next()
		if err != nil {
			return st, err
		}
		switch rec.kind {
		case recEnd:
			return st, b.flush()
		case recScript:
			st.scripts = append(st.scripts, string(rec.body))
		case recHeld:
			if st.held == nil {
				st.held = map[string]string{}
			}
			st.held[string(rec.name)] = string(rec.body)
		case recWatch:
			st.watches = append(st.watches, rec.watch)
		case recConfig:
			err = b.add(0, [][]byte{[]byte("CONFIG"), []byte("SET"), rec.name, rec.body})
		case recFunctions:
			err = b.add(0, [][]byte{[]byte("FUNCTION"), []byte("RESTORE"), rec.body, []byte("REPLACE")})
		case recKey:
			err = b.add(rec.db, restoreCommand(rec, idx))
		}
		if err != nil {
			return st, err
		}
	}
}

// restoreCommand is the RESTORE of a key record; its deadline goes into
// idx.
func restoreCommand(rec snapshotRecord, idx *expiryIndex) [][]byte {
	ttl := "0"
	args := [][]byte{[]byte("RESTORE"), rec.name, nil, rec.body, []byte("REPLACE")}
	if rec.deadline >= 0 {
		ttl = strconv.FormatInt(rec.deadline+deadlineShift, 10)
		args = append(args, []byte("ABSTTL"))
		idx.set(dbKey{rec.db, string(rec.name)}, rec.deadline)
	}
	args[2] = []byte(ttl)
	return args
}

// snapshotReader decodes a snapshot stream (the format above), record by
// record. A damaged stream is an error, never a panic, and it allocates no
// more than the bytes it actually reads.
type snapshotReader struct {
	br      *bufio.Reader
	applied uint64
	lastT   int64
}

// snapshotRecord is one decoded record: a key (db, name, body = DUMP
// payload, deadline), a script (body), functions (body), a CONFIG
// parameter (name, body = value) or a watch.
type snapshotRecord struct {
	kind     byte
	db       int
	name     []byte
	body     []byte
	deadline int64
	watch    watchRecord
}

// newSnapshotReader reads the header.
func newSnapshotReader(r io.Reader) (*snapshotReader, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return nil, errors.New("not a redraft snapshot")
	}
	applied, err1 := binary.ReadUvarint(br)
	lastT, err2 := binary.ReadUvarint(br)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("snapshot header: %w", err)
	}
	return &snapshotReader{br: br, applied: applied, lastT: int64(lastT)}, nil
}

// next decodes the next record (kind recEnd at the end).
func (sr *snapshotReader) next() (snapshotRecord, error) {
	var rec snapshotRecord
	kind, err := sr.br.ReadByte()
	if err != nil {
		return rec, fmt.Errorf("snapshot record: %w", err)
	}
	rec.kind = kind
	switch kind {
	case recEnd:
	case recScript, recFunctions:
		rec.body, err = readBytes(sr.br)
	case recWatch:
		rec.watch, err = readWatchRecord(sr.br)
	case recConfig, recHeld:
		if rec.name, err = readBytes(sr.br); err == nil {
			rec.body, err = readBytes(sr.br)
		}
	case recKey:
		err = sr.readKey(&rec)
	default:
		return rec, fmt.Errorf("unknown snapshot record kind %d", kind)
	}
	if err != nil {
		return rec, fmt.Errorf("snapshot record %d: %w", kind, err)
	}
	return rec, nil
}

// readKey reads the body of a key record.
func (sr *snapshotReader) readKey(rec *snapshotRecord) error {
	db, err := binary.ReadUvarint(sr.br)
	if err != nil {
		return err
	}
	if db >= 16 {
		return fmt.Errorf("key in database %d", db)
	}
	rec.db = int(db)
	if rec.name, err = readBytes(sr.br); err != nil {
		return err
	}
	if rec.body, err = readBytes(sr.br); err != nil {
		return err
	}
	rec.deadline, err = binary.ReadVarint(sr.br)
	return err
}

// restoreBatch pipelines restore commands, scanBatch at a time, and fails
// on the first error reply.
type restoreBatch struct {
	conn    *redisconn.Conn
	pending int
}

func (b *restoreBatch) add(db int, args [][]byte) error {
	if b.conn.SelectDB(db) {
		b.pending++
	}
	b.conn.Send(args)
	if b.pending++; b.pending >= scanBatch {
		return b.flush()
	}
	return nil
}

func (b *restoreBatch) flush() error {
	if err := b.conn.Flush(); err != nil {
		return err
	}
	for ; b.pending > 0; b.pending-- {
		raw, err := b.conn.ReadReply()
		if err != nil {
			return err
		}
		if resp.ReplyIsError(raw) {
			return fmt.Errorf("restore: redis-server answered %q", raw)
		}
	}
	return nil
}

func writeBool(w *bufio.Writer, b bool) {
	if b {
		w.WriteByte(1)
	} else {
		w.WriteByte(0)
	}
}

func writeUvarint(w *bufio.Writer, v uint64) {
	var b [binary.MaxVarintLen64]byte
	w.Write(b[:binary.PutUvarint(b[:], v)])
}

func writeVarint(w *bufio.Writer, v int64) {
	var b [binary.MaxVarintLen64]byte
	w.Write(b[:binary.PutVarint(b[:], v)])
}

func writeBytes(w *bufio.Writer, b []byte) {
	writeUvarint(w, uint64(len(b)))
	w.Write(b)
}

// maxRecordBytes bounds one field read from a snapshot (512 MB, Redis's own
// limit for a string).
const maxRecordBytes = 512 << 20

func readBytes(br *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, err
	}
	if n > maxRecordBytes {
		return nil, fmt.Errorf("snapshot field of %d bytes is too large", n)
	}
	// Grow with what is actually read, not with the announced length.
	b := make([]byte, 0, min(n, 64<<10))
	for uint64(len(b)) < n {
		chunk := min(n-uint64(len(b)), 1<<20)
		start := len(b)
		b = append(b, make([]byte, chunk)...)
		if _, err := io.ReadFull(br, b[start:]); err != nil {
			return nil, fmt.Errorf("snapshot field: %w", err)
		}
	}
	return b, nil
}

// replicatedConfigValues reads the current values of the replicated CONFIG
// parameters from the child.
func replicatedConfigValues(conn *redisconn.Conn) ([][2]string, error) {
	args := append([]string{"CONFIG", "GET"}, replicatedConfig...)
	raw, err := conn.Do(args...)
	if err != nil {
		return nil, err
	}
	v, err := resp.Parse(raw)
	items, ok := v.([]any)
	if err != nil || !ok {
		return nil, fmt.Errorf("CONFIG GET: unexpected reply %q", raw)
	}
	out := make([][2]string, 0, len(items)/2)
	for i := 0; i+1 < len(items); i += 2 {
		out = append(out, [2]string{resp.AsString(items[i]), resp.AsString(items[i+1])})
	}
	return out, nil
}

// readWatchRecord reads the body of a recWatch record.
func readWatchRecord(br *bufio.Reader) (watchRecord, error) {
	var r watchRecord
	id, err := readBytes(br)
	if err != nil {
		return r, err
	}
	r.id = string(id)
	created, err := binary.ReadUvarint(br)
	if err != nil {
		return r, err
	}
	r.createdT = int64(created)
	dirty, err := br.ReadByte()
	if err != nil {
		return r, err
	}
	r.dirty = dirty == 1
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return r, fmt.Errorf("watch record: %w", err)
	}
	if n > maxRecordBytes {
		return r, fmt.Errorf("watch record of %d keys", n)
	}
	for i := uint64(0); i < n; i++ {
		db, err := binary.ReadUvarint(br)
		if err != nil {
			return r, err
		}
		if db >= 16 {
			return r, fmt.Errorf("watched key in database %d", db)
		}
		key, err := readBytes(br)
		if err != nil {
			return r, err
		}
		r.keys = append(r.keys, dbKey{int(db), string(key)})
	}
	return r, nil
}
