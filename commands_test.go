package main

import (
	"fmt"
	"strings"
	"testing"
)

// cmdEntry builds one parsed COMMAND entry the way parseReply returns it for
// Redis 7: name (bulk), arity, flags (status strings), first, last, step,
// ACL categories, tips, key specs, subcommands.
func cmdEntry(name string, arity int, flags []string, first, last, step int, subs ...any) any {
	fl := make([]any, len(flags))
	for i, f := range flags {
		fl[i] = f
	}
	return []any{
		[]byte(name), int64(arity), fl, int64(first), int64(last), int64(step),
		[]any{"@keyspace"}, []any{}, []any{}, append([]any{}, subs...),
	}
}

// testCommandEntries is a hand-written excerpt of Redis 7's COMMAND reply,
// enough for the tests of this package.
func testCommandEntries() []any {
	w := []string{"write", "denyoom"}
	wf := []string{"write", "fast"}
	ro := []string{"readonly", "fast"}
	scr := []string{"noscript", "skip_monitor", "may_replicate", "no_mandatory_keys", "stale", "movablekeys"}
	adm := []string{"admin", "noscript", "loading", "stale"}
	return []any{
		cmdEntry("get", 2, ro, 1, 1, 1),
		cmdEntry("mget", -2, ro, 1, -1, 1),
		cmdEntry("set", -3, w, 1, 1, 1),
		cmdEntry("mset", -3, w, 1, -1, 2),
		cmdEntry("del", -2, []string{"write"}, 1, -1, 1),
		cmdEntry("getex", -2, wf, 1, 1, 1),
		cmdEntry("setex", 4, w, 1, 1, 1),
		cmdEntry("psetex", 4, w, 1, 1, 1),
		cmdEntry("expire", -3, wf, 1, 1, 1),
		cmdEntry("pexpire", -3, wf, 1, 1, 1),
		cmdEntry("expireat", -3, wf, 1, 1, 1),
		cmdEntry("pexpireat", -3, wf, 1, 1, 1),
		cmdEntry("restore", -4, w, 1, 1, 1),
		cmdEntry("rename", 3, []string{"write"}, 1, 2, 1),
		cmdEntry("renamenx", 3, wf, 1, 2, 1),
		cmdEntry("copy", -3, w, 1, 2, 1),
		cmdEntry("move", 3, wf, 1, 1, 1),
		cmdEntry("swapdb", 3, wf, 0, 0, 0),
		cmdEntry("flushdb", -1, []string{"write"}, 0, 0, 0),
		cmdEntry("flushall", -1, []string{"write"}, 0, 0, 0),
		cmdEntry("xadd", -5, []string{"write", "denyoom", "fast"}, 1, 1, 1),
		cmdEntry("spop", -2, wf, 1, 1, 1),
		cmdEntry("eval", -3, scr, 0, 0, 0),
		cmdEntry("evalsha", -3, scr, 0, 0, 0),
		cmdEntry("eval_ro", -3, []string{"readonly", "noscript", "movablekeys"}, 0, 0, 0),
		cmdEntry("evalsha_ro", -3, []string{"readonly", "noscript", "movablekeys"}, 0, 0, 0),
		cmdEntry("script", -2, nil, 0, 0, 0,
			cmdEntry("script|load", 3, []string{"noscript", "stale"}, 0, 0, 0),
			cmdEntry("script|flush", -2, []string{"noscript"}, 0, 0, 0),
			cmdEntry("script|exists", -3, []string{"noscript"}, 0, 0, 0),
			cmdEntry("script|kill", 2, []string{"noscript"}, 0, 0, 0),
		),
		cmdEntry("config", -2, nil, 0, 0, 0,
			cmdEntry("config|get", -3, adm, 0, 0, 0),
			cmdEntry("config|set", -4, adm, 0, 0, 0),
			cmdEntry("config|frobnicate", 2, adm, 0, 0, 0), // no policy
		),
		cmdEntry("client", -2, nil, 0, 0, 0,
			cmdEntry("client|list", -2, adm, 0, 0, 0),
			cmdEntry("client|setname", 3, []string{"noscript", "loading", "stale"}, 0, 0, 0),
			cmdEntry("client|peek", 3, []string{"readonly"}, 0, 0, 0), // own flag wins
		),
		cmdEntry("object", -2, nil, 0, 0, 0,
			cmdEntry("object|encoding", 3, []string{"readonly"}, 2, 2, 1),
			cmdEntry("object|help", 2, []string{"loading", "stale"}, 0, 0, 0),
		),
		cmdEntry("memory", -2, nil, 0, 0, 0,
			cmdEntry("memory|usage", -3, []string{"readonly"}, 2, 2, 1),
			cmdEntry("memory|doctor", 2, nil, 0, 0, 0),
		),
		cmdEntry("ping", -1, []string{"fast", "sentinel"}, 0, 0, 0),
		cmdEntry("ttl", 2, []string{"readonly", "fast"}, 1, 1, 1),
		cmdEntry("pttl", 2, []string{"readonly", "fast"}, 1, 1, 1),
		cmdEntry("pexpiretime", 2, []string{"readonly", "fast"}, 1, 1, 1),
		cmdEntry("debug", -2, []string{"admin", "noscript", "loading", "stale"}, 0, 0, 0),
		cmdEntry("lolwut", -1, []string{"readonly", "fast"}, 0, 0, 0),
		cmdEntry("bogus", -1, []string{"admin"}, 0, 0, 0),
		cmdEntry("zunionstore", -4, []string{"write", "denyoom", "movablekeys"}, 1, 1, 1),
		cmdEntry("zinterstore", -4, []string{"write", "denyoom", "movablekeys"}, 1, 1, 1),
		cmdEntry("zunion", -3, []string{"readonly", "movablekeys"}, 0, 0, 0),
		cmdEntry("sort", -2, []string{"write", "denyoom", "movablekeys"}, 1, 1, 1),
		cmdEntry("sort_ro", -2, []string{"readonly", "movablekeys"}, 1, 1, 1),
		cmdEntry("xread", -4, []string{"readonly", "blocking", "movablekeys"}, 0, 0, 0),
		cmdEntry("xreadgroup", -7, []string{"write", "blocking", "movablekeys"}, 0, 0, 0),
		cmdEntry("lmpop", -4, []string{"write", "movablekeys"}, 0, 0, 0),
		cmdEntry("blmpop", -5, []string{"write", "blocking", "movablekeys"}, 0, 0, 0),
		cmdEntry("blpop", -3, []string{"write", "blocking"}, 1, -2, 1),
		cmdEntry("georadius", -6, []string{"write", "denyoom", "movablekeys"}, 1, 1, 1),
		cmdEntry("sintercard", -3, []string{"readonly", "movablekeys"}, 0, 0, 0),
		cmdEntry("publish", 3, []string{"pubsub", "loading", "stale", "fast", "may_replicate"}, 0, 0, 0),
	}
}

