package main

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/redraft/redraft/internal/command/commandtest"
	"github.com/redraft/redraft/internal/resp"
)

// strs renders arguments as strings for comparisons.
func strs(b [][]byte) []string { return commandtest.Strs(b) }

// testT is the leader time used by the rewrite tests.
const testT int64 = 1_700_000_000_000

type noScripts struct{}

func (noScripts) get(string) (string, bool) { return "", false }

func planArgs(tb testing.TB, db int, args ...string) applyStep {
	tb.Helper()
	tbl := newTestTable(tb).meta
	return planCommand(tbl, &entryCmd{DB: db, Args: argv(args...)}, testT, 7, noScripts{}.get)
}

func keys(db int, names ...string) []dbKey {
	out := make([]dbKey, len(names))
	for i, n := range names {
		out[i] = dbKey{db, n}
	}
	return out
}

func sameKeys(a, b []dbKey) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

type rewriteCase struct {
	in        []string
	out       []string // nil: args unchanged
	readBack  []dbKey
	expireNow bool
}

func checkRewrites(t *testing.T, cases []rewriteCase) {
	t.Helper()
	for _, tc := range cases {
		st := planArgs(t, 0, tc.in...)
		want := tc.out
		if want == nil {
			want = tc.in
		}
		if got := strs(st.args); !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n got %q\nwant %q", tc.in, got, want)
		}
		if !sameKeys(st.readBack, tc.readBack) {
			t.Errorf("%q: readBack = %v, want %v", tc.in, st.readBack, tc.readBack)
		}
		if st.expireNow != tc.expireNow {
			t.Errorf("%q: expireNow = %v, want %v", tc.in, st.expireNow, tc.expireNow)
		}
	}
}

func TestDeadlineShiftIsLarge(t *testing.T) {
	// About a century: no child may ever expire a key by its own clock.
	if deadlineShift < 50*365*24*3600*1000 {
		t.Fatalf("deadlineShift = %d", deadlineShift)
	}
}

func TestPlanExpireFamily(t *testing.T) {
	k := keys(0, "k")
	checkRewrites(t, []rewriteCase{
		{[]string{"EXPIRE", "k", "10"}, []string{"PEXPIREAT", "k", shifted(testT + 10_000)}, k, false},
		{[]string{"expire", "k", "10", "NX"}, []string{"PEXPIREAT", "k", shifted(testT + 10_000), "NX"}, k, false},
		{[]string{"EXPIRE", "k", "10", "gt"}, []string{"PEXPIREAT", "k", shifted(testT + 10_000), "gt"}, k, false},
		{[]string{"PEXPIRE", "k", "1500", "XX"}, []string{"PEXPIREAT", "k", shifted(testT + 1500), "XX"}, k, false},
		{[]string{"EXPIREAT", "k", "1800000000", "LT"}, []string{"PEXPIREAT", "k", shifted(1_800_000_000_000), "LT"}, k, false},
		{[]string{"PEXPIREAT", "k", "1800000000123"}, []string{"PEXPIREAT", "k", shifted(1_800_000_000_123)}, k, false},
		// Deadlines at or before T: the key must go now.
		{[]string{"EXPIRE", "k", "0"}, []string{"PEXPIREAT", "k", shifted(testT)}, k, true},
		{[]string{"EXPIRE", "k", "-1"}, []string{"PEXPIREAT", "k", shifted(testT - 1000)}, k, true},
		{[]string{"PEXPIRE", "k", "1"}, []string{"PEXPIREAT", "k", shifted(testT + 1)}, k, false},
		{[]string{"PEXPIREAT", "k", "1"}, []string{"PEXPIREAT", "k", shifted(1)}, k, true},
		{[]string{"PEXPIREAT", "k", strconv.FormatInt(testT, 10)}, []string{"PEXPIREAT", "k", shifted(testT)}, k, true},
		{[]string{"EXPIREAT", "k", "1"}, []string{"PEXPIREAT", "k", shifted(1000)}, k, true},
		// Invalid arguments pass through for the child to reject.
		{[]string{"EXPIRE", "k", "abc"}, nil, nil, false},
		{[]string{"EXPIRE", "k", "1.5"}, nil, nil, false},
		{[]string{"EXPIRE", "k", ""}, nil, nil, false},
		{[]string{"EXPIRE", "k", "99999999999999999999"}, nil, nil, false},
		{[]string{"EXPIREAT", "k", strconv.FormatInt(math.MaxInt64/1000+1, 10)}, nil, nil, false}, // Redis: invalid expire time
		{[]string{"EXPIREAT", "k", strconv.FormatInt(math.MaxInt64/1000, 10)}, []string{"PEXPIREAT", "k", strconv.FormatInt(math.MaxInt64, 10)}, k, false}, // clamped
	})
}

