package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/redraft/redraft/internal/child"
	"github.com/redraft/redraft/internal/command"
	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// applyResult is what the FSM hands back for a command entry: one raw reply
// per command, in order.
type applyResult struct {
	replies [][]byte
}

// fsm applies log entries to the local child. It implements
// raft.BatchingFSM: a batch of entries becomes one pipeline to the child
// (pipeline.go). Only the apply path below it touches the child's data.
type fsm struct {
	*applyState
	child *child.Supervisor

	mu sync.Mutex // serialises applies, snapshots and digests

	lastT   atomic.Int64  // time of the last applied entry
	applied atomic.Uint64 // index of the last applied entry

	logs  raft.LogStore      // for a rebuild's replay
	snaps raft.SnapshotStore // for a rebuild's snapshot

	waitMu  sync.Mutex
	advance chan struct{} // closed and replaced whenever applied grows
}

// newFSM opens the apply connection to the child.
func newFSM(c *child.Supervisor, tbl *command.Table, log *slog.Logger) (*fsm, error) {
	conn, err := c.Dial()
	if err != nil {
		return nil, err
	}
	f := &fsm{
		applyState: &applyState{
			log: log, tbl: tbl, conn: conn,
			index:   newExpiryIndex(),
			scripts: newScriptCache(),
			watches: newWatchSet(c.Dial),
			stops:   newScriptStops(),
			held:    newHeldConfig(),
		},
		child:   c,
		advance: make(chan struct{}),
	}
	if err := f.loadThreshold(); err != nil {
		return nil, err
	}
	return f, nil
}

// setStartupConfig sets the values of the held parameters the node started
// with (--requirepass, --maxmemory), which apply until a CONFIG SET of
// them is applied from the log. Call it before the node serves.
func (f *fsm) setStartupConfig(requirePass string, maxMemory int64) {
	f.held.startup["requirepass"] = requirePass
	f.held.startup["maxmemory"] = strconv.FormatInt(maxMemory, 10)
}

// requirePass is the password clients must AUTH with now ("" for none).
func (f *fsm) requirePass() string { return f.held.get("requirepass") }

// maxMemory is the cluster's write limit in bytes now (0: none).
func (f *fsm) maxMemory() int64 {
	n, _ := strconv.ParseUint(f.held.get("maxmemory"), 10, 64)
	return int64(min(n, math.MaxInt64))
}

// setTouchHook registers the blocked-clients notifier.
func (f *fsm) setTouchHook(h touchHook) { f.touched = h }

// Apply applies one entry.
func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies entries in order as one pipeline to the child. When
// what this node did with a long script differs from what the log decided
// (scriptstop.go), it rebuilds the child from a snapshot and replays the
// log; if it cannot, the node stops.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	results, err := f.applyLogs(logs)
	if err != nil {
		running := f.stops.current()
		if !f.stops.takeChildKilled() {
			f.fatal(err)
		}
		// The watchdog killed the child to stop a script that had written.
		f.outcomes.replayFrom(running.ref.Index)
		if err := f.restartChild(); err != nil {
			f.fatal(err)
		}
	}
	if f.outcomes.rebuildFrom > 0 {
		if results, err = f.rebuild(logs); err != nil {
			f.fatal(err)
		}
	}
	f.setApplied(logs[len(logs)-1].Index)
	return results
}

// applyLogs applies entries in order as one pipeline and returns their
// results; it does not publish the applied index.
func (f *fsm) applyLogs(logs []*raft.Log) ([]any, error) {
	results := make([]any, len(logs))
	entries := make([]*entry, len(logs))
	indexes := make([]uint64, len(logs))
	for i, l := range logs {
		indexes[i] = l.Index
		if l.Type != raft.LogCommand {
			continue
		}
		e, err := decodeEntry(l.Data)
		if err != nil {
			f.fatal(fmt.Errorf("decode entry %d: %w", l.Index, err))
		}
		entries[i] = e
	}
	for ref, reason := range stopsInBatch(entries, indexes) {
		f.stops.void(ref, reason)
	}
	p := newPipeline(f.applyState)
	for i, e := range entries {
		if e == nil {
			continue
		}
		switch {
		case e.isCommands():
			res := &applyResult{replies: make([][]byte, len(e.Cmds))}
			for j := range e.Cmds {
				p.addCommand(&e.Cmds[j], e.T, scriptRef{Index: indexes[i], Pos: j}, &res.replies[j])
			}
			results[i] = res
		case e.isSweep():
			p.addCondDel(e.Keys, e.T)
		}
		if f.outcomes.pending() || e.Kind == entryStop {
			p.addLocal(func() { f.outcomes.decide(e, f.stops) })
		}
		if e.T > f.lastT.Load() {
			f.lastT.Store(e.T)
		}
	}
	return results, p.run()
}

// undecidedUpTo is the largest entry index holding a script this node ran
// whose outcome the log has not decided (0: none). The leader proposes a
// mark once it has applied that far, so the scripts are decided even when
// no other write follows.
func (f *fsm) undecidedUpTo() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.outcomes.upTo()
}

