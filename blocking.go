package main

import (
	"context"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redraft/redraft/internal/command"
	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// Blocking commands never block the state machine. The client waits in the
// proxy; the proxy proposes the command's non-blocking form through the log
// (or reads, for XREAD) when it arrives and again each time a write touches
// one of its keys, until it gets a value, times out, or the node stops
// leading. Waiters on a key are woken in arrival order.

// blocker serves blocking calls: each waits here, trying the call's
// non-blocking form through the log (or as a read) whenever a write touches
// one of its keys.
type blocker struct {
	proposer *proposer
	reads    *readPath
	node     *raftNode
	waiters  *waiterSet
	cluster  *clusterMode // --cluster-mode: how a redirect is answered; nil when off
	// ownWrite is the front end's (tracking.go): pushes a client's own
	// write causes come out around its reply.
	ownWrite func(cl *clientConn, cmds []entryCmd) func()
}

// blockingPlan is a blocking call turned into its non-blocking form.
type blockingPlan struct {
	nb      [][]byte      // the non-blocking command
	read    bool          // nb is a read (XREAD), not a write
	keys    []dbKey       // keys whose writes wake the waiter
	timeout time.Duration // 0 waits forever
	nilBulk bool          // the reply on timeout is a null bulk (else a null array)
	// group is XREADGROUP's group ("" for other commands): the waiter is
	// unblocked with an error when its stream or group goes.
	group string
}

// planPop plans BLPOP, BRPOP, BZPOPMIN and BZPOPMAX: a script pops from the
// first non-empty key.
func planPop(_ *blocker, _ context.Context, db int, args [][]byte) (*blockingPlan, []byte) {
	p := &blockingPlan{}
	var err []byte
	p.timeout, err = parseTimeout(args[len(args)-1])
	keys := args[1 : len(args)-1]
	p.keys = dbKeysOf(db, keys)
	op := map[string]string{"blpop": "LPOP", "brpop": "RPOP", "bzpopmin": "ZPOPMIN", "bzpopmax": "ZPOPMAX"}[command.Lower(args[0])]
	p.nb = append([][]byte{[]byte(cmdPop), []byte(op)}, keys...)
	return p, err
}

// planMove plans BRPOPLPUSH and BLMOVE as RPOPLPUSH and LMOVE.
func planMove(_ *blocker, _ context.Context, db int, args [][]byte) (*blockingPlan, []byte) {
	p := &blockingPlan{nilBulk: true, keys: dbKeysOf(db, args[1:3])}
	var err []byte
	if command.Lower(args[0]) == "brpoplpush" {
		p.timeout, err = parseTimeout(args[3])
		p.nb = [][]byte{[]byte("RPOPLPUSH"), args[1], args[2]}
	} else {
		p.timeout, err = parseTimeout(args[5])
		p.nb = [][]byte{[]byte("LMOVE"), args[1], args[2], args[3], args[4]}
	}
	return p, err
}

// planMPop plans BLMPOP and BZMPOP as LMPOP and ZMPOP.
func planMPop(_ *blocker, _ context.Context, db int, args [][]byte) (*blockingPlan, []byte) {
	p := &blockingPlan{keys: dbKeysOf(db, command.NumKeysAt(args, 2))}
	var err []byte
	p.timeout, err = parseTimeout(args[1])
	p.nb = append([][]byte{[]byte(strings.TrimPrefix(strings.ToUpper(command.Lower(args[0])), "B"))}, args[2:]...)
	return p, err
}

// planXRead drops BLOCK from XREAD/XREADGROUP and pins "$" to the stream's
// current last ID.
func (b *blocker) planXRead(ctx context.Context, db int, args [][]byte) (*blockingPlan, []byte) {
	name := command.Lower(args[0])
	p := &blockingPlan{read: name == "xread"}
	if name == "xreadgroup" && len(args) > 2 && optionIs(args[1], "group") {
		p.group = string(args[2]) // otherwise the child refuses the call at once
	}
	var nb [][]byte
	streamsAt := -1
	for i := 0; i < len(args); i++ {
		a := strings.ToLower(string(args[i]))
		if a == "block" && i+1 < len(args) && streamsAt < 0 {
			ms, ok := command.ParseInt(args[i+1])
			if !ok {
				return nil, resp.Error("ERR timeout is not an integer or out of range")
			}
			if ms < 0 {
				return nil, resp.Error("ERR timeout is negative")
			}
			p.timeout = time.Duration(ms) * time.Millisecond
			i++
			continue
		}
		if a == "streams" && streamsAt < 0 {
			streamsAt = len(nb)
		}
		nb = append(nb, args[i])
	}
	if streamsAt < 0 || (len(nb)-streamsAt-1)%2 != 0 {
		return nil, resp.Error("ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified.")
	}
	n := (len(nb) - streamsAt - 1) / 2
	keys, ids := nb[streamsAt+1:streamsAt+1+n], nb[streamsAt+1+n:]
	for i, k := range keys {
		p.keys = append(p.keys, dbKey{db, string(k)})
		if string(ids[i]) == "$" {
			ids[i] = []byte(b.lastStreamID(ctx, db, k))
		}
	}
	p.nb = nb
	return p, nil
}

// lastStreamID is a stream's last generated ID, "0-0" if it has none.
func (b *blocker) lastStreamID(ctx context.Context, db int, key []byte) string {
	raw := b.reads.local(ctx, db, [][]byte{[]byte("XINFO"), []byte("STREAM"), key})
	v, err := resp.Parse(raw)
	fields, ok := v.([]any)
	if err != nil || !ok {
		return "0-0"
	}
	for i := 0; i+1 < len(fields); i += 2 {
		if resp.AsString(fields[i]) == "last-generated-id" {
			return resp.AsString(fields[i+1])
		}
	}
	return "0-0"
}

// parseTimeout reads a blocking timeout in seconds (a float, as Redis 7).
func parseTimeout(arg []byte) (time.Duration, []byte) {
	f, err := strconv.ParseFloat(string(arg), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, resp.Error("ERR timeout is not a float or out of range")
	}
	if f < 0 {
		return 0, resp.Error("ERR timeout is negative")
	}
	return time.Duration(f * float64(time.Second)), nil
}

// serve serves one blocking call for cl: it waits until the
// non-blocking form gets a value, the timeout passes, the client leaves, or
// this node stops leading.
func (b *blocker) serve(cl *clientConn, ci *commandInfo, args [][]byte) []byte {
	gone, stop := cl.watchDeparture()
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-gone:
			cancel()
		case <-ctx.Done():
		}
	}()
	p, errReply := ci.block(b, ctx, cl.db, args)
	if errReply != nil {
		return errReply
	}
	w := b.waiters.add(p.keys, p.group)
	defer b.waiters.remove(w)
	var deadline <-chan time.Time
	cl.withTimeout.Store(p.timeout > 0)
	defer cl.withTimeout.Store(false)
	if p.timeout > 0 {
		t := time.NewTimer(p.timeout)
		defer t.Stop()
		deadline = t.C
	}
	check := time.NewTicker(100 * time.Millisecond)
	defer check.Stop()
	nilReply := resp.NullArrayIn(cl.protocol())
	if p.nilBulk {
		nilReply = resp.NullBulkIn(cl.protocol())
	}
	var blockedAt uint64 // the log index of the last attempt that found nothing
	for blocked := false; ; blocked = true {
		// Pushes wait while the command runs, not while it waits (push.go).
		cl.holdIfResp3()
		if blocked && p.group != "" && w.groupGoneAt.Load() > blockedAt {
			// Destroyed while the client was blocked, even if re-created
			// since: Redis unblocks the client at the destroy.
			return b.unblocked(ctx, cl.db, p)
		}
		reply, at, err := b.tryNonBlocking(ctx, cl, p)
		if err != nil {
			return b.cluster.errorReply(err, args)
		}
		if blocked && p.group != "" && resp.ReplyIsError(reply) {
			return b.unblocked(ctx, cl.db, p)
		}
		blockedAt = at
		if !resp.ReplyIsNull(reply) {
			if !resp.ReplyIsError(reply) {
				b.waiters.passOn(w) // more may be waiting on these keys
			}
			return reply
		}
		cl.blocked.Store(true) // from now on, as Redis counts it (INFO, CLIENT LIST)
		cl.releaseHeld()
		for woken := false; !woken; {
			select {
			case <-w.wake:
				woken = true
			case <-deadline:
				cl.holdIfResp3()
				return nilReply
			case <-ctx.Done():
				return nilReply
			case <-check.C:
				if !p.read || b.reads.forClient(cl).level != consistencyLow {
					if err := b.node.waitReady(ctx); err != nil {
						return b.cluster.errorReply(err, args)
					}
				}
			}
		}
	}
}

