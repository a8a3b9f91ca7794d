package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listen opens a unixgram socket at name and returns a function reading
// the next datagram.
func listen(t *testing.T, name string) func() string {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return func() string {
		t.Helper()
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("read notification: %v", err)
		}
		return string(buf[:n])
	}
}

func TestNotifyPathSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	next := listen(t, path)
	t.Setenv(SocketEnv, path)
	n := FromEnv()
	if !n.Enabled() {
		t.Fatal("not enabled with NOTIFY_SOCKET set")
	}
	steps := []struct {
		send func() error
		want string
	}{
		{func() error { return n.Ready("") }, "READY=1\n"},
		{func() error { return n.Ready("serving on :7481") }, "READY=1\nSTATUS=serving on :7481\n"},
		{func() error { return n.Status("line one\nline two") }, "STATUS=line one line two\n"},
		{n.Stopping, "STOPPING=1\n"},
		{n.Watchdog, "WATCHDOG=1\n"},
		{func() error { return n.ExtendTimeout(90 * time.Second) }, "EXTEND_TIMEOUT_USEC=90000000\n"},
		{func() error { return n.Send("MAINPID=1", "X=y") }, "MAINPID=1\nX=y\n"},
	}
	for _, s := range steps {
		if err := s.send(); err != nil {
			t.Fatal(err)
		}
		if got := next(); got != s.want {
			t.Errorf("got %q, want %q", got, s.want)
		}
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@redraft-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	next := listen(t, name)
	n := New(name)
	if err := n.Ready("ok"); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "READY=1\nSTATUS=ok\n" {
		t.Errorf("got %q", got)
	}
}

func TestDisabledIsNoOp(t *testing.T) {
	t.Setenv(SocketEnv, "")
	for _, n := range []*Notifier{FromEnv(), New(""), nil, {}} {
		if n.Enabled() {
			t.Error("enabled without a socket")
		}
		if err := errors.Join(n.Ready("x"), n.Status("x"), n.Stopping(), n.Watchdog(), n.ExtendTimeout(time.Second)); err != nil {
			t.Errorf("disabled notifier returned %v", err)
		}
	}
}

func TestMissingSocketIsAnError(t *testing.T) {
	n := New(filepath.Join(t.TempDir(), "absent.sock"))
	err := n.Ready("")
	if err == nil || !strings.Contains(err.Error(), "absent.sock") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	tests := []struct {
		usec, pid string
		want      time.Duration
		ok        bool
	}{
		{"", "", 0, false},
		{"30000000", "", 30 * time.Second, true},
		{"30000000", "42", 30 * time.Second, true},
		{"30000000", "43", 0, false},
		{"abc", "", 0, false},
		{"0", "", 0, false},
	}
	for _, tc := range tests {
		got, ok := watchdogInterval(tc.usec, tc.pid, 42)
		if got != tc.want || ok != tc.ok {
			t.Errorf("watchdogInterval(%q, %q) = %v, %v", tc.usec, tc.pid, got, ok)
		}
	}
	t.Setenv(WatchdogUsecEnv, "5000000")
	t.Setenv(WatchdogPIDEnv, fmt.Sprint(os.Getpid()))
	if d, ok := WatchdogInterval(); !ok || d != 5*time.Second {
		t.Errorf("WatchdogInterval() = %v, %v", d, ok)
	}
}

func TestRunWatchdog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wd.sock")
	next := listen(t, path)
	n := New(path)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	healthy := make(chan bool, 1)
	healthy <- false
	go func() {
		done <- n.RunWatchdog(ctx, 20*time.Millisecond, func() bool {
			select {
			case h := <-healthy:
				return h
			default:
				return true
			}
		})
	}()
	for i := 0; i < 3; i++ {
		if got := next(); got != "WATCHDOG=1\n" {
			t.Fatalf("got %q", got)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("RunWatchdog returned %v", err)
	}
	// Disabled: blocks until the context ends.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if err := New("").RunWatchdog(ctx2, time.Millisecond, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("disabled RunWatchdog returned %v", err)
	}
}

func TestChildEnv(t *testing.T) {
	in := []string{"PATH=/bin", "NOTIFY_SOCKET=/run/x", "WATCHDOG_USEC=1", "WATCHDOG_PID=2", "NOTIFY_SOCKETS=keep", "HOME=/"}
	got := strings.Join(ChildEnv(in), " ")
	if got != "PATH=/bin NOTIFY_SOCKETS=keep HOME=/" {
		t.Fatalf("ChildEnv = %q", got)
	}
}