// appliedIndex is the index of the last applied entry.
func (f *fsm) appliedIndex() uint64 { return f.applied.Load() }

// decidingIndex is the applied index a proposal may carry as A (entries
// with A at or past a script's entry decide that the script stands): the
// applied index, but short of any script this node's child killed whose
// stop the log has not committed yet. Between a client's SCRIPT KILL and
// its stop reaching the log, another proposal must not claim the script ran.
func (f *fsm) decidingIndex() uint64 {
	applied := f.applied.Load()
	if k := f.outcomes.killedFrom.Load(); k != 0 && k <= applied {
		return k - 1
	}
	return applied
}

// lastTime is the log time T of the last applied entry.
func (f *fsm) lastTime() int64 { return f.lastT.Load() }

// setApplied publishes a new applied index to waiters.
func (f *fsm) setApplied(idx uint64) {
	f.applied.Store(idx)
	f.waitMu.Lock()
	close(f.advance)
	f.advance = make(chan struct{})
	f.waitMu.Unlock()
}

// waitApplied blocks until the applied index reaches idx.
func (f *fsm) waitApplied(ctx context.Context, idx uint64) error {
	for {
		f.waitMu.Lock()
		ch := f.advance
		f.waitMu.Unlock()
		if f.applied.Load() >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// anyDueBy reports whether the expiry index holds a deadline at or before t.
func (f *fsm) anyDueBy(t int64) bool { return f.index.dueBy(t) }

// dueKeys lists up to limit keys whose deadline is at or before t.
func (f *fsm) dueKeys(t int64, limit int) []dbKey { return f.index.dueKeys(t, limit) }

// expiryKeyCount is the number of keys the expiry index tracks.
func (f *fsm) expiryKeyCount() int { return f.index.size() }

// script returns a remembered script body by SHA1.
func (f *fsm) script(sha string) (string, bool) { return f.scripts.get(sha) }

// Snapshot starts a point-in-time copy of the child (snapshot.go).
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	watches, err := f.watches.records()
	if err != nil {
		return nil, err
	}
	st := snapshotState{
		applied: f.applied.Load(), lastT: f.lastT.Load(), scripts: f.scripts.all(), watches: watches,
	}
	st.held = f.held.fromLog()
	return beginSnapshot(f.conn, f.child, f.log, st)
}

// Restore replaces the child's whole state with a snapshot.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	// What the old state held (the expiry index, decode buffers) is
	// garbage once the new state is in; give it back to the system.
	defer func() { go debug.FreeOSMemory() }()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.restoreLocked(rc)
}

// restoreLocked loads a snapshot into the child (under mu).
func (f *fsm) restoreLocked(rc io.Reader) error {
	f.index.clear(-1)
	f.outcomes.reset()
	f.scripts.forget()
	f.watches.closeAll()
	f.held.forget()
	st, err := loadSnapshot(rc, f.conn, f.index)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	for _, body := range st.scripts {
		f.scripts.remember(body)
	}
	for _, r := range st.watches {
		if err := f.watches.restore(r); err != nil {
			return fmt.Errorf("restore snapshot: %w", err)
		}
	}
	if err := f.loadNotifyFlags(); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	if err := f.loadThreshold(); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.stops.forgetUpTo(st.applied)
	if st.held != nil {
		f.held.set(st.held)
	}
	f.lastT.Store(st.lastT)
	f.setApplied(st.applied)
	return nil
}

// digest returns the applied index and a digest of the whole dataset taken
// at that index: the child's DEBUG DIGEST (every key, value and shifted,
// hence identical, deadline, independent of hash-table order), extended with
// each stream's consumer groups, which DEBUG DIGEST leaves out.
func (f *fsm) digest(c *redisconn.Conn) (uint64, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw, err := c.Do("DEBUG", "DIGEST")
	if err != nil {
		return 0, "", err
	}
	s, _ := resp.ReplyString(raw)
	if resp.ReplyIsError(raw) {
		return 0, "", fmt.Errorf("DEBUG DIGEST: %s", s)
	}
	groups, err := streamGroupsDigest(c)
	if err != nil {
		return 0, "", err
	}
	if groups != "" {
		sum := sha1.Sum([]byte(s + groups))
		s = hex.EncodeToString(sum[:])
	}
	return f.applied.Load(), s, nil
}

// streamGroupsDigest hashes the consumer groups of every stream (XINFO
// STREAM FULL without the consumers' seen-time and active-time, which each
// child keeps by its own clock), in key order; "" when there are none.
func streamGroupsDigest(c *redisconn.Conn) (string, error) {
	var parts []string
	for db := 0; db < 16; db++ {
		keys, err := scanAll(c, db, "TYPE", "stream")
		if err != nil {
			return "", err
		}
		for _, k := range keys {
			raw, err := c.Do("XINFO", "STREAM", k, "FULL", "COUNT", "0")
			if err != nil {
				return "", err
			}
			v, err := resp.Parse(raw)
			if err != nil {
				return "", err
			}
			fields, _ := v.([]any)
			for i := 0; i+1 < len(fields); i += 2 {
				if resp.AsString(fields[i]) == "groups" {
					dropConsumerTimes(fields[i+1])
					parts = append(parts, strconv.Itoa(db)+"\x00"+k+"\x00"+string(resp.AppendValue(nil, resp.Proto2, fields[i+1])))
				}
			}
		}
	}
	if len(parts) == 0 {
		return "", nil
	}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "\x01")))
	return hex.EncodeToString(sum[:]), nil
}