// newTestTable builds a command table without a child.
func newTestTable(tb testing.TB) *commandTable {
	tb.Helper()
	t := &commandTable{byName: map[string]*commandInfo{}}
	for _, item := range testCommandEntries() {
		info := parseCommandInfo(item, nil)
		if info == nil {
			tb.Fatalf("parseCommandInfo rejected %v", item)
		}
		t.byName[info.name] = info
	}
	return t
}

func argv(s ...string) [][]byte {
	out := make([][]byte, len(s))
	for i, a := range s {
		out[i] = []byte(a)
	}
	return out
}

func strs(b [][]byte) []string {
	out := make([]string, len(b))
	for i, a := range b {
		out[i] = string(a)
	}
	return out
}

func TestParseCommandInfoFields(t *testing.T) {
	info := parseCommandInfo(cmdEntry("MSET", -3, []string{"write", "denyoom", "movablekeys", "blocking"}, 1, -1, 2), nil)
	if info == nil {
		t.Fatal("nil info")
	}
	if info.name != "mset" {
		t.Errorf("name = %q, want lower case mset", info.name)
	}
	if info.arity != -3 || info.first != 1 || info.last != -1 || info.step != 2 {
		t.Errorf("arity/range = %d %d %d %d", info.arity, info.first, info.last, info.step)
	}
	if !info.denyOOM || !info.movable || !info.blocking {
		t.Errorf("flags not decoded: %+v", info)
	}
	if info.kind != kindWrite || info.subs != nil {
		t.Errorf("kind=%v subs=%v", info.kind, info.subs)
	}
	// A short entry (older Redis: 6 fields, no subcommands) still parses.
	short := []any{"get", int64(2), []any{"readonly"}, int64(1), int64(1), int64(1)}
	if got := parseCommandInfo(short, nil); got == nil || got.kind != kindRead || got.name != "get" {
		t.Errorf("6-field entry: %+v", got)
	}
}

