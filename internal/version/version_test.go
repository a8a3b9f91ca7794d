package version

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	vcs := &debug.BuildInfo{
		GoVersion: "go1.99.1",
		Main:      debug.Module{Path: "github.com/redraft/redraft", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	installed := &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}
	tests := []struct {
		name                string
		version, commit, dt string
		bi                  *debug.BuildInfo
		want                string
		goVersion           string
	}{
		{"nothing known", "", "", "", nil, "redraft dev (commit unknown)", runtime.Version()},
		{"stamped", "v1.2.0", "fedcba9876543210fedcba9876543210fedcba98", "2026-01-02T03:04:05Z", vcs,
			"redraft v1.2.0 (commit fedcba987654, built 2026-01-02T03:04:05Z)", "go1.99.1"},
		{"from vcs", "", "", "", vcs, "redraft dev (commit 0123456789ab-dirty)", "go1.99.1"},
		{"go install", "", "", "", installed, "redraft v1.4.0 (commit unknown)", runtime.Version()},
		{"stamped version only", "v2.0.0", "", "", vcs, "redraft v2.0.0 (commit 0123456789ab-dirty)", "go1.99.1"},
		{"short commit", "v1", "abc", "", nil, "redraft v1 (commit abc)", runtime.Version()},
	}
	for _, tc := range tests {
		info := resolve(tc.version, tc.commit, tc.dt, tc.bi)
		if got := info.String(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
		if info.GoVersion != tc.goVersion || info.Platform != runtime.GOOS+"/"+runtime.GOARCH {
			t.Errorf("%s: go %q platform %q", tc.name, info.GoVersion, info.Platform)
		}
	}
}

func TestGetUnstamped(t *testing.T) {
	if Version != "" || Commit != "" || BuildDate != "" {
		t.Skip("test binary was stamped")
	}
	if got := Get(); got.Version == "" || !strings.HasPrefix(String(), "redraft ") {
		t.Fatalf("Get() = %+v, String() = %q", got, String())
	}
}

// TestLinkerStamp builds a program with -ldflags -X, as make release does,
// to check that the variable paths are right.
func TestLinkerStamp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	bin := filepath.Join(t.TempDir(), "stamp")
	const pkg = "github.com/redraft/redraft/internal/version"
	ldflags := "-X " + pkg + ".Version=v9.8.7 -X " + pkg + ".Commit=1111111111112222 -X " + pkg + ".BuildDate=2030-01-01T00:00:00Z"
	build := exec.Command(gobin, "build", "-ldflags", ldflags, "-o", bin, "./testdata/stamp")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(out)), "redraft v9.8.7 (commit 111111111111, built 2030-01-01T00:00:00Z)"; got != want {
		t.Fatalf("stamped binary printed %q, want %q", got, want)
	}
}

// TestPackagingStampsThisPackage checks that the Makefile and the
// Dockerfile stamp this package's variables and that the Dockerfile's Go
// matches go.mod, since neither is exercised by the tests otherwise.
func TestPackagingStampsThisPackage(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	const pkg = "github.com/redraft/redraft/internal/version"
	mk, docker, gomod := read("Makefile"), read("Dockerfile"), read("go.mod")
	if !strings.Contains(mk, "VERSION_PKG := "+pkg) {
		t.Errorf("Makefile does not stamp %s", pkg)
	}
	for _, v := range []string{"Version", "Commit", "BuildDate"} {
		if !strings.Contains(docker, "-X "+pkg+"."+v+"=") {
			t.Errorf("Dockerfile does not stamp %s.%s", pkg, v)
		}
	}
	var goVersion string
	for _, line := range strings.Split(gomod, "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			goVersion = strings.TrimSpace(v)
		}
	}
	if goVersion == "" || !strings.Contains(docker, "ARG GO_VERSION="+goVersion+"\n") {
		t.Errorf("Dockerfile's GO_VERSION does not match go.mod's go %s", goVersion)
	}
}
