package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

// The handler serves the recorded values, the state read at scrape time,
// and the health checks.
func TestHandler(t *testing.T) {
	m := New()
	m.Commands(Write, 3)
	m.Commands(Refused, 1)
	m.Proposed(7, 2*time.Millisecond)
	m.Applied(2, time.Millisecond)
	m.Snapshotted(time.Second, nil)
	m.Snapshotted(0, context.Canceled)
	state := "Follower"
	m.State("raft_state", "role", "state", []string{"Follower", "Leader"}, func() string { return state })
	m.Gauge("raft_term", "term", func() float64 { return 4 })
	ready, why := false, "no leader is known"
	h := m.Handler(Endpoints{Ready: func(context.Context) (bool, string) { return ready, why }})

	code, body := get(t, h, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`redraft_commands_total{kind="write"} 3`,
		`redraft_commands_total{kind="refused"} 1`,
		`redraft_commands_total{kind="read"} 0`,
		`redraft_entry_commands_sum 7`,
		`redraft_proposal_duration_seconds_count 1`,
		`redraft_apply_batch_entries_sum 2`,
		`redraft_snapshots_total 1`,
		`redraft_snapshot_errors_total 1`,
		`redraft_raft_state{state="Follower"} 1`,
		`redraft_raft_state{state="Leader"} 0`,
		`redraft_raft_term 4`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	state = "Leader"
	if _, body := get(t, h, "/metrics"); !strings.Contains(body, `redraft_raft_state{state="Leader"} 1`) {
		t.Error("the state is not read at scrape time")
	}
	if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, "no leader") {
		t.Errorf("/readyz not ready: %d %q", code, body)
	}
	ready = true
	if code, _ := get(t, h, "/readyz"); code != 200 {
		t.Errorf("/readyz ready: %d", code)
	}
	if code, _ := get(t, h, "/livez"); code != 200 {
		t.Errorf("/livez: %d", code)
	}
	if code, _ := get(t, h, "/debug/pprof/goroutine?debug=1"); code != 200 {
		t.Errorf("/debug/pprof/goroutine: %d", code)
	}
	// The command line may hold a password: not served.
	if code, body := get(t, h, "/debug/pprof/cmdline"); code == 200 {
		t.Errorf("/debug/pprof/cmdline serves the command line: %q", body)
	}
	if code, _ := get(t, h, "/backup"); code != 404 {
		t.Errorf("/backup without a handler: %d", code)
	}
}