// The rewritten deadline depends only on T and the arguments.
func TestPlanExpireUsesOnlyT(t *testing.T) {
	tbl := newTestTable(t).meta
	c := &entryCmd{Args: argv("EXPIRE", "k", "60")}
	a := planCommand(tbl, c, 1000, 1, noScripts{}.get)
	b := planCommand(tbl, c, 1000, 99, noScripts{}.get)
	d := planCommand(tbl, c, 2000, 1, noScripts{}.get)
	if string(a.args[2]) != string(b.args[2]) {
		t.Error("the seed changed an EXPIRE deadline")
	}
	if string(d.args[2]) != shifted(2000+60_000) || string(a.args[2]) != shifted(1000+60_000) {
		t.Errorf("deadlines %s %s", a.args[2], d.args[2])
	}
	if string(c.Args[0]) != "EXPIRE" || string(c.Args[2]) != "60" {
		t.Errorf("planCommand modified the command: %q", strs(c.Args))
	}
}

func TestAbsoluteDeadline(t *testing.T) {
	tests := []struct {
		name string
		arg  string
		want int64
		ok   bool
	}{
		{"expire", "10", testT + 10_000, true},
		{"pexpire", "10", testT + 10, true},
		{"expireat", "10", 10_000, true},
		{"pexpireat", "10", 10, true},
		{"expire", "-3", testT - 3000, true},
		{"expire", strconv.FormatInt(1<<52, 10), testT + (1<<52)*1000, true},
		{"expire", strconv.FormatInt(math.MaxInt64/1000+1, 10), 0, false}, // Redis: invalid expire time
		{"pexpire", strconv.FormatInt(math.MaxInt64, 10), 0, false},       // overflows with T
		{"pexpireat", strconv.FormatInt(-(1<<52)-1, 10), -(1 << 52) - 1, true},
		{"expire", "x", 0, false},
		{"expire", "+5", 0, false}, // Redis's string2ll refuses a plus sign
		{"expire", "05", 0, false}, // and leading zeros
	}
	for _, tc := range tests {
		got, ok := absoluteDeadline(tc.name, argv(tc.name, "k", tc.arg), testT)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("absoluteDeadline(%s %s) = %d %v, want %d %v", tc.name, tc.arg, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := absoluteDeadline("expire", argv("expire", "k"), testT); ok {
		t.Error("missing argument accepted")
	}
}

func TestPlanSetFamily(t *testing.T) {
	k := keys(0, "k")
	maxEX := strconv.FormatInt((math.MaxInt64-testT)/1000, 10)
	checkRewrites(t, []rewriteCase{
		{[]string{"SET", "k", "v", "EX", "10"}, []string{"SET", "k", "v", "PXAT", shifted(testT + 10_000)}, k, false},
		{[]string{"set", "k", "v", "px", "1500"}, []string{"set", "k", "v", "PXAT", shifted(testT + 1500)}, k, false},
		{[]string{"SET", "k", "v", "EXAT", "1800000000"}, []string{"SET", "k", "v", "PXAT", shifted(1_800_000_000_000)}, k, false},
		{[]string{"SET", "k", "v", "PXAT", "1800000000123"}, []string{"SET", "k", "v", "PXAT", shifted(1_800_000_000_123)}, k, false},
		{[]string{"SET", "k", "v", "NX", "GET", "EX", "10"}, []string{"SET", "k", "v", "NX", "GET", "PXAT", shifted(testT + 10_000)}, k, false},
		{[]string{"SET", "k", "v", "EX", "10", "XX"}, []string{"SET", "k", "v", "PXAT", shifted(testT + 10_000), "XX"}, k, false},
		// The value is never mistaken for an option.
		{[]string{"SET", "k", "EX", "PX", "5"}, []string{"SET", "k", "EX", "PXAT", shifted(testT + 5)}, k, false},
		{[]string{"SET", "k", "EX"}, nil, nil, false},
		// Past deadlines.
		{[]string{"SET", "k", "v", "PXAT", "5"}, []string{"SET", "k", "v", "PXAT", shifted(5)}, k, true},
		{[]string{"SET", "k", "v", "EXAT", "1"}, []string{"SET", "k", "v", "PXAT", shifted(1000)}, k, true},
		// No expiry, KEEPTTL, invalid values: unchanged.
		{[]string{"SET", "k", "v"}, nil, nil, false},
		{[]string{"SET", "k", "v", "KEEPTTL"}, nil, nil, false},
		{[]string{"SET", "k", "v", "EX", "0"}, nil, nil, false},
		{[]string{"SET", "k", "v", "EX", "-5"}, nil, nil, false},
		{[]string{"SET", "k", "v", "EX", "abc"}, nil, nil, false},
		{[]string{"SET", "k", "v", "PX", "1e3"}, nil, nil, false},
		{[]string{"SET", "k", "v", "EX", strconv.FormatInt(math.MaxInt64/1000+1, 10)}, nil, nil, false},
		{[]string{"SET", "k", "v", "EX", maxEX}, []string{"SET", "k", "v", "PXAT", shifted(testT + (math.MaxInt64-testT)/1000*1000)}, k, false},
		// SETEX / PSETEX become SET ... PXAT.
		{[]string{"SETEX", "k", "10", "v"}, []string{"SET", "k", "v", "PXAT", shifted(testT + 10_000)}, k, false},
		{[]string{"psetex", "k", "1500", "v"}, []string{"SET", "k", "v", "PXAT", shifted(testT + 1500)}, k, false},
		{[]string{"SETEX", "k", "0", "v"}, nil, nil, false},
		{[]string{"SETEX", "k", "-1", "v"}, nil, nil, false},
		{[]string{"SETEX", "k", "ten", "v"}, nil, nil, false},
		// GETEX options start right after the key.
		{[]string{"GETEX", "k", "EX", "10"}, []string{"GETEX", "k", "PXAT", shifted(testT + 10_000)}, k, false},
		{[]string{"GETEX", "k", "PX", "10"}, []string{"GETEX", "k", "PXAT", shifted(testT + 10)}, k, false},
		{[]string{"GETEX", "k", "PXAT", "1"}, []string{"GETEX", "k", "PXAT", shifted(1)}, k, true},
		{[]string{"GETEX", "k", "EXAT", "1800000000"}, []string{"GETEX", "k", "PXAT", shifted(1_800_000_000_000)}, k, false},
		{[]string{"GETEX", "k"}, nil, nil, false},
		{[]string{"GETEX", "k", "PERSIST"}, nil, nil, false},
		{[]string{"GETEX", "k", "EX", "0"}, nil, nil, false},
	})
}

func TestPlanRestore(t *testing.T) {
	k := keys(0, "k")
	checkRewrites(t, []rewriteCase{
		{[]string{"RESTORE", "k", "5000", "payload"}, []string{"RESTORE", "k", shifted(testT + 5000), "payload", "ABSTTL"}, k, false},
		{[]string{"RESTORE", "k", "5000", "payload", "REPLACE"}, []string{"RESTORE", "k", shifted(testT + 5000), "payload", "REPLACE", "ABSTTL"}, k, false},
		{[]string{"RESTORE", "k", "1800000000000", "payload", "ABSTTL"}, []string{"RESTORE", "k", shifted(1_800_000_000_000), "payload", "ABSTTL"}, k, false},
		{[]string{"RESTORE", "k", "1800000000000", "payload", "REPLACE", "absttl", "IDLETIME", "5"},
			[]string{"RESTORE", "k", shifted(1_800_000_000_000), "payload", "REPLACE", "absttl", "IDLETIME", "5"}, k, false},
		{[]string{"RESTORE", "k", "1000", "payload", "ABSTTL"}, []string{"RESTORE", "k", shifted(1000), "payload", "ABSTTL"}, k, true},
		// No TTL, or an invalid one: unchanged.
		{[]string{"RESTORE", "k", "0", "payload"}, nil, nil, false},
		{[]string{"RESTORE", "k", "0", "payload", "ABSTTL"}, nil, nil, false},
		{[]string{"RESTORE", "k", "-1", "payload"}, nil, nil, false},
		{[]string{"RESTORE", "k", "x", "payload"}, nil, nil, false},
	})
}

func TestXaddIDPos(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"XADD", "s", "*", "f", "v"}, 2},
		{[]string{"XADD", "s", "1-1", "f", "v"}, 2},
		{[]string{"XADD", "s", "NOMKSTREAM", "*", "f", "v"}, 3},
		{[]string{"XADD", "s", "MAXLEN", "10", "*", "f", "v"}, 4},
		{[]string{"XADD", "s", "maxlen", "~", "10", "*", "f", "v"}, 5},
		{[]string{"XADD", "s", "MAXLEN", "=", "10", "*", "f", "v"}, 5},
		{[]string{"XADD", "s", "MINID", "~", "0-1", "LIMIT", "100", "*", "f", "v"}, 7},
		{[]string{"XADD", "s", "NOMKSTREAM", "MAXLEN", "~", "1000", "LIMIT", "10", "*", "f", "v"}, 8},
		{[]string{"XADD", "s", "NOMKSTREAM"}, -1},
		{[]string{"XADD", "s", "MAXLEN"}, -1},
		{[]string{"XADD", "s"}, -1},
	}
	for _, tc := range tests {
		if got := xaddIDPos(argv(tc.args...)); got != tc.want {
			t.Errorf("xaddIDPos(%q) = %d, want %d", tc.args, got, tc.want)
		}
	}
}

