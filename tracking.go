package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redraft/redraft/internal/command"
	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// Client-side caching (docs/DESIGN.md, "Client-side caching"). The child
// never sees which client read a key: reads come from pooled connections,
// writes from the apply connection. So the front end keeps Redis's
// tracking table itself, and learns of every change from the child: one
// internal connection, in RESP3 with CLIENT TRACKING on BCAST, receives an
// invalidation for every key the child changes (writes from the log, the
// conditional deletes of expiry, transactions on WATCH connections) and a
// null one for FLUSHDB, FLUSHALL and snapshot restores. Every node applies
// every write, so every node invalidates its own clients, when it applies
// the change.
//
// As in Redis, a client in the default mode is remembered for the keys of
// every read-only command it runs (subject to OPTIN, OPTOUT and CLIENT
// CACHING) and forgotten for a key once invalidated; a BCAST client gets
// the changed keys under its prefixes; NOLOOP drops what the client's own
// writes changed (here: the keys its write commands name); REDIRECT sends
// invalidations to another connection, as pushes in RESP3 or as messages on
// __redis__:invalidate to a RESP2 subscriber.

// invalidateChannel is where a RESP2 redirect target receives invalidations.
const invalidateChannel = "__redis__:invalidate"

// clientTracking is one connection's CLIENT TRACKING state. The
// connection's goroutine changes it; the tracker reads it, under mu.
type clientTracking struct {
	mu       sync.Mutex
	on       bool
	bcast    bool
	optin    bool
	optout   bool
	noloop   bool
	caching  bool     // CLIENT CACHING given for the next command
	redirect int64    // 0: none
	broken   bool     // the redirect target has gone
	prefixes []string // BCAST, sorted
	// active is on, readable without mu (the check every command pays).
	active atomic.Bool
}

// trackingView is a copy of a connection's tracking state.
type trackingView struct {
	on, bcast, optin, optout, noloop, caching, broken bool
	redirect                                          int64
	prefixes                                          []string
}

// view copies the state under its lock.
func (t *clientTracking) view() trackingView {
	t.mu.Lock()
	defer t.mu.Unlock()
	return trackingView{on: t.on, bcast: t.bcast, optin: t.optin, optout: t.optout, noloop: t.noloop,
		caching: t.caching, broken: t.broken, redirect: t.redirect, prefixes: t.prefixes}
}

// remembers reports whether a read now puts its keys in the table: in the
// default mode, unless OPTIN without CLIENT CACHING yes or OPTOUT after
// CLIENT CACHING no.
func (v trackingView) remembers() bool {
	return v.on && !v.bcast && !((v.optin && !v.caching) || (v.optout && v.caching))
}

// tracker is the front end's tracking table and its connection to the
// child.
type tracker struct {
	clients *clientRegistry
	dial    func() (*redisconn.Conn, error)
	log     *slog.Logger

	mu    sync.Mutex
	keys  map[string]map[int64]struct{} // default mode: who may cache each key
	bcast map[int64]*clientConn         // clients in BCAST mode
	own   map[int64]map[string]int      // NOLOOP: keys the client's writes in flight name
	// maxKeys bounds keys (trackingMaxKeys).
	maxKeys int
	count   atomic.Int64 // clients with tracking on (INFO)

	startOnce sync.Once
	ready     chan struct{}   // closed once the first connection tracks
	stop      <-chan struct{} // closed when the node shuts down
	sendMu    sync.Mutex      // the connection's writes and the barrier queue
	conn      *redisconn.Conn
	waiters   []chan struct{}
}

// newTracker tracks for the clients of registry, on connections from dial.
func newTracker(clients *clientRegistry, dial func() (*redisconn.Conn, error), log *slog.Logger) *tracker {
	return &tracker{
		clients: clients, dial: dial, log: log,
		keys: make(map[string]map[int64]struct{}), bcast: make(map[int64]*clientConn),
		own: make(map[int64]map[string]int), ready: make(chan struct{}), maxKeys: trackingMaxKeys,
	}
}

// start connects to the child on first use and waits until changes are
// reported (so a client that turns tracking on misses none), for up to
// requestTimeout.
func (t *tracker) start() error {
	t.startOnce.Do(func() { go t.run() })
	select {
	case <-t.ready:
		return nil
	case <-time.After(requestTimeout):
		return fmt.Errorf("%w: tracking connection not ready", errChild)
	}
}

// stopWith makes run return once stop is closed (the node shuts down).
func (t *tracker) stopWith(stop <-chan struct{}) { t.stop = stop }

