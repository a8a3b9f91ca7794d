package main

import (
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/internal/resp"
)

// childConn runs commands on a connection of its own to s's child (writes
// made behind the front end's back, as the apply path makes them).
func childDo(t *testing.T, s *frontEnd, args ...string) []byte {
	t.Helper()
	c, err := s.child.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.Do(args...)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A change the child makes (whoever makes it) reaches a tracking client as
// an invalidation; the tracking table is bounded, and a key dropped from
// it is invalidated, as Redis does past tracking-table-max-keys.
func TestTrackingTableBounded(t *testing.T) {
	s, addr := newTestFrontEnd(t, func(s *frontEnd) { s.tracker.maxKeys = 2 })
	c := dialTest(t, addr)
	c.do("HELLO 3\r\n")
	if got := c.do("CLIENT TRACKING on\r\n"); got != "+OK\r\n" {
		t.Fatalf("CLIENT TRACKING on: %q", got)
	}
	if got := c.do("MGET a b\r\n"); got != "*2\r\n_\r\n_\r\n" {
		t.Fatalf("MGET: %q", got)
	}
	childDo(t, s, "SET", "a", "1")
	if got := c.reply(); got != ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n" {
		t.Fatalf("after a write in the child: %q", got)
	}
	// a was forgotten; b is remembered. Two more keys push one out.
	if got := c.do("MGET c d\r\n"); got != "*2\r\n_\r\n_\r\n" {
		t.Fatalf("MGET: %q", got)
	}
	push := c.reply()
	if !strings.HasPrefix(push, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\n") {
		t.Fatalf("no invalidation for the key pushed out of the table: %q", push)
	}
	if keys, _, _ := s.tracker.stats(); keys != 2 {
		t.Errorf("tracking table holds %d keys, want 2", keys)
	}
}

// When the front end's own tracking connection to the child is lost,
// changes may have been missed: every tracking client is told to drop
// everything, and tracking carries on over a new connection.
func TestTrackingSurvivesLostConnection(t *testing.T) {
	s, addr := newTestFrontEnd(t, nil)
	c := dialTest(t, addr)
	c.do("HELLO 3\r\n")
	c.do("CLIENT TRACKING on\r\n")
	c.do("GET k\r\n")
	list, _ := resp.ReplyString(childDo(t, s, "CLIENT", "LIST"))
	id := ""
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " flags=tB") {
			id = strings.TrimPrefix(strings.Fields(line)[0], "id=")
		}
	}
	if id == "" {
		t.Fatalf("no BCAST tracking connection in the child's CLIENT LIST:\n%s", list)
	}
	childDo(t, s, "CLIENT", "KILL", "ID", id)
	if got := c.reply(); got != ">2\r\n$10\r\ninvalidate\r\n_\r\n" {
		t.Fatalf("after the tracking connection was lost: %q", got)
	}
	// Once a new connection tracks (a second null invalidation says so),
	// changes are reported again.
	if got := c.reply(); got != ">2\r\n$10\r\ninvalidate\r\n_\r\n" {
		t.Fatalf("when tracking resumed: %q", got)
	}
	c.do("GET k\r\n")
	childDo(t, s, "SET", "k", "v")
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got := c.reply(); got != ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n" {
		t.Fatalf("after tracking resumed: %q", got)
	}
}