func TestParseCommandInfoRejectsMalformed(t *testing.T) {
	for _, item := range []any{
		nil,
		"set",
		int64(3),
		[]any{},
		[]any{"set", int64(-3), []any{}, int64(1), int64(1)},
	} {
		if got := parseCommandInfo(item, nil); got != nil {
			t.Errorf("parseCommandInfo(%#v) = %+v, want nil", item, got)
		}
	}
}

// policyKind is the kind the policies table gives name; the tests check the
// mechanism (policy over flags, inheritance), not the policy list itself.
func policyKind(t *testing.T, name string) (commandKind, string) {
	t.Helper()
	p, ok := policies[name]
	if !ok {
		t.Fatalf("test assumes a policy for %q", name)
	}
	return p.kind, p.refusal
}

func TestCommandClassification(t *testing.T) {
	tbl := newTestTable(t)
	type want struct {
		name    string
		kind    commandKind
		refusal string // exact, when kind is kindRefused
	}
	fromPolicy := func(name string) want {
		k, r := policyKind(t, name)
		return want{name, k, r}
	}
	inherited := func(name, parent string) want {
		k, r := policyKind(t, parent)
		return want{name, k, r}
	}
	notSupported := func(name, shown string) want {
		return want{name, kindRefused, "ERR command '" + shown + "' is not supported by redraft"}
	}
	tests := []struct {
		args []string
		want want
	}{
		// Flags decide when there is no policy.
		{[]string{"get", "k"}, want{"get", kindRead, ""}},
		{[]string{"SET", "k", "v"}, want{"set", kindWrite, ""}},
		{[]string{"eval_ro", "x", "0"}, want{"eval_ro", kindRead, ""}},
		// Neither write nor readonly, no policy: refused.
		{[]string{"bogus"}, notSupported("bogus", "bogus")},
		// A policy overrides the flags (ttl is readonly, eval has no write flag).
		{[]string{"ping"}, fromPolicy("ping")},
		{[]string{"ttl", "k"}, fromPolicy("ttl")},
		{[]string{"lolwut"}, fromPolicy("lolwut")},
		{[]string{"eval", "x", "0"}, fromPolicy("eval")},
		{[]string{"publish", "c", "m"}, fromPolicy("publish")},
		{[]string{"debug", "sleep", "0"}, fromPolicy("debug")},
		// Subcommands: their own policy, else their own flags, else the
		// container's policy, else refused with a spaced name.
		{[]string{"config", "get", "x"}, fromPolicy("config|get")},
		{[]string{"CONFIG", "SET", "x", "y"}, fromPolicy("config|set")},
		{[]string{"config", "frobnicate"}, notSupported("config|frobnicate", "config frobnicate")},
		{[]string{"config"}, notSupported("config", "config")},
		{[]string{"client", "list"}, inherited("client|list", "client")},
		{[]string{"client", "setname", "x"}, inherited("client|setname", "client")},
		{[]string{"client", "peek", "x"}, want{"client|peek", kindRead, ""}},
		{[]string{"object", "encoding", "k"}, want{"object|encoding", kindRead, ""}},
		{[]string{"object", "help"}, fromPolicy("object|help")},
		{[]string{"object", "nosuch"}, notSupported("object", "object")}, // unknown sub: the container
		{[]string{"memory", "usage", "k"}, want{"memory|usage", kindRead, ""}},
		{[]string{"memory", "doctor"}, inherited("memory|doctor", "memory")},
		{[]string{"script", "load", "return 1"}, fromPolicy("script|load")},
		{[]string{"script", "exists", "x"}, fromPolicy("script|exists")},
		{[]string{"Script", "KILL"}, fromPolicy("script|kill")},
	}
	for _, tc := range tests {
		info := tbl.lookup(argv(tc.args...))
		if info == nil {
			t.Errorf("%v: lookup returned nil", tc.args)
			continue
		}
		if info.name != tc.want.name || info.kind != tc.want.kind || info.refusal != tc.want.refusal {
			t.Errorf("%v: got %s/%v/%q, want %s/%v/%q", tc.args, info.name, info.kind, info.refusal,
				tc.want.name, tc.want.kind, tc.want.refusal)
		}
		if info.kind == kindRefused && !strings.HasPrefix(info.refusal, "ERR ") {
			t.Errorf("%v: refusal %q lacks an error code", tc.args, info.refusal)
		}
	}
}