// run keeps the tracking connection open and dispatches what it reports,
// until the node stops. A lost connection may have missed changes: every
// tracking client is told to drop everything at once, and again when a
// new connection tracks (for whatever it read in between). A connection
// that cannot be opened is retried every 100 ms.
func (t *tracker) run() {
	first := true
	for {
		err := t.session(&first)
		t.log.Debug("tracking connection to redis-server", "err", err)
		t.releaseWaiters()
		t.invalidateAll()
		select {
		case <-t.stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// session opens one tracking connection and reads from it until it fails.
func (t *tracker) session(first *bool) error {
	c, err := t.dial()
	if err != nil {
		return fmt.Errorf("tracking connection: %w", err)
	}
	defer c.Close()
	if t.stop != nil {
		ended := make(chan struct{})
		defer close(ended)
		go func() {
			select {
			case <-t.stop:
				c.Close()
			case <-ended:
			}
		}()
	}
	for _, args := range [][]string{{"HELLO", "3"}, {"CLIENT", "TRACKING", "on", "BCAST"}} {
		raw, err := c.Do(args...)
		if err != nil {
			return fmt.Errorf("tracking connection: %w", err)
		}
		if resp.ReplyIsError(raw) {
			return fmt.Errorf("tracking connection: %s: %q", strings.Join(args, " "), raw)
		}
	}
	t.sendMu.Lock()
	t.conn = c
	t.sendMu.Unlock()
	defer func() {
		t.sendMu.Lock()
		t.conn = nil
		t.sendMu.Unlock()
	}()
	if *first {
		*first = false
		close(t.ready)
	} else {
		t.invalidateAll() // what clients read while no connection tracked
	}
	for {
		raw, err := c.ReadReply()
		if err != nil {
			return fmt.Errorf("tracking connection: %w", err)
		}
		if len(raw) > 0 && raw[0] == '>' {
			t.dispatch(raw)
			continue
		}
		t.passBarrier()
	}
}

// dispatch handles one push from the child: an invalidation of keys, or a
// null one (everything).
func (t *tracker) dispatch(raw []byte) {
	items, err := resp.ArrayItems(raw)
	if err != nil || len(items) != 2 {
		return
	}
	if kind, _ := resp.ReplyString(items[0]); kind != "invalidate" {
		return
	}
	if resp.ReplyIsNull(items[1]) {
		t.invalidateAll()
		return
	}
	list, err := resp.ArrayItems(items[1])
	if err != nil {
		return
	}
	keys := make([]string, 0, len(list))
	for _, it := range list {
		if k, ok := resp.ReplyString(it); ok {
			keys = append(keys, k)
		}
	}
	t.invalidate(keys)
}

// barrier waits until the tracker has dispatched everything the child
// reported before now: after a client's own write was applied here, its
// invalidations are then held for it (push.go), after the write's reply.
func (t *tracker) barrier() {
	t.sendMu.Lock()
	if t.conn == nil {
		t.sendMu.Unlock()
		return
	}
	ch := make(chan struct{})
	t.waiters = append(t.waiters, ch)
	t.conn.SendStrings("PING")
	err := t.conn.Flush()
	t.sendMu.Unlock()
	if err != nil {
		return
	}
	select {
	case <-ch:
	case <-time.After(requestTimeout):
	}
}

// passBarrier releases the oldest barrier (its PING was answered).
func (t *tracker) passBarrier() {
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	if len(t.waiters) > 0 {
		close(t.waiters[0])
		t.waiters = t.waiters[1:]
	}
}

// releaseWaiters releases every barrier (the connection is gone).
func (t *tracker) releaseWaiters() {
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	for _, ch := range t.waiters {
		close(ch)
	}
	t.waiters = nil
}

// invalidate tells the clients that may cache keys that they changed:
// default-mode clients remembered for a key (which are then forgotten for
// it), and BCAST clients whose prefixes match, one message per prefix.
func (t *tracker) invalidate(keys []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		t.invalidateKey(k, true)
	}
	for id, cl := range t.bcast {
		v := cl.track.view()
		if !v.on || !v.bcast {
			continue
		}
		for _, prefix := range v.prefixes {
			var match []string
			for _, k := range keys {
				if strings.HasPrefix(k, prefix) && !(v.noloop && t.own[id][k] > 0) {
					match = append(match, k)
				}
			}
			if len(match) > 0 {
				t.send(cl, v, match)
			}
		}
	}
}

// invalidateKey tells the default-mode clients remembered for k that it
// changed and forgets them for it; with noloop, a NOLOOP client whose own
// write changed k is skipped. The caller holds t.mu.
func (t *tracker) invalidateKey(k string, noloop bool) {
	ids := t.keys[k]
	delete(t.keys, k)
	for id := range ids {
		cl := t.clients.get(id)
		if cl == nil {
			continue
		}
		v := cl.track.view()
		if !v.on || v.bcast || (noloop && v.noloop && t.own[id][k] > 0) {
			continue
		}
		t.send(cl, v, []string{k})
	}
}

// trackingMaxKeys bounds the tracking table, as Redis's default
// tracking-table-max-keys does: past it, keys are dropped from the table
// and their clients told to drop them too.
const trackingMaxKeys = 1_000_000

// invalidateAll tells every tracking client to drop everything and empties
// the table, as Redis does on FLUSHDB and FLUSHALL.
func (t *tracker) invalidateAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.keys)
	t.clients.forEach(func(cl *clientConn) {
		if v := cl.track.view(); v.on {
			t.send(cl, v, nil)
		}
	})
}

