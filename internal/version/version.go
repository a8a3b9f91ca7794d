// Package version reports which build of redraft is running. Release
// builds stamp it with the linker:
//
//	go build -ldflags "-X github.com/redraft/redraft/internal/version.Version=v1.2.0 \
//	  -X github.com/redraft/redraft/internal/version.Commit=$(git rev-parse HEAD) \
//	  -X github.com/redraft/redraft/internal/version.BuildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
//
// Unstamped builds fall back to what the Go toolchain recorded
// (runtime/debug.ReadBuildInfo): the module version for `go install
// …@version`, and the VCS revision when built inside a git checkout.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set at link time with -ldflags -X (they must stay plain string
// variables for that); empty means "not stamped".
var (
	// Version is the release, e.g. "v1.2.0" or git describe's
	// "v1.2.0-3-gabcdef1-dirty".
	Version string
	// Commit is the full git commit hash.
	Commit string
	// BuildDate is when the binary was built, RFC 3339 in UTC.
	BuildDate string
)

// Program is the name String starts with.
const Program = "redraft"

// develVersion is reported when nothing better is known.
const develVersion = "dev"

// Info is the resolved build information.
type Info struct {
	Version   string // release or "dev"
	Commit    string // full hash, or "" when unknown
	Modified  bool   // built from a working tree with uncommitted changes
	BuildDate string // RFC 3339, or "" when unknown
	GoVersion string // toolchain, e.g. "go1.26.8"
	Platform  string // GOOS/GOARCH, e.g. "linux/amd64"
}

// Get resolves the build information: the stamped values first, then the
// toolchain's build info.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(Version, Commit, BuildDate, bi)
}

// resolve combines stamped values with build info (bi may be nil).
func resolve(version, commit, date string, bi *debug.BuildInfo) Info {
	info := Info{
		Version: version, Commit: commit, BuildDate: date,
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi != nil {
		fillFromBuildInfo(&info, bi)
	}
	if info.Version == "" {
		info.Version = develVersion
	}
	return info
}

// fillFromBuildInfo fills what was not stamped from the toolchain's record.
func fillFromBuildInfo(info *Info, bi *debug.BuildInfo) {
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	stamped := info.Commit != ""
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && !stamped:
			info.Commit = s.Value
		case s.Key == "vcs.modified" && !stamped:
			info.Modified = s.Value == "true"
		}
	}
}

// ShortCommit returns the first 12 hex digits of the commit, with
// "-dirty" when the tree was modified, or "unknown".
func (i Info) ShortCommit() string {
	if i.Commit == "" {
		return "unknown"
	}
	c := i.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if i.Modified {
		c += "-dirty"
	}
	return c
}

// String is the first line of --version: "redraft v1.2.0 (commit
// abcdef123456, built 2026-01-02T03:04:05Z)"; the date is left out when
// unknown.
func (i Info) String() string {
	details := []string{"commit " + i.ShortCommit()}
	if i.BuildDate != "" {
		details = append(details, "built "+i.BuildDate)
	}
	return fmt.Sprintf("%s %s (%s)", Program, i.Version, strings.Join(details, ", "))
}

// String returns Get().String().
func String() string { return Get().String() }
