package main

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/redraft/redraft/internal/command"
	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// applyState is what the apply path works on: the apply connection to the
// child and what is kept in step with the child's data. The FSM owns it and
// hands it to each batch's pipeline; only the apply goroutine touches it
// (under the FSM's lock), except the expiry index and the script cache,
// which have locks of their own.
type applyState struct {
	log  *slog.Logger
	tbl  *command.Table
	conn *redisconn.Conn // the apply connection
	// connProto is the protocol conn answers in: 0 (a new connection) and
	// RESP2 between batches, RESP3 while a RESP3 client's commands run,
	// protoUnknown after a transaction that ran HELLO (protocol.go).
	connProto resp.Proto
	index     *expiryIndex
	scripts   *scriptCache
	watches   *watchSet
	// held are the CONFIG parameters redraft keeps (requirepass, maxmemory),
	// set through the log and never in the child.
	held *heldConfig
	// notifyFlags is the child's notify-keyspace-events, tracked from the
	// log so that expiry can raise "expired".
	notifyFlags string
	// touched tells blocked clients which keys writes touched; set once at
	// start-up.
	touched touchHook
	// stops and outcomes: scripts stopped by the log (scriptstop.go).
	stops    *scriptStops
	outcomes scriptOutcomes
}

// touchHook reports keys changed by applied writes to whoever waits on
// them; wanted is checked first so the apply path pays nothing when nobody
// waits.
type touchHook struct {
	wanted func() bool
	report func([]dbKey)
	// groupsGone reports the consumer groups XGROUP DESTROY removed, with
	// the log index, so that a client blocked in XREADGROUP on one gets
	// NOGROUP even when the group is re-created before it looks again.
	groupsGone func([]goneGroup)
}

// goneGroup is a consumer group that an applied XGROUP DESTROY (sent on
// its own, not in MULTI or a script) named, and the index of the entry that
// carried it.
type goneGroup struct {
	key   dbKey
	group string
	index uint64
}

// destroyedGroup returns the group an XGROUP DESTROY removes.
func destroyedGroup(db int, args [][]byte, index uint64) (goneGroup, bool) {
	if len(args) != 4 || !optionIs(args[0], "xgroup") || !optionIs(args[1], "destroy") {
		return goneGroup{}, false
	}
	return goneGroup{key: dbKey{db, string(args[2])}, group: string(args[3]), index: index}, true
}

// fatal stops the node: a state machine that cannot apply an entry must not
// go on, or it would diverge. A restart rebuilds the child from snapshot and
// log.
func (a *applyState) fatal(err error) {
	a.log.Error("cannot apply the Raft log to redis-server; exiting so that a restart rebuilds it from snapshot and log", "err", err)
	os.Exit(1)
}

// loadNotifyFlags reads notify-keyspace-events from the child.
func (a *applyState) loadNotifyFlags() error {
	raw, err := a.conn.Do("CONFIG", "GET", "notify-keyspace-events")
	if err != nil {
		return err
	}
	v, err := resp.Parse(raw)
	items, _ := v.([]any)
	if err != nil || len(items) != 2 {
		return fmt.Errorf("CONFIG GET notify-keyspace-events: %q", raw)
	}
	a.notifyFlags = resp.AsString(items[1])
	return nil
}

// loadThreshold reads busy-reply-threshold from the child: how long a script
// may run before the leader stops it.
func (a *applyState) loadThreshold() error {
	raw, err := a.conn.Do("CONFIG", "GET", "busy-reply-threshold")
	if err != nil {
		return err
	}
	v, err := resp.Parse(raw)
	items, _ := v.([]any)
	if err != nil || len(items) != 2 {
		return fmt.Errorf("CONFIG GET busy-reply-threshold: %q", raw)
	}
	ms, err := strconv.ParseInt(resp.AsString(items[1]), 10, 64)
	if err != nil {
		return fmt.Errorf("CONFIG GET busy-reply-threshold: %q", raw)
	}
	a.stops.threshold.Store(ms)
	return nil
}

// anyKey in a touched key stands for every key of its database (SWAPDB).
const anyKey = "\x00redraft:any"

