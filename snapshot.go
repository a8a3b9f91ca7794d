package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
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
)

// scanBatch is how many keys are read from the frozen copy per round trip.
const scanBatch = 1000

// fsmSnapshot is a point-in-time copy of the child, frozen by BGSAVE's fork
// inside Snapshot(); Persist streams it out while applies go on.
type fsmSnapshot struct {
	f       *fsm
	rdb     string // file the child writes
	applied uint64
	lastT   int64
	scripts []string
	config  [][2]string // replicated CONFIG parameters at the snapshot's index
	watches []watchRecord
}

// startSnapshot runs BGSAVE on the apply connection: the fork is the point
// in time, and applies resume as soon as it returns.
func (f *fsm) startSnapshot() (*fsmSnapshot, error) {
	raw, err := f.conn.do("BGSAVE")
	if err != nil {
		return nil, err
	}
	if replyIsError(raw) {
		s, _ := replyString(raw)
		return nil, fmt.Errorf("BGSAVE: %s", s)
	}
	config, err := f.replicatedConfig()
	if err != nil {
		return nil, err
	}
	watches, err := f.snapshotWatches()
	if err != nil {
		return nil, err
	}
	s := &fsmSnapshot{
		config:  config,
		watches: watches,
		f:       f,
		rdb:     filepath.Join(f.child.dir, "snapshot.rdb"),
		applied: f.applied.Load(),
		lastT:   f.lastT.Load(),
	}
	f.scriptsMu.RLock()
	for _, body := range f.scripts {
		s.scripts = append(s.scripts, body)
	}
	f.scriptsMu.RUnlock()
	return s, nil
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
	frozen := filepath.Join(s.f.child.dir, fmt.Sprintf("frozen-%d.rdb", s.applied))
	if err := os.Rename(s.rdb, frozen); err != nil {
		return fmt.Errorf("move RDB: %w", err)
	}
	defer os.Remove(frozen)
	tmpDir := filepath.Join(s.f.child.dir, "frozen")
	copyProc, err := startChild(s.f.child.path, tmpDir, socketPath(tmpDir),
		childArgs(socketPath(tmpDir), s.f.child.dir, "--dbfilename", filepath.Base(frozen)),
		s.f.log.With("src", "snapshot"))
	if err != nil {
		return fmt.Errorf("start throwaway redis-server: %w", err)
	}
	defer copyProc.kill()
	conn, err := dialChild(copyProc.sock)
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
	for _, r := range s.watches {
		w.WriteByte(recWatch)
		writeBytes(w, []byte(r.id))
		writeUvarint(w, uint64(r.createdT))
		w.WriteByte(byte(boolInt(r.dirty)))
		writeUvarint(w, uint64(len(r.keys)))
		for _, k := range r.keys {
			writeUvarint(w, uint64(k.DB))
			writeBytes(w, []byte(k.Key))
		}
	}
	if err := writeSnapshot(w, conn, s.applied, s.lastT, s.scripts); err != nil {
		return err
	}
	return w.Flush()
}

