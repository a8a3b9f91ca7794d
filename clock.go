package main

import (
	"container/heap"
	"math"
	"strconv"
	"sync"
)

// This file is the one home of time and expiry (docs/DESIGN.md, "Time and
// expiry"): the log time T, the deadline shift, the only TTL formula, the
// expiry index and the conditional delete that expires keys. Nothing in the
// apply path reads the wall clock; the proposer's clock is injected.

// nextT is the rule for the time T of a new entry: the proposer's clock
// now, but never less than any T already proposed or applied, so T never
// decreases, also across leader changes (a new leader proposes only after
// applying everything before its term). The proposer reads the clock; this
// file never does.
func nextT(now, lastProposed, lastApplied int64) int64 {
	return max(now, lastProposed, lastApplied)
}

// deadlineShift (D) is added to every deadline stored in a child, so that no
// child ever expires a key by its own clock (about 100 years). Deadlines are
// decided by the Raft log alone.
const deadlineShift int64 = 100 * 365 * 24 * 3600 * 1000

// shifted renders a deadline as stored in the child (deadline + D). A
// deadline so far away that the shift would overflow is clamped to the
// largest one; both are beyond any real time.
func shifted(at int64) string {
	if at > math.MaxInt64-deadlineShift {
		return strconv.FormatInt(math.MaxInt64, 10)
	}
	return strconv.FormatInt(at+deadlineShift, 10)
}

// unshift converts a child's PEXPIRETIME to the real deadline (negative
// values, meaning "none" or "missing", pass through).
func unshift(at int64) int64 {
	if at < 0 {
		return at
	}
	return at - deadlineShift
}

// ttlFormulaLua defines __ttlof(at, T, c), the reply of TTL, PTTL,
// EXPIRETIME or PEXPIRETIME (c) for a key whose shifted PEXPIRETIME in the
// child is at, judged at time T: a deadline at or before T answers -2, as
// for a missing key. It is the only TTL formula: client TTL reads, TTL
// inside MULTI and TTL inside scripts all run it in the child. One line, so
// the script prelude keeps the user's line numbers.
var ttlFormulaLua = `local function __ttlof(at, T, c) if at < 0 then return at end; local ms = at - ` + strconv.FormatInt(deadlineShift, 10) + `; ` +
	`if ms <= T and (c == 'ttl' or c == 'pttl') then return -2 end; ` +
	`if c == 'ttl' then return math.floor((ms - T + 500) / 1000) elseif c == 'pttl' then return ms - T elseif c == 'expiretime' then return math.floor((ms + 500) / 1000) end; return ms end;`

// ttlScript answers the TTL family for KEYS[1] at time ARGV[1] (ms), for the
// command named ARGV[2] (lower case).
var ttlScript = ttlFormulaLua + ` return __ttlof(redis.call('PEXPIRETIME', KEYS[1]), tonumber(ARGV[1]), ARGV[2])`

// ttlCommand is the child command answering a TTL-family read of key at
// time t.
func ttlCommand(name string, key []byte, t int64) [][]byte {
	return [][]byte{[]byte("EVAL"), []byte(ttlScript), []byte("1"), key, []byte(strconv.FormatInt(t, 10)), []byte(name)}
}

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

// expiryItem is one deadline in the index's heap.
type expiryItem struct {
	at int64 // unshifted deadline, ms since the epoch
	k  dbKey
}

// expiryHeap orders items by deadline (then db and key, so the order is
// total and the same on every node).
type expiryHeap []expiryItem

func (h expiryHeap) Len() int { return len(h) }
func (h expiryHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.at != b.at {
		return a.at < b.at
	}
	if a.k.DB != b.k.DB {
		return a.k.DB < b.k.DB
	}
	return a.k.Key < b.k.Key
}
func (h expiryHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)   { *h = append(*h, x.(expiryItem)) }
func (h *expiryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// expiryIndex maps every key that may carry a deadline to that deadline. It
// is maintained synchronously by the apply path from the child's own
// PEXPIRETIME replies, so it is the same on every node at every log index. It
// may hold stale entries for keys whose TTL was later removed; those are
// harmless because every deletion is re-checked inside the child.
//
// Deadlines are kept in a map (the truth) and a min-heap with lazy deletion:
// a heap item is live only while the map still holds its deadline. Setting a
// deadline is a push; stale items are dropped when they reach the top, and
// the heap is rebuilt when they outnumber the live ones.
type expiryIndex struct {
	mu    sync.Mutex
	byKey map[dbKey]int64
	heap  expiryHeap
}

func newExpiryIndex() *expiryIndex {
	return &expiryIndex{byKey: make(map[dbKey]int64)}
}

// set records deadline at (unshifted ms) for k, or forgets k when at < 0.
func (x *expiryIndex) set(k dbKey, at int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.byKey[k]; ok && old == at {
		return
	}
	if at < 0 {
		delete(x.byKey, k)
		return
	}
	x.byKey[k] = at
	heap.Push(&x.heap, expiryItem{at, k})
	if len(x.heap) > 2*len(x.byKey)+1024 {
		x.rebuildLocked()
	}
}

// live reports whether a heap item still holds its key's deadline.
func (x *expiryIndex) live(it expiryItem) bool {
	at, ok := x.byKey[it.k]
	return ok && at == it.at
}

// rebuildLocked recreates the heap from the map.
func (x *expiryIndex) rebuildLocked() {
	x.heap = x.heap[:0]
	for k, at := range x.byKey {
		x.heap = append(x.heap, expiryItem{at, k})
	}
	heap.Init(&x.heap)
}

// topLocked drops stale items from the top and returns the earliest live one.
func (x *expiryIndex) topLocked() (expiryItem, bool) {
	for len(x.heap) > 0 {
		if it := x.heap[0]; x.live(it) {
			return it, true
		}
		heap.Pop(&x.heap)
	}
	return expiryItem{}, false
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
	it, ok := x.topLocked()
	return it.at, ok
}

// dueKeys lists up to limit keys whose deadline is at or before t, earliest
// first.
func (x *expiryIndex) dueKeys(t int64, limit int) []dbKey {
	x.mu.Lock()
	defer x.mu.Unlock()
	var taken []expiryItem
	for len(taken) < limit {
		it, ok := x.topLocked()
		if !ok || it.at > t {
			break
		}
		taken = append(taken, heap.Pop(&x.heap).(expiryItem))
	}
	var out []dbKey
	for _, it := range taken {
		out = append(out, it.k)
		heap.Push(&x.heap, it) // still indexed until the sweep applies
	}
	return out
}

// clear forgets every key of db, or of all databases when db < 0.
func (x *expiryIndex) clear(db int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for k := range x.byKey {
		if db < 0 || k.DB == db {
			delete(x.byKey, k)
		}
	}
	x.rebuildLocked()
}

// swap exchanges the entries of two databases (SWAPDB).
func (x *expiryIndex) swap(a, b int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	moved := make(map[dbKey]int64)
	for k, at := range x.byKey {
		if k.DB == a || k.DB == b {
			delete(x.byKey, k)
			if k.DB == a {
				k.DB = b
			} else {
				k.DB = a
			}
			moved[k] = at
		}
	}
	for k, at := range moved {
		x.byKey[k] = at
	}
	x.rebuildLocked()
}

// size is the number of tracked keys.
func (x *expiryIndex) size() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.byKey)
}