// pipeline queues commands for the child and the handlers of their replies,
// which run in order once everything is flushed.
type pipeline struct {
	st       *applyState
	handlers []replyHandler
	// touchedKeys collects written keys for blocked clients, goneGroups
	// the consumer groups destroyed.
	touchedKeys []dbKey
	goneGroups  []goneGroup
	// unknown holds keys whose deadline was changed earlier in this pipeline
	// and is not read back yet; dbs marks databases swapped in it. Both force
	// a check inside the child, so the outcome never depends on how entries
	// were grouped into batches.
	unknown map[dbKey]bool
	// anyDue caches whether the index holds any deadline at or before
	// anyDueAt, so that a batch with nothing due asks the index once, not
	// once per key. Keys whose deadlines change in the batch are in
	// unknown, so the answer holds for the others throughout the batch.
	anyDue, anyDueKnown bool
	anyDueAt            int64
}

// replyHandler handles one queued command's reply in order. local, when
// set, runs at its place in the order without a reply (a decision of the
// log); script names the user script the child runs while the reply is
// awaited.
type replyHandler struct {
	fn     func([]byte)
	local  func()
	script *runningScript
}

func newPipeline(st *applyState) *pipeline {
	return &pipeline{st: st, unknown: make(map[dbKey]bool)}
}

// send queues one command in db with its reply handler (nil: discard).
func (p *pipeline) send(db int, args [][]byte, h func([]byte)) {
	if p.st.conn.SelectDB(db) {
		p.handlers = append(p.handlers, replyHandler{})
	}
	p.st.conn.Send(args)
	p.handlers = append(p.handlers, replyHandler{fn: h})
}

// addLocal queues fn to run in order, between replies.
func (p *pipeline) addLocal(fn func()) {
	p.handlers = append(p.handlers, replyHandler{local: fn})
}

// markScript names the user script the child runs while the last queued
// command's reply is awaited.
func (p *pipeline) markScript(st *applyStep) {
	p.st.outcomes.started(st.ref)
	p.handlers[len(p.handlers)-1].script = &runningScript{ref: st.ref, function: st.function}
}

