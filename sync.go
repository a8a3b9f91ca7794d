package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redraft/redraft/internal/command"
	"github.com/redraft/redraft/internal/resp"
)

// Backups through Redis's replication handshake, so that the standard
// tool works: `redis-cli --rdb file` sends REPLCONF capa eof, REPLCONF
// rdb-only 1 (and REPLCONF rdb-filter-only functions for --functions-rdb),
// then SYNC, and reads the RDB as a 7.0 master sends it:
//
//	"\n" ...                   while the RDB is being prepared (keep-alive)
//	$EOF:<40 bytes>\r\n RDB <the same 40 bytes>   (the client sent capa eof)
//	$<length>\r\n RDB                             (it did not)
//
// PSYNC is answered the same way after +FULLRESYNC, but only with rdb-only
// set: a real replica would otherwise expect the command stream that Raft,
// not Redis replication, provides. The connection closes after the RDB, as
// a 7.0 master closes an rdb-only replica's. RAFTBACKUP path writes the
// same RDB into a file on the node.

// replState is what a connection asked for with REPLCONF.
type replState struct {
	capaEOF   bool
	rdbOnly   bool
	filtered  bool // rdb-filter-only: only what filter lists
	functions bool // rdb-filter-only lists functions
}

// rdbOptions is what the connection's RDB holds.
func (r *replState) rdbOptions(version string) rdbOptions {
	if r.filtered {
		return rdbOptions{functions: r.functions, redisVersion: version}
	}
	return rdbOptions{data: true, functions: true, redisVersion: version}
}

// replconf answers REPLCONF option value [option value ...] with Redis's
// replies; only the options of an RDB transfer are kept.
func (s *frontEnd) replconf(_ context.Context, cl *clientConn, args [][]byte) []byte {
	if len(args)%2 == 0 {
		return resp.Error("ERR syntax error")
	}
	if cl.repl == nil {
		cl.repl = &replState{}
	}
	for j := 1; j < len(args); j += 2 {
		value := string(args[j+1])
		switch opt := strings.ToLower(string(args[j])); opt {
		case "capa":
			if strings.EqualFold(value, "eof") {
				cl.repl.capaEOF = true
			}
		case "rdb-only":
			v, err := strconv.ParseInt(value, 10, 64)
			switch {
			case err != nil:
				return resp.Error("ERR value is not an integer or out of range")
			case v < 0 || v > 1:
				return resp.Error("ERR value is out of range, value must between 0 and 1")
			}
			cl.repl.rdbOnly = v == 1
		case "rdb-filter-only":
			cl.repl.filtered, cl.repl.functions = true, false
			for _, f := range strings.Fields(value) {
				if !strings.EqualFold(f, "functions") {
					return resp.Error("ERR Unsupported rdb-filter-only option: " + f)
				}
				cl.repl.functions = true
			}
		case "ack", "getack":
			return nil // Redis does not answer these from a client that is not a replica
		case "listening-port", "ip-address":
			return resp.Error(fmt.Sprintf("ERR REPLCONF %s is not supported: replication is done by Raft (see RAFTADDPEER)", opt))
		default:
			return resp.Error("ERR Unrecognized REPLCONF option: " + string(args[j]))
		}
	}
	return resp.OK
}

// syncCommand answers SYNC and PSYNC with a point-in-time RDB of the whole
// dataset, then closes the connection.
func (s *frontEnd) syncCommand(ctx context.Context, cl *clientConn, args [][]byte) []byte {
	rs := cl.repl
	if rs == nil {
		rs = &replState{}
	}
	psync := command.Lower(args[0]) == "psync"
	switch {
	case psync && !rs.rdbOnly:
		return resp.Error("ERR PSYNC is only served for backups (after REPLCONF rdb-only 1, as redis-cli --rdb sends): replication is done by Raft (see RAFTADDPEER)")
	case rs.filtered && !rs.capaEOF:
		return resp.Error("ERR Filtered replica requires EOF capability")
	}
	cl.closing.Store(true)
	if cl.flush() != nil {
		return nil
	}
	start := time.Now()
	out := &clientWriter{s: s, cl: cl}
	if psync {
		fmt.Fprintf(out, "+FULLRESYNC %s %d\r\n", randomHex(20), s.fsm.appliedIndex())
	}
	st, err := s.sendRDB(out, rs)
	if err != nil {
		s.log.Warn("backup to a client failed", "client", cl.addr, "err", err)
		if !out.started {
			out.Write(resp.Error("ERR backup failed: " + err.Error()))
		}
		return nil
	}
	s.log.Info("backup sent", "client", cl.addr, "index", st.index, "keys", st.keys, "bytes", st.bytes, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// sendRDB writes the RDB in the transfer format the connection asked for.
// Newlines keep the connection alive until the snapshot is ready.
func (s *frontEnd) sendRDB(out *clientWriter, rs *replState) (rdbStats, error) {
	opts := rs.rdbOptions(s.childVersion())
	snap := make(chan snapshotOpened, 1)
	go func() {
		rc, err := s.node.openSnapshotNow()
		snap <- snapshotOpened{rc, err}
	}()
	var opened snapshotOpened
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case opened = <-snap:
			waiting = false
		case <-tick.C:
			if _, err := out.Write([]byte("\n")); err != nil {
				go func() {
					if o := <-snap; o.rc != nil {
						o.rc.Close()
					}
				}()
				return rdbStats{}, err
			}
		}
	}
	if opened.err != nil {
		return rdbStats{}, opened.err
	}
	defer opened.rc.Close()
	if rs.capaEOF {
		mark := randomHex(20)
		out.started = true
		if _, err := io.WriteString(out, "$EOF:"+mark+"\r\n"); err != nil {
			return rdbStats{}, err
		}
		st, err := writeRDB(out, opened.rc, opts)
		if err != nil {
			return st, err
		}
		if _, err = io.WriteString(out, mark); err == nil {
			s.node.metrics.BackedUp()
		}
		return st, err
	}
	st, err := s.sendRDBWithLength(out, opened.rc, opts)
	if err == nil {
		s.node.metrics.BackedUp()
	}
	return st, err
}