// unblocked is Redis's answer to a client blocked in XREADGROUP whose
// stream went away (deleted, flushed, swapped out, or replaced by another
// type) or whose group was destroyed.
func (b *blocker) unblocked(ctx context.Context, db int, p *blockingPlan) []byte {
	for _, k := range p.keys {
		raw := b.reads.local(ctx, db, [][]byte{[]byte("TYPE"), []byte(k.Key)})
		if t, _ := resp.ReplyString(raw); t != "stream" {
			return resp.Error("UNBLOCKED the stream key no longer exists")
		}
	}
	return resp.Error("NOGROUP the consumer group this client was blocked on no longer exists")
}

// tryNonBlocking runs the non-blocking form once; a write also returns its
// log index.
func (b *blocker) tryNonBlocking(ctx context.Context, cl *clientConn, p *blockingPlan) ([]byte, uint64, error) {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var replies [][]byte
	var at uint64
	var err error
	if p.read {
		replies, err = b.reads.forClient(cl).steps(rctx, cl.protocol(), cl.db, []redisconn.Step{{Args: p.nb}}, true)
	} else {
		cmds := []entryCmd{{DB: cl.db, Args: p.nb, Proto: cl.protocol()}}
		done := b.ownWrite(cl, cmds)
		replies, at, err = b.proposer.writeAt(rctx, cmds)
		done()
	}
	if err != nil {
		return nil, 0, err
	}
	return replies[0], at, nil
}

