// Package child starts and supervises the child redis-server: it listens
// only on a unix socket, keeps no data files of its own, never evicts, and
// dies with its parent.
package child

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redraft/redraft/internal/logging"
	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/sdnotify"
)

// Process is a supervised redis-server listening only on a unix socket.
type Process struct {
	cmd    *exec.Cmd
	path   string // the redis-server executable
	sock   string
	dir    string
	exited chan struct{} // closed when the process has exited
	err    error         // exit status, valid after exited is closed
}

// Sock is the child's unix socket.
func (c *Process) Sock() string { return c.sock }

// Dir is the child's working directory.
func (c *Process) Dir() string { return c.dir }

// Path is the redis-server executable.
func (c *Process) Path() string { return c.path }

// Exited is closed once the process has exited.
func (c *Process) Exited() <-chan struct{} { return c.exited }

// Err is the exit status; valid once Exited is closed.
func (c *Process) Err() error { return c.err }

// Dial opens a new connection to the child.
func (c *Process) Dial() (*redisconn.Conn, error) { return Dial(c.sock) }

// Dial opens a connection to the redis-server listening on sock.
func Dial(sock string) (*redisconn.Conn, error) {
	conn, err := redisconn.Dial("unix", sock, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	return conn, nil
}

// FindServer resolves the redis-server executable: an explicit path,
// then ./redis-server beside the redraft binary, then $PATH.
func FindServer(explicit string) (string, error) {
	if explicit != "" {
		if st, err := os.Stat(explicit); err != nil || st.IsDir() {
			return "", fmt.Errorf("redis-server not found at %q (--redis-server); install it with 'apt-get install redis-server' or pass its path", explicit)
		}
		return explicit, nil
	}
	if exe, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(exe), "redis-server")
		if st, err := os.Stat(beside); err == nil && !st.IsDir() {
			return beside, nil
		}
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("redis-server not found on PATH; install it (Debian/Ubuntu: 'apt-get install redis-server') or pass --redis-server PATH")
	}
	return p, nil
}

// SocketPath picks the child's unix socket: inside the data dir when the
// path fits the kernel's limit, otherwise a hashed name in the temp dir.
func SocketPath(dir string) string {
	p := filepath.Join(dir, "redis.sock")
	if len(p) < 100 {
		return p
	}
	sum := sha1.Sum([]byte(p))
	return filepath.Join(os.TempDir(), "redraft-"+hex.EncodeToString(sum[:8])+".sock")
}

// Args is the child's configuration: no TCP port, no persistence of its
// own, no eviction, and DEBUG allowed only over the local socket (for
// RAFTDIGEST).
func Args(sock, dir string, extra ...string) []string {
	args := []string{
		"--port", "0",
		"--unixsocket", sock,
		"--unixsocketperm", "700",
		"--dir", dir,
		"--dbfilename", "snapshot.rdb",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--protected-mode", "no",
		"--maxmemory", "0",
		"--maxmemory-policy", "noeviction",
		"--enable-debug-command", "local",
		"--logfile", "",
		"--databases", "16",
	}
	return append(args, extra...)
}

// Start launches redis-server and waits until it answers PING.
func Start(path, dir, sock string, args []string, log *slog.Logger) (*Process, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create child dir: %w", err)
	}
	_ = os.Remove(sock)
	c := &Process{path: path, sock: sock, dir: dir, exited: make(chan struct{})}
	started := make(chan error, 1)
	// The process is started from a goroutine locked to its OS thread, which
	// stays alive until the child exits: Pdeathsig fires when the creating
	// thread dies, so the child is killed with this process and never earlier.
	go func() {
		runtime.LockOSThread()
		cmd := exec.Command(path, args...)
		cmd.Env = append(sdnotify.ChildEnv(os.Environ()), "LC_ALL=C")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		out, err := cmd.StdoutPipe()
		if err != nil {
			started <- err
			return
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			started <- fmt.Errorf("start %s: %w", path, err)
			return
		}
		c.cmd = cmd
		go forwardChildLog(out, log)
		started <- nil
		c.err = cmd.Wait()
		close(c.exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	if err := c.waitReady(10 * time.Second); err != nil {
		c.Kill()
		return nil, err
	}
	return c, nil
}

// waitReady polls the socket until the child answers PING. A child that
// answers -LOADING is busy loading a dataset: the wait goes on as long as
// it does.
func (c *Process) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-c.exited:
			return fmt.Errorf("redis-server exited during start-up: %v", c.err)
		default:
		}
		if conn, err := Dial(c.sock); err == nil {
			reply, err := conn.Do("PING")
			conn.Close()
			if err == nil && string(reply) == "+PONG\r\n" {
				return nil
			}
			if err == nil && strings.HasPrefix(string(reply), "-LOADING") {
				deadline = time.Now().Add(timeout)
			}
		}
		if time.Now().After(deadline) {
			return errors.New("redis-server did not answer PING within " + timeout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the child at once and waits for it.
func (c *Process) Kill() {
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Kill()
	}
	<-c.exited
}

// Stop asks the child to exit (SIGTERM) and waits up to timeout.
func (c *Process) Stop(timeout time.Duration) {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	select {
	case <-c.exited:
	case <-ctx.Done():
		c.Kill()
	}
	_ = os.Remove(c.sock)
}

// forwardChildLog routes redis-server's log lines into our logger, mapping
// its level markers (# warning, * notice, - verbose, . debug).
func forwardChildLog(r io.Reader, log *slog.Logger) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		level, msg := logging.LevelNotice, line
		// "pid:R 26 Nov 2026 05:00:00.000 * message"
		if fields := strings.SplitN(line, " ", 7); len(fields) == 7 && len(fields[5]) == 1 {
			if l, ok := logging.RedisLevel(fields[5][0]); ok {
				level, msg = l, fields[6]
			}
		}
		log.Log(context.Background(), level, msg)
	}
}

