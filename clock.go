package main

import (
	"math"
	"strconv"

	"github.com/redraft/redraft/internal/expiry"
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

// shiftedArg renders a deadline as stored in the child (deadline + D), as
// a command argument. A deadline so far away that the shift would overflow
// is clamped to the largest one; both are beyond any real time.
func shiftedArg(at int64) []byte {
	if at > math.MaxInt64-deadlineShift {
		at = math.MaxInt64 - deadlineShift
	}
	return strconv.AppendInt(make([]byte, 0, 20), at+deadlineShift, 10)
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

// expiryIndex maps every key that may carry a deadline to that deadline
// (internal/expiry keeps it compact). It is maintained synchronously by
// the apply path from the child's own PEXPIRETIME replies. It may hold
// stale entries for keys whose TTL was later removed; those are harmless
// because every deletion is re-checked inside the child. The leader picks
// the keys a sweep deletes and puts them in the log entry, so the order in
// which due keys are listed does not matter to determinism.
type expiryIndex struct{ x *expiry.Index }

func newExpiryIndex() *expiryIndex { return &expiryIndex{expiry.New()} }

// set records deadline at (unshifted ms) for k, or forgets k when at < 0.
func (x *expiryIndex) set(k dbKey, at int64) { x.x.Set(k.DB, k.Key, at) }

// due reports whether k has a recorded deadline at or before t.
func (x *expiryIndex) due(k dbKey, t int64) bool { return x.x.Due(k.DB, k.Key, t) }

// dueBy reports whether some recorded deadline is at or before t.
func (x *expiryIndex) dueBy(t int64) bool { return x.x.DueBy(t) }

// dueKeys lists up to limit keys whose deadline is at or before t.
func (x *expiryIndex) dueKeys(t int64, limit int) []dbKey {
	keys := x.x.DueKeys(t, limit)
	if len(keys) == 0 {
		return nil
	}
	out := make([]dbKey, len(keys))
	for i, k := range keys {
		out[i] = dbKey{k.DB, k.Key}
	}
	return out
}

// clear forgets every key of db, or of all databases when db < 0.
func (x *expiryIndex) clear(db int) { x.x.Clear(db) }

// swap exchanges the entries of two databases (SWAPDB).
func (x *expiryIndex) swap(a, b int) { x.x.Swap(a, b) }

// size is the number of tracked keys.
func (x *expiryIndex) size() int { return x.x.Len() }
