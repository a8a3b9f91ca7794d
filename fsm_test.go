package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/redraft/redraft/internal/child"
	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// newTestFSM starts a real redis-server child (as redraft does) and an FSM
// on it, with the command table read from that child.
func newTestFSM(t testing.TB) (*fsm, *child.Supervisor) {
	t.Helper()
	path, err := child.FindServer("")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sock := child.SocketPath(dir)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	proc, err := child.Supervise(path, dir, sock, child.Args(sock, dir), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proc.Stop(time.Second) })
	tbl, err := loadCommandTable(proc)
	if err != nil {
		t.Fatal(err)
	}
	f, err := newFSM(proc, tbl.meta, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.conn.Close() })
	return f, proc
}

var testLogIndex uint64

// applyCmds applies one entry of commands at time t and returns the replies.
func applyCmds(t *testing.T, f *fsm, at int64, cmds ...entryCmd) [][]byte {
	t.Helper()
	testLogIndex++
	data := encodeEntry(&entry{Kind: entryCommands, T: at, Cmds: cmds})
	res := f.ApplyBatch([]*raft.Log{{Index: testLogIndex, Type: raft.LogCommand, Data: data}})
	r, ok := res[0].(*applyResult)
	if !ok || len(r.replies) != len(cmds) {
		t.Fatalf("apply result %#v", res[0])
	}
	return r.replies
}

func tx(cmds ...[][]byte) entryCmd {
	c := entryCmd{Args: argv("EXEC")}
	for _, a := range cmds {
		c.Sub = append(c.Sub, entryCmd{Args: a})
	}
	return c
}

// The harness itself: a plain write, an EXPIRE read back into the index,
// and a due key deleted before the next command on it.
func TestFSMApply(t *testing.T) {
	f, _ := newTestFSM(t)
	r := applyCmds(t, f, testT, entryCmd{Args: argv("SET", "k", "v")}, entryCmd{Args: argv("EXPIRE", "k", "10")})
	if string(r[0]) != "+OK\r\n" || string(r[1]) != ":1\r\n" {
		t.Fatalf("replies %q", r)
	}
	if !f.index.due(dbKey{0, "k"}, testT+10_000) || f.index.due(dbKey{0, "k"}, testT+9_999) {
		t.Fatal("EXPIRE's deadline was not read back into the index")
	}
	if f.lastT.Load() != testT {
		t.Errorf("lastT = %d", f.lastT.Load())
	}
	r = applyCmds(t, f, testT+20_000, entryCmd{Args: argv("PEXPIRE", "k", "5")})
	if string(r[0]) != ":0\r\n" {
		t.Errorf("a due key must be gone before the next command on it: %q", r[0])
	}
	r = applyCmds(t, f, testT+20_000, tx(argv("SET", "a", "1"), argv("SET", "b", "2")))
	if string(r[0]) != "*2\r\n+OK\r\n+OK\r\n" {
		t.Errorf("EXEC reply %q", r[0])
	}
}

// Redis answers EXEC with one reply per queued command; an unknown EVALSHA
// inside MULTI yields a NOSCRIPT error in its slot (verified on 7.0.15).
func TestFSMTransactionEvalshaUnknown(t *testing.T) {
	f, _ := newTestFSM(t)
	r := applyCmds(t, f, testT, tx(argv("EVALSHA", "0123456789012345678901234567890123456789", "0"), argv("SET", "a", "1")))
	items, err := resp.ArrayItems(r[0])
	if err != nil {
		t.Fatalf("EXEC reply %q: %v", r[0], err)
	}
	if len(items) != 2 {
		t.Fatalf("MULTI/EVALSHA <unknown>/SET/EXEC answers %q: %d replies for 2 queued commands; "+
			"Redis answers [-NOSCRIPT ..., +OK]", r[0], len(items))
	}
	if !strings.HasPrefix(string(items[0]), "-NOSCRIPT") || string(items[1]) != "+OK\r\n" {
		t.Errorf("EXEC items %q", items)
	}
}

