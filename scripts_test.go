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
		{"XADD", "s", "*", "f", "v"},
		{"XADD", "s", "NOMKSTREAM", "MAXLEN", "~", "100", "*", "f", "v"},
		{"XADD", "s", "MINID", "=", "0-1", "LIMIT", "10", "*", "f", "v"},
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
