package main

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
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
	child *child.Process

	mu sync.Mutex // serialises applies, snapshots and digests

	lastT   atomic.Int64  // time of the last applied entry
	applied atomic.Uint64 // index of the last applied entry

	waitMu  sync.Mutex
	advance chan struct{} // closed and replaced whenever applied grows
}

// newFSM opens the apply connection to the child.
func newFSM(c *child.Process, tbl *command.Table, log *slog.Logger) (*fsm, error) {
	conn, err := c.Dial()
	if err != nil {
		return nil, err
	}
	return &fsm{
		applyState: &applyState{
			log: log, tbl: tbl, conn: conn,
			index:   newExpiryIndex(),
			scripts: newScriptCache(),
			watches: newWatchSet(c.Dial),
		},
		child:   c,
		advance: make(chan struct{}),
	}, nil
}

// setTouchHook registers the blocked-clients notifier.
func (f *fsm) setTouchHook(h touchHook) { f.touched = h }

// Apply applies one entry.
func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies entries in order as one pipeline to the child.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	results := make([]any, len(logs))
	p := newPipeline(f.applyState)
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		e, err := decodeEntry(l.Data)
		if err != nil {
			f.fatal(fmt.Errorf("decode entry %d: %w", l.Index, err))
		}
		switch e.Kind {
		case entryCommands:
			res := &applyResult{replies: make([][]byte, len(e.Cmds))}
			for j := range e.Cmds {
				p.addCommand(&e.Cmds[j], e.T, l.Index<<12+uint64(j), &res.replies[j])
			}
			results[i] = res
		case entrySweep:
			p.addCondDel(e.Keys, e.T)
		}
		if e.T > f.lastT.Load() {
			f.lastT.Store(e.T)
		}
	}
	if err := p.run(); err != nil {
		f.fatal(err)
	}
	f.setApplied(logs[len(logs)-1].Index)
	return results
}

// appliedIndex is the index of the last applied entry.
func (f *fsm) appliedIndex() uint64 { return f.applied.Load() }

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

// earliestDeadline is the smallest deadline in the expiry index.
func (f *fsm) earliestDeadline() (int64, bool) { return f.index.earliest() }

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
	return beginSnapshot(f.conn, f.child, f.log, snapshotState{
		applied: f.applied.Load(), lastT: f.lastT.Load(), scripts: f.scripts.all(), watches: watches,
	})
}

// Restore replaces the child's whole state with a snapshot.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index.clear(-1)
	f.scripts.forget()
	f.watches.closeAll()
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
	s, _ := resp.Text(raw)
	if resp.IsError(raw) {
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
					parts = append(parts, strconv.Itoa(db)+"\x00"+k+"\x00"+string(resp.Encode(nil, fields[i+1])))
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