// Every policy name is lower case and every refusal carries Redis's ERR
// prefix, or lookup and clients would never see them as intended.
func TestPoliciesWellFormed(t *testing.T) {
	for name, p := range policies {
		if name != strings.ToLower(name) {
			t.Errorf("policy %q is not lower case", name)
		}
		if (p.kind == kindRefused) != (p.refusal != "") {
			t.Errorf("policy %q: kind %v with refusal %q", name, p.kind, p.refusal)
		}
		if p.refusal != "" && !strings.HasPrefix(p.refusal, "ERR ") {
			t.Errorf("policy %q: refusal %q lacks ERR", name, p.refusal)
		}
	}
}

func TestLookupUnknownAndCase(t *testing.T) {
	tbl := newTestTable(t)
	if info := tbl.lookup(argv("nosuchcommand", "x")); info != nil {
		t.Errorf("unknown command: %+v", info)
	}
	a := tbl.lookup(argv("GeT", "k"))
	b := tbl.lookup(argv("get", "k"))
	if a == nil || a != b {
		t.Errorf("lookup is not case-insensitive: %p %p", a, b)
	}
	// A command without subcommands ignores its second argument.
	if info := tbl.lookup(argv("set", "get", "v")); info == nil || info.name != "set" {
		t.Errorf("set get v: %+v", info)
	}
}

func TestLower(t *testing.T) {
	for in, want := range map[string]string{"": "", "get": "get", "GET": "get", "gEt|X": "get|x", "a1-_": "a1-_"} {
		if got := lower([]byte(in)); got != want {
			t.Errorf("lower(%q) = %q, want %q", in, got, want)
		}
	}
	// lower must not modify its input.
	in := []byte("ABC")
	_ = lower(in)
	if string(in) != "ABC" {
		t.Errorf("lower mutated its argument: %q", in)
	}
}

func TestArity(t *testing.T) {
	tbl := newTestTable(t)
	tests := []struct {
		args []string
		ok   bool
	}{
		{[]string{"get"}, false},
		{[]string{"get", "k"}, true},
		{[]string{"get", "k", "x"}, false},
		{[]string{"set", "k"}, false},
		{[]string{"set", "k", "v"}, true},
		{[]string{"set", "k", "v", "EX", "10"}, true},
		{[]string{"setex", "k", "10"}, false},
		{[]string{"setex", "k", "10", "v"}, true},
		{[]string{"setex", "k", "10", "v", "x"}, false},
		{[]string{"ping"}, true},
		{[]string{"config", "get"}, false},
		{[]string{"config", "get", "x"}, true},
		{[]string{"config", "get", "x", "y"}, true},
	}
	for _, tc := range tests {
		info := tbl.lookup(argv(tc.args...))
		if got := info.arityOK(len(tc.args)); got != tc.ok {
			t.Errorf("%v: arityOK = %v, want %v (arity %d)", tc.args, got, tc.ok, info.arity)
		}
	}
	if got, want := tbl.lookup(argv("get")).arityError(), "ERR wrong number of arguments for 'get' command"; got != want {
		t.Errorf("arityError = %q, want %q", got, want)
	}
	// Subcommands are named with a space, not Redis's internal "|".
	if got := tbl.lookup(argv("config", "get")).arityError(); got != "ERR wrong number of arguments for 'config|get' command" {
		t.Errorf("subcommand arityError = %q", got)
	}
}

func TestUnknownCommandError(t *testing.T) {
	got := unknownCommandError(argv("foo", "a", "b"))
	if want := "ERR unknown command 'foo', with args beginning with: 'a' 'b' "; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := unknownCommandError(argv("foo")); got != "ERR unknown command 'foo', with args beginning with: " {
		t.Errorf("no args: %q", got)
	}
	long := strings.Repeat("n", 300)
	got = unknownCommandError(argv(long))
	if !strings.Contains(got, "'"+strings.Repeat("n", 128)+"'") {
		t.Errorf("name not truncated to 128 bytes: %q", got)
	}
	// Many short args: the list stops once it passes 128 bytes.
	many := make([]string, 100)
	many[0] = "foo"
	for i := 1; i < len(many); i++ {
		many[i] = fmt.Sprintf("arg%02d", i)
	}
	got = unknownCommandError(argv(many...))
	if strings.Contains(got, "arg99") || !strings.Contains(got, "arg01") {
		t.Errorf("argument list not bounded: %q", got)
	}
}

