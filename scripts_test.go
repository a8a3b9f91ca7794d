package main

import (
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/redraft/redraft/internal/resp"
)

// TestPreludeAgreesWithRewrites runs the Lua rewrite of the script prelude
// (__fix) in a real child next to the Go rewrite (planCommand) on the same
// commands: a command must reach the child the same way whether a client
// sent it or a script called it. The two exist because scripts call
// redis.call inside the child, where only Lua can rewrite.
func TestPreludeAgreesWithRewrites(t *testing.T) {
	f, _ := newTestFSM(t)
	script := `local __r = redis; local __T = tonumber(ARGV[1]); local __D = ` + strconv.FormatInt(deadlineShift, 10) + `; ` +
		strings.Join(scriptHelpers, " ") +
		` local a = {}; for i = 2, #ARGV do a[#a + 1] = ARGV[i] end; return __fix(a)`
	cases := [][]string{
		{"EXPIRE", "k", "100"},
		{"expire", "k", "100", "NX"},
		{"PEXPIRE", "k", "1500", "GT"},
		{"EXPIREAT", "k", "1800000000"},
		{"PEXPIREAT", "k", "1800000000123", "LT"},
		{"EXPIRE", "k", "-5"},
		{"EXPIRE", "k", "0"},
		{"SET", "k", "v", "EX", "10"},
		{"SET", "k", "v", "px", "2500", "NX"},
		{"SET", "k", "v", "XX", "GET", "EXAT", "1800000000"},
		{"SET", "k", "v", "PXAT", "1800000000999"},
		{"SET", "k", "v"},
		{"SET", "k", "v", "KEEPTTL"},
		{"GETEX", "k", "EX", "7"},
		{"GETEX", "k", "PERSIST"},
		{"GETEX", "k", "pxat", "1800000000000"},
		{"SETEX", "k", "30", "v"},
		{"PSETEX", "k", "30000", "v"},
		{"RESTORE", "k", "5000", "payload"},
		{"RESTORE", "k", "1800000000000", "payload", "ABSTTL"},
		{"RESTORE", "k", "0", "payload", "REPLACE"},
		{"XADD", "s", "1-1", "f", "v"},
	}
	for _, c := range cases {
		st := planArgs(t, 0, c...)
		want := strs(st.args)
		args := append([]string{"EVAL", script, "0", strconv.FormatInt(testT, 10)}, c...)
		raw, err := f.conn.Do(args...)
		if err != nil {
			t.Fatal(err)
		}
		v, err := resp.Parse(raw)
		if err != nil {
			t.Fatalf("%q: %v (%q)", c, err, raw)
		}
		items, _ := v.([]any)
		got := make([]string, len(items))
		for i, it := range items {
			got[i] = resp.AsString(it)
		}
		if !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Errorf("%q:\n  Lua %q\n  Go  %q", c, got, want)
		}
	}
}

// normalize upper-cases option keywords so a case difference in what each
// rewrite leaves alone does not count.
func normalize(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		switch u := strings.ToUpper(a); u {
		case "PXAT", "PEXPIREAT", "SET", "ABSTTL":
			out[i] = u
		default:
			out[i] = a
		}
	}
	return out
}

// XADD * is rewritten by a script in Go's plan and by __fix in the prelude:
// both give the same ID, T-0 on a new stream and the next ID after a top
// item later than T.
func TestXaddIDAgrees(t *testing.T) {
	f, _ := newTestFSM(t)
	prelude := `local __r = redis; local __T = tonumber(ARGV[1]); local __D = ` + strconv.FormatInt(deadlineShift, 10) + `; ` +
		strings.Join(scriptHelpers, " ") +
		` local a = {}; for i = 2, #ARGV do a[#a + 1] = ARGV[i] end; return redis.call(unpack(__fix(a)))`
	T := strconv.FormatInt(testT, 10)
	future := strconv.FormatInt(testT+5000, 10) + "-3"
	for _, tc := range []struct{ top, want string }{
		{"", T + "-0"},
		{"5-1", T + "-0"},
		{future, strconv.FormatInt(testT+5000, 10) + "-4"},
		{"18446744073709551615-5", "18446744073709551615-6"},
		{"18446744073709551615-18446744073709551615", "ERR The stream has exhausted the last possible ID, unable to add more items"},
	} {
		var got [2]string
		for i, key := range []string{"go:" + tc.top, "lua:" + tc.top} {
			if tc.top != "" {
				if raw, err := f.conn.Do("XADD", key, tc.top, "f", "v"); err != nil || resp.ReplyIsError(raw) {
					t.Fatalf("XADD %s: %q %v", tc.top, raw, err)
				}
			}
			var raw []byte
			var err error
			if i == 0 {
				st := planArgs(t, 0, "XADD", key, "*", "f", "v")
				f.conn.Send(st.args)
				if err = f.conn.Flush(); err == nil {
					raw, err = f.conn.ReadReply()
				}
			} else {
				raw, err = f.conn.Do("EVAL", prelude, "0", T, "XADD", key, "*", "f", "v")
			}
			if err != nil {
				t.Fatal(err)
			}
			got[i], _ = resp.ReplyString(raw)
			if at := strings.Index(got[i], " script: "); at > 0 {
				got[i] = got[i][:at] // where a script failed, which Redis adds too
			}
		}
		if got[0] != tc.want || got[1] != tc.want {
			t.Errorf("top %q: Go plan gave %q, prelude %q, want %q", tc.top, got[0], got[1], tc.want)
		}
	}
}

// TestGuardRedisAssignments: assignments to the name redis become
// assignments to a global in every block, and nothing else changes.
func TestGuardRedisAssignments(t *testing.T) {
	g := readonlyGlobal
	for _, c := range []struct{ in, want string }{
		{"redis = 1", g + " = 1"},
		{"function redis() end", "function " + g + "() end"},
		{"local redis = 1 redis = 2", "local redis = 1 " + g + " = 2"},
		{"local function redis() end", "local function redis() end"},
		{"local t = {redis = 1}", "local t = {redis = 1}"},
		{"f(function() redis = 5 end)", "f(function() " + g + " = 5 end)"},
		{"x = {cb = function() redis = 5 end, redis = 2}", "x = {cb = function() " + g + " = 5 end, redis = 2}"},
		{"if a then redis = 1 elseif b then redis = 2 else redis = 3 end redis = 4",
			"if a then " + g + " = 1 elseif b then " + g + " = 2 else " + g + " = 3 end " + g + " = 4"},
		{"while x do redis = 1 end for i = 1, 2 do redis = i end repeat redis = 1 until x",
			"while x do " + g + " = 1 end for i = 1, 2 do " + g + " = i end repeat " + g + " = 1 until x"},
		{"return 'redis = 1', [[redis = 2]] -- redis = 3", "return 'redis = 1', [[redis = 2]] -- redis = 3"},
		{"t[redis] = 1 redis.x = 1 a.redis = 1 return redis == 1", "t[redis] = 1 redis.x = 1 a.redis = 1 return redis == 1"},
		{"local a, redis = 1, 2", "local a, redis = 1, 2"},
		{"for redis = 1, 2 do end", "for redis = 1, 2 do end"},
	} {
		if got := guardRedisAssignments(c.in); got != c.want {
			t.Errorf("%q:\n  got  %q\n  want %q", c.in, got, c.want)
		}
	}
}