// send delivers one invalidation of keys (nil: all) for cl, whose state is
// v: to cl itself or to its redirect target, as Redis's sendTrackingMessage
// does. The caller holds t.mu.
func (t *tracker) send(cl *clientConn, v trackingView, keys []string) {
	to := cl
	if v.redirect != 0 {
		to = t.clients.get(v.redirect)
		if to == nil {
			cl.track.mu.Lock()
			cl.track.broken = true
			cl.track.mu.Unlock()
			if cl.protocol() == resp.Proto3 {
				msg := resp.AppendPush(nil, resp.Proto3, 2)
				msg = resp.AppendBulkString(msg, "tracking-redir-broken")
				cl.deliver(resp.AppendInt(msg, v.redirect), true)
			}
			return
		}
	}
	var payload []byte
	if keys == nil {
		payload = resp.NullBulkIn(cl.protocol()) // the tracking client's null, as in Redis
	} else {
		payload = resp.AppendArray(nil, len(keys))
		for _, k := range keys {
			payload = resp.AppendBulkString(payload, k)
		}
	}
	switch {
	case to.protocol() == resp.Proto3:
		msg := resp.AppendPush(nil, resp.Proto3, 2)
		msg = resp.AppendBulkString(msg, "invalidate")
		to.deliver(append(msg, payload...), true)
	case to != cl && to.subscribed.Load():
		msg := resp.AppendArray(nil, 3)
		msg = resp.AppendBulkString(msg, "message")
		msg = resp.AppendBulkString(msg, invalidateChannel)
		to.enqueue(append(msg, payload...))
	}
	// Otherwise RESP2 without a subscribed redirect target: nothing can be
	// sent, as in Redis.
}

// remember records that cl may cache keys (default mode).
func (t *tracker) remember(cl *clientConn, keys [][]byte) {
	if len(keys) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		ids := t.keys[string(k)]
		if ids == nil {
			ids = make(map[int64]struct{})
			t.keys[string(k)] = ids
		}
		ids[cl.id] = struct{}{}
	}
	for k := range t.keys { // Go's map order: any keys, as Redis picks at random
		if len(t.keys) <= t.maxKeys {
			break
		}
		t.invalidateKey(k, false)
	}
}

// markOwn records keys a NOLOOP client's write in flight names; unmarkOwn
// drops them once the write's invalidations have been dispatched.
func (t *tracker) markOwn(id int64, keys []string, add int) {
	if len(keys) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.own[id]
	if m == nil {
		m = make(map[string]int)
		t.own[id] = m
	}
	for _, k := range keys {
		if m[k] += add; m[k] <= 0 {
			delete(m, k)
		}
	}
	if len(m) == 0 {
		delete(t.own, id)
	}
}

// enable turns tracking on for cl with the options of CLIENT TRACKING on,
// as Redis's enableTracking: flags are replaced, prefixes added.
func (t *tracker) enable(cl *clientConn, o trackingOptions) {
	st := &cl.track
	st.mu.Lock()
	if !st.on {
		t.count.Add(1)
	}
	st.on, st.bcast, st.optin, st.optout, st.noloop = true, o.bcast, o.optin, o.optout, o.noloop
	st.broken, st.redirect = false, o.redirect
	if o.bcast {
		if len(o.prefixes) == 0 {
			o.prefixes = []string{""}
		}
		for _, p := range o.prefixes {
			if !slices.Contains(st.prefixes, p) {
				st.prefixes = append(st.prefixes, p)
			}
		}
		slices.Sort(st.prefixes)
	}
	st.active.Store(true)
	st.mu.Unlock()
	t.mu.Lock()
	if o.bcast {
		t.bcast[cl.id] = cl
	}
	t.mu.Unlock()
}