// Redis 7.0 answers
//
//	-ERR unknown command 'foo  bar', with args beginning with: 'a  ' ...
//
// for a command name or argument containing CR/LF: it replaces them with
// spaces so the error stays one RESP line. It also cuts each argument so the
// list is at most 128 bytes.
func TestUnknownCommandErrorIsOneRESPLine(t *testing.T) {
	msg := unknownCommandError(argv("foo\r\nbar", "a\r\n", "bbb"))
	reply := respError(msg)
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("unknownCommandError keeps CR/LF: %q", reply)
	}
	if n := strings.Count(string(reply), "\r\n"); n != 1 {
		t.Errorf("reply %q has %d CRLFs, want 1", reply, n)
	}
}

func TestUnknownCommandErrorTruncatesLongArgs(t *testing.T) {
	got := unknownCommandError(argv("foo", strings.Repeat("x", 200)))
	if strings.Contains(got, strings.Repeat("x", 129)) {
		t.Errorf("unknownCommandError does not cut long arguments: %d bytes", len(got))
	}
}

func TestIsBlockingCall(t *testing.T) {
	tbl := newTestTable(t)
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"blpop", "a", "0"}, true},
		{[]string{"blmpop", "0", "1", "a", "LEFT"}, true},
		{[]string{"get", "k"}, false},
		{[]string{"set", "block", "v"}, false}, // not a blocking command at all
		{[]string{"xread", "STREAMS", "s", "0"}, false},
		{[]string{"xread", "COUNT", "10", "STREAMS", "s", "0"}, false},
		{[]string{"xread", "BLOCK", "100", "STREAMS", "s", "0"}, true},
		{[]string{"xread", "block", "0", "STREAMS", "s", "$"}, true},
		{[]string{"xreadgroup", "GROUP", "g", "c", "STREAMS", "s", ">"}, false},
		{[]string{"xreadgroup", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"}, true},
	}
	for _, tc := range tests {
		info := tbl.lookup(argv(tc.args...))
		if got := isBlockingCall(info, argv(tc.args...)); got != tc.want {
			t.Errorf("%v: isBlockingCall = %v, want %v", tc.args, got, tc.want)
		}
	}
}

// BLOCK is an option only before STREAMS; after it, "block" is a key or an
// ID. Redis serves "XREAD STREAMS block 0" at once (verified on 7.0.15).
func TestIsBlockingCallKeyNamedBlock(t *testing.T) {
	tbl := newTestTable(t)
	for _, args := range [][]string{
		{"xread", "STREAMS", "block", "0"},
		{"xreadgroup", "GROUP", "block", "c", "STREAMS", "s", ">"},
	} {
		if isBlockingCall(tbl.lookup(argv(args...)), argv(args...)) {
			t.Errorf("%v is not a blocking call", args)
		}
	}
}

