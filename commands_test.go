package main

import (
	"strings"
	"testing"

	"github.com/redraft/redraft/internal/command/commandtest"
)

// newTestTable builds the front end's command table without a child.
func newTestTable(tb testing.TB) *commandTable {
	tb.Helper()
	return newCommandTable(commandtest.Table(tb))
}

// argv turns strings into command arguments.
func argv(s ...string) [][]byte { return commandtest.Argv(s...) }

// policyKind is the kind the spec table gives name; the tests check the
// mechanism (spec over flags, inheritance), not the list itself.
func policyKind(t *testing.T, name string) (commandKind, string) {
	t.Helper()
	p, ok := commandSpecs()[name]
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
		if info.Name != tc.want.name || info.kind != tc.want.kind || info.refusal != tc.want.refusal {
			t.Errorf("%v: got %s/%v/%q, want %s/%v/%q", tc.args, info.Name, info.kind, info.refusal,
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
	for name, p := range commandSpecs() {
		if p.kind == kindSelf && p.handle == nil {
			t.Errorf("spec %q: kindSelf without a handler", name)
		}
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
