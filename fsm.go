package main

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// applyResult is what the FSM hands back for a command entry: one raw reply
// per command, in order.
type applyResult struct {
	replies [][]byte
}

// fsm applies log entries to the local child. It implements
// raft.BatchingFSM: a batch of entries becomes one pipeline to the child.
type fsm struct {
	log   *slog.Logger
	tbl   *commandTable
	child *childProcess
	index *expiryIndex

	mu   sync.Mutex // serialises applies, snapshots and digests
	conn *respConn  // the apply connection

	lastT   atomic.Int64  // time of the last applied entry
	applied atomic.Uint64 // index of the last applied entry

	watches map[string]*watchEntry // by watch ID; touched only under mu
	// notifyFlags is the child's notify-keyspace-events, tracked from the
	// log so that expiry can raise "expired" (touched only under mu).
	notifyFlags string

	scriptsMu sync.RWMutex
	scripts   map[string]string // SHA1 -> body of every script seen

	waitMu  sync.Mutex
	advance chan struct{} // closed and replaced whenever applied grows

	// wantTouches and touched tell blocked clients which keys writes
	// touched; set once at start-up.
	wantTouches func() bool
	touched     func([]dbKey)
}

// setTouchHook registers the blocked-clients notifier.
func (f *fsm) setTouchHook(want func() bool, touched func([]dbKey)) {
	f.wantTouches, f.touched = want, touched
}

// newFSM opens the apply connection to the child.
func newFSM(child *childProcess, tbl *commandTable, log *slog.Logger) (*fsm, error) {
	conn, err := dialChild(child.sock)
	if err != nil {
		return nil, err
	}
	return &fsm{
		log: log, tbl: tbl, child: child, conn: conn,
		index:   newExpiryIndex(),
		scripts: make(map[string]string),
		watches: make(map[string]*watchEntry),
		advance: make(chan struct{}),
	}, nil
}

// Apply applies one entry.
func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies entries in order as one pipeline to the child.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	results := make([]any, len(logs))
	p := newPipeline(f)
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
				if isWatchCommand(&e.Cmds[j]) {
					p.addWatchCommand(&e.Cmds[j], e.T, &res.replies[j])
					continue
				}
				st := planCommand(f.tbl, &e.Cmds[j], e.T, l.Index<<12+uint64(j), f.script)
				p.addStep(&st, e.T, &res.replies[j])
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

// fatal stops the node: a state machine that cannot apply an entry must not
// go on, or it would diverge. A restart rebuilds the child from snapshot and
// log.
func (f *fsm) fatal(err error) {
	f.log.Error("cannot apply the Raft log to redis-server; exiting so that a restart rebuilds it from snapshot and log", "err", err)
	os.Exit(1)
}

// script returns a remembered script body.
func (f *fsm) script(sha string) (string, bool) {
	f.scriptsMu.RLock()
	defer f.scriptsMu.RUnlock()
	b, ok := f.scripts[sha]
	return b, ok
}

// rememberScript records body under its SHA1.
func (f *fsm) rememberScript(body string) {
	f.scriptsMu.Lock()
	f.scripts[scriptSHA(body)] = body
	f.scriptsMu.Unlock()
}

// forgetScripts empties the script cache (SCRIPT FLUSH, restore).
func (f *fsm) forgetScripts() {
	f.scriptsMu.Lock()
	f.scripts = make(map[string]string)
	f.scriptsMu.Unlock()
}

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