// disable turns tracking off for cl (CLIENT TRACKING off, RESET, a
// departing client). Keys it was remembered for are forgotten lazily, as
// in Redis: an invalidation skips a client that no longer tracks.
func (t *tracker) disable(cl *clientConn) {
	st := &cl.track
	st.mu.Lock()
	if st.on {
		t.count.Add(-1)
	}
	st.on, st.bcast, st.optin, st.optout, st.noloop, st.caching, st.broken = false, false, false, false, false, false, false
	st.redirect, st.prefixes = 0, nil
	st.active.Store(false)
	st.mu.Unlock()
	t.mu.Lock()
	delete(t.bcast, cl.id)
	delete(t.own, cl.id)
	t.mu.Unlock()
}

// trackingOptions are CLIENT TRACKING on's options.
type trackingOptions struct {
	redirect                     int64
	bcast, optin, optout, noloop bool
	prefixes                     []string
}

// clientTrackingCommand answers CLIENT TRACKING on|off [REDIRECT id]
// [PREFIX p]... [BCAST] [OPTIN] [OPTOUT] [NOLOOP], checking in Redis 7.0's
// order.
func (s *frontEnd) clientTrackingCommand(cl *clientConn, args [][]byte) []byte {
	var o trackingOptions
	for j := 3; j < len(args); j++ {
		more := len(args) - 1 - j
		switch opt := strings.ToLower(string(args[j])); {
		case opt == "redirect" && more > 0:
			j++
			if o.redirect != 0 {
				return resp.Error("ERR A client can only redirect to a single other client")
			}
			id, ok := command.ParseInt(args[j])
			if !ok {
				return resp.Error("ERR value is not an integer or out of range")
			}
			if s.clients.get(id) == nil {
				return resp.Error("ERR The client ID you want redirect to does not exist")
			}
			o.redirect = id
		case opt == "bcast":
			o.bcast = true
		case opt == "optin":
			o.optin = true
		case opt == "optout":
			o.optout = true
		case opt == "noloop":
			o.noloop = true
		case opt == "prefix" && more > 0:
			j++
			o.prefixes = append(o.prefixes, string(args[j]))
		default:
			return resp.Error("ERR syntax error")
		}
	}
	switch strings.ToLower(string(args[2])) {
	case "on":
		if bad := trackingRefusal(cl.track.view(), o); bad != nil {
			return bad
		}
		if err := s.tracker.start(); err != nil {
			return errorReply(err)
		}
		s.tracker.enable(cl, o)
	case "off":
		s.tracker.disable(cl)
	default:
		return resp.Error("ERR syntax error")
	}
	return resp.OK
}

// trackingRefusal is Redis's error for options that cannot be turned on
// from state v, or nil.
func trackingRefusal(v trackingView, o trackingOptions) []byte {
	switch {
	case !o.bcast && len(o.prefixes) > 0:
		return resp.Error("ERR PREFIX option requires BCAST mode to be enabled")
	case v.on && v.bcast != o.bcast:
		return resp.Error("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.")
	case o.bcast && (o.optin || o.optout):
		return resp.Error("ERR OPTIN and OPTOUT are not compatible with BCAST")
	case o.optin && o.optout:
		return resp.Error("ERR You can't specify both OPTIN mode and OPTOUT mode")
	case (o.optin && v.optout) || (o.optout && v.optin):
		return resp.Error("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.")
	case o.bcast:
		return prefixOverlap(v.prefixes, o.prefixes)
	}
	return nil
}

// prefixOverlap is Redis's error when a new prefix overlaps one the client
// has or another new one, or nil. (Redis 7.0 answers an overlap between two
// new prefixes, other than the first with a later one, with the error and
// then +OK, enabling them anyway; redraft answers the error alone.)
func prefixOverlap(have, add []string) []byte {
	overlap := func(a, b string) bool { return strings.HasPrefix(a, b) || strings.HasPrefix(b, a) }
	for i, p := range add {
		for _, h := range have {
			if overlap(h, p) {
				return resp.Error(fmt.Sprintf("ERR Prefix '%s' overlaps with an existing prefix '%s'. Prefixes for a single client must not overlap.", p, h))
			}
		}
		for _, q := range add[i+1:] {
			if overlap(p, q) {
				return resp.Error(fmt.Sprintf("ERR Prefix '%s' overlaps with another provided prefix '%s'. Prefixes for a single client must not overlap.", p, q))
			}
		}
	}
	return nil
}