// SCRIPT LOAD inside MULTI must answer the SHA of the client's body, and the
// script must be known to a later EVALSHA, as outside a transaction.
func TestFSMTransactionScriptLoad(t *testing.T) {
	f, _ := newTestFSM(t)
	body := "return 42"
	sha := scriptSHA(body)
	r := applyCmds(t, f, testT, tx(argv("SCRIPT", "LOAD", body)))
	items, err := resp.ArrayItems(r[0])
	if err != nil || len(items) != 1 {
		t.Fatalf("EXEC reply %q", r[0])
	}
	var problems []string
	if string(items[0]) != string(resp.Bulk(sha)) {
		problems = append(problems, "EXEC answers "+strings.ReplaceAll(strings.TrimSpace(string(items[0])), "\r\n", " ")+" instead of $40 "+sha+
			" (the SHA of the prelude-wrapped body: the sub-step's mapReply is ignored)")
	}
	if _, ok := f.script(sha); !ok {
		problems = append(problems, "the script is not remembered, so a later EVALSHA gets NOSCRIPT")
	}
	if len(problems) > 0 {
		t.Error("SCRIPT LOAD inside MULTI: " + strings.Join(problems, "; "))
	}
}

func TestFSMTransactionEvalRemembersScript(t *testing.T) {
	f, _ := newTestFSM(t)
	body := "return 7"
	applyCmds(t, f, testT, tx(argv("EVAL", body, "0")))
	if _, ok := f.script(scriptSHA(body)); !ok {
		t.Error("EVAL inside MULTI does not add the script to the FSM's script cache, so a later EVALSHA of it answers NOSCRIPT; Redis caches it")
	}
	// Outside a transaction it is remembered.
	applyCmds(t, f, testT, entryCmd{Args: argv("EVAL", "return 8", "0")})
	if _, ok := f.script(scriptSHA("return 8")); !ok {
		t.Error("EVAL outside MULTI not remembered")
	}
}

// SWAPDB inside MULTI moves keys with deadlines to the other database; the
// index must follow, or the moved keys never expire.
func TestFSMTransactionSwapDBMovesDeadlines(t *testing.T) {
	f, _ := newTestFSM(t)
	applyCmds(t, f, testT, entryCmd{Args: argv("SET", "k", "v", "PX", "500")})
	if !f.index.due(dbKey{0, "k"}, testT+500) {
		t.Fatal("deadline not indexed")
	}
	// Outside a transaction the index follows.
	applyCmds(t, f, testT+1, entryCmd{Args: argv("SWAPDB", "0", "1")})
	if !f.index.due(dbKey{1, "k"}, testT+500) || f.index.due(dbKey{0, "k"}, testT+500) {
		t.Fatal("SWAPDB outside MULTI did not swap the index")
	}
	applyCmds(t, f, testT+2, tx(argv("SWAPDB", "0", "1")))
	if !f.index.due(dbKey{0, "k"}, testT+500) {
		t.Error("SWAPDB inside MULTI does not swap the expiry index: the moved key would never expire")
	}
}

// A script may SELECT (its switch stays local to it, as in Redis); the
// deadlines it sets on declared keys in another database are tracked, so
// the key expires there at the same log time on every node.
func TestFSMScriptSelectTracksDeadlines(t *testing.T) {
	f, _ := newTestFSM(t)
	script := "redis.call('select', 3) redis.call('set', KEYS[1], 'v', 'px', 100) return redis.call('get', KEYS[1])"
	r := applyCmds(t, f, testT, entryCmd{Args: argv("EVAL", script, "1", "k")})
	if string(r[0]) != "$1\r\nv\r\n" {
		t.Fatalf("EVAL = %q", r[0])
	}
	if !f.index.due(dbKey{3, "k"}, testT+100) || f.index.due(dbKey{3, "k"}, testT+99) {
		t.Fatal("the deadline set in database 3 is not in the expiry index")
	}
	// The caller's database is unchanged, as in Redis.
	r = applyCmds(t, f, testT+1, entryCmd{Args: argv("GET", "k")}, entryCmd{DB: 3, Args: argv("EXISTS", "k")})
	if string(r[0]) != "$-1\r\n" || string(r[1]) != ":1\r\n" {
		t.Errorf("GET k in db 0 = %q, EXISTS k in db 3 = %q", r[0], r[1])
	}
	// Past its deadline, the next command on it sees it gone.
	r = applyCmds(t, f, testT+100, entryCmd{DB: 3, Args: argv("EXISTS", "k")})
	if string(r[0]) != ":0\r\n" {
		t.Errorf("EXISTS k in db 3 at its deadline = %q", r[0])
	}
}

