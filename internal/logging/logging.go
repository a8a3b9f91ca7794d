// Package logging sets up log/slog the way Redis names its levels
// (DEBUG, VERBOSE, NOTICE, WARNING), with text or JSON output, and adapts
// hashicorp/go-hclog (used by hashicorp/raft) onto slog so that Raft's log
// lines become structured records.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Redis's log levels as slog levels. Notice is slog's Info, so libraries
// that log at Info show up at the default level. Error is below Redis's
// own scale: it is what -loglevel quiet still shows.
const (
	LevelDebug   = slog.LevelDebug // Redis "debug"
	LevelVerbose = slog.Level(-2)  // Redis "verbose"
	LevelNotice  = slog.LevelInfo  // Redis "notice", the default
	LevelWarning = slog.LevelWarn  // Redis "warning"
	LevelError   = slog.LevelError // failures; all that "quiet" shows
)

// levelThresholds maps each -loglevel name to the lowest level it shows,
// from the quietest up.
var levelThresholds = [...]struct {
	name  string
	level slog.Level
}{
	{"quiet", LevelError},
	{"warning", LevelWarning},
	{"notice", LevelNotice},
	{"verbose", LevelVerbose},
	{"debug", LevelDebug},
}

// levelLabels are the names printed for each level, from the highest down.
var levelLabels = [...]struct {
	level slog.Level
	label string
}{
	{LevelError, "ERROR"},
	{LevelWarning, "WARNING"},
	{LevelNotice, "NOTICE"},
	{LevelVerbose, "VERBOSE"},
	{LevelDebug, "DEBUG"},
}

// LevelNames returns the accepted -loglevel values, quietest first:
// quiet, warning, notice, verbose, debug.
func LevelNames() []string {
	names := make([]string, len(levelThresholds))
	for i, t := range levelThresholds {
		names[i] = t.name
	}
	return names
}

// ParseLevel returns the threshold for a -loglevel value (any case).
func ParseLevel(name string) (slog.Level, error) {
	for _, t := range levelThresholds {
		if strings.EqualFold(name, t.name) {
			return t.level, nil
		}
	}
	return 0, fmt.Errorf("unknown log level %q (allowed: %s)", name, strings.Join(LevelNames(), ", "))
}

// LevelName returns the printed name of a level: "NOTICE", "VERBOSE", …;
// a level between two named ones is written as an offset from the lower,
// e.g. "NOTICE+1", and one below debug as "DEBUG-4".
func LevelName(l slog.Level) string {
	for _, ll := range levelLabels {
		if l >= ll.level {
			return withOffset(ll.label, l-ll.level)
		}
	}
	return withOffset("DEBUG", l-LevelDebug)
}

// withOffset appends a non-zero signed offset to a label.
func withOffset(label string, off slog.Level) string {
	if off == 0 {
		return label
	}
	return fmt.Sprintf("%s%+d", label, int(off))
}

// Output formats.
const (
	FormatText = "text" // slog's key=value lines
	FormatJSON = "json" // one JSON object per line
)

// Formats returns the accepted --log-format values.
func Formats() []string { return []string{FormatText, FormatJSON} }

// Options configures a handler.
type Options struct {
	// Level is the threshold; nil means LevelNotice. Pass a *slog.LevelVar
	// to change it at run time.
	Level slog.Leveler
	// Format is FormatText ("" too) or FormatJSON.
	Format string
	// AddSource adds the caller's file:line to each record.
	AddSource bool
}

// NewHandler returns a text or JSON handler writing to w that prints
// levels by their Redis names.
func NewHandler(w io.Writer, o Options) (slog.Handler, error) {
	level := o.Level
	if level == nil {
		level = LevelNotice
	}
	ho := &slog.HandlerOptions{Level: level, AddSource: o.AddSource, ReplaceAttr: nameLevel}
	switch strings.ToLower(o.Format) {
	case "", FormatText:
		return slog.NewTextHandler(w, ho), nil
	case FormatJSON:
		return slog.NewJSONHandler(w, ho), nil
	}
	return nil, fmt.Errorf("unknown log format %q (allowed: %s)", o.Format, strings.Join(Formats(), ", "))
}

// New returns a logger over NewHandler.
func New(w io.Writer, o Options) (*slog.Logger, error) {
	h, err := NewHandler(w, o)
	if err != nil {
		return nil, err
	}
	return slog.New(h), nil
}

// nameLevel is a ReplaceAttr hook printing the record's level by name.
func nameLevel(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok {
			return slog.String(slog.LevelKey, LevelName(l))
		}
	}
	return a
}

// RedisLevel maps the level mark of a redis-server log line ("pid:role
// date time MARK message") to a level: '.' debug, '-' verbose, '*'
// notice, '#' warning. ok is false for any other byte.
func RedisLevel(mark byte) (level slog.Level, ok bool) {
	switch mark {
	case '.':
		return LevelDebug, true
	case '-':
		return LevelVerbose, true
	case '*':
		return LevelNotice, true
	case '#':
		return LevelWarning, true
	}
	return LevelNotice, false
}