// clientCaching answers CLIENT CACHING yes|no.
func (s *frontEnd) clientCaching(cl *clientConn, args [][]byte) []byte {
	st := &cl.track
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.on {
		return resp.Error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled")
	}
	switch strings.ToLower(string(args[2])) {
	case "yes":
		if !st.optin {
			return resp.Error("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
		}
	case "no":
		if !st.optout {
			return resp.Error("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
		}
	default:
		return resp.Error("ERR syntax error")
	}
	st.caching = true
	return resp.OK
}

// clientGetRedir answers CLIENT GETREDIR: the redirect target, 0 for none,
// -1 when tracking is off.
func clientGetRedir(cl *clientConn) []byte {
	v := cl.track.view()
	if !v.on {
		return resp.Integer(-1)
	}
	return resp.Integer(v.redirect)
}

// clientTrackingInfo answers CLIENT TRACKINGINFO in the client's protocol.
func clientTrackingInfo(cl *clientConn) []byte {
	v := cl.track.view()
	p := cl.protocol()
	flags := []string{"off"}
	if v.on {
		flags[0] = "on"
	}
	if v.bcast {
		flags = append(flags, "bcast")
	}
	if v.optin {
		flags = append(flags, "optin")
		if v.caching {
			flags = append(flags, "caching-yes")
		}
	}
	if v.optout {
		flags = append(flags, "optout")
		if v.caching {
			flags = append(flags, "caching-no")
		}
	}
	if v.noloop {
		flags = append(flags, "noloop")
	}
	if v.broken {
		flags = append(flags, "broken_redirect")
	}
	out := resp.AppendMap(nil, p, 3)
	out = resp.AppendBulkString(out, "flags")
	out = resp.AppendSet(out, p, len(flags))
	for _, f := range flags {
		out = resp.AppendBulkString(out, f)
	}
	out = resp.AppendBulkString(out, "redirect")
	redirect := int64(-1)
	if v.on {
		redirect = v.redirect
	}
	out = resp.AppendInt(out, redirect)
	out = resp.AppendBulkString(out, "prefixes")
	out = resp.AppendArray(out, len(v.prefixes))
	for _, pre := range v.prefixes {
		out = resp.AppendBulkString(out, pre)
	}
	return out
}

// trackingFlags are CLIENT LIST's tracking flags: t, R (broken redirect),
// B (BCAST); and the redir field (-1 when tracking is off).
func (v trackingView) listFields() (flags string, redir int64) {
	if !v.on {
		return "", -1
	}
	flags = "t"
	if v.broken {
		flags += "R"
	}
	if v.bcast {
		flags += "B"
	}
	return flags, v.redirect
}

// noteCommand runs before each command of a tracking client, in order: it
// remembers the keys a read-only command is about to read (Redis remembers
// them after the command; before is what keeps the order safe here, see
// push.go) and ends the effect of CLIENT CACHING after any command but
// CLIENT, or one queued in MULTI, as Redis does.
func (s *frontEnd) noteCommand(cl *clientConn, ci *commandInfo, args [][]byte) {
	if ci != nil && (ci.Name == "client" || strings.HasPrefix(ci.Name, "client|")) {
		return
	}
	if cl.tx != nil && (ci == nil || (ci.Name != "exec" && ci.Name != "discard")) {
		return // queued (or refused) inside MULTI: CLIENT CACHING holds until EXEC
	}
	if ci != nil && ci.Name == "multi" {
		return
	}
	v := cl.track.view()
	if v.remembers() {
		switch {
		case ci != nil && ci.Name == "exec" && cl.tx != nil && !cl.tx.dirty:
			for _, c := range cl.tx.queue {
				s.tracker.remember(cl, s.readKeys(c.Args))
			}
		case ci != nil:
			s.tracker.remember(cl, s.readKeys(args))
		}
	}
	if v.caching {
		cl.track.mu.Lock()
		cl.track.caching = false
		cl.track.mu.Unlock()
	}
}

// readKeys are the keys Redis remembers for a command a tracking client
// runs: those of a read-only command, and a script's declared keys (Redis
// 7.0 remembers those when the script runs a read-only command).
func (s *frontEnd) readKeys(args [][]byte) [][]byte {
	ci := s.cmds.lookup(args)
	if ci == nil {
		return nil
	}
	switch ci.Name {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		return command.NumKeysAt(args, 2)
	}
	if !ci.ReadOnly {
		return nil
	}
	return command.Keys(ci.Info, args)
}

// noWait is what ownWrite returns when there is nothing to wait for.
func noWait() {}

// ownWrite prepares a write cl proposes here and returns what to do once
// this node has applied it: for a RESP3 subscriber, wait for the messages
// it published; for a tracking client, wait for the invalidations it
// caused (and, with NOLOOP, stop ignoring the keys its commands name).
// Both then come out around the write's replies as in Redis (push.go).
func (s *frontEnd) ownWrite(cl *clientConn, cmds []entryCmd) func() {
	tracking := cl.track.active.Load()
	sub3 := cl.sub != nil && cl.sub.resp3.Load()
	if !tracking && !sub3 {
		return noWait
	}
	var keys []string
	if tracking && cl.track.view().noloop {
		keys = s.writeKeys(cmds)
		s.tracker.markOwn(cl.id, keys, 1)
	}
	return func() {
		if sub3 {
			cl.settleSubscription()
		}
		if tracking {
			s.tracker.barrier()
			s.tracker.markOwn(cl.id, keys, -1)
		}
	}
}

// relayedWrite is ownWrite for commands a follower relays to the leader
// (--follower-proxy): the leader's reply comes once the leader has applied
// them, so this node first catches up with the leader's applied index
// (asked on the client's relay connection), then waits as ownWrite does.
func (s *frontEnd) relayedWrite(ctx context.Context, cl *clientConn, args [][][]byte) func() {
	if !cl.track.active.Load() && (cl.sub == nil || !cl.sub.resp3.Load()) {
		return noWait
	}
	cmds := make([]entryCmd, len(args))
	for i, a := range args {
		cmds[i] = entryCmd{Args: a}
	}
	done := s.ownWrite(cl, cmds)
	return func() {
		if idx, ok := s.relay.appliedOnLeader(cl); ok {
			wctx, cancel := context.WithTimeout(ctx, requestTimeout)
			_ = s.fsm.waitApplied(wctx, idx) // on a timeout the pushes come late, not never
			cancel()
		}
		done()
	}
}

// writeKeys are the keys write commands name (a transaction's queued
// commands included).
func (s *frontEnd) writeKeys(cmds []entryCmd) []string {
	var out []string
	for _, c := range cmds {
		for _, k := range s.keysOf(c.Args) {
			out = append(out, string(k))
		}
		out = append(out, s.writeKeys(c.Sub)...)
	}
	return out
}

// keysOf are the keys a command names.
func (s *frontEnd) keysOf(args [][]byte) [][]byte {
	ci := s.cmds.lookup(args)
	if ci == nil {
		return nil
	}
	switch ci.Name {
	case "eval", "evalsha", "fcall":
		return command.NumKeysAt(args, 2)
	}
	return command.Keys(ci.Info, args)
}

// trackingStats are INFO's tracking lines for redraft's own table (the
// child's describe redraft's internal connection).
func (t *tracker) stats() (keys, items, prefixes int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := map[string]bool{}
	for _, ids := range t.keys {
		items += len(ids)
	}
	for _, cl := range t.bcast {
		for _, p := range cl.track.view().prefixes {
			seen[p] = true
		}
	}
	return len(t.keys), items, len(seen)
}

// trackingInfoLines puts the tracking table's size into INFO's Stats
// section in place of the child's figures (which describe redraft's own
// tracking connection).
func (s *frontEnd) trackingInfoLines(text string) string {
	if !strings.Contains(text, "tracking_total_keys:") {
		return text
	}
	keys, items, prefixes := s.tracker.stats()
	lines := strings.Split(text, "\r\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "tracking_total_keys:"):
			lines[i] = fmt.Sprintf("tracking_total_keys:%d", keys)
		case strings.HasPrefix(l, "tracking_total_items:"):
			lines[i] = fmt.Sprintf("tracking_total_items:%d", items)
		case strings.HasPrefix(l, "tracking_total_prefixes:"):
			lines[i] = fmt.Sprintf("tracking_total_prefixes:%d", prefixes)
		}
	}
	return strings.Join(lines, "\r\n")
}
