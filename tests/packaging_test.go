package tests

// The Dockerfile's recipe, followed without a container engine (the test
// machines have none): its build stage's command, and its ENTRYPOINT with
// flags appended as `docker run redraft ...` appends them.

import (
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dockerInstruction returns the first instruction of df that starts with
// prefix (continuation lines joined), without the prefix.
func dockerInstruction(t *testing.T, df, prefix string) string {
	t.Helper()
	joined := strings.ReplaceAll(df, "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(rest)
		}
	}
	t.Fatalf("Dockerfile has no %q instruction", prefix)
	return ""
}

// TestContainerRecipe builds redraft with the Dockerfile's build command
// (no cgo, the version stamped in through its build arguments) and starts
// it with the image's ENTRYPOINT: the binary must be static (the runtime
// stage is a plain Debian with only redis-server added), print the stamped
// version, and serve with the entrypoint's -dir and -bind overridden by
// flags after them (a flag given twice takes its last value), then stop
// cleanly on the image's STOPSIGNAL.
func TestContainerRecipe(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	build := dockerInstruction(t, df, "RUN CGO_ENABLED=0 go build")
	if !strings.Contains(build, "-o /out/redraft .") {
		t.Fatalf("the build command no longer writes /out/redraft: %q", build)
	}
	bin := filepath.Join(testRoot(t), "redraft")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", "CGO_ENABLED=0 go build "+strings.Replace(build, "/out/redraft", bin, 1))
	cmd.Dir = ".." // the build stage copies the repository and builds there
	cmd.Env = append(os.Environ(), "VERSION=9.9.9-recipe", "COMMIT=0123456789abcdef", "BUILD_DATE=2026-11-30T00:00:00Z")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build command: %v\n%s", err, out)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary needs a dynamic loader; the runtime image has only what Debian's redis-server brings")
		}
	}
	f.Close()
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "redraft 9.9.9-recipe (commit 0123456789ab, built 2026-11-30T00:00:00Z)") {
		t.Errorf("--version of the stamped binary: %q, %v", out, err)
	}

	var entry []string
	if err := json.Unmarshal([]byte(dockerInstruction(t, df, "ENTRYPOINT")), &entry); err != nil || len(entry) < 1 {
		t.Fatalf("ENTRYPOINT is not a JSON array: %v", err)
	}
	if stop := dockerInstruction(t, df, "STOPSIGNAL"); stop != "SIGTERM" {
		t.Errorf("STOPSIGNAL %s: redraft hands leadership over on SIGTERM", stop)
	}
	n := startNode(t, nodeOpts{Bin: bin, EntryArgs: entry[1:]})
	n.MustDo("SET", "k", "v")
	mustEqual(t, "GET k", n.MustDo("GET", "k"), "v")
	if _, err := os.Stat(filepath.Join(n.Dir, "wal")); err != nil {
		t.Errorf("the data directory given after the entrypoint's is not the one used: %v", err)
	}
	// Bound to 127.0.0.1 (the later -bind), not to the entrypoint's 0.0.0.0.
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.2:%d", n.Port), time.Second); err == nil {
		c.Close()
		t.Errorf("the node listens beyond 127.0.0.1: the entrypoint's -bind 0.0.0.0 won over the later -bind")
	}
	if err := n.Stop(); err != nil {
		t.Errorf("stop on SIGTERM: %v", err)
	}
}