func TestPlanXadd(t *testing.T) {
	T := strconv.FormatInt(testT, 10)
	viaScript := func(pos string, rest ...string) []string {
		return append([]string{"EVAL", xaddScript, "1", "s", T, pos}, rest...)
	}
	checkRewrites(t, []rewriteCase{
		{[]string{"XADD", "s", "*", "f", "v"}, viaScript("1", "*", "f", "v"), nil, false},
		{[]string{"XADD", "s", "NOMKSTREAM", "MAXLEN", "~", "1000", "LIMIT", "10", "*", "f", "*"},
			viaScript("7", "NOMKSTREAM", "MAXLEN", "~", "1000", "LIMIT", "10", "*", "f", "*"), nil, false},
		{[]string{"XADD", "s", "MINID", "=", "5", "*", "a", "1"}, viaScript("4", "MINID", "=", "5", "*", "a", "1"), nil, false},
		// Explicit IDs, or a field named "*", are left alone.
		{[]string{"XADD", "s", "5-1", "f", "v"}, nil, nil, false},
		{[]string{"XADD", "s", "5-*", "*", "v"}, nil, nil, false},
		{[]string{"XADD", "*", "1-1", "f", "v"}, nil, nil, false},
	})
	// A huge XADD (more arguments than a script can pass on) uses T-*.
	huge := []string{"XADD", "s", "*"}
	for i := 0; i < maxScriptArgs; i++ {
		huge = append(huge, "f")
	}
	if st := planArgs(t, 0, huge...); string(st.args[2]) != T+"-*" {
		t.Errorf("huge XADD planned as %q ...", strs(st.args[:3]))
	}
}