// dropConsumerTimes blanks seen-time and active-time in XINFO's groups.
func dropConsumerTimes(groups any) {
	list, _ := groups.([]any)
	for _, g := range list {
		gf, _ := g.([]any)
		for i := 0; i+1 < len(gf); i += 2 {
			if resp.AsString(gf[i]) != "consumers" {
				continue
			}
			consumers, _ := gf[i+1].([]any)
			for _, cons := range consumers {
				cf, _ := cons.([]any)
				for j := 0; j+1 < len(cf); j += 2 {
					if n := resp.AsString(cf[j]); n == "seen-time" || n == "active-time" {
						cf[j+1] = int64(0)
					}
				}
			}
		}
	}
}

// scanAll lists every key of db matching the SCAN options, sorted.
func scanAll(c *redisconn.Conn, db int, opts ...string) ([]string, error) {
	if err := c.SelectNow(db); err != nil {
		return nil, err
	}
	var keys []string
	cursor := "0"
	for {
		raw, err := c.Do(append([]string{"SCAN", cursor, "COUNT", "1000"}, opts...)...)
		if err != nil {
			return nil, err
		}
		v, err := resp.Parse(raw)
		parts, ok := v.([]any)
		if err != nil || !ok || len(parts) != 2 {
			return nil, fmt.Errorf("unexpected SCAN reply %q", raw)
		}
		cursor = resp.AsString(parts[0])
		batch, _ := parts[1].([]any)
		for _, k := range batch {
			keys = append(keys, resp.AsString(k))
		}
		if cursor == "0" {
			sort.Strings(keys)
			return keys, nil
		}
	}
}

// attachStores gives the FSM Raft's log and snapshot stores, which a
// rebuild reads (scriptstop.go).
func (f *fsm) attachStores(logs raft.LogStore, snaps raft.SnapshotStore) {
	f.logs, f.snaps = logs, snaps
}

// restartChild replaces a child the watchdog killed with a new one and
// reconnects the apply path to it.
func (f *fsm) restartChild() error {
	if err := f.child.Restart(); err != nil {
		return err
	}
	conn, err := f.child.Dial()
	if err != nil {
		return err
	}
	f.conn.Close()
	f.conn, f.connProto = conn, 0
	f.watches.closeAll()
	return nil
}

// rebuild puts the child back in the state before the first entry whose
// script outcome this node got wrong, replays the log from there up to
// logs with the log's decisions, and returns the results of logs.
func (f *fsm) rebuild(logs []*raft.Log) ([]any, error) {
	from := f.outcomes.rebuildFrom
	f.log.Warn("replaying the log without a stopped script", "from", from)
	start, err := f.restoreBefore(from)
	if err != nil {
		return nil, err
	}
	const chunk = 256
	for next := start + 1; next < logs[0].Index; next += chunk {
		batch, err := f.readLogs(next, min(next+chunk, logs[0].Index))
		if err != nil {
			return nil, err
		}
		if _, err := f.applyLogs(batch); err != nil {
			return nil, err
		}
	}
	results, err := f.applyLogs(logs)
	if err != nil {
		return nil, err
	}
	if f.outcomes.rebuildFrom != 0 {
		return nil, fmt.Errorf("the replay from entry %d still disagrees with the log", from)
	}
	return results, nil
}

// restoreBefore puts the child in the state it had before entry index:
// the newest snapshot taken before it, or the empty state when the log
// still starts at its first entry. It returns the index the state is at.
func (f *fsm) restoreBefore(index uint64) (uint64, error) {
	metas, err := f.snaps.List()
	if err != nil {
		return 0, fmt.Errorf("list snapshots: %w", err)
	}
	for _, m := range metas {
		if m.Index >= index {
			continue
		}
		_, rc, err := f.snaps.Open(m.ID)
		if err != nil {
			return 0, fmt.Errorf("open snapshot %s: %w", m.ID, err)
		}
		defer rc.Close()
		return m.Index, f.restoreLocked(rc)
	}
	if first, err := f.logs.FirstIndex(); err == nil && first <= 1 {
		return 0, f.restoreLocked(bytes.NewReader(emptySnapshot()))
	}
	return 0, fmt.Errorf("no snapshot before entry %d to replay a stopped script from; wipe this node's data directory and -join a member", index)
}

// readLogs reads entries [from, to) from the log store.
func (f *fsm) readLogs(from, to uint64) ([]*raft.Log, error) {
	out := make([]*raft.Log, 0, to-from)
	for i := from; i < to; i++ {
		var l raft.Log
		if err := f.logs.GetLog(i, &l); err != nil {
			return nil, fmt.Errorf("read log entry %d to replay: %w; wipe this node's data directory and -join a member", i, err)
		}
		out = append(out, &l)
	}
	return out, nil
}