// Supervisor keeps one child running on a fixed socket. A planned restart
// (Restart) replaces the process; any other exit is reported on Died.
type Supervisor struct {
	path, dir, sock string
	args            []string
	log             *slog.Logger

	restarts atomic.Int64

	mu        sync.Mutex
	proc      *Process
	planned   bool
	died      chan struct{}
	diedErr   error
	onRestart []func()
}

// Supervise starts the child and watches it.
func Supervise(path, dir, sock string, args []string, log *slog.Logger) (*Supervisor, error) {
	s := &Supervisor{path: path, dir: dir, sock: sock, args: args, log: log, died: make(chan struct{})}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// start launches a new process and watches it.
func (s *Supervisor) start() error {
	p, err := Start(s.path, s.dir, s.sock, s.args, s.log)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc, s.planned = p, false
	s.mu.Unlock()
	go s.watch(p)
	return nil
}

// watch reports p's exit on Died unless it was planned.
func (s *Supervisor) watch(p *Process) {
	<-p.Exited()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != p || s.planned {
		return
	}
	s.diedErr = p.Err()
	close(s.died)
}

// Restart kills the running child (a planned exit) and starts a new one on
// the same socket; functions given to OnRestart run once it answers.
func (s *Supervisor) Restart() error {
	s.mu.Lock()
	s.planned = true
	p := s.proc
	s.mu.Unlock()
	p.Kill()
	s.restarts.Add(1)
	if err := s.start(); err != nil {
		return fmt.Errorf("restart redis-server: %w", err)
	}
	s.mu.Lock()
	hooks := append([]func(){}, s.onRestart...)
	s.mu.Unlock()
	for _, h := range hooks {
		h()
	}
	return nil
}

// OnRestart registers fn to run after every Restart (e.g. to drop pooled
// connections to the old process).
func (s *Supervisor) OnRestart(fn func()) {
	s.mu.Lock()
	s.onRestart = append(s.onRestart, fn)
	s.mu.Unlock()
}

// Kill kills the running child at once, as a planned exit (a Restart
// follows).
func (s *Supervisor) Kill() {
	s.mu.Lock()
	s.planned = true
	p := s.proc
	s.mu.Unlock()
	p.Kill()
}

// Restarts counts the planned restarts (Restart) so far.
func (s *Supervisor) Restarts() int64 { return s.restarts.Load() }

// Died is closed when the child exits without a planned restart.
func (s *Supervisor) Died() <-chan struct{} { return s.died }

// Err is the unplanned exit's status, valid once Died is closed.
func (s *Supervisor) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.diedErr
}

// Stop stops the child (SIGTERM, then SIGKILL after timeout) for good.
func (s *Supervisor) Stop(timeout time.Duration) {
	s.mu.Lock()
	s.planned = true
	p := s.proc
	s.mu.Unlock()
	p.Stop(timeout)
}

// Sock is the child's unix socket.
func (s *Supervisor) Sock() string { return s.sock }

// Dir is the child's working directory.
func (s *Supervisor) Dir() string { return s.dir }

// Path is the redis-server executable.
func (s *Supervisor) Path() string { return s.path }

// Dial opens a new connection to the child.
func (s *Supervisor) Dial() (*redisconn.Conn, error) { return Dial(s.sock) }