func TestPlanSpop(t *testing.T) {
	st := planArgs(t, 0, "SPOP", "s")
	want := []string{"EVAL", spopScript, "1", "s", "7", ""}
	if !reflect.DeepEqual(strs(st.args), want) {
		t.Errorf("SPOP s = %q", strs(st.args))
	}
	st = planArgs(t, 0, "spop", "s", "3")
	if got := strs(st.args); len(got) != 6 || got[0] != "EVAL" || got[3] != "s" || got[5] != "3" {
		t.Errorf("SPOP s 3 = %q", got)
	}
	if st := planArgs(t, 0, "SPOP", "s", "0"); string(st.args[5]) != "0" {
		t.Errorf("SPOP s 0 count = %q", st.args[5])
	}
	for _, bad := range [][]string{{"SPOP", "s", "-1"}, {"SPOP", "s", "x"}, {"SPOP", "s", "1", "2"}} {
		if st := planArgs(t, 0, bad...); !reflect.DeepEqual(strs(st.args), bad) {
			t.Errorf("%q rewritten to %q", bad, strs(st.args))
		}
	}
	// The seed picks the members; it is reduced below 2^31 for Lua.
	tbl := newTestTable(t).meta
	c := &entryCmd{Args: argv("SPOP", "s")}
	a := planCommand(tbl, c, testT, 1<<31+5, noScripts{}.get)
	b := planCommand(tbl, c, testT, 5, noScripts{}.get)
	d := planCommand(tbl, c, testT, 6, noScripts{}.get)
	if string(a.args[4]) != "5" || string(b.args[4]) != "5" || string(d.args[4]) != "6" {
		t.Errorf("seeds %s %s %s", a.args[4], b.args[4], d.args[4])
	}
	if !strings.Contains(spopScript, "table.sort") {
		t.Error("spopScript must sort members before choosing")
	}
	if !sameKeys(st.precheck, keys(0, "s")) {
		t.Errorf("precheck = %v", st.precheck)
	}
}

