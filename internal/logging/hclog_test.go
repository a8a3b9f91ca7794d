package logging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// recorder is a slog.Handler that keeps every record, with the attributes
// added by WithAttrs first.
type recorder struct {
	mu      *sync.Mutex
	records *[]rec
	level   slog.Level
	attrs   []slog.Attr
}

// rec is one recorded record, flattened.
type rec struct {
	level slog.Level
	msg   string
	attrs map[string]string
	keys  []string
	pc    uintptr
}

func newRecorder(level slog.Level) *recorder {
	return &recorder{mu: &sync.Mutex{}, records: &[]rec{}, level: level}
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= r.level }

func (r *recorder) Handle(_ context.Context, record slog.Record) error {
	out := rec{level: record.Level, msg: record.Message, attrs: map[string]string{}, pc: record.PC}
	add := func(a slog.Attr) bool {
		out.keys = append(out.keys, a.Key)
		out.attrs[a.Key] = a.Value.Resolve().String()
		return true
	}
	for _, a := range r.attrs {
		add(a)
	}
	record.Attrs(add)
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.records = append(*r.records, out)
	return nil
}

func (r *recorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *r
	c.attrs = append(append([]slog.Attr(nil), r.attrs...), attrs...)
	return &c
}

func (r *recorder) WithGroup(string) slog.Handler { panic("not used") }

// all returns the records so far.
func (r *recorder) all() []rec {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]rec(nil), *r.records...)
}

// last returns the latest record.
func (r *recorder) last(t *testing.T) rec {
	t.Helper()
	all := r.all()
	if len(all) == 0 {
		t.Fatal("nothing logged")
	}
	return all[len(all)-1]
}