func TestCommandKeys(t *testing.T) {
	tbl := newTestTable(t)
	tests := []struct {
		args []string
		want []string
	}{
		// Fixed ranges from COMMAND.
		{[]string{"get", "k"}, []string{"k"}},
		{[]string{"set", "k", "v", "EX", "10"}, []string{"k"}},
		{[]string{"mget", "a", "b", "c"}, []string{"a", "b", "c"}},
		{[]string{"mset", "a", "1", "b", "2", "c", "3"}, []string{"a", "b", "c"}},
		{[]string{"del", "a"}, []string{"a"}},
		{[]string{"rename", "a", "b"}, []string{"a", "b"}},
		{[]string{"blpop", "a", "b", "0"}, []string{"a", "b"}},
		{[]string{"object", "encoding", "k"}, []string{"k"}},
		{[]string{"ping"}, nil},
		{[]string{"flushdb"}, nil},
		// Movable keys.
		{[]string{"eval", "return 1", "2", "a", "b", "x", "y"}, []string{"a", "b"}},
		{[]string{"evalsha", "abc", "0", "x"}, nil},
		{[]string{"eval", "return 1", "3", "a"}, nil},  // numkeys too large
		{[]string{"eval", "return 1", "-1", "a"}, nil}, // negative numkeys
		{[]string{"eval", "return 1", "x", "a"}, nil},  // not a number
		{[]string{"eval_ro", "return 1", "1", "a"}, []string{"a"}},
		{[]string{"zunionstore", "dst", "2", "a", "b", "WEIGHTS", "1", "2"}, []string{"dst", "a", "b"}},
		{[]string{"zinterstore", "dst", "1", "a"}, []string{"dst", "a"}},
		{[]string{"zunion", "2", "a", "b", "WITHSCORES"}, []string{"a", "b"}},
		{[]string{"sintercard", "2", "a", "b", "LIMIT", "1"}, []string{"a", "b"}},
		{[]string{"lmpop", "2", "a", "b", "LEFT", "COUNT", "3"}, []string{"a", "b"}},
		{[]string{"blmpop", "0", "2", "a", "b", "RIGHT"}, []string{"a", "b"}},
		{[]string{"sort", "src"}, []string{"src"}},
		{[]string{"sort", "src", "BY", "w_*", "LIMIT", "0", "10", "STORE", "dst"}, []string{"src", "dst"}},
		{[]string{"sort", "src", "store", "dst"}, []string{"src", "dst"}},
		{[]string{"sort_ro", "src", "ALPHA"}, []string{"src"}},
		{[]string{"xread", "STREAMS", "a", "b", "0", "0"}, []string{"a", "b"}},
		{[]string{"xread", "COUNT", "2", "BLOCK", "0", "STREAMS", "a", "$"}, []string{"a"}},
		{[]string{"xread", "streams", "streams", "0"}, []string{"streams"}},
		{[]string{"xreadgroup", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "a", "b", ">", ">"}, []string{"a", "b"}},
		{[]string{"xread", "COUNT", "2"}, nil},
		{[]string{"georadius", "src", "1", "2", "3", "km", "STORE", "d1", "STOREDIST", "d2"}, []string{"src", "d1", "d2"}},
	}
	for _, tc := range tests {
		args := argv(tc.args...)
		info := tbl.lookup(args)
		if info == nil {
			t.Fatalf("%v: not in the table", tc.args)
		}
		got := strs(commandKeys(info, args))
		if strings.Join(got, "\x00") != strings.Join(tc.want, "\x00") || len(got) != len(tc.want) {
			t.Errorf("commandKeys(%v) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// GROUP takes two arguments (group, consumer) that may be any string,
// including "streams"; Redis skips them when it looks for STREAMS.
func TestCommandKeysXreadgroupGroupNamedStreams(t *testing.T) {
	tbl := newTestTable(t)
	args := argv("xreadgroup", "GROUP", "streams", "c", "STREAMS", "k", ">")
	got := strs(commandKeys(tbl.lookup(args), args))
	if len(got) != 1 || got[0] != "k" {
		t.Errorf("commandKeys(XREADGROUP GROUP streams c STREAMS k >) = %q, want [k]", got)
	}
}

func TestNumKeysAt(t *testing.T) {
	args := argv("eval", "s", "2", "a", "b")
	if got := strs(numKeysAt(args, 2)); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("numKeysAt = %q", got)
	}
	if got := numKeysAt(args, 5); got != nil {
		t.Errorf("pos past the end: %q", got)
	}
	if got := numKeysAt(argv("eval", "s", "0"), 2); len(got) != 0 {
		t.Errorf("numkeys 0: %q", got)
	}
}

func BenchmarkLookup(b *testing.B) {
	tbl := newTestTable(b)
	cmds := [][][]byte{
		argv("SET", "key:000001", "value"),
		argv("get", "key:000001"),
		argv("CONFIG", "GET", "maxmemory"),
		argv("ping"),
		argv("XREAD", "COUNT", "1", "STREAMS", "s", "0"),
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		args := cmds[i%len(cmds)]
		info := tbl.lookup(args)
		if info == nil || !info.arityOK(len(args)) {
			b.Fatal("bad lookup")
		}
		_ = isBlockingCall(info, args)
		_ = info.kind
	}
}