func TestPlanEval(t *testing.T) {
	st := planArgs(t, 3, "EVAL", "return 1", "2", "a", "b", "x")
	want := []string{"EVAL", scriptWithPrelude("return 1"), "2", "a", "b", "x", strconv.FormatInt(testT, 10)}
	if !reflect.DeepEqual(strs(st.args), want) {
		t.Errorf("EVAL args = %q", strs(st.args))
	}
	if st.script != "return 1" {
		t.Errorf("script = %q", st.script)
	}
	if !sameKeys(st.readBack, keys(3, "a", "b")) || !sameKeys(st.precheck, keys(3, "a", "b")) {
		t.Errorf("readBack %v precheck %v", st.readBack, st.precheck)
	}
	if st.db != 3 {
		t.Errorf("db = %d", st.db)
	}
}

func TestPlanEvalsha(t *testing.T) {
	tbl := newTestTable(t).meta
	body := "return redis.call('GET', KEYS[1])"
	sha := scriptSHA(body)
	var asked []string
	scripts := func(s string) (string, bool) {
		asked = append(asked, s)
		if s == sha {
			return body, true
		}
		return "", false
	}
	// Known script, SHA given in upper case.
	st := planCommand(tbl, &entryCmd{Args: argv("EVALSHA", strings.ToUpper(sha), "1", "k", "arg")}, testT, 1, scripts)
	want := []string{"EVAL", scriptWithPrelude(body), "1", "k", "arg", strconv.FormatInt(testT, 10)}
	if !reflect.DeepEqual(strs(st.args), want) || st.script != body {
		t.Errorf("EVALSHA known: args %q script %q", strs(st.args), st.script)
	}
	if len(asked) != 1 || asked[0] != sha {
		t.Errorf("script cache asked for %q, want lower-case %q", asked, sha)
	}
	if !sameKeys(st.readBack, keys(0, "k")) {
		t.Errorf("readBack = %v", st.readBack)
	}
	// Unknown script: sent unchanged, so the child (which knows only
	// prelude-wrapped scripts) answers NOSCRIPT, also inside MULTI.
	unknown := argv("evalsha", "0123456789012345678901234567890123456789", "0")
	st = planCommand(tbl, &entryCmd{Args: unknown}, testT, 1, scripts)
	if !sameArgs(st.args, unknown) {
		t.Errorf("unknown sha: args %q", st.args)
	}
	if st.script != "" || st.readBack != nil {
		t.Errorf("unknown sha: script %q readBack %v", st.script, st.readBack)
	}
}

