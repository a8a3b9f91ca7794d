package main

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/redraft/redraft/internal/resp"
)

// A connection writes its replies itself (client.go) until it gets a second
// source of output: a subscriber's pump (pubsub.go) or push messages (RESP3
// Pub/Sub messages, invalidations from tracking.go, RESP2 invalidations
// sent to a subscribed redirect target). From then on all of its output goes
// through one queue that a writer goroutine of its own writes in order, so
// that nothing waits on a slow client but that client.
//
// Pushes for a RESP3 client are held while it executes a batch and placed
// around the replies of the run they arrived during: Pub/Sub messages before
// them (a message published by the client's own PUBLISH comes before its
// reply, as in Redis), invalidations after (a key the client read and then
// wrote itself is invalidated after the write's reply, as in Redis 7.0).
// Holding invalidations until after a read's reply is also what keeps a
// client cache correct: an invalidation produced after the read in the
// child must never overtake the read's reply, or the client would cache
// the old value for good.

// errOutputClosed means the connection's writer has stopped.
var errOutputClosed = errors.New("connection closed")

// clientOutput is the queued output of one connection and the pushes held
// while it executes a batch.
type clientOutput struct {
	mu      sync.Mutex
	q       *outQueue                // under mu
	started atomic.Pointer[outQueue] // q, readable without mu once set
	busy    bool                     // a batch runs: pushes are held
	before  [][]byte                 // held messages: written before the next replies
	after   [][]byte                 // held invalidations: written after them
	holding atomic.Bool
}

// outputQueue returns the connection's queue, starting it (and its writer)
// on first use. o.mu must be held.
func (cl *clientConn) outputQueue() *outQueue {
	o := &cl.output
	if o.q == nil {
		o.q = newOutQueue()
		o.started.Store(o.q)
		go cl.writeQueue(o.q)
	}
	return o.q
}

// queue returns the connection's queue once it has one (nil before).
func (cl *clientConn) queue() *outQueue { return cl.output.started.Load() }

// enqueue writes raw after everything queued before it, without waiting
// (a subscriber's pump, RESP2 invalidation messages).
func (cl *clientConn) enqueue(raw []byte) {
	cl.output.mu.Lock()
	q := cl.outputQueue()
	cl.output.mu.Unlock()
	cl.queued.Add(int64(len(raw)))
	q.push(raw)
}

// deliver sends a RESP3 push: at once when the connection is idle, else
// held until the current run's replies (before them for a message, after
// them for an invalidation).
func (cl *clientConn) deliver(raw []byte, invalidation bool) {
	o := &cl.output
	o.mu.Lock()
	if o.busy {
		if invalidation {
			o.after = append(o.after, raw)
		} else {
			o.before = append(o.before, raw)
		}
		o.mu.Unlock()
		return
	}
	q := cl.outputQueue()
	o.mu.Unlock()
	cl.queued.Add(int64(len(raw)))
	q.push(raw)
}

// hold makes pushes wait for the replies of the batch that starts (RESP3
// connections only; a RESP2 connection gets no pushes of its own).
func (cl *clientConn) hold() {
	o := &cl.output
	o.mu.Lock()
	o.busy = true
	o.holding.Store(true)
	o.mu.Unlock()
}

// holdIfResp3 holds pushes for a RESP3 connection that starts a batch.
func (cl *clientConn) holdIfResp3() {
	if cl.proto.Load() >= int32(resp.Proto3) {
		cl.hold()
	}
}

// releaseHeld queues every held push (the batch ended, or the connection
// waits in a blocking command) and lets later ones through at once. The
// replies before them must have been flushed.
func (cl *clientConn) releaseHeld() {
	o := &cl.output
	if !o.holding.Load() {
		return
	}
	o.mu.Lock()
	held := append(o.before, o.after...)
	o.before, o.after = nil, nil
	o.busy = false
	o.holding.Store(false)
	var q *outQueue
	if len(held) > 0 {
		q = cl.outputQueue()
	}
	o.mu.Unlock()
	for _, raw := range held {
		cl.queued.Add(int64(len(raw)))
		q.push(raw)
	}
}

