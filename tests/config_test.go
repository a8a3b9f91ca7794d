package tests

// The real binary's options as an operator meets them: --version, -h by
// group, errors that say where a bad option came from (exit status 2), a
// --config file under REDRAFT_* variables under flags, -join with several
// addresses, and log lines with named levels in text and JSON, Raft's with
// their fields.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runBinary runs the redraft binary to completion and returns its stdout,
// its stderr and its exit status.
func runBinary(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &exit):
		return stdout.String(), stderr.String(), exit.ExitCode()
	}
	t.Fatalf("redraft %v: %v", args, err)
	return "", "", -1
}

func TestOptionsOnTheRealBinary(t *testing.T) {
	out, errOut, code := runBinary(t, nil, "--version")
	if code != 0 || !regexp.MustCompile(`(?m)\Aredraft \S+ \(commit \S+.*\)\ngo1\.\d+\S* \w+/\w+\nRedis server v=\d+\.\d+\.\d+ `).MatchString(out) {
		t.Errorf("--version: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = runBinary(t, nil, "-h")
	for _, want := range []string{"Usage: redraft [options]", "\nExamples:\n", "\nCluster:\n", "\nClient:\n", "\nStorage:\n", "\nSecurity:\n", "\nObservability:\n", "  -p, --port <int>\n"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("-h: status %d, output lacks %q:\n%s%s", code, want, out, errOut)
		}
	}

	dir := testRoot(t)
	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(bad, []byte("# a comment\nport 7481\nnosuch 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"--bogus"}, "flag --bogus: unknown option"},
		{[]string{"REDRAFT_PROT=1"}, nil, "env REDRAFT_PROT: unknown option (did you mean REDRAFT_PORT?)"},
		{nil, []string{"--config", bad}, bad + `:3: unknown option "nosuch"`},
		{[]string{"REDRAFT_CONSISTENCY=extreme"}, nil, `env REDRAFT_CONSISTENCY: invalid value "extreme" for consistency: not allowed (allowed: one of low, medium, high)`},
	} {
		_, errOut, code := runBinary(t, c.env, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v %v: status %d, stderr %q; want status 2 and %q", c.env, c.args, code, errOut, c.want)
		}
	}

	// A node in text format: named levels, Raft's lines with their fields.
	n1 := startNode(t, nodeOpts{Name: "n1"})
	waitLeader(t, n1)
	log1 := n1.Log()
	for _, re := range []string{
		`(?m)^time=\S+ level=NOTICE msg="entering leader state" src=raft leader="Node at ` + regexp.QuoteMeta(n1.Addr) + ` \[Leader\]"$`,
		`(?m)^time=\S+ level=NOTICE msg="election won" src=raft term=\d+ tally=1$`,
	} {
		if !regexp.MustCompile(re).MatchString(log1) {
			t.Errorf("n1's log has no line matching %s:\n%s", re, tail(log1, 3000))
		}
	}
	if m := regexp.MustCompile(`level=(\S+)`).FindAllStringSubmatch(log1, -1); len(m) == 0 {
		t.Errorf("no levels in n1's log")
	} else {
		for _, l := range m {
			if !regexp.MustCompile(`^(DEBUG|VERBOSE|NOTICE|WARNING|ERROR)$`).MatchString(l[1]) {
				t.Errorf("level=%s in n1's log", l[1])
			}
		}
	}

	// A node configured by a file, the environment and flags, each
	// overriding the one before; it joins through a dead address first.
	conf := filepath.Join(dir, "n2.conf")
	if err := os.WriteFile(conf, []byte("# n2\nport 1\nmaxclients 123\nconsistency high\nmaxmemory 64mb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	n2 := startNode(t, nodeOpts{Name: "n2", Join: dead + "," + n1.Addr, Consistency: "low",
		Args: []string{"--config", conf},
		Env:  []string{"REDRAFT_MAXCLIENTS=456", "REDRAFT_CONSISTENCY=medium", "REDRAFT_LOG_FORMAT=json"}})
	waitMembers(t, n1, n2)
	checks := map[string]string{ // from the file, the environment, the flags
		"maxclients:456":                  fmt.Sprint(n2.MustDo("INFO", "clients")),
		"raft_consistency:low":            fmt.Sprint(n2.MustDo("INFO", "raft")),
		"[maxmemory 67108864]":            fmt.Sprint(n2.MustDo("CONFIG", "GET", "maxmemory")),
		"tcp_port:" + fmt.Sprint(n2.Port): fmt.Sprint(n2.MustDo("INFO", "server")),
	}
	for want, got := range checks {
		if !strings.Contains(got, want) {
			t.Errorf("n2 lacks %s: %.300q", want, got)
		}
	}
	// Every line it logged is JSON with a named level; Raft's have fields.
	follower, joined, retried := false, false, false
	for _, line := range strings.Split(strings.TrimSpace(n2.Log()), "\n") {
		if strings.HasPrefix(line, "=== ") {
			continue // the harness's own lines
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("n2 logged a line that is not JSON: %q: %v", line, err)
		}
		if lvl, _ := rec["level"].(string); !regexp.MustCompile(`^(DEBUG|VERBOSE|NOTICE|WARNING|ERROR)$`).MatchString(lvl) {
			t.Errorf("level %q in %q", lvl, line)
		}
		switch {
		case rec["src"] == "raft" && rec["msg"] == "entering follower state":
			follower = rec["follower"] == "Node at "+n2.Addr+" [Follower]"
		case rec["msg"] == "join attempt failed; retrying":
			retried = retried || rec["via"] == dead
		case rec["msg"] == "joined cluster":
			joined = rec["via"] == n1.Addr
		}
	}
	if !follower {
		t.Errorf(`n2's log has no Raft line {"msg":"entering follower state","src":"raft","follower":"Node at %s [Follower]"}:%s`, n2.Addr, tail(n2.Log(), 3000))
	}
	if !retried || !joined {
		t.Errorf("n2 does not log that it tried %s (%v), then joined via %s (%v):\n%s", dead, retried, n1.Addr, joined, tail(n2.Log(), 3000))
	}
}
