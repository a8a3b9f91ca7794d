package main

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redraft/redraft/internal/command"
	"github.com/redraft/redraft/internal/resp"
)

// MONITOR streams every command this node receives, as redis-server 7.0
// does (replicationFeedMonitors):
//
//	+<unix seconds>.<microseconds> [<db> <client ip:port>] "ARG" "ARG" ...\r\n
//
// after the command has run, with the database the client is in once it
// has run (so SELECT shows the new one), arguments quoted as sdscatrepr
// quotes them, AUTH and HELLO's credentials as "(redacted)". Like Redis it
// leaves out commands that fail their checks (unknown, wrong arity) and
// commands flagged admin (and redraft's RAFT* commands);
// commands queued in MULTI are shown when EXEC runs them, before EXEC. The
// commands scripts run inside the child are not shown (Redis shows them as
// [db lua]).
//
// Feeding costs one atomic load per command while nobody monitors. Each
// monitor has a queue of its own written by a goroutine of its own; a
// monitor that falls monitorQueue lines behind is disconnected, so a slow
// monitor never slows the node.

// monitorQueue is how many lines a monitor may have waiting.
const monitorQueue = 16384

// monitorHub is the set of clients in MONITOR mode.
type monitorHub struct {
	active atomic.Int32
	mu     sync.Mutex
	byConn map[*clientConn]*monitorClient
}

// monitorClient is one client in MONITOR mode.
type monitorClient struct {
	cl    *clientConn
	lines chan []byte
	done  chan struct{}
	once  sync.Once
}

// monitor answers MONITOR: the connection receives every command from now
// on; it may still send commands of its own.
func (s *frontEnd) monitor(_ context.Context, cl *clientConn, _ [][]byte) []byte {
	s.monitors.add(cl)
	return resp.OK
}

// add puts cl in MONITOR mode (again: no change).
func (h *monitorHub) add(cl *clientConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byConn == nil {
		h.byConn = make(map[*clientConn]*monitorClient)
	}
	if h.byConn[cl] != nil {
		return
	}
	m := &monitorClient{cl: cl, lines: make(chan []byte, monitorQueue), done: make(chan struct{})}
	h.byConn[cl] = m
	h.active.Add(1)
	go m.pump()
}

// remove ends cl's MONITOR mode, if it is in it.
func (h *monitorHub) remove(cl *clientConn) {
	h.mu.Lock()
	m := h.byConn[cl]
	delete(h.byConn, cl)
	h.mu.Unlock()
	if m != nil {
		h.active.Add(-1)
		m.stop()
	}
}

// pump writes queued lines to the client, several at a time.
func (m *monitorClient) pump() {
	var buf []byte
	for {
		select {
		case line := <-m.lines:
			buf = append(buf[:0], line...)
			for more := true; more && len(buf) < writeChunk; {
				select {
				case line := <-m.lines:
					buf = append(buf, line...)
				default:
					more = false
				}
			}
			if m.cl.write(buf) != nil {
				m.cl.kill()
				return
			}
		case <-m.done:
			return
		}
	}
}

func (m *monitorClient) stop() { m.once.Do(func() { close(m.done) }) }

// feed shows one command that cl ran in database db to every monitor.
func (h *monitorHub) feed(cl *clientConn, db int, ci *commandInfo, args [][]byte) {
	if h.active.Load() == 0 || ci == nil || ci.Unmonitored {
		return
	}
	line := monitorLine(time.Now(), db, cl.addr, command.Lower(args[0]), args)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.byConn {
		select {
		case m.lines <- line:
		default:
			m.cl.kill() // too far behind: disconnected, as by an output buffer limit
		}
	}
}

// feedRun shows a run of commands that ran in database db.
func (h *monitorHub) feedRun(cl *clientConn, db int, tbl *commandTable, run []resp.Command) {
	if h.active.Load() == 0 {
		return
	}
	for _, c := range run {
		h.feed(cl, db, tbl.lookup(c.Args), c.Args)
	}
}

// feedExec shows the commands of a transaction that EXEC ran, each in its
// database, before EXEC itself.
func (h *monitorHub) feedExec(cl *clientConn, tbl *commandTable, tx *transaction, reply []byte) {
	if h.active.Load() == 0 || tx == nil || len(reply) < 2 || reply[0] != '*' || reply[1] == '-' {
		return
	}
	for _, c := range tx.queue {
		db := c.DB
		if command.Lower(c.Args[0]) == "select" {
			if to, ok := command.ParseDB(c.Args[1]); ok {
				db = to
			}
		}
		h.feed(cl, db, tbl.lookup(c.Args), c.Args)
	}
}

// monitorLine formats one MONITOR line.
func monitorLine(at time.Time, db int, addr, name string, args [][]byte) []byte {
	b := make([]byte, 0, 64+16*len(args))
	b = append(b, '+')
	b = strconv.AppendInt(b, at.Unix(), 10)
	b = append(b, '.')
	us := strconv.Itoa(at.Nanosecond() / 1000)
	b = append(b, strings.Repeat("0", 6-len(us))...)
	b = append(b, us...)
	b = append(b, " ["...)
	b = strconv.AppendInt(b, int64(db), 10)
	b = append(b, ' ')
	b = append(b, addr...)
	b = append(b, "] "...)
	redacted := redactedFrom(name, args)
	for i, a := range args {
		if i > 0 {
			b = append(b, ' ')
		}
		if redacted[i] {
			a = []byte("(redacted)")
		}
		b = appendRepr(b, a)
	}
	return append(b, '\r', '\n')
}

// redactedFrom marks the arguments Redis hides from MONITOR: AUTH's, and
// the two after HELLO's AUTH.
func redactedFrom(name string, args [][]byte) []bool {
	r := make([]bool, len(args))
	switch name {
	case "auth":
		for i := 1; i < len(args); i++ {
			r[i] = true
		}
	case "hello":
		for i := 2; i+2 < len(args); i++ {
			if strings.EqualFold(string(args[i]), "auth") {
				r[i+1], r[i+2] = true, true
				i += 2
			}
		}
	}
	return r
}

// appendRepr quotes s as Redis's sdscatrepr does.
func appendRepr(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, c := range s {
		switch c {
		case '\\', '"':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\a':
			b = append(b, '\\', 'a')
		case '\b':
			b = append(b, '\\', 'b')
		default:
			if c >= 0x20 && c <= 0x7e {
				b = append(b, c)
			} else {
				b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
			}
		}
	}
	return append(b, '"')
}