// answer queues the replies of one command, or of one run of commands,
// with the pushes held meanwhile around them. Pushes are not subject to
// CLIENT REPLY OFF or SKIP (as in Redis); replies are.
func (cl *clientConn) answer(replies ...[]byte) {
	if !cl.output.holding.Load() {
		for _, r := range replies {
			cl.reply(r)
		}
		return
	}
	o := &cl.output
	o.mu.Lock()
	before := o.before
	o.before = nil
	o.mu.Unlock()
	for _, raw := range before {
		cl.out = append(cl.out, raw...)
	}
	for _, r := range replies {
		cl.reply(r)
	}
	o.mu.Lock()
	after := o.after
	o.after = nil
	o.mu.Unlock()
	for _, raw := range after {
		cl.out = append(cl.out, raw...)
	}
}

// writeQueue writes queued output until the queue closes and is drained,
// or a write fails (the connection is then closed).
func (cl *clientConn) writeQueue(q *outQueue) {
	defer q.stopped()
	for {
		batch := q.take()
		if batch == nil {
			return
		}
		for _, raw := range batch {
			cl.queued.Add(-int64(len(raw)))
			if cl.write(raw) != nil {
				cl.kill()
				return
			}
			q.wrote()
		}
	}
}

// closeOutput lets the writer finish what is queued and waits for it.
func (cl *clientConn) closeOutput() {
	if q := cl.queue(); q != nil {
		q.close()
		q.waitStopped()
	}
}

// outQueue is an unbounded FIFO of output; its size is watched through the
// client's queued count instead (--client-output-buffer-limit).
type outQueue struct {
	mu      sync.Mutex
	changed *sync.Cond // signalled when something is written or the writer stops
	ready   chan struct{}
	items   [][]byte
	pushed  uint64 // items pushed so far
	written uint64 // items written so far
	closed  bool
	done    bool // the writer has stopped
}

func newOutQueue() *outQueue {
	q := &outQueue{ready: make(chan struct{}, 1)}
	q.changed = sync.NewCond(&q.mu)
	return q
}

// push adds raw and returns its position.
func (q *outQueue) push(raw []byte) uint64 {
	q.mu.Lock()
	q.items = append(q.items, raw)
	q.pushed++
	n := q.pushed
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return n
}

// pushWait adds raw and waits until it is written (the connection's own
// replies: the connection reads no more requests meanwhile, as when it
// writes them itself).
func (q *outQueue) pushWait(raw []byte) error {
	n := q.push(raw)
	return q.waitWritten(n)
}

// waitWritten waits until the first n items are written.
func (q *outQueue) waitWritten(n uint64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.written < n {
		if q.done {
			return errOutputClosed
		}
		q.changed.Wait()
	}
	return nil
}

// drained waits until everything pushed so far is written.
func (q *outQueue) drained() error {
	q.mu.Lock()
	n := q.pushed
	q.mu.Unlock()
	return q.waitWritten(n)
}

// wrote counts one item written.
func (q *outQueue) wrote() {
	q.mu.Lock()
	q.written++
	q.changed.Broadcast()
	q.mu.Unlock()
}

// stopped records that the writer has returned.
func (q *outQueue) stopped() {
	q.mu.Lock()
	q.done = true
	q.changed.Broadcast()
	q.mu.Unlock()
}

// waitStopped waits until the writer has returned.
func (q *outQueue) waitStopped() {
	q.mu.Lock()
	for !q.done {
		q.changed.Wait()
	}
	q.mu.Unlock()
}

// close lets take return nil once the queue is drained.
func (q *outQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take waits for queued items and returns them all; nil once closed and
// empty.
func (q *outQueue) take() [][]byte {
	for {
		q.mu.Lock()
		items, closed := q.items, q.closed
		q.items = nil
		q.mu.Unlock()
		if len(items) > 0 {
			return items
		}
		if closed {
			return nil
		}
		<-q.ready
	}
}
