package main

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// A clientConn is one Redis client connection. It is in one of these states, and the
// hand-offs between them are all in this file:
//
//   - normal: each batch of pipelined commands is read, executed in order
//     (runs of writes as one proposal, runs of reads as one child round
//     trip), and its replies are written in one go;
//   - in MULTI (tx != nil): commands are checked and queued until EXEC
//     proposes them as one entry (transactions.go);
//   - blocked: a blocking command waits in the front end (blocking.go);
//     meanwhile the connection is read ahead so that a client that leaves
//     is noticed (watchDeparture), as Redis does;
//   - subscribed (sub != nil): commands go to a connection of its own to
//     the local child, which also sends the messages (pubsub.go);
//   - relayed (relay != nil): with --follower-proxy, what a follower may
//     not serve goes to the leader over a connection of the client's own
//     (relay.go).
//
// Only the connection's own goroutine touches the state, except name
// (under nameMu) and the socket, which CLIENT LIST and CLIENT KILL use
// from other connections, and writes, which the subscriber pump also
// makes (under wmu).
type clientConn struct {
	id    int64
	addr  string
	laddr string
	nc    net.Conn
	rd    *resp.RequestReader

	wmu sync.Mutex // serialises writes to nc
	out []byte     // replies not yet written
	// output is the queue all output goes through once the connection has
	// pushes or a subscriber pump, and the pushes held meanwhile (push.go).
	output clientOutput

	// proto is the protocol the client speaks: 2, or 3 after HELLO 3
	// (resp3.go). Other goroutines read it to format pushes.
	proto atomic.Int32
	// track is the client's CLIENT TRACKING state (tracking.go).
	track clientTracking

	// authed: AUTH succeeded, or no password was set when it connected,
	// or it is a follower's relay (auth.go).
	authed bool

	db     int
	nameMu sync.Mutex
	name   string
	// replyOff and replySkip implement CLIENT REPLY OFF and SKIP.
	replyOff  bool
	replySkip int
	// readOnly is set by READONLY (cluster mode): reads at --consistency
	// low on any node.
	readOnly atomic.Bool

	tx *transaction // MULTI state, nil outside MULTI
	// watching is set while this client has a WATCH in the log, named
	// watchID(node, id).
	watching bool
	sub      *subscription   // subscriber mode
	relay    *redisconn.Conn // --follower-proxy connection to the leader
	relayTo  string          // the leader relay is connected to
	// relayProto is the protocol the leader answers relay in (0: RESP2).
	relayProto resp.Proto
	// relayWatch: a WATCH was relayed to the leader and is in force there.
	relayWatch bool
	repl       *replState // what REPLCONF asked for (sync.go)

	closing atomic.Bool // set by QUIT or CLIENT KILL

	// runInfos is execute's scratch: the table rows of the run it serves.
	runInfos []*commandInfo

	// What clientsCron watches (proxy.go): the time of the last command
	// (ms), whether a blocking command waits, and the replies the client
	// has not taken yet (with when they first passed the soft limit).
	lastActive atomic.Int64
	blocked    atomic.Bool
	subscribed atomic.Bool

	// What CLIENT LIST shows of this client to other connections.
	created     int64 // ms
	fd          int
	shownDB     atomic.Int32
	inMulti     atomic.Int32 // commands queued in MULTI, -1 outside
	lastCmd     atomic.Pointer[string]
	subs        [3]atomic.Int32 // channels, patterns, shard channels subscribed
	withTimeout atomic.Bool     // blocked with a timeout
	unsent      atomic.Int64    // of the reply being written
	queued      atomic.Int64    // of replies waiting to be written (subscribers)
	softSince   atomic.Int64
}

// flushAt is the size of queued replies that is written at once, before the
// batch ends, so a pipeline of large replies never piles up in memory.
const flushAt = 64 << 10

// writeChunk is the most one write call sends, so that the replies a slow
// client has not taken yet can be watched as they shrink.
const writeChunk = 64 << 10

// reply queues raw unless CLIENT REPLY OFF or SKIP suppresses it.
func (cl *clientConn) reply(raw []byte) {
	switch {
	case cl.replyOff:
		return
	case cl.replySkip > 0:
		cl.replySkip--
		return
	}
	cl.out = append(cl.out, raw...)
	if len(cl.out) >= flushAt {
		cl.flush()
	}
}

// flush writes the queued replies. A write that fails closes the
// connection: it is of no use any more.
func (cl *clientConn) flush() error {
	if len(cl.out) == 0 {
		return nil
	}
	var err error
	if q := cl.queue(); q != nil {
		err = q.pushWait(append([]byte(nil), cl.out...))
	} else {
		err = cl.write(cl.out)
	}
	cl.out = cl.out[:0]
	if cap(cl.out) > 4*flushAt {
		cl.out = nil // do not keep a large buffer for an idle client
	}
	if err != nil {
		cl.kill()
	}
	return err
}

// write sends raw, in chunks, keeping unsent up to date for the output
// buffer limits. The connection's goroutine and the subscriber pump both
// write; wmu keeps their replies whole.
func (cl *clientConn) write(raw []byte) error {
	cl.wmu.Lock()
	defer cl.wmu.Unlock()
	for len(raw) > 0 {
		cl.unsent.Store(int64(len(raw)))
		n, err := cl.nc.Write(raw[:min(len(raw), writeChunk)])
		raw = raw[n:]
		if err != nil {
			cl.unsent.Store(0)
			return err
		}
	}
	cl.unsent.Store(0)
	cl.softSince.Store(0)
	return nil
}

