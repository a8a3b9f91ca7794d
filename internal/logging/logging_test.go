package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestParseLevel(t *testing.T) {
	want := map[string]slog.Level{"quiet": LevelError, "warning": LevelWarning, "NOTICE": LevelNotice, "verbose": LevelVerbose, "debug": LevelDebug}
	for name, lvl := range want {
		got, err := ParseLevel(name)
		if err != nil || got != lvl {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", name, got, err, lvl)
		}
	}
	_, err := ParseLevel("info")
	if err == nil || !strings.Contains(err.Error(), "quiet, warning, notice, verbose, debug") {
		t.Errorf("ParseLevel(info) error = %v", err)
	}
	if got := strings.Join(LevelNames(), ","); got != "quiet,warning,notice,verbose,debug" {
		t.Errorf("LevelNames() = %s", got)
	}
}

func TestLevelName(t *testing.T) {
	want := map[slog.Level]string{
		LevelDebug: "DEBUG", LevelVerbose: "VERBOSE", LevelNotice: "NOTICE", LevelWarning: "WARNING",
		LevelError: "ERROR", LevelError + 2: "ERROR+2", LevelNotice + 1: "NOTICE+1", LevelDebug + 1: "DEBUG+1",
		LevelDebug - 4: "DEBUG-4", LevelVerbose + 1: "VERBOSE+1",
	}
	for l, name := range want {
		if got := LevelName(l); got != name {
			t.Errorf("LevelName(%d) = %q, want %q", int(l), got, name)
		}
	}
}

// logAll logs one record at each Redis level.
func logAll(l *slog.Logger) {
	l.Debug("d")
	l.Log(context.Background(), LevelVerbose, "v")
	l.Info("n")
	l.Warn("w")
	l.Error("e")
}

func TestTextLevelsAndThresholds(t *testing.T) {
	tests := []struct {
		level string
		want  []string
	}{
		{"debug", []string{"DEBUG", "VERBOSE", "NOTICE", "WARNING", "ERROR"}},
		{"verbose", []string{"VERBOSE", "NOTICE", "WARNING", "ERROR"}},
		{"notice", []string{"NOTICE", "WARNING", "ERROR"}},
		{"warning", []string{"WARNING", "ERROR"}},
		{"quiet", []string{"ERROR"}},
	}
	for _, tc := range tests {
		lvl, err := ParseLevel(tc.level)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		l, err := New(&b, Options{Level: lvl})
		if err != nil {
			t.Fatal(err)
		}
		logAll(l)
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || !strings.HasPrefix(f[1], "level=") {
				t.Fatalf("unexpected line %q", line)
			}
			got = append(got, strings.TrimPrefix(f[1], "level="))
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("-loglevel %s printed %v, want %v", tc.level, got, tc.want)
		}
	}
}

func TestJSONLevels(t *testing.T) {
	var b bytes.Buffer
	l, err := New(&b, Options{Level: LevelDebug, Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	logAll(l.With("src", "test"))
	var levels []string
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if rec["src"] != "test" {
			t.Errorf("attribute lost: %q", line)
		}
		levels = append(levels, rec["level"].(string))
	}
	if got := strings.Join(levels, " "); got != "DEBUG VERBOSE NOTICE WARNING ERROR" {
		t.Errorf("JSON levels %q", got)
	}
}

func TestLevelOnlyRenamedAtTopLevel(t *testing.T) {
	var b bytes.Buffer
	l, _ := New(&b, Options{})
	l.Info("x", slog.Group("g", slog.Any("level", LevelVerbose)))
	if !strings.Contains(b.String(), "level=NOTICE") || !strings.Contains(b.String(), "g.level=DEBUG+2") {
		t.Errorf("got %q", b.String())
	}
}

func TestDefaultsAndBadFormat(t *testing.T) {
	var b bytes.Buffer
	l, err := New(&b, Options{Format: "TEXT"})
	if err != nil {
		t.Fatal(err)
	}
	l.Log(context.Background(), LevelVerbose, "hidden")
	l.Info("shown")
	if strings.Contains(b.String(), "hidden") || !strings.Contains(b.String(), "shown") {
		t.Errorf("default threshold is not notice: %q", b.String())
	}
	if _, err := New(&b, Options{Format: "xml"}); err == nil || !strings.Contains(err.Error(), "text, json") {
		t.Errorf("bad format error = %v", err)
	}
}

func TestLevelVar(t *testing.T) {
	var b bytes.Buffer
	var lv slog.LevelVar
	lv.Set(LevelWarning)
	l, _ := New(&b, Options{Level: &lv})
	l.Info("before")
	lv.Set(LevelNotice)
	l.Info("after")
	if strings.Contains(b.String(), "before") || !strings.Contains(b.String(), "after") {
		t.Errorf("LevelVar not honoured: %q", b.String())
	}
}

func TestRedisLevel(t *testing.T) {
	want := map[byte]slog.Level{'.': LevelDebug, '-': LevelVerbose, '*': LevelNotice, '#': LevelWarning}
	for mark, lvl := range want {
		if got, ok := RedisLevel(mark); !ok || got != lvl {
			t.Errorf("RedisLevel(%q) = %v, %v", mark, got, ok)
		}
	}
	if got, ok := RedisLevel('x'); ok || got != LevelNotice {
		t.Errorf("RedisLevel('x') = %v, %v", got, ok)
	}
}

func TestAddSource(t *testing.T) {
	var b bytes.Buffer
	l, _ := New(&b, Options{AddSource: true, Format: "json"})
	l.Info("x")
	if !strings.Contains(b.String(), "logging_test.go") {
		t.Errorf("no source: %q", b.String())
	}
}