func TestPlanScriptLoadAndFlush(t *testing.T) {
	body := "return 1"
	st := planArgs(t, 0, "SCRIPT", "LOAD", body)
	if got := strs(st.args); len(got) != 3 || got[0] != "SCRIPT" || got[1] != "LOAD" || got[2] != scriptWithPrelude(body) {
		t.Errorf("SCRIPT LOAD args = %q", got)
	}
	if st.script != body || st.mapReply == nil {
		t.Fatalf("script %q mapReply %v", st.script, st.mapReply != nil)
	}
	// The child answers the SHA of the wrapped body; the client must see
	// the SHA of its own body.
	if got := string(st.mapReply(resp.Bulk(scriptSHA(scriptWithPrelude(body))))); got != string(resp.Bulk("e0e1f9fabfc9d4800c877a703b823ac0578ff8db")) {
		t.Errorf("mapped reply = %q", got)
	}
	if got := string(st.mapReply(resp.Error("ERR x"))); got != "-ERR x\r\n" {
		t.Errorf("errors must pass through: %q", got)
	}
	st = planArgs(t, 0, "SCRIPT", "FLUSH")
	if !st.flushAll || st.script != "" {
		t.Errorf("SCRIPT FLUSH: %+v", st)
	}
	if st := planArgs(t, 0, "SCRIPT", "EXISTS", "x"); st.flushAll || st.mapReply != nil {
		t.Errorf("SCRIPT EXISTS planned as a write: %+v", st)
	}
}

func TestScriptWithPrelude(t *testing.T) {
	if strings.ContainsAny(scriptPrelude, "\r\n") {
		t.Fatal("the prelude spans lines: error line numbers in user scripts would move")
	}
	if !strings.Contains(scriptPrelude, strconv.FormatInt(deadlineShift, 10)) {
		t.Error("the prelude does not carry deadlineShift")
	}
	if got := scriptWithPrelude("return 1"); got != scriptPrelude+" return 1" {
		t.Errorf("plain = %q", got)
	}
	body := "#!lua flags=no-writes\nreturn 1\nreturn 2"
	got := scriptWithPrelude(body)
	if got != "#!lua flags=no-writes\n"+scriptPrelude+" return 1\nreturn 2" {
		t.Errorf("shebang = %q", got)
	}
	if strings.Count(got, "\n") != strings.Count(body, "\n") {
		t.Error("line count changed")
	}
	if got := scriptWithPrelude("#!lua"); got != "#!lua\n"+scriptPrelude {
		t.Errorf("shebang without body = %q", got)
	}
	if scriptSHA("return 1") != "e0e1f9fabfc9d4800c877a703b823ac0578ff8db" {
		t.Errorf("scriptSHA = %s", scriptSHA("return 1"))
	}
}

func TestPlanKeyspaceCommands(t *testing.T) {
	tests := []struct {
		db       int
		args     []string
		readBack []dbKey
	}{
		{2, []string{"RENAME", "a", "b"}, keys(2, "b")},
		{2, []string{"RENAMENX", "a", "b"}, keys(2, "b")},
		{2, []string{"COPY", "a", "b"}, keys(2, "b")},
		{2, []string{"COPY", "a", "b", "DB", "5", "REPLACE"}, keys(5, "b")},
		{2, []string{"COPY", "a", "b", "db", "x"}, keys(2, "b")},
		{2, []string{"MOVE", "a", "7"}, keys(7, "a")},
		{2, []string{"MOVE", "a", "x"}, nil},
	}
	for _, tc := range tests {
		st := planArgs(t, tc.db, tc.args...)
		if !sameKeys(st.readBack, tc.readBack) {
			t.Errorf("%q: readBack %v, want %v", tc.args, st.readBack, tc.readBack)
		}
		if !reflect.DeepEqual(strs(st.args), tc.args) {
			t.Errorf("%q rewritten to %q", tc.args, strs(st.args))
		}
	}
	if st := planArgs(t, 4, "RENAME", "a", "b"); !sameKeys(st.precheck, keys(4, "a", "b")) {
		t.Errorf("RENAME precheck %v", st.precheck)
	}
}

