package command_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/redraft/redraft/internal/command"
	"github.com/redraft/redraft/internal/command/commandtest"
	"github.com/redraft/redraft/internal/resp"
)

func TestParseCommandInfoFields(t *testing.T) {
	info := parseOne(commandtest.Entry("MSET", -3, []string{"write", "denyoom", "movablekeys", "blocking"}, 1, -1, 2), nil)
	if info == nil {
		t.Fatal("nil info")
	}
	if info.Name != "mset" {
		t.Errorf("name = %q, want lower case mset", info.Name)
	}
	if info.Arity != -3 || info.First != 1 || info.Last != -1 || info.Step != 2 {
		t.Errorf("arity/range = %d %d %d %d", info.Arity, info.First, info.Last, info.Step)
	}
	if !info.DenyOOM || !info.Movable || !info.Blocking {
		t.Errorf("flags not decoded: %+v", info)
	}
	if !info.Write || info.ReadOnly || info.Subs != nil {
		t.Errorf("write=%v readonly=%v subs=%v", info.Write, info.ReadOnly, info.Subs)
	}
	// A short entry (older Redis: 6 fields, no subcommands) still parses.
	short := []any{"get", int64(2), []any{"readonly"}, int64(1), int64(1), int64(1)}
	if got := parseOne(short, nil); got == nil || !got.ReadOnly || got.Name != "get" {
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
		if got := parseOne(item, nil); got != nil {
			t.Errorf("parseOne(%#v) = %+v, want nil", item, got)
		}
	}
}

// policyKind is the kind the policies table gives name; the tests check the
// mechanism (policy over flags, inheritance), not the policy list itself.

func TestLookupUnknownAndCase(t *testing.T) {
	tbl := commandtest.Table(t)
	if info := tbl.Lookup(commandtest.Argv("nosuchcommand", "x")); info != nil {
		t.Errorf("unknown command: %+v", info)
	}
	a := tbl.Lookup(commandtest.Argv("GeT", "k"))
	b := tbl.Lookup(commandtest.Argv("get", "k"))
	if a == nil || a != b {
		t.Errorf("lookup is not case-insensitive: %p %p", a, b)
	}
	// A command without subcommands ignores its second argument.
	if info := tbl.Lookup(commandtest.Argv("set", "get", "v")); info == nil || info.Name != "set" {
		t.Errorf("set get v: %+v", info)
	}
}

func TestLower(t *testing.T) {
	for in, want := range map[string]string{"": "", "get": "get", "GET": "get", "gEt|X": "get|x", "a1-_": "a1-_"} {
		if got := command.Lower([]byte(in)); got != want {
			t.Errorf("Lower(%q) = %q, want %q", in, got, want)
		}
	}
	// lower must not modify its input.
	in := []byte("ABC")
	_ = command.Lower(in)
	if string(in) != "ABC" {
		t.Errorf("lower mutated its argument: %q", in)
	}
}

func TestArity(t *testing.T) {
	tbl := commandtest.Table(t)
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
		info := tbl.Lookup(commandtest.Argv(tc.args...))
		if got := info.ArityOK(len(tc.args)); got != tc.ok {
			t.Errorf("%v: arityOK = %v, want %v (arity %d)", tc.args, got, tc.ok, info.Arity)
		}
	}
	if got, want := tbl.Lookup(commandtest.Argv("get")).ArityError(), "ERR wrong number of arguments for 'get' command"; got != want {
		t.Errorf("arityError = %q, want %q", got, want)
	}
	// Subcommands are named with a space, not Redis's internal "|".
	if got := tbl.Lookup(commandtest.Argv("config", "get")).ArityError(); got != "ERR wrong number of arguments for 'config|get' command" {
		t.Errorf("subcommand arityError = %q", got)
	}
}

func TestUnknownCommandError(t *testing.T) {
	got := command.UnknownCommandError(commandtest.Argv("foo", "a", "b"))
	if want := "ERR unknown command 'foo', with args beginning with: 'a' 'b' "; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := command.UnknownCommandError(commandtest.Argv("foo")); got != "ERR unknown command 'foo', with args beginning with: " {
		t.Errorf("no args: %q", got)
	}
	long := strings.Repeat("n", 300)
	got = command.UnknownCommandError(commandtest.Argv(long))
	if !strings.Contains(got, "'"+strings.Repeat("n", 128)+"'") {
		t.Errorf("name not truncated to 128 bytes: %q", got)
	}
	// Many short args: the list stops once it passes 128 bytes.
	many := make([]string, 100)
	many[0] = "foo"
	for i := 1; i < len(many); i++ {
		many[i] = fmt.Sprintf("arg%02d", i)
	}
	got = command.UnknownCommandError(commandtest.Argv(many...))
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

// Redis 7.0 answers
//
//	-ERR unknown command 'foo  bar', with args beginning with: 'a  ' ...
//
// for a command name or argument containing CR/LF: it replaces them with
// spaces so the error stays one RESP line. It also cuts each argument so the
// list is at most 128 bytes.
func TestUnknownCommandErrorIsOneRESPLine(t *testing.T) {
	msg := command.UnknownCommandError(commandtest.Argv("foo\r\nbar", "a\r\n", "bbb"))
	reply := resp.Error(msg)
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("unknownCommandError keeps CR/LF: %q", reply)
	}
	if n := strings.Count(string(reply), "\r\n"); n != 1 {
		t.Errorf("reply %q has %d CRLFs, want 1", reply, n)
	}
}

