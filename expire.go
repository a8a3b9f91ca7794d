package main

import (
	"sync"

	"github.com/google/btree"
)

// deadlineShift (D) is added to every deadline stored in a child, so that no
// child ever expires a key by its own clock (about 100 years). Deadlines are
// decided by the Raft log alone: see docs/DESIGN.md, "Time and expiry".
const deadlineShift int64 = 100 * 365 * 24 * 3600 * 1000

// condDelScript deletes each key whose (shifted) deadline is at or before
// ARGV[1] and returns, per key, -2 when it deleted the key, otherwise the
// key's shifted PEXPIRETIME (-1 none, -2 missing). The check runs inside the
// child, so the outcome depends only on replicated state.
//
// When keyspace notifications are on, ARGV[2] holds the flags and ARGV[3]
// the database: the caller turns notifications off around the script, and
// the script raises "expired" itself, as Redis's own expiry would (DEL would
// raise "del").
const condDelScript = `local out = {}
local flags = ARGV[2]
local x = flags and (string.find(flags, 'A', 1, true) or string.find(flags, 'x', 1, true))
for i, k in ipairs(KEYS) do
  local at = redis.call('PEXPIRETIME', k)
  if at >= 0 and at <= tonumber(ARGV[1]) then
    redis.call('DEL', k)
    at = -2
    if x then
      if string.find(flags, 'K', 1, true) then redis.call('PUBLISH', '__keyspace@' .. ARGV[3] .. '__:' .. k, 'expired') end
      if string.find(flags, 'E', 1, true) then redis.call('PUBLISH', '__keyevent@' .. ARGV[3] .. '__:expired', k) end
    end
  end
  out[i] = at
end
return out`

// expiryItem orders deadlines in the index.
type expiryItem struct {
	at int64 // unshifted deadline, ms since the epoch
	k  dbKey
}

func expiryLess(a, b expiryItem) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	if a.k.DB != b.k.DB {
		return a.k.DB < b.k.DB
	}
	return a.k.Key < b.k.Key
}

// expiryIndex maps every key that may carry a deadline to that deadline. It
// is maintained synchronously by the apply path from the child's own
// PEXPIRETIME replies, so it is the same on every node at every log index. It
// may hold stale entries for keys whose TTL was later removed; those are
// harmless because every deletion is re-checked inside the child.
type expiryIndex struct {
	mu    sync.Mutex
	byKey map[dbKey]int64
	order *btree.BTreeG[expiryItem]
}

func newExpiryIndex() *expiryIndex {
	return &expiryIndex{byKey: make(map[dbKey]int64), order: btree.NewG(32, expiryLess)}
}

// set records deadline at (unshifted ms) for k, or forgets k when at < 0.
func (x *expiryIndex) set(k dbKey, at int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.setLocked(k, at)
}

func (x *expiryIndex) setLocked(k dbKey, at int64) {
	if old, ok := x.byKey[k]; ok {
		if old == at {
			return
		}
		x.order.Delete(expiryItem{old, k})
		delete(x.byKey, k)
	}
	if at >= 0 {
		x.byKey[k] = at
		x.order.ReplaceOrInsert(expiryItem{at, k})
	}
}

// due reports whether k has a recorded deadline at or before t.
func (x *expiryIndex) due(k dbKey, t int64) bool {
	x.mu.Lock()
	at, ok := x.byKey[k]
	x.mu.Unlock()
	return ok && at <= t
}

// earliest returns the smallest recorded deadline.
func (x *expiryIndex) earliest() (int64, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	it, ok := x.order.Min()
	return it.at, ok
}

// dueKeys lists up to limit keys whose deadline is at or before t.
func (x *expiryIndex) dueKeys(t int64, limit int) []dbKey {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []dbKey
	x.order.Ascend(func(it expiryItem) bool {
		if it.at > t || len(out) >= limit {
			return false
		}
		out = append(out, it.k)
		return true
	})
	return out
}

// clear forgets every key of db, or of all databases when db < 0.
func (x *expiryIndex) clear(db int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for k, at := range x.byKey {
		if db < 0 || k.DB == db {
			x.order.Delete(expiryItem{at, k})
			delete(x.byKey, k)
		}
	}
}

// swap exchanges the entries of two databases (SWAPDB).
func (x *expiryIndex) swap(a, b int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var moved []expiryItem
	for k, at := range x.byKey {
		if k.DB == a || k.DB == b {
			moved = append(moved, expiryItem{at, k})
		}
	}
	for _, it := range moved {
		x.order.Delete(it)
		delete(x.byKey, it.k)
	}
	for _, it := range moved {
		if it.k.DB == a {
			it.k.DB = b
		} else {
			it.k.DB = a
		}
		x.byKey[it.k] = it.at
		x.order.ReplaceOrInsert(it)
	}
}

// size is the number of tracked keys.
func (x *expiryIndex) size() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.byKey)
}
