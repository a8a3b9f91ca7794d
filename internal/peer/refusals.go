package peer

import (
	"log/slog"
	"sync"
	"time"
)

// RefusalLog logs refused peer connections without flooding the log: a
// refused node retries with every heartbeat, so the first refusal from an
// address is logged at once and later ones at most once per interval,
// with the number left out in between. The table of addresses is bounded;
// past the bound, new addresses share one line per interval. Safe for
// concurrent use.
type RefusalLog struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	seen map[string]*refusals
}

// refusals is what is known about one address.
type refusals struct {
	logged     time.Time // when a line was last written
	suppressed int       // refusals since then
}

// maxRefusalAddrs bounds the table of addresses.
const maxRefusalAddrs = 1024

// overflowKey stands for every address past maxRefusalAddrs.
const overflowKey = "(other addresses)"

// NewRefusalLog logs through log, at most once per address per every.
func NewRefusalLog(log *slog.Logger, every time.Duration) *RefusalLog {
	return &RefusalLog{log: log, every: every, now: time.Now, seen: make(map[string]*refusals)}
}

// Refused records a refusal involving addr and logs msg with attrs unless
// addr was logged less than the interval ago.
func (l *RefusalLog) Refused(addr, msg string, attrs ...any) {
	suppressed, ok := l.admit(addr)
	if !ok {
		return
	}
	attrs = append([]any{"addr", addr}, attrs...)
	if suppressed > 0 {
		attrs = append(attrs, "refused_since_last_line", suppressed)
	}
	l.log.Warn(msg, attrs...)
}

// admit decides whether a refusal from addr is logged now, and how many
// were left out before it.
func (l *RefusalLog) admit(addr string) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	r := l.seen[addr]
	if r == nil {
		if len(l.seen) >= maxRefusalAddrs {
			l.prune(now)
		}
		if len(l.seen) >= maxRefusalAddrs {
			addr = overflowKey
			r = l.seen[addr]
		}
	}
	if r == nil {
		l.seen[addr] = &refusals{logged: now}
		return 0, true
	}
	if now.Sub(r.logged) < l.every {
		r.suppressed++
		return 0, false
	}
	n := r.suppressed
	r.logged, r.suppressed = now, 0
	return n, true
}

// prune forgets addresses not logged within the interval.
func (l *RefusalLog) prune(now time.Time) {
	for a, r := range l.seen {
		if now.Sub(r.logged) >= l.every {
			delete(l.seen, a)
		}
	}
}