// TestFSMKnownDeadlinesMatchTheChild: deadlines the pipeline records from
// a command's reply instead of reading them back (SET, SETEX, PSETEX,
// GETEX, the EXPIRE family) are exactly what the child holds afterwards,
// whether or not the command set one: conditions that fail (NX, XX, GT),
// errors (WRONGTYPE), missing keys, and the ambiguous SET NX GET.
func TestFSMKnownDeadlinesMatchTheChild(t *testing.T) {
	f, proc := newTestFSM(t)
	conn, err := redisconn.Dial("unix", proc.Sock(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cases := []struct {
		name  string
		setup [][]string
		cmd   []string
	}{
		{"SET EX", nil, []string{"SET", "k", "v", "EX", "10"}},
		{"SET PX over an older deadline", [][]string{{"SET", "k", "v", "EX", "100"}}, []string{"SET", "k", "v", "PX", "500"}},
		{"SET NX on an existing key", [][]string{{"SET", "k", "v", "EX", "5"}}, []string{"SET", "k", "w", "NX", "EX", "50"}},
		{"SET NX on a missing key", nil, []string{"SET", "k", "w", "NX", "EX", "50"}},
		{"SET XX on a missing key", nil, []string{"SET", "k", "v", "XX", "PX", "100"}},
		{"SET GET on a list", [][]string{{"RPUSH", "k", "a"}, {"EXPIRE", "k", "7"}}, []string{"SET", "k", "v", "GET", "EX", "10"}},
		{"SET GET", [][]string{{"SET", "k", "old"}}, []string{"SET", "k", "v", "GET", "EXAT", "1700000100"}},
		{"SET NX GET on an existing key", [][]string{{"SET", "k", "v", "EX", "5"}}, []string{"SET", "k", "v", "NX", "GET", "EX", "10"}},
		{"SET NX GET on a missing key", nil, []string{"SET", "k", "v", "NX", "GET", "EX", "10"}},
		{"SET with a syntax error", [][]string{{"SET", "k", "v", "EX", "5"}}, []string{"SET", "k", "v", "EX", "10", "bogus"}},
		{"SETEX", nil, []string{"SETEX", "k", "10", "v"}},
		{"PSETEX", [][]string{{"SET", "k", "v", "EX", "5"}}, []string{"PSETEX", "k", "1500", "v"}},
		{"GETEX on a missing key", nil, []string{"GETEX", "k", "EX", "10"}},
		{"GETEX", [][]string{{"SET", "k", "v"}}, []string{"GETEX", "k", "PXAT", "1700000009999"}},
		{"GETEX on a list", [][]string{{"RPUSH", "k", "a"}}, []string{"GETEX", "k", "EX", "10"}},
		{"EXPIRE", [][]string{{"SET", "k", "v"}}, []string{"EXPIRE", "k", "10"}},
		{"EXPIRE on a missing key", nil, []string{"EXPIRE", "k", "10"}},
		{"EXPIRE GT not greater", [][]string{{"SET", "k", "v", "EX", "20"}}, []string{"EXPIRE", "k", "10", "GT"}},
		{"PEXPIREAT NX with a deadline", [][]string{{"SET", "k", "v", "EX", "20"}}, []string{"PEXPIREAT", "k", "1700000001000", "NX"}},
		{"EXPIREAT XX", [][]string{{"SET", "k", "v", "EX", "20"}}, []string{"EXPIREAT", "k", "1700000030", "XX"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			at := testT + int64(i)*1_000_000 // apart, so earlier cases are not due
			applyCmds(t, f, at, entryCmd{Args: argv("FLUSHALL")})
			for _, s := range c.setup {
				applyCmds(t, f, at, entryCmd{Args: argv(s...)})
			}
			reply := applyCmds(t, f, at, entryCmd{Args: argv(c.cmd...)})[0]
			raw, err := conn.Do("PEXPIRETIME", "k")
			if err != nil {
				t.Fatal(err)
			}
			child, _ := resp.ReplyInt(raw)
			k := dbKey{0, "k"}
			if child < 0 {
				// No deadline in the child: none may be due in the index
				// before the far future (a stale one is allowed only if it
				// is not due earlier than a real one would be).
				if f.index.due(k, at) {
					t.Fatalf("reply %q: child has no deadline, index says due at %d", reply, at)
				}
				return
			}
			d := unshift(child)
			if f.index.due(k, d-1) || !f.index.due(k, d) {
				t.Fatalf("reply %q: child's deadline %d (T %+d), index due(d-1)=%v due(d)=%v",
					reply, d, d-at, f.index.due(k, d-1), f.index.due(k, d))
			}
		})
	}
}
