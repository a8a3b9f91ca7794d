package main

import (
	"fmt"
	"strconv"

	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// WATCH is decided by the children themselves, so it has Redis's exact
// semantics (any modification, expiry deletion, FLUSH or SWAPDB dirties a
// watched key) and the same outcome on every node: WATCH travels through the
// log, and every node opens a side connection to its child for that watch,
// issues WATCH on it at the watch's position in the log, and later runs the
// transaction on it. The pipeline applies these at sync points so that the
// side connection sees exactly the commands before it in the log.

// Internal command names; clients cannot send them (they are not in the
// child's command table, so the front end refuses them as unknown).
const (
	cmdWatch   = "_redraft_watch"   // id key...
	cmdUnwatch = "_redraft_unwatch" // id
)

// watchMaxAge drops watches whose client vanished, measured in log time.
const watchMaxAge = int64(3600 * 1000)

// isWatchCommand reports whether c is an internal watch command.
func isWatchCommand(c *entryCmd) bool {
	if len(c.Args) < 2 || len(c.Sub) > 0 {
		return false
	}
	n := string(c.Args[0])
	return n == cmdWatch || n == cmdUnwatch
}

// watchID names a client's watch uniquely across the cluster and across
// restarts of its node (epoch is the front end's start time).
func watchID(node string, epoch, client int64) string {
	return node + "/" + strconv.FormatInt(epoch, 36) + "/" + strconv.FormatInt(client, 10)
}

// watchEntry is one client's WATCH as held on every node.
type watchEntry struct {
	conn     *redisconn.Conn
	keys     []dbKey
	dirty    bool // known modified before a snapshot was restored
	createdT int64
}

// watch issues WATCH for keys on the side connection.
func (w *watchEntry) watch(keys []dbKey) error {
	for _, k := range keys {
		if err := w.conn.SelectNow(k.DB); err != nil {
			return err
		}
		raw, err := w.conn.Do("WATCH", k.Key)
		if err != nil {
			return err
		}
		if resp.ReplyIsError(raw) {
			return fmt.Errorf("WATCH: %q", raw)
		}
	}
	return nil
}

// exec runs a planned transaction on the side connection and returns EXEC's
// raw reply (nil when a watched key changed).
func (w *watchEntry) exec(st *applyStep) ([]byte, error) {
	c := w.conn
	n := 0
	if protoOf(st.proto) == resp.Proto3 {
		c.Send(helloArgs(st.proto)) // the connection is closed after EXEC
		n++
	}
	if c.SelectDB(st.db) {
		n++
	}
	c.Send(st.args)
	n++
	for _, sub := range st.sub {
		c.Send(sub.args)
		n++
	}
	c.Send([][]byte{[]byte("EXEC")})
	if err := c.Flush(); err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		if _, err := c.ReadReply(); err != nil {
			return nil, err
		}
	}
	return c.ReadReply()
}

// stillClean checks with an empty MULTI/EXEC whether a watched key has
// changed, then watches the keys again (EXEC ends a WATCH).
func (w *watchEntry) stillClean() (bool, error) {
	w.conn.SendStrings("MULTI")
	w.conn.SendStrings("EXEC")
	if err := w.conn.Flush(); err != nil {
		return false, err
	}
	if _, err := w.conn.ReadReply(); err != nil {
		return false, err
	}
	raw, err := w.conn.ReadReply()
	if err != nil {
		return false, err
	}
	if resp.ReplyIsNull(raw) {
		return false, nil
	}
	return true, w.watch(w.keys)
}

// watchSet holds every open WATCH, by watch ID. It is used only by the
// apply path, under the FSM's lock.
type watchSet struct {
	dial func() (*redisconn.Conn, error)
	byID map[string]*watchEntry
}

func newWatchSet(dial func() (*redisconn.Conn, error)) *watchSet {
	return &watchSet{dial: dial, byID: make(map[string]*watchEntry)}
}

// add watches keys for id at log time t, opening its side connection on
// first use; watches older than watchMaxAge are dropped first.
func (s *watchSet) add(id string, keys []dbKey, t int64) error {
	s.expire(t)
	w := s.byID[id]
	if w == nil {
		conn, err := s.dial()
		if err != nil {
			return err
		}
		w = &watchEntry{conn: conn, createdT: t}
		s.byID[id] = w
	}
	if err := w.watch(keys); err != nil {
		return err
	}
	w.keys = append(w.keys, keys...)
	return nil
}

// take removes and returns id's watch (nil if unknown); the caller closes it.
func (s *watchSet) take(id string) *watchEntry {
	w := s.byID[id]
	delete(s.byID, id)
	return w
}

// drop forgets a watch and closes its side connection.
func (s *watchSet) drop(id string) {
	if w := s.take(id); w != nil {
		w.conn.Close()
	}
}

// expire drops watches older than watchMaxAge at log time t.
func (s *watchSet) expire(t int64) {
	for id, w := range s.byID {
		if t-w.createdT > watchMaxAge {
			s.drop(id)
		}
	}
}

// closeAll drops every watch (before a restore).
func (s *watchSet) closeAll() {
	for id := range s.byID {
		s.drop(id)
	}
}

// watchRecord is a watch as stored in a snapshot.
type watchRecord struct {
	id       string
	createdT int64
	dirty    bool
	keys     []dbKey
}

// records describes every watch for a snapshot, with whether it is
// already dirty.
func (s *watchSet) records() ([]watchRecord, error) {
	var out []watchRecord
	for id, w := range s.byID {
		if !w.dirty {
			clean, err := w.stillClean()
			if err != nil {
				return nil, err
			}
			w.dirty = !clean
		}
		out = append(out, watchRecord{id: id, createdT: w.createdT, dirty: w.dirty, keys: w.keys})
	}
	return out, nil
}

// restore re-creates a watch from a snapshot record.
func (s *watchSet) restore(r watchRecord) error {
	conn, err := s.dial()
	if err != nil {
		return err
	}
	w := &watchEntry{conn: conn, keys: r.keys, dirty: r.dirty, createdT: r.createdT}
	if err := w.watch(r.keys); err != nil {
		conn.Close()
		return err
	}
	s.byID[r.id] = w
	return nil
}