func TestPlanIndexEffects(t *testing.T) {
	if st := planArgs(t, 3, "FLUSHDB"); st.effect != effectFlushDB || st.db != 3 {
		t.Errorf("FLUSHDB: %v db %d", st.effect, st.db)
	}
	if st := planArgs(t, 3, "FLUSHDB", "ASYNC"); st.effect != effectFlushDB {
		t.Errorf("FLUSHDB ASYNC: %v", st.effect)
	}
	if st := planArgs(t, 0, "flushall"); st.effect != effectFlushAll {
		t.Errorf("FLUSHALL: %v", st.effect)
	}
	if st := planArgs(t, 0, "SWAPDB", "1", "2"); st.effect != effectSwapDB || st.swapA != 1 || st.swapB != 2 {
		t.Errorf("SWAPDB: %+v", st)
	}
	if st := planArgs(t, 0, "SWAPDB", "x", "2"); st.effect != effectNone {
		t.Errorf("SWAPDB x 2: %v", st.effect)
	}
	if st := planArgs(t, 0, "SET", "k", "v"); st.effect != effectNone {
		t.Errorf("SET: %v", st.effect)
	}
}

func TestPlanUnknownAndPlainCommands(t *testing.T) {
	for _, args := range [][]string{{"NOSUCH", "x"}, {"GET", "k"}, {"DEL", "a", "b"}} {
		st := planArgs(t, 1, args...)
		if !reflect.DeepEqual(strs(st.args), args) || st.readBack != nil || st.expireNow ||
			st.script != "" || st.effect != effectNone || st.sub != nil {
			t.Errorf("%q planned as %+v", args, st)
		}
	}
	if st := planArgs(t, 1, "NOSUCH", "x"); st.precheck != nil {
		t.Errorf("unknown command has precheck %v", st.precheck)
	}
	if st := planArgs(t, 1, "DEL", "a", "b"); !sameKeys(st.precheck, keys(1, "a", "b")) {
		t.Errorf("DEL precheck %v", st.precheck)
	}
}

func TestPlanTransaction(t *testing.T) {
	tbl := newTestTable(t).meta
	c := &entryCmd{DB: 2, Args: argv("EXEC"), Sub: []entryCmd{
		{DB: 2, Args: argv("SET", "a", "v", "EX", "10")},
		{DB: 2, Args: argv("EXPIRE", "b", "0")},
		{DB: 2, Args: argv("SPOP", "s")},
		{DB: 2, Args: argv("SPOP", "s")},
		{DB: 2, Args: argv("GET", "a")},
	}}
	st := planCommand(tbl, c, testT, 100, noScripts{}.get)
	if got := strs(st.args); len(got) != 1 || got[0] != "MULTI" {
		t.Errorf("transaction args = %q", got)
	}
	if len(st.sub) != 5 {
		t.Fatalf("%d sub steps", len(st.sub))
	}
	if got := strs(st.sub[0].args); got[3] != "PXAT" || got[4] != shifted(testT+10_000) {
		t.Errorf("sub 0 = %q", got)
	}
	if got := strs(st.sub[1].args); got[0] != "PEXPIREAT" || got[2] != shifted(testT) {
		t.Errorf("sub 1 = %q", got)
	}
	// Each SPOP gets its own seed, so two pops in one transaction differ.
	if string(st.sub[2].args[4]) == string(st.sub[3].args[4]) {
		t.Errorf("both SPOPs got seed %s", st.sub[2].args[4])
	}
	// Keys are collected on the transaction, not on its commands.
	if !sameKeys(st.readBack, keys(2, "a", "b")) {
		t.Errorf("readBack = %v", st.readBack)
	}
	if !sameKeys(st.precheck, keys(2, "a", "b", "s", "s", "a")) {
		t.Errorf("precheck = %v", st.precheck)
	}
	for i, sub := range st.sub {
		if sub.precheck != nil || sub.readBack != nil {
			t.Errorf("sub %d kept its keys: %v %v", i, sub.precheck, sub.readBack)
		}
	}
	if !st.expireNow {
		t.Error("EXPIRE b 0 inside the transaction must set expireNow")
	}
	// Planning is deterministic.
	again := planCommand(tbl, c, testT, 100, noScripts{}.get)
	for i := range st.sub {
		if !reflect.DeepEqual(strs(st.sub[i].args), strs(again.sub[i].args)) {
			t.Errorf("sub %d planned differently twice", i)
		}
	}
}