// waiter is one blocked client.
type waiter struct {
	keys  []dbKey
	group string // XREADGROUP's group ("" for other commands)
	wake  chan struct{}
	// groupGoneAt is the highest log index at which its group was
	// destroyed while it waited.
	groupGoneAt atomic.Uint64
}

// waiterSet queues blocked clients per key, in arrival order.
type waiterSet struct {
	mu    sync.Mutex
	byKey map[dbKey][]*waiter
	count int
}

func newWaiterSet() *waiterSet { return &waiterSet{byKey: make(map[dbKey][]*waiter)} }

func (ws *waiterSet) add(keys []dbKey, group string) *waiter {
	w := &waiter{keys: keys, group: group, wake: make(chan struct{}, 1)}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, k := range keys {
		ws.byKey[k] = append(ws.byKey[k], w)
	}
	ws.count++
	return w
}

func (ws *waiterSet) remove(w *waiter) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, k := range w.keys {
		q := ws.byKey[k]
		for i, x := range q {
			if x == w {
				q = append(q[:i:i], q[i+1:]...)
				break
			}
		}
		if len(q) == 0 {
			delete(ws.byKey, k)
		} else {
			ws.byKey[k] = q
		}
	}
	ws.count--
}

// active reports whether anyone waits (cheap check for the apply path).
func (ws *waiterSet) active() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.count > 0
}

// touched wakes the first waiter on each key.
func (ws *waiterSet) touched(keys []dbKey) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, k := range keys {
		if k.Key == anyKey {
			// SWAPDB: every key of the database may have changed.
			for wk, q := range ws.byKey {
				if wk.DB == k.DB && len(q) > 0 {
					wakeUp(q[0])
				}
			}
			continue
		}
		if q := ws.byKey[k]; len(q) > 0 {
			wakeUp(q[0])
		}
	}
}

// groupsGone records destroyed groups on the waiters blocked on them, and
// wakes those waiters.
func (ws *waiterSet) groupsGone(gone []goneGroup) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, g := range gone {
		for _, w := range ws.byKey[g.key] {
			if w.group != g.group {
				continue
			}
			if g.index > w.groupGoneAt.Load() { // written only here, under ws.mu
				w.groupGoneAt.Store(g.index)
			}
			wakeUp(w)
		}
	}
}

func wakeUp(w *waiter) {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// passOn wakes the next waiter on w's keys after w got its value.
func (ws *waiterSet) passOn(w *waiter) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, k := range w.keys {
		for _, x := range ws.byKey[k] {
			if x != w {
				select {
				case x.wake <- struct{}{}:
				default:
				}
				break
			}
		}
	}
}