// kill closes the connection from another goroutine (CLIENT KILL).
func (cl *clientConn) kill() {
	cl.closing.Store(true)
	cl.nc.Close()
}

func (cl *clientConn) setName(name string) {
	cl.nameMu.Lock()
	cl.name = name
	cl.nameMu.Unlock()
}

func (cl *clientConn) getName() string {
	cl.nameMu.Lock()
	defer cl.nameMu.Unlock()
	return cl.name
}

// listLine renders this client's CLIENT LIST line, in Redis 7.0's format
// (the memory fields, which describe Redis's own buffers, are 0).
func (cl *clientConn) listLine(now int64) string {
	// Flags in Redis's order: P, x, b, then tracking's t, R, B.
	flags := ""
	if cl.subscribed.Load() {
		flags += "P"
	}
	multi := cl.inMulti.Load()
	if multi >= 0 {
		flags += "x"
	}
	if cl.blocked.Load() {
		flags += "b"
	}
	tflags, redir := cl.track.view().listFields()
	flags += tflags
	if cl.readOnly.Load() {
		flags += "r"
	}
	if flags == "" {
		flags = "N"
	}
	cmd := "NULL"
	if p := cl.lastCmd.Load(); p != nil {
		cmd = *p
	}
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=%d name=%s age=%d idle=%d flags=%s db=%d sub=%d psub=%d ssub=%d multi=%d "+
		"qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=%s user=default redir=%d resp=%d",
		cl.id, cl.addr, cl.laddr, cl.fd, cl.getName(), (now-cl.created)/1000, (now-cl.lastActive.Load())/1000, flags,
		cl.shownDB.Load(), cl.subs[0].Load(), cl.subs[1].Load(), cl.subs[2].Load(), multi, cmd, redir, cl.protocol())
}

// setDB changes the client's database.
func (cl *clientConn) setDB(db int) {
	cl.db = db
	cl.shownDB.Store(int32(db))
}

// setTx enters (tx != nil) or leaves MULTI.
func (cl *clientConn) setTx(tx *transaction) {
	cl.tx = tx
	if tx == nil {
		cl.inMulti.Store(-1)
	} else {
		cl.inMulti.Store(0)
	}
}

// aLongTimeAgo is a deadline in the past, to interrupt a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// watchDeparture reads ahead on the connection while the client is blocked
// (as Redis keeps reading a blocked client's socket), so that a client that
// leaves is noticed. The caller marks the client blocked (cl.blocked) once
// it is; stop clears the mark. gone is closed when the client has left or broke a
// limit; stop ends the read-ahead and must be called before the connection
// is read again. Bytes read ahead stay buffered for the next batch.
func (cl *clientConn) watchDeparture() (gone <-chan struct{}, stop func()) {
	goneCh := make(chan struct{})
	done := make(chan struct{})
	var stopping atomic.Bool
	go func() {
		defer close(done)
		for {
			err := cl.rd.Fill()
			if err == nil {
				continue
			}
			if stopping.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			close(goneCh)
			return
		}
	}()
	return goneCh, func() {
		stopping.Store(true)
		_ = cl.nc.SetReadDeadline(aLongTimeAgo)
		<-done
		_ = cl.nc.SetReadDeadline(time.Time{})
		cl.blocked.Store(false)
	}
}

// clientRegistry is this node's connected clients, for CLIENT LIST and
// CLIENT KILL.
type clientRegistry struct {
	mu   sync.Mutex
	byID map[int64]*clientConn
}

func (r *clientRegistry) add(cl *clientConn) {
	r.mu.Lock()
	if r.byID == nil {
		r.byID = make(map[int64]*clientConn)
	}
	r.byID[cl.id] = cl
	r.mu.Unlock()
}

func (r *clientRegistry) remove(cl *clientConn) {
	r.mu.Lock()
	delete(r.byID, cl.id)
	r.mu.Unlock()
}

// get returns the client with ID id, nil if none is connected.
func (r *clientRegistry) get(id int64) *clientConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[id]
}

// each calls fn for every client, in ID order.
func (r *clientRegistry) each(fn func(*clientConn)) {
	r.mu.Lock()
	list := make([]*clientConn, 0, len(r.byID))
	for _, cl := range r.byID {
		list = append(list, cl)
	}
	r.mu.Unlock()
	slices.SortFunc(list, func(a, b *clientConn) int { return cmp.Compare(a.id, b.id) })
	for _, cl := range list {
		fn(cl)
	}
}

// forEach calls fn for every client, in no particular order.
func (r *clientRegistry) forEach(fn func(*clientConn)) {
	r.mu.Lock()
	list := make([]*clientConn, 0, len(r.byID))
	for _, cl := range r.byID {
		list = append(list, cl)
	}
	r.mu.Unlock()
	for _, cl := range list {
		fn(cl)
	}
}

// countIf is the number of connected clients for which match is true.
func (r *clientRegistry) countIf(match func(*clientConn) bool) int {
	n := 0
	r.forEach(func(cl *clientConn) {
		if match(cl) {
			n++
		}
	})
	return n
}

// count is the number of connected clients.
func (r *clientRegistry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byID)
}

// protocol is the protocol the client speaks.
func (cl *clientConn) protocol() resp.Proto {
	if cl.proto.Load() >= int32(resp.Proto3) {
		return resp.Proto3
	}
	return resp.Proto2
}