// waitBGSave polls the child until its background save has finished.
func (s *fsmSnapshot) waitBGSave() error {
	c, err := dialChild(s.f.child.sock)
	if err != nil {
		return err
	}
	defer c.Close()
	for {
		raw, err := c.do("INFO", "persistence")
		if err != nil {
			return err
		}
		info, _ := replyString(raw)
		if strings.Contains(info, "rdb_bgsave_in_progress:0") {
			if !strings.Contains(info, "rdb_last_bgsave_status:ok") {
				return errors.New("redis-server's background save failed (see its log)")
			}
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Release is a no-op: the frozen file is removed by Persist.
func (s *fsmSnapshot) Release() {}

// writeSnapshot streams scripts, functions and every key of the server
// behind conn, after the header.
func writeSnapshot(w *bufio.Writer, conn *respConn, applied uint64, lastT int64, scripts []string) error {
	for _, body := range scripts {
		w.WriteByte(recScript)
		writeBytes(w, []byte(body))
	}
	raw, err := conn.do("FUNCTION", "DUMP")
	if err != nil {
		return err
	}
	if payload, ok := replyString(raw); ok && !replyIsError(raw) && payload != "" {
		w.WriteByte(recFunctions)
		writeBytes(w, []byte(payload))
	}
	for db := 0; db < 16; db++ {
		if err := writeDB(w, conn, db); err != nil {
			return err
		}
	}
	return w.WriteByte(recEnd)
}

// writeDB streams one database with SCAN, DUMP and PEXPIRETIME.
func writeDB(w *bufio.Writer, conn *respConn, db int) error {
	if err := conn.selectNow(db); err != nil {
		return err
	}
	cursor := "0"
	for {
		raw, err := conn.do("SCAN", cursor, "COUNT", strconv.Itoa(scanBatch))
		if err != nil {
			return err
		}
		v, err := parseReply(raw)
		parts, ok := v.([]any)
		if err != nil || !ok || len(parts) != 2 {
			return fmt.Errorf("unexpected SCAN reply")
		}
		cursor = asString(parts[0])
		keys, _ := parts[1].([]any)
		for _, k := range keys {
			conn.sendStrings("DUMP", asString(k))
			conn.sendStrings("PEXPIRETIME", asString(k))
		}
		if err := conn.flush(); err != nil {
			return err
		}
		for _, k := range keys {
			dump, err := conn.readReply()
			if err != nil {
				return err
			}
			ttl, err := conn.readReply()
			if err != nil {
				return err
			}
			payload, ok := replyString(dump)
			if !ok || replyIsError(dump) {
				continue // the key is gone (cannot happen in a frozen copy)
			}
			at, _ := replyInt(ttl)
			w.WriteByte(recKey)
			writeUvarint(w, uint64(db))
			writeBytes(w, []byte(asString(k)))
			writeBytes(w, []byte(payload))
			writeVarint(w, unshift(at))
		}
		if cursor == "0" {
			return nil
		}
	}
}

// restoreSnapshot empties the child and loads a snapshot stream into it,
// rebuilding the expiry index and the script cache. It returns the applied
// index recorded in the snapshot.
func (f *fsm) restoreSnapshot(r io.Reader) (uint64, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return 0, errors.New("not a redraft snapshot")
	}
	applied, err1 := binary.ReadUvarint(br)
	lastT, err2 := binary.ReadUvarint(br)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("snapshot header: %w", err)
	}
	for _, cmd := range [][]string{{"FLUSHALL", "SYNC"}, {"SCRIPT", "FLUSH"}, {"FUNCTION", "FLUSH", "SYNC"}} {
		if raw, err := f.conn.do(cmd...); err != nil || replyIsError(raw) {
			return 0, fmt.Errorf("%s: %q %v", strings.Join(cmd, " "), raw, err)
		}
	}
	f.index.clear(-1)
	f.forgetScripts()
	f.closeWatches()
	p := newPipeline(f)
	pending := 0
	var watches []watchRecord
	for {
		kind, err := br.ReadByte()
		if err != nil {
			return 0, fmt.Errorf("snapshot record: %w", err)
		}
		switch kind {
		case recEnd:
			if err := p.run(); err != nil {
				return 0, err
			}
			for _, r := range watches {
				if err := f.restoreWatch(r); err != nil {
					return 0, err
				}
			}
			if err := f.loadNotifyFlags(); err != nil {
				return 0, err
			}
			f.lastT.Store(int64(lastT))
			return applied, nil
		case recScript:
			body, err := readBytes(br)
			if err != nil {
				return 0, err
			}
			f.rememberScript(string(body))
		case recWatch:
			r, err := readWatchRecord(br)
			if err != nil {
				return 0, err
			}
			watches = append(watches, r)
		case recConfig:
			name, err1 := readBytes(br)
			value, err2 := readBytes(br)
			if err := errors.Join(err1, err2); err != nil {
				return 0, err
			}
			p.send(0, [][]byte{[]byte("CONFIG"), []byte("SET"), name, value}, checkOK(f))
		case recFunctions:
			payload, err := readBytes(br)
			if err != nil {
				return 0, err
			}
			p.send(0, [][]byte{[]byte("FUNCTION"), []byte("RESTORE"), payload, []byte("REPLACE")}, checkOK(f))
		case recKey:
			if err := f.restoreKey(br, p); err != nil {
				return 0, err
			}
			if pending++; pending >= scanBatch {
				if err := p.run(); err != nil {
					return 0, err
				}
				pending = 0
			}
		default:
			return 0, fmt.Errorf("unknown snapshot record kind %d", kind)
		}
	}
}

// restoreKey reads one key record and queues its RESTORE.
func (f *fsm) restoreKey(br *bufio.Reader, p *pipeline) error {
	db, err := binary.ReadUvarint(br)
	if err != nil {
		return err
	}
	key, err := readBytes(br)
	if err != nil {
		return err
	}
	payload, err := readBytes(br)
	if err != nil {
		return err
	}
	at, err := binary.ReadVarint(br)
	if err != nil {
		return err
	}
	ttl := "0"
	args := [][]byte{[]byte("RESTORE"), key, nil, payload, []byte("REPLACE")}
	if at >= 0 {
		ttl = strconv.FormatInt(at+deadlineShift, 10)
		args = append(args, []byte("ABSTTL"))
		f.index.set(dbKey{int(db), string(key)}, at)
	}
	args[2] = []byte(ttl)
	p.send(int(db), args, checkOK(f))
	return nil
}

// checkOK is a reply handler that stops the node on an error reply.
func checkOK(f *fsm) func([]byte) {
	return func(raw []byte) {
		if replyIsError(raw) {
			f.fatal(fmt.Errorf("restore: redis-server answered %q", raw))
		}
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
	b := make([]byte, n)
	_, err = io.ReadFull(br, b)
	return b, err
}

// replicatedConfig reads the current values of the replicated CONFIG
// parameters from the child.
func (f *fsm) replicatedConfig() ([][2]string, error) {
	args := append([]string{"CONFIG", "GET"}, replicatedConfig...)
	raw, err := f.conn.do(args...)
	if err != nil {
		return nil, err
	}
	v, err := parseReply(raw)
	items, ok := v.([]any)
	if err != nil || !ok {
		return nil, fmt.Errorf("CONFIG GET: unexpected reply %q", raw)
	}
	out := make([][2]string, 0, len(items)/2)
	for i := 0; i+1 < len(items); i += 2 {
		out = append(out, [2]string{asString(items[i]), asString(items[i+1])})
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
	if err != nil || n > maxRecordBytes {
		return r, fmt.Errorf("watch record: %v", err)
	}
	for i := uint64(0); i < n; i++ {
		db, err := binary.ReadUvarint(br)
		if err != nil {
			return r, err
		}
		key, err := readBytes(br)
		if err != nil {
			return r, err
		}
		r.keys = append(r.keys, dbKey{int(db), string(key)})
	}
	return r, nil
}
