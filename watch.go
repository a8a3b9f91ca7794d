package main

import (
	"fmt"
	"strconv"
)

// WATCH is decided by the children themselves, so it has Redis's exact
// semantics (any modification, expiry deletion, FLUSH or SWAPDB dirties a
// watched key) and the same outcome on every node: WATCH travels through the
// log, and every node opens a side connection to its child for that watch,
// issues WATCH on it at the watch's position in the log, and later runs the
// transaction on it. Applies are synchronised around these steps so that the
// side connection sees exactly the commands before it in the log.

// Internal command names; clients cannot send them (they are not in the
// child's command table, so the proxy refuses them as unknown).
const (
	cmdWatch   = "_redraft_watch"   // id key...
	cmdUnwatch = "_redraft_unwatch" // id
)

// watchMaxAge drops watches whose client vanished, measured in log time.
const watchMaxAge = int64(3600 * 1000)

// watchEntry is one client's WATCH as held on every node.
type watchEntry struct {
	conn     *respConn
	keys     []dbKey
	dirty    bool // known modified before a snapshot was restored
	createdT int64
}

// isWatchCommand reports whether c is an internal watch command.
func isWatchCommand(c *command) bool {
	if len(c.Args) == 0 || len(c.Sub) > 0 {
		return false
	}
	n := string(c.Args[0])
	return n == cmdWatch || n == cmdUnwatch
}

// addWatchCommand applies an internal WATCH or UNWATCH.
func (p *pipeline) addWatchCommand(c *command, t int64, out *[]byte) {
	if err := p.run(); err != nil {
		p.f.fatal(err)
	}
	id := string(c.Args[1])
	if string(c.Args[0]) == cmdUnwatch {
		p.f.dropWatch(id)
		*out = respOK
		return
	}
	p.f.expireWatches(t)
	w := p.f.watches[id]
	if w == nil {
		conn, err := dialChild(p.f.child.sock)
		if err != nil {
			p.f.fatal(err)
		}
		w = &watchEntry{conn: conn, createdT: t}
		p.f.watches[id] = w
	}
	keys := make([]dbKey, 0, len(c.Args)-2)
	for _, k := range c.Args[2:] {
		keys = append(keys, dbKey{c.DB, string(k)})
	}
	if err := w.watch(keys); err != nil {
		p.f.fatal(err)
	}
	w.keys = append(w.keys, keys...)
	*out = respOK
}

// watch issues WATCH for keys on the side connection.
func (w *watchEntry) watch(keys []dbKey) error {
	for _, k := range keys {
		if err := w.conn.selectNow(k.DB); err != nil {
			return err
		}
		raw, err := w.conn.do("WATCH", k.Key)
		if err != nil {
			return err
		}
		if replyIsError(raw) {
			return fmt.Errorf("WATCH: %q", raw)
		}
	}
	return nil
}

// addWatchedTransaction runs a transaction on its watch's side connection;
// EXEC answers nil when a watched key changed (or the watch is unknown).
func (p *pipeline) addWatchedTransaction(st *applyStep, id string, out *[]byte) {
	if err := p.run(); err != nil {
		p.f.fatal(err)
	}
	w := p.f.watches[id]
	delete(p.f.watches, id)
	if w == nil || w.dirty {
		if w != nil {
			w.conn.Close()
		}
		*out = []byte("*-1\r\n")
		return
	}
	defer w.conn.Close()
	p.rememberScripts(st.sub)
	c := w.conn
	n := 0
	if c.selectDB(st.db) {
		n++
	}
	c.send(st.args)
	n++
	for _, sub := range st.sub {
		c.send(sub.args)
		n++
	}
	c.send([][]byte{[]byte("EXEC")})
	if err := c.flush(); err != nil {
		p.f.fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := c.readReply(); err != nil {
			p.f.fatal(err)
		}
	}
	raw, err := c.readReply()
	if err != nil {
		p.f.fatal(err)
	}
	*out = p.finishExec(st, raw)
	p.afterTransaction(st)
}

// dropWatch forgets a watch and closes its side connection.
func (f *fsm) dropWatch(id string) {
	if w := f.watches[id]; w != nil {
		w.conn.Close()
		delete(f.watches, id)
	}
}

// expireWatches drops watches older than watchMaxAge at log time t.
func (f *fsm) expireWatches(t int64) {
	for id, w := range f.watches {
		if t-w.createdT > watchMaxAge {
			f.dropWatch(id)
		}
	}
}

// snapshotWatches records every watch, with whether it is already dirty:
// MULTI/EXEC on the side connection tells, and WATCH is then re-issued.
func (f *fsm) snapshotWatches() ([]watchRecord, error) {
	var out []watchRecord
	for id, w := range f.watches {
		if !w.dirty {
			w.conn.sendStrings("MULTI")
			w.conn.sendStrings("EXEC")
			if err := w.conn.flush(); err != nil {
				return nil, err
			}
			if _, err := w.conn.readReply(); err != nil {
				return nil, err
			}
			raw, err := w.conn.readReply()
			if err != nil {
				return nil, err
			}
			w.dirty = string(raw) == "*-1\r\n"
			if err := w.watch(w.keys); err != nil {
				return nil, err
			}
		}
		out = append(out, watchRecord{id: id, createdT: w.createdT, dirty: w.dirty, keys: w.keys})
	}
	return out, nil
}

// watchRecord is a watch as stored in a snapshot.
type watchRecord struct {
	id       string
	createdT int64
	dirty    bool
	keys     []dbKey
}

// restoreWatch re-creates a watch from a snapshot.
func (f *fsm) restoreWatch(r watchRecord) error {
	conn, err := dialChild(f.child.sock)
	if err != nil {
		return err
	}
	w := &watchEntry{conn: conn, keys: r.keys, dirty: r.dirty, createdT: r.createdT}
	if err := w.watch(r.keys); err != nil {
		conn.Close()
		return err
	}
	f.watches[r.id] = w
	return nil
}

// closeWatches drops every watch (before a restore).
func (f *fsm) closeWatches() {
	for id := range f.watches {
		f.dropWatch(id)
	}
}

// watchID names a client's watch uniquely across the cluster and across
// restarts of its node (epoch is the proxy's start time).
func watchID(node string, epoch, client int64) string {
	return node + "/" + strconv.FormatInt(epoch, 36) + "/" + strconv.FormatInt(client, 10)
}