func TestHCLogLevels(t *testing.T) {
	rc := newRecorder(LevelDebug)
	h := NewHCLogger(slog.New(rc))
	h.Trace("t")
	h.Debug("d")
	h.Info("i")
	h.Warn("w")
	h.Error("e")
	h.Log(hclog.Warn, "lw")
	h.Log(hclog.NoLevel, "ln")
	h.Log(hclog.Off, "off")
	want := []string{"t DEBUG", "d VERBOSE", "i NOTICE", "w WARNING", "e ERROR", "lw WARNING", "ln NOTICE"}
	var got []string
	for _, r := range rc.all() {
		got = append(got, r.msg+" "+LevelName(r.level))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestHCLogArgsBecomeAttrs(t *testing.T) {
	rc := newRecorder(LevelDebug)
	h := NewHCLogger(slog.New(rc))
	var nilRaft *raft.Raft
	h.Info("entering follower state",
		"follower", stringer("Node at 127.0.0.1:7481 [Follower]"),
		"leader-address", raft.ServerAddress("127.0.0.1:7482"),
		"term", uint64(7),
		"took", 1500*time.Millisecond,
		"error", errors.New("boom"),
		"fmt", hclog.Fmt("%d-%s", 3, "x"),
		"hex", hclog.Hex(255), "octal", hclog.Octal(8), "binary", hclog.Binary(5),
		"quote", hclog.Quote(`a "b"`),
		"nil-stringer", nilRaft,
		42, "non-string key",
		"dangling")
	r := rc.last(t)
	want := map[string]string{
		"follower": "Node at 127.0.0.1:7481 [Follower]", "leader-address": "127.0.0.1:7482",
		"term": "7", "took": "1.5s", "error": "boom", "fmt": "3-x", "hex": "0xff", "octal": "010",
		"binary": "0b101", "quote": `a "b"`, "42": "non-string key", hclog.MissingKey: "dangling",
	}
	for k, v := range want {
		if r.attrs[k] != v {
			t.Errorf("attr %s = %q, want %q", k, r.attrs[k], v)
		}
	}
	if _, ok := r.attrs["nil-stringer"]; !ok {
		t.Error("nil Stringer dropped")
	}
	if r.msg != "entering follower state" || r.level != LevelNotice {
		t.Errorf("record %q at %v", r.msg, r.level)
	}
}

// stringer is a fmt.Stringer that is not a string kind.
type stringer string

func (s stringer) String() string { return string(s) }

func TestHCLogStacktrace(t *testing.T) {
	rc := newRecorder(LevelDebug)
	h := NewHCLogger(slog.New(rc))
	h.Error("panic", "x", 1, hclog.Stacktrace())
	if st := rc.last(t).attrs["stacktrace"]; !strings.Contains(st, "goroutine") && !strings.Contains(st, "TestHCLogStacktrace") {
		t.Errorf("stacktrace attr = %q", st)
	}
}

func TestHCLogWithNamedImplied(t *testing.T) {
	rc := newRecorder(LevelDebug)
	base := NewHCLogger(slog.New(rc).With("src", "raft"))
	if base.Name() != "" || len(base.ImpliedArgs()) != 0 {
		t.Fatalf("fresh logger has name %q, args %v", base.Name(), base.ImpliedArgs())
	}
	w := base.With("path", "/a", "id", 1).With("id", 2, "odd")
	if got := fmt.Sprint(w.ImpliedArgs()); got != "[path /a id 2 "+hclog.MissingKey+" odd]" {
		t.Errorf("ImpliedArgs = %s", got)
	}
	n := w.Named("snapshot").Named("store")
	if n.Name() != "snapshot.store" {
		t.Errorf("Named chain = %q", n.Name())
	}
	n.Info("saved", "id", 3)
	r := rc.last(t)
	if r.attrs["src"] != "raft" || r.attrs[NameKey] != "snapshot.store" || r.attrs["path"] != "/a" {
		t.Errorf("attrs %v", r.attrs)
	}
	if strings.Join(r.keys, " ") != "src logger path id "+hclog.MissingKey+" id" || r.attrs["id"] != "3" {
		t.Errorf("keys %v attrs %v", r.keys, r.attrs)
	}
	reset := n.ResetNamed("other")
	if reset.Name() != "other" || fmt.Sprint(reset.ImpliedArgs()) != fmt.Sprint(w.ImpliedArgs()) {
		t.Errorf("ResetNamed: name %q args %v", reset.Name(), reset.ImpliedArgs())
	}
	base.Info("plain")
	if _, ok := rc.last(t).attrs[NameKey]; ok {
		t.Error("unnamed logger has a name attribute")
	}
	if base.Name() != "" || len(base.ImpliedArgs()) != 0 {
		t.Error("With or Named changed the parent")
	}
}

func TestHCLogLevelsFromHandler(t *testing.T) {
	tests := []struct {
		handler slog.Level
		want    hclog.Level
		is      [5]bool // trace, debug, info, warn, error
	}{
		{LevelDebug, hclog.Trace, [5]bool{true, true, true, true, true}},
		{LevelVerbose, hclog.Debug, [5]bool{false, true, true, true, true}},
		{LevelNotice, hclog.Info, [5]bool{false, false, true, true, true}},
		{LevelWarning, hclog.Warn, [5]bool{false, false, false, true, true}},
		{LevelError, hclog.Error, [5]bool{false, false, false, false, true}},
		{LevelError + 1, hclog.Off, [5]bool{}},
	}
	for _, tc := range tests {
		h := NewHCLogger(slog.New(newRecorder(tc.handler)))
		if got := h.GetLevel(); got != tc.want {
			t.Errorf("handler at %v: GetLevel = %v, want %v", tc.handler, got, tc.want)
		}
		is := [5]bool{h.IsTrace(), h.IsDebug(), h.IsInfo(), h.IsWarn(), h.IsError()}
		if is != tc.is {
			t.Errorf("handler at %v: IsX = %v, want %v", tc.handler, is, tc.is)
		}
	}
}

func TestHCLogSetLevel(t *testing.T) {
	rc := newRecorder(LevelDebug)
	h := NewHCLogger(slog.New(rc))
	child := h.Named("child")
	h.SetLevel(hclog.Warn)
	if h.GetLevel() != hclog.Warn || child.GetLevel() != hclog.Warn {
		t.Errorf("GetLevel after SetLevel(Warn): %v, child %v", h.GetLevel(), child.GetLevel())
	}
	child.Info("dropped")
	child.Warn("kept")
	if all := rc.all(); len(all) != 1 || all[0].msg != "kept" {
		t.Errorf("records %v", all)
	}
	h.SetLevel(hclog.Off)
	h.Error("silenced")
	if h.IsError() || len(rc.all()) != 1 {
		t.Error("Off did not silence")
	}
	h.SetLevel(hclog.NoLevel)
	if h.GetLevel() != hclog.Trace || !h.IsTrace() {
		t.Errorf("NoLevel did not restore the handler's level: %v", h.GetLevel())
	}
	// A floor below the handler's threshold cannot show more.
	hn := NewHCLogger(slog.New(newRecorder(LevelNotice)))
	hn.SetLevel(hclog.Trace)
	if hn.IsDebug() {
		t.Error("SetLevel lowered the handler's threshold")
	}
}

func TestHCLogStandardLogger(t *testing.T) {
	tests := []struct {
		name  string
		opts  *hclog.StandardLoggerOptions
		line  string
		msg   string
		level slog.Level
	}{
		{"plain is info", nil, "[WARN] hello", "[WARN] hello", LevelNotice},
		{"infer", &hclog.StandardLoggerOptions{InferLevels: true}, "[WARN] hello", "hello", LevelWarning},
		{"infer err", &hclog.StandardLoggerOptions{InferLevels: true}, "[ERR] bad", "bad", LevelError},
		{"infer none", &hclog.StandardLoggerOptions{InferLevels: true}, "just text", "just text", LevelNotice},
		{"infer with timestamp", &hclog.StandardLoggerOptions{InferLevels: true, InferLevelsWithTimestamp: true},
			"2024/01/02 15:04:05.123456 [DEBUG] dbg", "dbg", LevelVerbose},
		{"force", &hclog.StandardLoggerOptions{ForceLevel: hclog.Error}, "[INFO] forced", "forced", LevelError},
		{"force plain", &hclog.StandardLoggerOptions{ForceLevel: hclog.Trace}, "x", "x", LevelDebug},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := newRecorder(LevelDebug)
			h := NewHCLogger(slog.New(rc))
			h.StandardLogger(tc.opts).Println(tc.line)
			r := rc.last(t)
			if r.msg != tc.msg || r.level != tc.level {
				t.Errorf("got %q at %s, want %q at %s", r.msg, LevelName(r.level), tc.msg, LevelName(tc.level))
			}
		})
	}
	rc := newRecorder(LevelDebug)
	w := NewHCLogger(slog.New(rc)).StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true})
	if n, err := io.WriteString(w, "[ERROR] direct\n"); n != 15 || err != nil {
		t.Errorf("Write = %d, %v", n, err)
	}
	if r := rc.last(t); r.msg != "direct" || r.level != LevelError {
		t.Errorf("StandardWriter got %q at %v", r.msg, r.level)
	}
}

