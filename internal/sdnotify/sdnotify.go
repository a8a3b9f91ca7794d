// Package sdnotify implements the sender side of systemd's sd_notify
// protocol: datagrams such as "READY=1" written to the unix socket named
// by $NOTIFY_SOCKET (a path, or an abstract socket written "@name"). When
// the variable is unset every call is a no-op, so a program can notify
// unconditionally.
package sdnotify

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Environment variables of the protocol.
const (
	// SocketEnv names the socket to notify.
	SocketEnv = "NOTIFY_SOCKET"
	// WatchdogUsecEnv is the watchdog period in microseconds.
	WatchdogUsecEnv = "WATCHDOG_USEC"
	// WatchdogPIDEnv is the process the watchdog is meant for.
	WatchdogPIDEnv = "WATCHDOG_PID"
)

// writeTimeout bounds one notification; the manager reads promptly, so a
// full socket buffer means something is wrong and we must not hang.
const writeTimeout = time.Second

// Notifier sends notifications to one socket. The zero value and a nil
// *Notifier do nothing.
type Notifier struct {
	socket string
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET; it is disabled (a no-op)
// when the variable is unset or empty.
func FromEnv() *Notifier {
	return New(os.Getenv(SocketEnv))
}

// New returns a Notifier for a socket path or "@abstract" name; an empty
// name gives a disabled Notifier.
func New(socket string) *Notifier {
	return &Notifier{socket: socket}
}

// Enabled reports whether notifications are sent anywhere.
func (n *Notifier) Enabled() bool {
	return n != nil && n.socket != ""
}

// Send writes the assignments ("READY=1", "STATUS=…") as one datagram.
func (n *Notifier) Send(assignments ...string) error {
	if !n.Enabled() || len(assignments) == 0 {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: dial %s: %w", n.socket, err)
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	if _, err := conn.Write([]byte(strings.Join(assignments, "\n") + "\n")); err != nil {
		return fmt.Errorf("sd_notify: write %s: %w", n.socket, err)
	}
	return nil
}

// Ready tells the manager that start-up is finished (READY=1), with a
// status line when status is not empty.
func (n *Notifier) Ready(status string) error {
	if status == "" {
		return n.Send("READY=1")
	}
	return n.Send("READY=1", statusLine(status))
}

// Status sets the one-line status that systemctl status shows.
func (n *Notifier) Status(status string) error {
	return n.Send(statusLine(status))
}

// Stopping tells the manager that shutdown has begun (STOPPING=1).
func (n *Notifier) Stopping() error {
	return n.Send("STOPPING=1")
}

// Watchdog pets the service watchdog (WATCHDOG=1).
func (n *Notifier) Watchdog() error {
	return n.Send("WATCHDOG=1")
}

// ExtendTimeout asks for d more time for the current start-up or shutdown
// (EXTEND_TIMEOUT_USEC), e.g. while a large snapshot is restored.
func (n *Notifier) ExtendTimeout(d time.Duration) error {
	return n.Send("EXTEND_TIMEOUT_USEC=" + strconv.FormatInt(d.Microseconds(), 10))
}

// statusLine makes a STATUS= assignment, folding newlines, which would end
// the assignment, into spaces.
func statusLine(status string) string {
	return "STATUS=" + strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(status)
}

// WatchdogInterval returns the watchdog period the manager asked for
// (WatchdogSec= in the unit), or false when there is none or it is meant
// for another process.
func WatchdogInterval() (time.Duration, bool) {
	return watchdogInterval(os.Getenv(WatchdogUsecEnv), os.Getenv(WatchdogPIDEnv), os.Getpid())
}

// watchdogInterval parses the watchdog variables for process self.
func watchdogInterval(usec, pid string, self int) (time.Duration, bool) {
	if usec == "" {
		return 0, false
	}
	if pid != "" && pid != strconv.Itoa(self) {
		return 0, false
	}
	us, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || us <= 0 {
		return 0, false
	}
	return time.Duration(us) * time.Microsecond, true
}

// RunWatchdog pets the watchdog at half the given period while healthy
// returns true (nil means always), until ctx ends. A process that stops
// petting is restarted by systemd. It returns ctx's error, or the first
// failure to send.
func (n *Notifier) RunWatchdog(ctx context.Context, period time.Duration, healthy func() bool) error {
	if !n.Enabled() || period <= 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	tick := time.NewTicker(period / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if healthy != nil && !healthy() {
				continue
			}
			if err := n.Watchdog(); err != nil {
				return err
			}
		}
	}
}

// ChildEnv returns environ without the notification variables, for a child
// process (such as redis-server) that must not talk to the manager in the
// parent's name.
func ChildEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case SocketEnv, WatchdogUsecEnv, WatchdogPIDEnv:
			continue
		}
		out = append(out, kv)
	}
	return out
}