// addStep queues a planned command, its expiry checks and its read-backs;
// the client's reply lands in *out.
func (p *pipeline) addStep(st *applyStep, t int64, out *[]byte) {
	p.addCondDel(p.dueKeys(st.precheck, t), t)
	p.bindConfigGet(st)
	trackTouch := p.st.touched.wanted != nil && p.st.touched.wanted()
	if st.script != "" {
		p.st.scripts.remember(st.script)
	}
	if st.flushAll {
		p.st.scripts.forget()
	}
	if st.sub != nil && st.watch != "" {
		p.addWatchedTransaction(st, st.watch, out)
	} else if st.sub != nil {
		p.addTransaction(st, out)
	} else {
		mapReply, known := st.mapReply, st.known
		p.useProto(st.proto)
		p.send(st.db, st.args, func(raw []byte) {
			if known != nil && known.when(raw) {
				p.st.index.set(known.key, known.at)
			}
			if mapReply != nil {
				raw = mapReply(raw)
			}
			*out = raw
		})
		if st.userScript {
			p.markScript(st)
		}
	}
	if trackTouch {
		// Blocked clients are woken only by writes that did something: a
		// nil or error reply (e.g. a waiter's own empty pop) changed nothing.
		keys := append(append([]dbKey(nil), st.precheck...), st.readBack...) // MOVE, COPY: the target too
		keys = append(keys, effectTouches(st)...)
		for i := range st.sub {
			keys = append(keys, effectTouches(&st.sub[i])...)
		}
		// Only a command of its own: Redis serves blocked clients after a
		// whole transaction or script, by then the group may exist again.
		if g, ok := destroyedGroup(st.db, st.args, st.ref.Index); ok {
			p.goneGroups = append(p.goneGroups, g)
		}
		touch := func(raw []byte) {
			if !resp.ReplyIsNull(raw) && !resp.ReplyIsError(raw) {
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
	if st.held != nil && st.sub == nil {
		held := st.held
		p.wrapLast(func(raw []byte) { p.setHeld(held, raw) })
	}
	if st.notifyChange {
		p.refreshNotifyFlags()
	}
	if st.thresholdChange {
		p.refreshThreshold()
	}
	if st.reprelude {
		p.addPreludeToLibraries()
	}
	for _, k := range st.readBack {
		p.unknown[k] = true
		if st.known != nil && st.sub == nil && k == st.known.key {
			continue // recorded from the command's reply
		}
		k := k
		p.send(k.DB, [][]byte{[]byte("PEXPIRETIME"), []byte(k.Key)}, func(raw []byte) {
			if at, ok := resp.ReplyInt(raw); ok {
				p.st.index.set(k, unshift(at))
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
	p.useProto(st.proto)
	p.send(st.db, st.args, nil)
	for _, sub := range st.sub {
		p.st.conn.Send(sub.args)
		p.handlers = append(p.handlers, replyHandler{})
	}
	p.st.conn.Send([][]byte{[]byte("EXEC")})
	p.handlers = append(p.handlers, replyHandler{fn: func(raw []byte) { *out = p.finishExec(st, raw) }})
	if runsHello(st.sub) {
		p.st.connProto = protoUnknown
	}
	if st.userScript {
		p.markScript(st)
	}
	p.st.conn.ForgetDB() // a SELECT inside the transaction may have moved it
	p.afterTransaction(st)
}

// rememberScripts records the scripts a transaction's commands load.
func (p *pipeline) rememberScripts(subs []applyStep) {
	for _, sub := range subs {
		if sub.script != "" {
			p.st.scripts.remember(sub.script)
		}
		if sub.flushAll {
			p.st.scripts.forget()
		}
	}
}

// finishExec applies the queued commands' reply rewrites and index effects
// to EXEC's reply.
func (p *pipeline) finishExec(st *applyStep, raw []byte) []byte {
	items, err := resp.ArrayItems(raw)
	if err != nil || len(items) != len(st.sub) {
		return raw // aborted (nil) or an error
	}
	changed := false
	for i, sub := range st.sub {
		applyIndexEffect(p.st.index, &sub, items[i])
		if sub.held != nil {
			p.setHeld(sub.held, items[i])
		}
		if sub.mapReply != nil {
			items[i] = sub.mapReply(items[i])
			changed = true
		}
	}
	if !changed {
		return raw
	}
	return resp.Rebuild(raw, items)
}

// setHeld applies a CONFIG SET of held parameters once the command that
// carried it succeeded (with other parameters, the child may refuse them,
// and then nothing changes, as CONFIG SET is all or nothing).
func (p *pipeline) setHeld(values map[string]string, reply []byte) {
	if !resp.ReplyIsError(reply) {
		p.st.held.set(values)
	}
}

// bindConfigGet gives CONFIG GET inside a transaction redraft's held
// parameters, read when its reply arrives (after any CONFIG SET before it).
func (p *pipeline) bindConfigGet(st *applyStep) {
	for i := range st.sub {
		if sub := &st.sub[i]; sub.configGet {
			sub.mapReply = func(raw []byte) []byte { return withHeld(raw, p.st.held) }
		}
	}
}

// afterTransaction makes later commands see a transaction's SWAPDB and
// gives restored libraries their prelude.
func (p *pipeline) afterTransaction(st *applyStep) {
	swapped, restored, notify, threshold := false, false, false, false
	for _, sub := range st.sub {
		swapped = swapped || sub.effect == effectSwapDB
		restored = restored || sub.reprelude
		notify = notify || sub.notifyChange
		threshold = threshold || sub.thresholdChange
	}
	if notify {
		p.refreshNotifyFlags()
	}
	if threshold {
		p.refreshThreshold()
	}
	if swapped {
		if err := p.run(); err != nil {
			p.st.fatal(err)
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
	p.wrapLast(func(raw []byte) { applyIndexEffect(p.st.index, &step, raw) })
	if st.effect == effectSwapDB {
		// Later commands must see the swapped index.
		if err := p.run(); err != nil {
			p.st.fatal(err)
		}
	}
}

// effectTouches are the whole databases a FLUSHDB, FLUSHALL or SWAPDB
// changes, for blocked clients.
func effectTouches(st *applyStep) []dbKey {
	switch st.effect {
	case effectSwapDB:
		return []dbKey{{st.swapA, anyKey}, {st.swapB, anyKey}}
	case effectFlushDB:
		return []dbKey{{st.db, anyKey}}
	case effectFlushAll:
		out := make([]dbKey, 16)
		for db := range out {
			out[db] = dbKey{db, anyKey}
		}
		return out
	}
	return nil
}

// applyIndexEffect changes the expiry index as a successful FLUSHDB,
// FLUSHALL or SWAPDB did the child.
func applyIndexEffect(idx *expiryIndex, st *applyStep, reply []byte) {
	if resp.ReplyIsError(reply) {
		return
	}
	switch st.effect {
	case effectFlushDB:
		idx.clear(st.db)
	case effectFlushAll:
		idx.clear(-1)
	case effectSwapDB:
		idx.swap(st.swapA, st.swapB)
	}
}

// wrapLast chains h after the handler of the last queued command.
func (p *pipeline) wrapLast(h func([]byte)) {
	i := len(p.handlers) - 1
	prev := p.handlers[i].fn
	p.handlers[i].fn = func(raw []byte) {
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
		if p.unknown[k] || (p.someDueBy(t) && p.st.index.due(k, t)) {
			out = append(out, k)
		}
	}
	return out
}

// someDueBy reports whether the index holds a deadline at or before t.
func (p *pipeline) someDueBy(t int64) bool {
	if !p.anyDueKnown || p.anyDueAt != t {
		p.anyDue, p.anyDueAt, p.anyDueKnown = p.st.index.dueBy(t), t, true
	}
	return p.anyDue
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
		flags := p.st.notifyFlags
		if flags != "" {
			args = append(args, []byte(flags), []byte(strconv.Itoa(db)))
			p.send(db, [][]byte{[]byte("CONFIG"), []byte("SET"), []byte("notify-keyspace-events"), nil}, nil)
		}
		p.send(db, args, func(raw []byte) {
			items, err := resp.ArrayItems(raw)
			if err != nil || len(items) != len(ks) {
				p.st.fatal(fmt.Errorf("unexpected expiry check reply %q", raw))
			}
			wanted := p.st.touched.wanted != nil && p.st.touched.wanted()
			for i, it := range items {
				at, _ := resp.ReplyInt(it)
				p.st.index.set(ks[i], unshift(at))
				if at == -2 && wanted {
					p.touchedKeys = append(p.touchedKeys, ks[i]) // deleted by expiry
				}
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
		p.st.fatal(err)
	}
	if err := p.st.loadNotifyFlags(); err != nil {
		p.st.fatal(err)
	}
}

// refreshThreshold reads busy-reply-threshold after a change, synchronously.
func (p *pipeline) refreshThreshold() {
	if err := p.run(); err != nil {
		p.st.fatal(err)
	}
	if err := p.st.loadThreshold(); err != nil {
		p.st.fatal(err)
	}
}

// run flushes the queued commands and runs every reply handler in order.
// While it waits for a user script's reply, the script is published as
// running (for the watchdog), and the gate keeps local read-only scripts
// out of the child.
func (p *pipeline) run() error {
	if len(p.handlers) == 0 {
		return nil
	}
	if p.hasScripts() {
		p.st.stops.gate.Lock()
		defer p.st.stops.gate.Unlock()
	}
	p.useProto(resp.Proto2) // between batches the connection answers in RESP2
	if err := p.st.conn.Flush(); err != nil {
		return err
	}
	for _, h := range p.handlers {
		if h.local != nil {
			h.local()
			continue
		}
		if h.script != nil {
			p.st.stops.setRunning(h.script.ref, h.script.function)
		}
		raw, err := p.st.conn.ReadReply()
		if err != nil {
			return err
		}
		if h.script != nil {
			p.st.stops.clearRunning()
			raw = p.scriptReply(h.script, raw)
		}
		if h.fn != nil {
			h.fn(raw)
		}
	}
	p.handlers = p.handlers[:0]
	clear(p.unknown)
	if len(p.goneGroups) > 0 { // before the wake-ups, which they explain
		if p.st.touched.groupsGone != nil {
			p.st.touched.groupsGone(p.goneGroups)
		}
		p.goneGroups = nil
	}
	if len(p.touchedKeys) > 0 {
		p.st.touched.report(p.touchedKeys)
		p.touchedKeys = nil
	}
	return nil
}

// hasScripts reports whether a queued command runs a user script.
func (p *pipeline) hasScripts() bool {
	for _, h := range p.handlers {
		if h.script != nil {
			return true
		}
	}
	return false
}

// scriptReply notes a script killed in the child and answers for one the
// log stopped.
func (p *pipeline) scriptReply(sc *runningScript, raw []byte) []byte {
	if !isKillReply(raw) {
		return raw
	}
	p.st.outcomes.killed(sc.ref)
	if reason := p.st.stops.voidedReason(sc.ref); reason == stopAuto {
		return p.st.stops.stopReply(reason, sc.function)
	}
	return raw
}

// addCommand queues one command of an entry: internal WATCH commands are
// applied at once, everything else is planned (rewrite.go) and queued.
func (p *pipeline) addCommand(c *entryCmd, t int64, ref scriptRef, out *[]byte) {
	if isWatchCommand(c) {
		p.addWatchCommand(c, t, out)
		return
	}
	st := planCommand(p.st.tbl, c, t, ref.Index<<12+uint64(ref.Pos), p.st.scripts.get)
	st.ref = ref
	if st.userScript {
		if reason := p.st.stops.voidedReason(ref); reason != 0 {
			*out = p.st.stops.stopReply(reason, st.function)
			return
		}
	}
	p.addStep(&st, t, out)
}

// addWatchCommand applies an internal WATCH or UNWATCH at a sync point, so
// the watch's side connection sees exactly the log before it.
func (p *pipeline) addWatchCommand(c *entryCmd, t int64, out *[]byte) {
	if err := p.run(); err != nil {
		p.st.fatal(err)
	}
	id := string(c.Args[1])
	if string(c.Args[0]) == cmdUnwatch {
		p.st.watches.drop(id)
		*out = resp.OK
		return
	}
	keys := make([]dbKey, 0, len(c.Args)-2)
	for _, k := range c.Args[2:] {
		keys = append(keys, dbKey{c.DB, string(k)})
	}
	if err := p.st.watches.add(id, keys, t); err != nil {
		p.st.fatal(err)
	}
	*out = resp.OK
}

// addWatchedTransaction runs a transaction on its watch's side connection;
// EXEC answers nil when a watched key changed (or the watch is unknown).
func (p *pipeline) addWatchedTransaction(st *applyStep, id string, out *[]byte) {
	if err := p.run(); err != nil {
		p.st.fatal(err)
	}
	w := p.st.watches.take(id)
	if w == nil || w.dirty {
		if w != nil {
			w.conn.Close()
		}
		*out = resp.NullArrayIn(st.proto) // EXEC aborted by WATCH
		return
	}
	defer w.conn.Close()
	p.rememberScripts(st.sub)
	var sc *runningScript
	if st.userScript {
		sc = &runningScript{ref: st.ref, function: st.function}
		p.st.outcomes.started(st.ref)
		p.st.stops.gate.Lock()
		p.st.stops.setRunning(st.ref, st.function)
	}
	raw, err := w.exec(st)
	if sc != nil {
		p.st.stops.clearRunning()
		p.st.stops.gate.Unlock()
	}
	if err != nil {
		p.st.fatal(err)
	}
	if sc != nil {
		raw = p.scriptReply(sc, raw)
	}
	*out = p.finishExec(st, raw)
	p.afterTransaction(st)
}

// addPreludeToLibraries gives every loaded library without the prelude one
// (after FUNCTION RESTORE). It runs synchronously in the apply path.
func (p *pipeline) addPreludeToLibraries() {
	if err := p.run(); err != nil {
		p.st.fatal(err)
	}
	if err := addLibraryPreludes(p.st.conn); err != nil {
		p.st.fatal(err)
	}
}

// useProto makes the apply connection answer in proto from the next queued
// command on, with a HELLO whose reply is dropped, only when it answers in
// another protocol now.
func (p *pipeline) useProto(proto resp.Proto) {
	want, cur := protoOf(proto), p.st.connProto
	if cur == 0 {
		cur = resp.Proto2 // a new connection
	}
	if cur == want {
		return
	}
	p.st.conn.Send(helloArgs(want))
	p.handlers = append(p.handlers, replyHandler{})
	p.st.connProto = want
}
