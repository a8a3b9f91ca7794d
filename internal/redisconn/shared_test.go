package redisconn

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startRedis runs a redis-server listening only on a unix socket in a
// temporary directory and returns the socket's path.
func startRedis(t *testing.T) (string, *exec.Cmd) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command("redis-server", "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := Dial("unix", sock, time.Second)
		if err == nil {
			c.Close()
			return sock, cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not start: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func strs(args ...string) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = []byte(a)
	}
	return out
}

// TestSharedKeepsOrderAndDatabases: many goroutines, each writing and
// reading its own keys in its own database through two lanes, get exactly
// their own replies, in order.
func TestSharedKeepsOrderAndDatabases(t *testing.T) {
	sock, _ := startRedis(t)
	s := NewShared("unix", sock, 2)
	defer s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := g % 16
			for i := range 100 {
				key, val := fmt.Sprintf("k%d", g), fmt.Sprintf("v%d-%d", g, i)
				out, err := s.Run(db, []Step{
					{Args: strs("SET", key, val)},
					{Args: strs("GET", key)},
					{Reply: []byte("+known\r\n")},
					{Args: strs("DBSIZE"), MapReply: func(b []byte) []byte { return append([]byte("mapped:"), b...) }},
				})
				if err != nil {
					errs <- err
					return
				}
				want := []string{"+OK\r\n", fmt.Sprintf("$%d\r\n%s\r\n", len(val), val), "+known\r\n"}
				for j, w := range want {
					if string(out[j]) != w {
						errs <- fmt.Errorf("goroutine %d call %d step %d: %q, want %q", g, i, j, out[j], w)
						return
					}
				}
				if len(out[3]) < 8 || string(out[3][:8]) != "mapped::" {
					errs <- fmt.Errorf("goroutine %d: DBSIZE reply not mapped: %q", g, out[3])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Every database holds its four goroutines' keys.
	for db := range 16 {
		out, err := s.Run(db, []Step{{Args: strs("DBSIZE")}})
		if err != nil || string(out[0]) != ":4\r\n" {
			t.Fatalf("db %d: DBSIZE %q %v", db, out, err)
		}
	}
}

// TestSharedSurvivesAServerRestart: calls in flight when the server dies
// fail with an error instead of hanging; after Reset (the child was
// replaced), calls work again on fresh connections.
func TestSharedSurvivesAServerRestart(t *testing.T) {
	sock, cmd := startRedis(t)
	s := NewShared("unix", sock, 2)
	defer s.Close()
	if _, err := s.Run(3, []Step{{Args: strs("SET", "a", "1")}}); err != nil {
		t.Fatal(err)
	}
	// A call blocked in the server when it is killed.
	blocked := make(chan error, 1)
	go func() {
		_, err := s.Run(0, []Step{{Args: strs("BLPOP", "nothing", "0")}})
		blocked <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.lanes[0].outstanding.Load()+s.lanes[1].outstanding.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	_ = cmd.Process.Kill()
	select {
	case err := <-blocked:
		if err == nil {
			t.Fatal("call on a killed server succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("call on a killed server hangs")
	}
	// A new server on the same socket; the lanes dial it afresh.
	_ = cmd.Wait()
	cmd2 := exec.Command("redis-server", "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no", "--dir", filepath.Dir(sock))
	if err := cmd2.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd2.Process.Kill(); _ = cmd2.Wait() }()
	s.Reset()
	for {
		out, err := s.Run(3, []Step{{Args: strs("SET", "b", "2")}, {Args: strs("DBSIZE")}})
		if err == nil {
			// Database 3 again (the new connection selects it), and a
			// fresh server: only b.
			if string(out[1]) != ":1\r\n" {
				t.Fatalf("after restart: %q", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call succeeded after the restart: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSharedClosed(t *testing.T) {
	sock, _ := startRedis(t)
	s := NewShared("unix", sock, 1)
	s.Close()
	if _, err := s.Run(0, []Step{{Args: strs("PING")}}); !errors.Is(err, ErrSharedClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestSharedWithSetup: lanes of NewSharedWith run their setup command on
// every connection they dial (HELLO 3: replies in RESP3), also after the
// connection was lost; a setup the server refuses fails the calls.
func TestSharedWithSetup(t *testing.T) {
	sock, _ := startRedis(t)
	s := NewSharedWith("unix", sock, 1, "HELLO", "3")
	defer s.Close()
	for round := range 2 {
		out, err := s.Run(0, []Step{{Args: strs("GET", "missing")}, {Args: strs("HSET", "h", "f", "v")}, {Args: strs("HGETALL", "h")}})
		if err != nil || string(out[0]) != "_\r\n" || string(out[2]) != "%1\r\n$1\r\nf\r\n$1\r\nv\r\n" {
			t.Fatalf("round %d: %q, %v", round, out, err)
		}
		s.Reset()
	}
	bad := NewSharedWith("unix", sock, 1, "HELLO", "9")
	defer bad.Close()
	if out, err := bad.Run(0, []Step{{Args: strs("PING")}}); err == nil {
		t.Fatalf("a refused setup: %q, no error", out)
	}
	p := NewPoolWith("unix", sock, 1, "HELLO", "3")
	c, err := p.Get()
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := c.Do("GET", "missing"); err != nil || string(raw) != "_\r\n" {
		t.Errorf("pool connection: %q, %v", raw, err)
	}
	c.Close()
}

// TestSharedBatchesCallsBehindOneInFlight: calls made while a lane's batch
// is in flight wait for its replies and then go out in one write: the
// server reads them in one go instead of once each. The batch in flight is
// a BLPOP that blocks until the test pushes to its list.
func TestSharedBatchesCallsBehindOneInFlight(t *testing.T) {
	sock, _ := startRedis(t)
	s := NewShared("unix", sock, 1)
	defer s.Close()
	admin, err := Dial("unix", sock, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	stat := func(name string) int {
		t.Helper()
		raw, err := admin.Do("INFO", "stats")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\r\n") {
			if v, ok := strings.CutPrefix(line, name+":"); ok {
				n, err := strconv.Atoi(v)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
		t.Fatalf("INFO stats has no %s", name)
		return 0
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := s.Run(0, []Step{{Args: strs("BLPOP", "wake", "0")}})
		blocked <- err
	}()
	waitFor(t, func() bool {
		raw, err := admin.Do("INFO", "clients")
		return err == nil && strings.Contains(string(raw), "blocked_clients:1\r\n")
	})
	before := stat("total_reads_processed")
	const calls = 20
	lane := s.lanes[0]
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := s.Run(0, []Step{{Args: strs("ECHO", strconv.Itoa(i))}})
			if err == nil && string(out[0]) != fmt.Sprintf("$%d\r\n%d\r\n", len(strconv.Itoa(i)), i) {
				err = fmt.Errorf("ECHO %d answered %q", i, out[0])
			}
			errs <- err
		}()
	}
	// All twenty wait on the lane, none written, while the BLPOP is in flight.
	waitFor(t, func() bool {
		lane.mu.Lock()
		defer lane.mu.Unlock()
		return len(lane.queue) == calls
	})
	if _, err := admin.Do("LPUSH", "wake", "x"); err != nil {
		t.Fatal(err)
	}
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// The LPUSH and this INFO are one read each; the twenty calls, one more
	// (two if the kernel split the write), not one each.
	if reads := stat("total_reads_processed") - before; reads > 4 {
		t.Fatalf("the server read %d times for %d calls queued behind a batch in flight, want them in one write", reads-2, calls)
	}
}

// waitFor polls cond every 5 ms for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
