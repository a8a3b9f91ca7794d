package redisconn

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Shared runs the calls of many goroutines over a few pipelined
// connections ("lanes"). A lane has one batch of calls in flight at a
// time; the calls that wait meanwhile go out together, in one write, once
// its replies are in, and their replies come back in one read, so a
// hundred clients' reads cost the child (and this process) a couple of
// system calls instead of a couple each. Calls are answered in the
// order they were made on a lane; a caller that waits for one call before
// making the next keeps its own order.
//
// A lane's connection is dialled when first needed and again after an
// error; Reset closes them all (the child was replaced).
type Shared struct {
	network, address string
	lanes            []*lane
	setup            []string // a command each new connection runs first
}

// ErrSharedClosed is returned for calls made after Close.
var ErrSharedClosed = errors.New("shared connection closed")

// NewShared keeps n lanes to network/address.
func NewShared(network, address string, n int) *Shared {
	s := &Shared{network: network, address: address}
	for range max(1, n) {
		l := &lane{owner: s, wake: make(chan struct{}, 1)}
		s.lanes = append(s.lanes, l)
		go l.writeLoop()
	}
	return s
}

// NewSharedWith is NewShared for connections that each run setup (such as
// HELLO 3) when they are dialled; an error reply fails the dial.
func NewSharedWith(network, address string, n int, setup ...string) *Shared {
	s := NewShared(network, address, n)
	s.setup = setup
	return s
}

// call is one caller's run of steps in one database.
type call struct {
	db      int
	steps   []Step
	selects bool // a SELECT was sent ahead of the steps
	out     [][]byte
	err     error
	done    chan struct{}
}

// Run pipelines steps in database db on the least busy lane and returns
// one reply per step, as Conn.Run does.
func (s *Shared) Run(db int, steps []Step) ([][]byte, error) {
	c := &call{db: db, steps: steps, done: make(chan struct{})}
	s.pick().submit(c)
	<-c.done
	return c.out, c.err
}

// pick returns the lane with the fewest calls outstanding.
func (s *Shared) pick() *lane {
	best := s.lanes[0]
	for _, l := range s.lanes[1:] {
		if l.outstanding.Load() < best.outstanding.Load() {
			best = l
		}
	}
	return best
}

// Reset closes every lane's connection; the next calls dial afresh. Calls
// in flight on the old connections fail.
func (s *Shared) Reset() {
	for _, l := range s.lanes {
		l.reset()
	}
}

// Close stops every lane: waiting and later calls fail.
func (s *Shared) Close() {
	for _, l := range s.lanes {
		l.close()
	}
}

// lane is one connection with a writer goroutine, which sends whatever
// calls are queued in one write, and a reader goroutine per connection,
// which answers them in order.
type lane struct {
	owner       *Shared
	outstanding atomic.Int64 // calls submitted and not yet answered

	mu     sync.Mutex
	queue  []*call
	closed bool
	wake   chan struct{} // a send means: the queue may hold calls

	connMu sync.Mutex // held by the writer while it writes, and by reset
	conn   *laneConn
}

// laneConn is one connection of a lane and the calls written on it, in
// order, for its reader goroutine.
type laneConn struct {
	*Conn
	sent chan *call
	dead atomic.Bool // its reader failed: the writer must dial another
}

func (l *lane) submit(c *call) {
	l.outstanding.Add(1)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.answer(c, nil, ErrSharedClosed)
		return
	}
	l.queue = append(l.queue, c)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// answer completes c.
func (l *lane) answer(c *call, out [][]byte, err error) {
	c.out, c.err = out, err
	l.outstanding.Add(-1)
	close(c.done)
}

// take removes and returns the queued calls.
func (l *lane) take() ([]*call, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.queue
	l.queue = nil
	return q, l.closed
}

// writeLoop sends queued calls, all that are waiting in one write, and
// then waits for that batch's replies before it sends the next: calls that
// arrive meanwhile (the child could not start on them any sooner, as it
// answers a connection in order) go out together, so under load each
// round trip carries more calls and the child and this process make fewer
// system calls per call. An idle lane sends a call at once.
func (l *lane) writeLoop() {
	for range l.wake {
		batch, closed := l.take()
		if closed {
			for _, c := range batch {
				l.answer(c, nil, ErrSharedClosed)
			}
			return
		}
		if len(batch) > 0 {
			l.write(batch)
			<-batch[len(batch)-1].done // answered in order: the whole batch is
		}
	}
}

// write sends batch on the lane's connection, dialling one if needed, and
// hands the calls to the connection's reader.
func (l *lane) write(batch []*call) {
	l.connMu.Lock()
	defer l.connMu.Unlock()
	if l.conn != nil && l.conn.dead.Load() {
		l.dropLocked()
	}
	if l.conn == nil {
		conn, err := l.owner.dial()
		if err != nil {
			for _, c := range batch {
				l.answer(c, nil, err)
			}
			return
		}
		l.conn = &laneConn{Conn: conn, sent: make(chan *call, 4096)}
		go l.readLoop(l.conn)
	}
	for _, c := range batch {
		c.selects = l.conn.SelectDB(c.db)
		for _, st := range c.steps {
			if st.Reply == nil {
				l.conn.Send(st.Args)
			}
		}
	}
	// The reader learns of the calls before their replies can arrive.
	for _, c := range batch {
		l.conn.sent <- c
	}
	if err := l.conn.Flush(); err != nil {
		l.dropLocked() // the reader fails the calls
	}
}

// dropLocked closes the lane's connection; its reader fails what it still
// waits for and stops. connMu is held.
func (l *lane) dropLocked() {
	if l.conn == nil {
		return
	}
	l.conn.Close()
	close(l.conn.sent)
	l.conn = nil
}

// readLoop answers the calls written on lc, in order. After an error it
// closes lc and fails every call still written on it; the writer dials
// another connection for the next calls.
func (l *lane) readLoop(lc *laneConn) {
	var failed error
	for c := range lc.sent {
		if failed != nil {
			l.answer(c, nil, failed)
			continue
		}
		out, err := readCall(lc.Conn, c)
		if err != nil {
			failed = fmt.Errorf("shared connection: %w", err)
			lc.dead.Store(true)
			lc.Close()
		}
		l.answer(c, out, err)
	}
}

// readCall reads the replies of one call.
func readCall(conn *Conn, c *call) ([][]byte, error) {
	if c.selects {
		if _, err := conn.ReadReply(); err != nil {
			return nil, err
		}
	}
	out := make([][]byte, len(c.steps))
	for i, st := range c.steps {
		if st.Reply != nil {
			out[i] = st.Reply
			continue
		}
		raw, err := conn.ReadReply()
		if err != nil {
			return nil, err
		}
		if st.MapReply != nil {
			raw = st.MapReply(raw)
		}
		out[i] = raw
	}
	return out, nil
}

// dial opens a lane's connection and runs the setup command on it.
func (s *Shared) dial() (*Conn, error) {
	c, err := Dial(s.network, s.address, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if err := runSetup(c, s.setup); err != nil {
		return nil, fmt.Errorf("shared connection setup: %w", err)
	}
	return c, nil
}

func (l *lane) reset() {
	l.connMu.Lock()
	l.dropLocked()
	l.connMu.Unlock()
}

func (l *lane) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	l.reset()
}