func TestUnknownCommandErrorTruncatesLongArgs(t *testing.T) {
	got := command.UnknownCommandError(commandtest.Argv("foo", strings.Repeat("x", 200)))
	if strings.Contains(got, strings.Repeat("x", 129)) {
		t.Errorf("unknownCommandError does not cut long arguments: %d bytes", len(got))
	}
}

func TestIsBlockingCall(t *testing.T) {
	tbl := commandtest.Table(t)
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
		info := tbl.Lookup(commandtest.Argv(tc.args...))
		if got := command.IsBlockingCall(info, commandtest.Argv(tc.args...)); got != tc.want {
			t.Errorf("%v: isBlockingCall = %v, want %v", tc.args, got, tc.want)
		}
	}
}

// BLOCK is an option only before STREAMS; after it, "block" is a key or an
// ID. Redis serves "XREAD STREAMS block 0" at once (verified on 7.0.15).

// BLOCK is an option only before STREAMS; after it, "block" is a key or an
// ID. Redis serves "XREAD STREAMS block 0" at once (verified on 7.0.15).
func TestIsBlockingCallKeyNamedBlock(t *testing.T) {
	tbl := commandtest.Table(t)
	for _, args := range [][]string{
		{"xread", "STREAMS", "block", "0"},
		{"xreadgroup", "GROUP", "block", "c", "STREAMS", "s", ">"},
	} {
		if command.IsBlockingCall(tbl.Lookup(commandtest.Argv(args...)), commandtest.Argv(args...)) {
			t.Errorf("%v is not a blocking call", args)
		}
	}
}

func TestCommandKeys(t *testing.T) {
	tbl := commandtest.Table(t)
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
		args := commandtest.Argv(tc.args...)
		info := tbl.Lookup(args)
		if info == nil {
			t.Fatalf("%v: not in the table", tc.args)
		}
		got := commandtest.Strs(command.Keys(info, args))
		if strings.Join(got, "\x00") != strings.Join(tc.want, "\x00") || len(got) != len(tc.want) {
			t.Errorf("Keys(%v) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// GROUP takes two arguments (group, consumer) that may be any string,
// including "streams"; Redis skips them when it looks for STREAMS.

// GROUP takes two arguments (group, consumer) that may be any string,
// including "streams"; Redis skips them when it looks for STREAMS.
func TestCommandKeysXreadgroupGroupNamedStreams(t *testing.T) {
	tbl := commandtest.Table(t)
	args := commandtest.Argv("xreadgroup", "GROUP", "streams", "c", "STREAMS", "k", ">")
	got := commandtest.Strs(command.Keys(tbl.Lookup(args), args))
	if len(got) != 1 || got[0] != "k" {
		t.Errorf("Keys(XREADGROUP GROUP streams c STREAMS k >) = %q, want [k]", got)
	}
}

func TestNumKeysAt(t *testing.T) {
	args := commandtest.Argv("eval", "s", "2", "a", "b")
	if got := commandtest.Strs(command.NumKeysAt(args, 2)); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("numKeysAt = %q", got)
	}
	if got := command.NumKeysAt(args, 5); got != nil {
		t.Errorf("pos past the end: %q", got)
	}
	if got := command.NumKeysAt(commandtest.Argv("eval", "s", "0"), 2); len(got) != 0 {
		t.Errorf("numkeys 0: %q", got)
	}
}

func BenchmarkLookup(b *testing.B) {
	tbl := commandtest.Table(b)
	cmds := [][][]byte{
		commandtest.Argv("SET", "key:000001", "value"),
		commandtest.Argv("get", "key:000001"),
		commandtest.Argv("CONFIG", "GET", "maxmemory"),
		commandtest.Argv("ping"),
		commandtest.Argv("XREAD", "COUNT", "1", "STREAMS", "s", "0"),
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		args := cmds[i%len(cmds)]
		info := tbl.Lookup(args)
		if info == nil || !info.ArityOK(len(args)) {
			b.Fatal("bad lookup")
		}
		_ = command.IsBlockingCall(info, args)
	}
}

// parseOne parses a single COMMAND entry through NewTable.
func parseOne(item any, _ any) *command.Info {
	t, err := command.NewTable([]any{item})
	if err != nil {
		return nil
	}
	var out *command.Info
	t.All(func(i *command.Info) { out = i })
	return out
}