func TestHCLogCallerIsReported(t *testing.T) {
	rc := newRecorder(LevelDebug)
	h := NewHCLogger(slog.New(rc))
	h.Info("a")
	h.Log(hclog.Info, "b")
	for _, r := range rc.all() {
		f, _ := runtime.CallersFrames([]uintptr{r.pc}).Next()
		if !strings.HasSuffix(f.File, "hclog_test.go") || !strings.Contains(f.Function, "TestHCLogCallerIsReported") {
			t.Errorf("%s: caller %s %s", r.msg, f.File, f.Function)
		}
	}
}

func TestHCLogText(t *testing.T) {
	var b bytes.Buffer
	l, _ := New(&b, Options{Level: LevelDebug})
	NewHCLogger(l.With("src", "raft")).Debug("failed to contact", "server-id", raft.ServerID("127.0.0.1:7482"), "time", 2*time.Second)
	got := b.String()
	for _, want := range []string{`level=VERBOSE msg="failed to contact" src=raft server-id=127.0.0.1:7482 time=2s`} {
		if !strings.Contains(got, want) {
			t.Errorf("got %q, want it to contain %q", got, want)
		}
	}
}

// TestRaftThroughAdapter runs a one-node hashicorp/raft cluster with the
// adapter as its logger and checks that Raft's lines arrive as structured
// records.
func TestRaftThroughAdapter(t *testing.T) {
	rc := newRecorder(LevelDebug)
	hl := NewHCLogger(slog.New(rc).With("src", "raft"))
	cfg := raft.DefaultConfig()
	cfg.LocalID = "node1"
	cfg.Logger = hl
	cfg.HeartbeatTimeout = 50 * time.Millisecond
	cfg.ElectionTimeout = 50 * time.Millisecond
	cfg.LeaderLeaseTimeout = 50 * time.Millisecond
	store := raft.NewInmemStore()
	addr, trans := raft.NewInmemTransport("node1")
	r, err := raft.NewRaft(cfg, nopFSM{}, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown()
	if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: "node1", Address: addr}}}).Error(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.State() != raft.Leader && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r.State() != raft.Leader {
		t.Fatal("no leader")
	}
	if err := r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	var sawLeader, sawTerm bool
	for _, rec := range rc.all() {
		if rec.attrs["src"] != "raft" {
			t.Errorf("record without src: %+v", rec)
		}
		if strings.Contains(rec.msg, "[") && strings.Contains(rec.msg, "]") && strings.Contains(rec.msg, "raft:") {
			t.Errorf("message looks re-rendered: %q", rec.msg)
		}
		if rec.msg == "entering leader state" && rec.level == LevelNotice && rec.attrs["leader"] != "" {
			sawLeader = true
		}
		if _, ok := rec.attrs["term"]; ok {
			sawTerm = true
		}
	}
	if !sawLeader || !sawTerm {
		for _, rec := range rc.all() {
			t.Logf("%s %q %v", LevelName(rec.level), rec.msg, rec.attrs)
		}
		t.Fatalf("leader record %v, term attribute %v", sawLeader, sawTerm)
	}
}

// nopFSM is a Raft FSM that stores nothing.
type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                 { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (nopFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

// nopSnapshot is an empty FSM snapshot.
type nopSnapshot struct{}

func (nopSnapshot) Persist(s raft.SnapshotSink) error { return s.Close() }
func (nopSnapshot) Release()                          {}