// snapshotOpened is the outcome of opening a snapshot.
type snapshotOpened struct {
	rc  io.ReadCloser
	err error
}

// sendRDBWithLength writes the RDB to a temporary file first, to announce
// its length.
func (s *frontEnd) sendRDBWithLength(out *clientWriter, snap io.Reader, opts rdbOptions) (rdbStats, error) {
	tmp, err := os.CreateTemp(s.child.Dir(), "backup-*.rdb")
	if err != nil {
		return rdbStats{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	st, err := writeRDB(tmp, snap, opts)
	if err != nil {
		return st, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return st, err
	}
	out.started = true
	if _, err := fmt.Fprintf(out, "$%d\r\n", st.bytes); err != nil {
		return st, err
	}
	_, err = io.Copy(out, tmp)
	return st, err
}

// raftBackup answers RAFTBACKUP path: the same RDB, written on this node
// into --backup-dir.
func (s *frontEnd) raftBackup(_ context.Context, cl *clientConn, args [][]byte) []byte {
	if s.backupDir == "" {
		return resp.Error("ERR RAFTBACKUP is disabled: start the node with --backup-dir DIR to let it write backups there (redis-cli --rdb and /backup need no such directory)")
	}
	path, err := backupPath(string(args[1]), s.backupDir)
	if err != nil {
		return resp.Error("ERR " + err.Error())
	}
	start := time.Now()
	st, err := s.node.backupToFile(path, s.dataDir, rdbOptions{data: true, functions: true, redisVersion: s.childVersion()})
	if err != nil {
		return resp.Error("ERR backup failed: " + err.Error())
	}
	s.log.Info("backup written", "path", path, "client", cl.addr, "index", st.index, "keys", st.keys, "bytes", st.bytes, "took", time.Since(start).Round(time.Millisecond))
	return resp.OK
}

// backupHTTP answers GET /backup (--metrics-addr) with the same RDB. With
// a password set (requirepass), the request must carry it with HTTP basic
// authentication (user "default", or any user name). An error once the
// RDB has started aborts the response, so a client never mistakes a
// partial file for a backup.
func (s *frontEnd) backupHTTP(w http.ResponseWriter, r *http.Request) {
	if password := s.fsm.requirePass(); password != "" {
		user, given, ok := r.BasicAuth()
		if !ok || (user != "" && user != defaultUserName) || !samePassword([]byte(given), password) {
			w.Header().Set("WWW-Authenticate", `Basic realm="redraft"`)
			http.Error(w, "the password (requirepass) is required", http.StatusUnauthorized)
			return
		}
	}
	start := time.Now()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="redraft-backup.rdb"`)
	st, err := s.node.backup(w, rdbOptions{data: true, functions: true, redisVersion: s.childVersion()})
	if err != nil && st.bytes == 0 && st.index == 0 {
		http.Error(w, "backup failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if err != nil {
		s.log.Warn("backup over HTTP failed", "client", r.RemoteAddr, "err", err)
		panic(http.ErrAbortHandler)
	}
	s.log.Info("backup sent", "client", r.RemoteAddr, "via", "http", "index", st.index, "keys", st.keys, "bytes", st.bytes, "took", time.Since(start).Round(time.Millisecond))
}

// clientWriter streams raw bytes to a client, keeping it from counting as
// idle (--timeout) while it receives a long transfer.
type clientWriter struct {
	s       *frontEnd
	cl      *clientConn
	started bool // the transfer's header is out: errors can no longer be replies
}

// Write sends p to the client.
func (w *clientWriter) Write(p []byte) (int, error) {
	w.cl.lastActive.Store(w.s.now.Load())
	if err := w.cl.write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