func TestPlanTransactionWithoutExpiry(t *testing.T) {
	tbl := newTestTable(t).meta
	c := &entryCmd{Args: argv("EXEC"), Sub: []entryCmd{{Args: argv("SET", "a", "1")}, {Args: argv("GET", "a")}}}
	st := planCommand(tbl, c, testT, 1, noScripts{}.get)
	if st.expireNow || len(st.readBack) != 0 || len(st.sub) != 2 {
		t.Errorf("plain transaction: %+v", st)
	}
	if got := strs(st.sub[0].args); !reflect.DeepEqual(got, []string{"SET", "a", "1"}) {
		t.Errorf("sub 0 = %q", got)
	}
}

// TTL reads only reach planCommand inside a transaction, where they must be
// answered from the shifted deadline at T rather than the child's clock.
func TestPlanTTLInsideTransaction(t *testing.T) {
	tbl := newTestTable(t).meta
	c := &entryCmd{Args: argv("EXEC", "watch-7"), Sub: []entryCmd{
		{Args: argv("TTL", "k")}, {Args: argv("pttl", "k")}, {Args: argv("PEXPIRETIME", "k")},
	}}
	st := planCommand(tbl, c, testT, 1, noScripts{}.get)
	if st.watch != "watch-7" {
		t.Errorf("watch = %q", st.watch)
	}
	for i, name := range []string{"ttl", "pttl", "pexpiretime"} {
		got := strs(st.sub[i].args)
		want := strs(ttlCommand(name, []byte("k"), testT))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s planned as %q", name, got)
		}
	}
	if !strings.Contains(ttlScript, strconv.FormatInt(deadlineShift, 10)) {
		t.Error("ttlScript does not unshift deadlines")
	}
	if st := planCommand(tbl, &entryCmd{Args: argv("EXEC"), Sub: []entryCmd{{Args: argv("GET", "k")}}}, testT, 1, noScripts{}.get); st.watch != "" {
		t.Errorf("watch without an ID = %q", st.watch)
	}
}

func TestPlanRead(t *testing.T) {
	tbl := newTestTable(t).meta
	body := "return 1"
	scripts := func(s string) (string, bool) { return body, s == scriptSHA(body) }
	args := argv("EVAL_RO", body, "1", "k")
	rs := planRead(tbl.Lookup(args), args, 1234, scripts)
	// A read-only script gets the time negated: the prelude's read-only flag.
	if want := []string{"EVAL_RO", scriptWithPrelude(body), "1", "k", "-1234"}; !reflect.DeepEqual(strs(rs.Args), want) {
		t.Errorf("EVAL_RO = %q", strs(rs.Args))
	}
	args = argv("EVALSHA_RO", strings.ToUpper(scriptSHA(body)), "0")
	if rs := planRead(tbl.Lookup(args), args, 1234, scripts); len(rs.Args) == 0 || string(rs.Args[1]) != scriptWithPrelude(body) {
		t.Errorf("EVALSHA_RO known = %q", strs(rs.Args))
	}
	args = argv("EVALSHA_RO", "ffff", "0")
	if rs := planRead(tbl.Lookup(args), args, 1234, scripts); !strings.HasPrefix(string(rs.Reply), "-NOSCRIPT") {
		t.Errorf("EVALSHA_RO unknown reply = %q", rs.Reply)
	}
	args = argv("GET", "k")
	if rs := planRead(tbl.Lookup(args), args, 1234, scripts); !reflect.DeepEqual(strs(rs.Args), []string{"GET", "k"}) {
		t.Errorf("GET = %q", strs(rs.Args))
	}
}

func BenchmarkPlanCommandSet(b *testing.B) {
	tbl := newTestTable(b).meta
	cmds := []entryCmd{
		{Args: argv("SET", "key:000001", "value")},
		{Args: argv("SET", "key:000002", "value", "EX", "60")},
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st := planCommand(tbl, &cmds[i&1], testT, uint64(i), noScripts{}.get)
		if len(st.args) < 3 {
			b.Fatal("bad plan")
		}
	}
}

func sameArgs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if string(a[i]) != string(b[i]) {
			return false
		}
	}
	return true
}

func TestShiftedClamps(t *testing.T) {
	if got := shifted(math.MaxInt64 - 1); got != strconv.FormatInt(math.MaxInt64, 10) {
		t.Errorf("shifted(max-1) = %s", got)
	}
	if got := shifted(5); got != strconv.FormatInt(5+deadlineShift, 10) {
		t.Errorf("shifted(5) = %s", got)
	}
}