// digest returns the applied index and a digest of the whole dataset taken
// at that index: the child's DEBUG DIGEST (every key, value and shifted,
// hence identical, deadline, independent of hash-table order), extended with
// each stream's consumer groups, which DEBUG DIGEST leaves out.
func (f *fsm) digest(c *respConn) (uint64, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw, err := c.do("DEBUG", "DIGEST")
	if err != nil {
		return 0, "", err
	}
	s, _ := replyString(raw)
	if replyIsError(raw) {
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
func streamGroupsDigest(c *respConn) (string, error) {
	var parts []string
	for db := 0; db < 16; db++ {
		keys, err := scanAll(c, db, "TYPE", "stream")
		if err != nil {
			return "", err
		}
		for _, k := range keys {
			raw, err := c.do("XINFO", "STREAM", k, "FULL", "COUNT", "0")
			if err != nil {
				return "", err
			}
			v, err := parseReply(raw)
			if err != nil {
				return "", err
			}
			fields, _ := v.([]any)
			for i := 0; i+1 < len(fields); i += 2 {
				if asString(fields[i]) == "groups" {
					dropConsumerTimes(fields[i+1])
					parts = append(parts, strconv.Itoa(db)+"\x00"+k+"\x00"+string(encodeValue(nil, fields[i+1])))
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
			if asString(gf[i]) != "consumers" {
				continue
			}
			consumers, _ := gf[i+1].([]any)
			for _, cons := range consumers {
				cf, _ := cons.([]any)
				for j := 0; j+1 < len(cf); j += 2 {
					if n := asString(cf[j]); n == "seen-time" || n == "active-time" {
						cf[j+1] = int64(0)
					}
				}
			}
		}
	}
}

// scanAll lists every key of db matching the SCAN options.
func scanAll(c *respConn, db int, opts ...string) ([]string, error) {
	if err := c.selectNow(db); err != nil {
		return nil, err
	}
	var keys []string
	cursor := "0"
	for {
		raw, err := c.do(append([]string{"SCAN", cursor, "COUNT", "1000"}, opts...)...)
		if err != nil {
			return nil, err
		}
		v, err := parseReply(raw)
		parts, ok := v.([]any)
		if err != nil || !ok || len(parts) != 2 {
			return nil, fmt.Errorf("unexpected SCAN reply %q", raw)
		}
		cursor = asString(parts[0])
		batch, _ := parts[1].([]any)
		for _, k := range batch {
			keys = append(keys, asString(k))
		}
		if cursor == "0" {
			sort.Strings(keys)
			return keys, nil
		}
	}
}

// pipeline queues commands for the child and the handlers of their replies,
// which run in order once everything is flushed.
type pipeline struct {
	f        *fsm
	handlers []func([]byte)
	// touchedKeys collects written keys for blocked clients.
	touchedKeys []dbKey
	// unknown holds keys whose deadline was changed earlier in this pipeline
	// and is not read back yet; dbs marks databases swapped in it. Both force
	// a check inside the child, so the outcome never depends on how entries
	// were grouped into batches.
	unknown map[dbKey]bool
}

func newPipeline(f *fsm) *pipeline {
	return &pipeline{f: f, unknown: make(map[dbKey]bool)}
}

// send queues one command in db with its reply handler (nil: discard).
func (p *pipeline) send(db int, args [][]byte, h func([]byte)) {
	if p.f.conn.selectDB(db) {
		p.handlers = append(p.handlers, nil)
	}
	p.f.conn.send(args)
	p.handlers = append(p.handlers, h)
}

// addStep queues a planned command, its expiry checks and its read-backs;
// the client's reply lands in *out.
func (p *pipeline) addStep(st *applyStep, t int64, out *[]byte) {
	p.addCondDel(p.dueKeys(st.precheck, t), t)
	trackTouch := p.f.wantTouches != nil && p.f.wantTouches()
	if st.script != "" {
		p.f.rememberScript(st.script)
	}
	if st.flushAll {
		p.f.forgetScripts()
	}
	if st.sub != nil && st.watch != "" {
		p.addWatchedTransaction(st, st.watch, out)
	} else if st.sub != nil {
		p.addTransaction(st, out)
	} else {
		mapReply := st.mapReply
		p.send(st.db, st.args, func(raw []byte) {
			if mapReply != nil {
				raw = mapReply(raw)
			}
			*out = raw
		})
	}
	if trackTouch {
		// Blocked clients are woken only by writes that did something: a
		// nil or error reply (e.g. a waiter's own empty pop) changed nothing.
		keys := append(append([]dbKey(nil), st.precheck...), st.readBack...) // MOVE, COPY: the target too
		if st.effect == effectSwapDB {
			keys = append(keys, dbKey{st.swapA, anyKey}, dbKey{st.swapB, anyKey})
		}
		for _, sub := range st.sub {
			if sub.effect == effectSwapDB {
				keys = append(keys, dbKey{sub.swapA, anyKey}, dbKey{sub.swapB, anyKey})
			}
		}
		touch := func(raw []byte) {
			if !isNilReply(raw) && !replyIsError(raw) {
				p.touchedKeys = append(p.touchedKeys, keys...)
			}
		}
		if st.sub != nil && st.watch != "" {
			touch(*out) // run synchronously above
		} else {
			p.wrapLast(touch)
		}
	}
	p.addIndexEffect(st)
	if st.notifyChange {
		p.refreshNotifyFlags()
	}
	if st.reprelude {
		p.addPreludeToLibraries()
	}
	for _, k := range st.readBack {
		p.unknown[k] = true
		k := k
		p.send(k.DB, [][]byte{[]byte("PEXPIRETIME"), []byte(k.Key)}, func(raw []byte) {
			if at, ok := replyInt(raw); ok {
				p.f.index.set(k, unshift(at))
			}
		})
	}
	if st.expireNow {
		p.addCondDel(st.readBack, t)
	}
}

// addTransaction queues MULTI, the queued commands and EXEC; the client gets
// EXEC's reply, with each queued command's reply rewritten as it would be
// outside a transaction.
func (p *pipeline) addTransaction(st *applyStep, out *[]byte) {
	p.rememberScripts(st.sub)
	p.send(st.db, st.args, nil)
	for _, sub := range st.sub {
		p.f.conn.send(sub.args)
		p.handlers = append(p.handlers, nil)
	}
	p.f.conn.send([][]byte{[]byte("EXEC")})
	p.handlers = append(p.handlers, func(raw []byte) { *out = p.finishExec(st, raw) })
	p.f.conn.db = -1 // a SELECT inside the transaction may have moved it
	p.afterTransaction(st)
}

// rememberScripts records the scripts a transaction's commands load.
func (p *pipeline) rememberScripts(subs []applyStep) {
	for _, sub := range subs {
		if sub.script != "" {
			p.f.rememberScript(sub.script)
		}
		if sub.flushAll {
			p.f.forgetScripts()
		}
	}
}

// finishExec applies the queued commands' reply rewrites and index effects
// to EXEC's reply.
func (p *pipeline) finishExec(st *applyStep, raw []byte) []byte {
	items, err := readArrayItems(raw)
	if err != nil || len(items) != len(st.sub) {
		return raw // aborted (nil) or an error
	}
	changed := false
	for i, sub := range st.sub {
		p.f.applyIndexEffect(&sub, items[i])
		if sub.mapReply != nil {
			items[i] = sub.mapReply(items[i])
			changed = true
		}
	}
	if !changed {
		return raw
	}
	out := respArrayHeader(len(items))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

// afterTransaction makes later commands see a transaction's SWAPDB and
// gives restored libraries their prelude.
func (p *pipeline) afterTransaction(st *applyStep) {
	swapped, restored, notify := false, false, false
	for _, sub := range st.sub {
		swapped = swapped || sub.effect == effectSwapDB
		restored = restored || sub.reprelude
		notify = notify || sub.notifyChange
	}
	if notify {
		p.refreshNotifyFlags()
	}
	if swapped {
		if err := p.run(); err != nil {
			p.f.fatal(err)
		}
	}
	if restored {
		p.addPreludeToLibraries()
	}
}

// addIndexEffect queues the index changes of FLUSHDB, FLUSHALL and SWAPDB,
// made once the child has confirmed the command.
func (p *pipeline) addIndexEffect(st *applyStep) {
	if st.effect == effectNone {
		return
	}
	step := *st
	p.wrapLast(func(raw []byte) { p.f.applyIndexEffect(&step, raw) })
	if st.effect == effectSwapDB {
		// Later commands must see the swapped index.
		if err := p.run(); err != nil {
			p.f.fatal(err)
		}
	}
}

// applyIndexEffect changes the expiry index as a successful FLUSHDB,
// FLUSHALL or SWAPDB did the child.
func (f *fsm) applyIndexEffect(st *applyStep, reply []byte) {
	if replyIsError(reply) {
		return
	}
	switch st.effect {
	case effectFlushDB:
		f.index.clear(st.db)
	case effectFlushAll:
		f.index.clear(-1)
	case effectSwapDB:
		f.index.swap(st.swapA, st.swapB)
	}
}

// wrapLast chains h after the handler of the last queued command.
func (p *pipeline) wrapLast(h func([]byte)) {
	i := len(p.handlers) - 1
	prev := p.handlers[i]
	p.handlers[i] = func(raw []byte) {
		if prev != nil {
			prev(raw)
		}
		h(raw)
	}
}

// dueKeys filters keys that may be due at t: recorded as due in the index,
// or changed earlier in this pipeline.
func (p *pipeline) dueKeys(keys []dbKey, t int64) []dbKey {
	var out []dbKey
	for _, k := range keys {
		if p.unknown[k] || p.f.index.due(k, t) {
			out = append(out, k)
		}
	}
	return out
}

// addCondDel queues the deletion, inside the child, of each key whose
// deadline is at or before t, grouped by database, and updates the index
// from what the child reports.
func (p *pipeline) addCondDel(keys []dbKey, t int64) {
	byDB := make(map[int][]dbKey)
	var order []int
	for _, k := range keys {
		if _, ok := byDB[k.DB]; !ok {
			order = append(order, k.DB)
		}
		byDB[k.DB] = append(byDB[k.DB], k)
	}
	for _, db := range order {
		ks := byDB[db]
		args := make([][]byte, 0, len(ks)+4)
		args = append(args, []byte("EVAL"), []byte(condDelScript), []byte(strconv.Itoa(len(ks))))
		for _, k := range ks {
			args = append(args, []byte(k.Key))
		}
		args = append(args, []byte(strconv.FormatInt(t+deadlineShift, 10)))
		flags := p.f.notifyFlags
		if flags != "" {
			args = append(args, []byte(flags), []byte(strconv.Itoa(db)))
			p.send(db, [][]byte{[]byte("CONFIG"), []byte("SET"), []byte("notify-keyspace-events"), nil}, nil)
		}
		p.send(db, args, func(raw []byte) {
			items, err := readArrayItems(raw)
			if err != nil || len(items) != len(ks) {
				p.f.fatal(fmt.Errorf("unexpected expiry check reply %q", raw))
			}
			for i, it := range items {
				at, _ := replyInt(it)
				p.f.index.set(ks[i], unshift(at))
			}
		})
		if flags != "" {
			p.send(db, [][]byte{[]byte("CONFIG"), []byte("SET"), []byte("notify-keyspace-events"), []byte(flags)}, nil)
		}
	}
}

// refreshNotifyFlags reads the child's notify-keyspace-events after a
// change, synchronously, so later expiries in the same batch see it.
func (p *pipeline) refreshNotifyFlags() {
	if err := p.run(); err != nil {
		p.f.fatal(err)
	}
	if err := p.f.loadNotifyFlags(); err != nil {
		p.f.fatal(err)
	}
}

// loadNotifyFlags reads notify-keyspace-events from the child.
func (f *fsm) loadNotifyFlags() error {
	raw, err := f.conn.do("CONFIG", "GET", "notify-keyspace-events")
	if err != nil {
		return err
	}
	v, err := parseReply(raw)
	items, _ := v.([]any)
	if err != nil || len(items) != 2 {
		return fmt.Errorf("CONFIG GET notify-keyspace-events: %q", raw)
	}
	f.notifyFlags = asString(items[1])
	return nil
}

// run flushes the queued commands and runs every reply handler in order.
func (p *pipeline) run() error {
	if len(p.handlers) == 0 {
		return nil
	}
	if err := p.f.conn.flush(); err != nil {
		return err
	}
	for _, h := range p.handlers {
		raw, err := p.f.conn.readReply()
		if err != nil {
			return err
		}
		if h != nil {
			h(raw)
		}
	}
	p.handlers = p.handlers[:0]
	clear(p.unknown)
	if len(p.touchedKeys) > 0 {
		p.f.touched(p.touchedKeys)
		p.touchedKeys = nil
	}
	return nil
}

// unshift converts a child's PEXPIRETIME to the real deadline (negative
// values, meaning "none" or "missing", pass through).
func unshift(at int64) int64 {
	if at < 0 {
		return at
	}
	return at - deadlineShift
}

// Snapshot starts a point-in-time copy of the child: see snapshot.go.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.startSnapshot()
}

// Restore replaces the child's whole state with a snapshot.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	idx, err := f.restoreSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.setApplied(idx)
	return nil
}
