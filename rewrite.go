package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
)

// This file holds every determinism rewrite: the one place where a client
// command is turned into the command a child runs, using only the entry's
// time T and log position, never the applying node's clock.

// indexEffect is what a command does to the expiry index besides its keys.
type indexEffect int

const (
	effectNone indexEffect = iota
	effectFlushDB
	effectFlushAll
	effectSwapDB
)

// applyStep is one command as the child will run it.
type applyStep struct {
	db        int
	args      [][]byte
	precheck  []dbKey // keys whose due deadlines are enforced first
	readBack  []dbKey // keys whose deadline is read back afterwards
	expireNow bool    // a deadline <= T may have been set on readBack keys
	effect    indexEffect
	swapA     int
	swapB     int
	mapReply  func([]byte) []byte // rewrites the child's reply
	script    string              // script body to remember (EVAL, SCRIPT LOAD)
	flushAll  bool                // SCRIPT FLUSH: forget every script
	sub       []applyStep         // queued commands of a transaction
	watch     string              // the transaction's watch ID, if any
	reprelude bool                // FUNCTION RESTORE: add the prelude to loaded libraries
	// notifyChange: CONFIG SET notify-keyspace-events, which expiry follows.
	notifyChange bool
}

// scriptSource looks up a script body by SHA1 (the FSM's script cache).
type scriptSource func(sha string) (string, bool)

// planCommand turns c into the step(s) a child runs at time t. seed makes
// random choices (SPOP) a function of the log position.
func planCommand(tbl *commandTable, c *command, t int64, seed uint64, scripts scriptSource) applyStep {
	st := applyStep{db: c.DB, args: c.Args}
	if len(c.Sub) > 0 {
		st.args = [][]byte{[]byte("MULTI")}
		if len(c.Args) > 1 {
			st.watch = string(c.Args[1])
		}
		for i := range c.Sub {
			st.sub = append(st.sub, planCommand(tbl, &c.Sub[i], t, seed+uint64(i)+1, scripts))
		}
		for i := range st.sub {
			sub := &st.sub[i]
			// A SWAPDB inside the transaction moves keys between databases:
			// check a key where it lives before MULTI, read its deadline
			// back where it lives after EXEC.
			st.precheck = append(st.precheck, throughSwaps(sub.precheck, st.sub[:i], true)...)
			st.readBack = append(st.readBack, throughSwaps(sub.readBack, st.sub[i+1:], false)...)
			st.expireNow = st.expireNow || sub.expireNow
			sub.precheck, sub.readBack = nil, nil
		}
		return st
	}
	info := tbl.lookup(c.Args)
	if info == nil {
		return st
	}
	keysOf := func(keys [][]byte) []dbKey {
		out := make([]dbKey, len(keys))
		for i, k := range keys {
			out[i] = dbKey{c.DB, string(k)}
		}
		return out
	}
	st.precheck = keysOf(commandKeys(info, c.Args))
	args := c.Args
	switch info.name {
	case "expire", "pexpire", "expireat", "pexpireat":
		if at, ok := absoluteDeadline(info.name, args, t); ok {
			st.args = replaceArgs(args, 0, "PEXPIREAT", 2, shifted(at))
			st.readBack, st.expireNow = keysOf(args[1:2]), at <= t
		}
	case "set":
		st.planSetLike(args, 3, t, keysOf)
	case "getex":
		st.planSetLike(args, 2, t, keysOf)
	case "setex", "psetex":
		unit := int64(1000)
		if info.name == "psetex" {
			unit = 1
		}
		if n, err := strconv.ParseInt(string(args[2]), 10, 64); err == nil && n > 0 && n <= (math.MaxInt64-t)/unit {
			at := t + n*unit
			st.args = [][]byte{[]byte("SET"), args[1], args[3], []byte("PXAT"), []byte(shifted(at))}
			st.readBack = keysOf(args[1:2])
		}
	case "restore":
		st.planRestore(args, t, keysOf)
	case "rename", "renamenx":
		st.readBack = keysOf(args[2:3])
	case "copy":
		st.readBack = keysOf(args[2:3])
		for i := 3; i+1 < len(args); i++ {
			if strings.EqualFold(string(args[i]), "db") {
				if db, err := strconv.Atoi(string(args[i+1])); err == nil {
					st.readBack = []dbKey{{db, string(args[2])}}
				}
			}
		}
	case "move":
		if db, err := strconv.Atoi(string(args[2])); err == nil {
			st.readBack = []dbKey{{db, string(args[1])}}
		}
	case "swapdb":
		a, errA := strconv.Atoi(string(args[1]))
		b, errB := strconv.Atoi(string(args[2]))
		if errA == nil && errB == nil {
			st.effect, st.swapA, st.swapB = effectSwapDB, a, b
		}
	case "flushdb":
		st.effect = effectFlushDB
	case "flushall":
		st.effect = effectFlushAll
	case "xadd":
		if i := xaddIDPos(args); i > 0 && string(args[i]) == "*" {
			st.args = replaceArgs(args, i, strconv.FormatInt(t, 10)+"-*", -1, "")
		}
	case "spop":
		st.planSpop(args, seed)
	case "xreadgroup", "xclaim", "xautoclaim":
		st.planStreamCommand(info.name, args, t)
	case "eval", "evalsha":
		st.planEval(args, t, scripts, keysOf)
	case "script|load":
		body := string(args[2])
		st.args = [][]byte{args[0], args[1], []byte(scriptWithPrelude(body))}
		st.script = body
		sha := scriptSHA(body)
		st.mapReply = func(raw []byte) []byte {
			if replyIsError(raw) {
				return raw
			}
			return respBulk(sha)
		}
	case "script|flush":
		st.flushAll = true
	case "fcall":
		st.args = append(append([][]byte(nil), args...), functionTimeArg(t))
		st.readBack = keysOf(numKeysAt(args, 2))
	case "function|load":
		st.args = replaceArgs(args, len(args)-1, libraryWithPrelude(string(args[len(args)-1])), -1, "")
	case "function|restore":
		st.reprelude = true
	case "config|set":
		for i := 2; i < len(args); i += 2 {
			if strings.EqualFold(string(args[i]), "notify-keyspace-events") {
				st.notifyChange = true
			}
		}
	case "ttl", "pttl", "expiretime", "pexpiretime":
		// Inside MULTI: answered from the shifted deadline at time T.
		st.args = [][]byte{[]byte("EVAL"), []byte(ttlScript), []byte("1"), args[1],
			[]byte(strconv.FormatInt(t, 10)), []byte(info.name)}
	}
	return st
}

// throughSwaps maps keys through the SWAPDBs of steps, in order, or in
// reverse order when backwards is set.
func throughSwaps(keys []dbKey, steps []applyStep, backwards bool) []dbKey {
	out := append([]dbKey(nil), keys...)
	for n := range steps {
		st := steps[n]
		if backwards {
			st = steps[len(steps)-1-n]
		}
		if st.effect != effectSwapDB {
			continue
		}
		for i := range out {
			switch out[i].DB {
			case st.swapA:
				out[i].DB = st.swapB
			case st.swapB:
				out[i].DB = st.swapA
			}
		}
	}
	return out
}

// planSetLike rewrites the expiry option of SET (options from index 3) and
// GETEX (from index 2) to an absolute, shifted PXAT.
func (st *applyStep) planSetLike(args [][]byte, from int, t int64, keysOf func([][]byte) []dbKey) {
	for i := from; i+1 < len(args); i++ {
		opt := strings.ToLower(string(args[i]))
		var unit int64
		var relative bool
		switch opt {
		case "ex":
			unit, relative = 1000, true
		case "px":
			unit, relative = 1, true
		case "exat":
			unit = 1000
		case "pxat":
			unit = 1
		default:
			continue
		}
		n, err := strconv.ParseInt(string(args[i+1]), 10, 64)
		if err != nil || n <= 0 || n > math.MaxInt64/unit || (relative && n*unit > math.MaxInt64-t) {
			return // the child answers the error
		}
		at := n * unit
		if relative {
			at += t
		}
		st.args = replaceArgs(args, i, "PXAT", i+1, shifted(at))
		st.readBack, st.expireNow = keysOf(args[1:2]), at <= t
		return
	}
	if strings.EqualFold(string(args[0]), "set") {
		// KEEPTTL or none: a key's deadline may be kept or dropped.
		for _, a := range args[3:] {
			if strings.EqualFold(string(a), "keepttl") {
				return
			}
		}
	}
}

// planRestore makes RESTORE's TTL absolute and shifted (ABSTTL).
func (st *applyStep) planRestore(args [][]byte, t int64, keysOf func([][]byte) []dbKey) {
	ttl, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil || ttl <= 0 {
		return
	}
	abs := false
	for _, a := range args[4:] {
		if strings.EqualFold(string(a), "absttl") {
			abs = true
		}
	}
	at := ttl
	if !abs {
		if ttl > math.MaxInt64-t {
			return
		}
		at += t
	}
	out := replaceArgs(args, 2, shifted(at), -1, "")
	if !abs {
		out = append(out, []byte("ABSTTL"))
	}
	st.args = out
	st.readBack, st.expireNow = keysOf(args[1:2]), at <= t
}

// spopScript pops members chosen by a seeded generator over the sorted
// members, so every node removes the same ones. ARGV[1] is the seed,
// ARGV[2] the count ("" for the single-member form).
const spopScript = `local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'set' and t ~= 'none' then
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
local single = ARGV[2] == ''
local count = single and 1 or tonumber(ARGV[2])
local m = redis.call('SMEMBERS', KEYS[1])
if #m == 0 then
  if single then return false end
  return {}
end
table.sort(m)
local s = tonumber(ARGV[1]) % 2147483646 + 1
local n = #m
if count > n then count = n end
for i = 1, count do
  s = (s * 16807) % 2147483647
  local j = i + (s % (n - i + 1))
  m[i], m[j] = m[j], m[i]
end
local out = {}
for i = 1, count do out[i] = m[i] end
for i = 1, count, 5000 do
  redis.call('SREM', KEYS[1], unpack(out, i, math.min(i + 4999, count)))
end
if single then return out[1] end
return out`

// ttlScript answers the TTL family from a shifted deadline: ARGV[1] is T,
// ARGV[2] the command name.
var ttlScript = `local at = redis.call('PEXPIRETIME', KEYS[1])
if at < 0 then return at end
local ms = at - ` + strconv.FormatInt(deadlineShift, 10) + `
local t = tonumber(ARGV[1])
local c = ARGV[2]
if (c == 'ttl' or c == 'pttl') and ms <= t then return -2 end
if c == 'ttl' then return math.floor((ms - t + 500) / 1000) end
if c == 'pttl' then return ms - t end
if c == 'expiretime' then return math.floor((ms + 500) / 1000) end
return ms`

// planSpop replaces SPOP with the deterministic script.
func (st *applyStep) planSpop(args [][]byte, seed uint64) {
	count := ""
	if len(args) == 3 {
		n, err := strconv.ParseInt(string(args[2]), 10, 64)
		if err != nil || n < 0 {
			return // the child answers the error
		}
		count = strconv.FormatInt(n, 10)
	} else if len(args) != 2 {
		return
	}
	st.args = [][]byte{[]byte("EVAL"), []byte(spopScript), []byte("1"), args[1],
		[]byte(strconv.FormatUint(seed%(1<<31), 10)), []byte(count)}
}

// planEval runs a script with the time prelude and T appended to ARGV.
func (st *applyStep) planEval(args [][]byte, t int64, scripts scriptSource, keysOf func([][]byte) []dbKey) {
	body := string(args[1])
	if strings.EqualFold(string(args[0]), "evalsha") {
		b, ok := scripts(strings.ToLower(body))
		if !ok {
			// The child knows only prelude-wrapped scripts, so it answers
			// NOSCRIPT itself, also inside a transaction.
			return
		}
		body = b
	}
	st.args = evalArgs(body, args[2:], t)
	st.script = body
	st.mapReply = userSHAInErrors(body)
	st.readBack = keysOf(numKeysAt(args, 2))
}

// evalArgs builds EVAL <prelude+body> <numkeys keys... args...> <t>.
func evalArgs(body string, rest [][]byte, t int64) [][]byte {
	out := make([][]byte, 0, len(rest)+3)
	out = append(out, []byte("EVAL"), []byte(scriptWithPrelude(body)))
	out = append(out, rest...)
	return append(out, []byte(strconv.FormatInt(t, 10)))
}

// scriptPrelude shadows the redis table inside a script so that TTL
// arguments become absolute shifted deadlines computed from T, TIME answers
// T, and TTL reads are shifted back. It is one line, so error line numbers in
// the user's script do not move. T arrives as the last ARGV and is removed.
var scriptPrelude = `local __r = redis; local __keys = KEYS; local __T = tonumber(ARGV[#ARGV]); ARGV[#ARGV] = nil; local __ro = __T < 0; if __ro then __T = -__T end; local __D = ` + strconv.FormatInt(deadlineShift, 10) + `; ` +
	strings.Join(scriptHelpers, " ") + ` ` +
	`local redis = setmetatable({call = function(...) return __call(__r.call, ...) end, pcall = function(...) return __call(__r.pcall, ...) end}, {__index = __r});`

// scriptHelpers are the Lua functions shared by the script and library
// preludes; they read __r (the real redis table), __T and __D.
var scriptHelpers = []string{
	`local function __n(v) local x = tonumber(v); if x and x == math.floor(x) and x > 0 then return x end return nil end;`,
	`local function __at(ms) return string.format('%.0f', ms + __D) end;`,
	`local function __fix(a) local c = string.lower(tostring(a[1]));`,
	`if c == 'expire' or c == 'pexpire' or c == 'expireat' or c == 'pexpireat' then local v = tonumber(a[3]); if v and v == math.floor(v) then local ms = v; if c == 'expire' then ms = __T + v * 1000 elseif c == 'pexpire' then ms = __T + v elseif c == 'expireat' then ms = v * 1000 end; a[1] = 'PEXPIREAT'; a[3] = __at(ms) end;`,
	`elseif c == 'set' or c == 'getex' then local from = (c == 'set') and 4 or 3; for i = from, #a - 1 do local o = string.lower(tostring(a[i])); local v = __n(a[i + 1]); if v and (o == 'ex' or o == 'px' or o == 'exat' or o == 'pxat') then local ms = v; if o == 'ex' then ms = __T + v * 1000 elseif o == 'px' then ms = __T + v elseif o == 'exat' then ms = v * 1000 end; a[i] = 'PXAT'; a[i + 1] = __at(ms); break end end;`,
	`elseif c == 'setex' or c == 'psetex' then local v = __n(a[3]); if v then local ms = (c == 'setex') and (__T + v * 1000) or (__T + v); a = {'SET', a[2], a[4], 'PXAT', __at(ms)} end;`,
	`elseif c == 'restore' then local v = __n(a[3]); if v then local abs = false; for i = 5, #a do if string.lower(tostring(a[i])) == 'absttl' then abs = true end end; if abs then a[3] = __at(v) else a[3] = __at(__T + v); a[#a + 1] = 'ABSTTL' end end;`,
	`elseif c == 'xadd' then local i = 3; while i <= #a do local o = string.lower(tostring(a[i])); if o == 'nomkstream' then i = i + 1 elseif o == 'maxlen' or o == 'minid' then i = i + 1; if a[i] == '=' or a[i] == '~' then i = i + 1 end; i = i + 1 elseif o == 'limit' then i = i + 2 else break end end; if a[i] == '*' then a[i] = string.format('%.0f', __T) .. '-*' end;`,
	`end; return a end;`,
	`local __random = {spop = true, srandmember = true, randomkey = true, hrandfield = true, zrandmember = true, scan = true, sscan = true, hscan = true, zscan = true, select = true, swapdb = true, move = true};`,
	`local __unordered = {smembers = true, sinter = true, sunion = true, sdiff = true, keys = true, hkeys = true, hvals = true};`,
	`local __ttlcmd = {expire = 2, pexpire = 2, expireat = 2, pexpireat = 2, set = 2, setex = 2, psetex = 2, getex = 2, restore = 2, rename = 3, renamenx = 3, copy = 3};`,
	`local function __setsttl(c, a) if c == 'set' or c == 'getex' then for i = 3, #a do local o = string.lower(tostring(a[i])); if o == 'ex' or o == 'px' or o == 'exat' or o == 'pxat' then return true end end; return false end; if c == 'restore' then return tostring(a[3]) ~= '0' end; return true end;`,
	`local __decl = nil; local function __declared(k) if not __decl then __decl = {}; for _, x in ipairs(__keys or {}) do __decl[x] = true end end; return __decl[k] end;`,
	`local function __pairsort(t) local p = {}; for i = 1, #t, 2 do p[#p + 1] = {t[i], t[i + 1]} end; table.sort(p, function(x, y) return x[1] < y[1] end); local o = {}; for _, x in ipairs(p) do o[#o + 1] = x[1]; o[#o + 1] = x[2] end; return o end;`,
	`local function __ttl(c, k) local at = __r.call('PEXPIRETIME', k); if at < 0 then return at end; local ms = at - __D; if ms <= __T and (c == 'ttl' or c == 'pttl') then return -2 end;`,
	`if c == 'ttl' then return math.floor((ms - __T + 500) / 1000) elseif c == 'pttl' then return ms - __T elseif c == 'expiretime' then return math.floor((ms + 500) / 1000) end; return ms end;`,
	`local function __call(f, ...) if __T == nil then return f(...) end; local a = {...}; local c = string.lower(tostring(a[1]));`,
	`if c == 'time' then return {tostring(math.floor(__T / 1000)), tostring((__T % 1000) * 1000)} end;`,
	`local function __refuse(msg) local e = {err = msg}; if f == __r.pcall then return e end; error(e) end;`,
	`if not __ro then`,
	`if __random[c] then return __refuse('ERR ' .. string.upper(c) .. ' is not allowed in scripts that may write on redraft: its effect would differ between replicas or escape deadline tracking') end;`,
	`local n = __ttlcmd[c]; if n and __setsttl(c, a) then for i = 2, n do if a[i] ~= nil and not __declared(a[i]) then return __refuse('ERR ' .. string.upper(c) .. ' in a script that may write must name only keys declared in KEYS on redraft (deadlines are tracked per declared key)') end end; if c == 'copy' then for i = 4, #a do if string.lower(tostring(a[i])) == 'db' then return __refuse('ERR COPY ... DB is not allowed in scripts that may write on redraft') end end end end;`,
	`end;`,
	`if __unordered[c] and not __ro then local r = f(unpack(__fix(a))); if type(r) == 'table' and r.err == nil then table.sort(r) end; return r end;`,
	`if c == 'hgetall' and not __ro then local r = f(unpack(__fix(a))); if type(r) == 'table' and r.err == nil then r = __pairsort(r) end; return r end;`,
	`if (c == 'ttl' or c == 'pttl' or c == 'expiretime' or c == 'pexpiretime') and #a == 2 then return __ttl(c, a[2]) end;`,
	`return f(unpack(__fix(a))) end;`,
}

// scriptWithPrelude inserts the prelude, after a shebang line if present.
func scriptWithPrelude(body string) string {
	if strings.HasPrefix(body, "#!") {
		if i := strings.IndexByte(body, '\n'); i >= 0 {
			return body[:i+1] + scriptPrelude + " " + body[i+1:]
		}
		return body + "\n" + scriptPrelude
	}
	return scriptPrelude + " " + body
}

// userSHAInErrors makes a script's error replies name the SHA of the
// client's script rather than that of the script with the prelude.
func userSHAInErrors(body string) func([]byte) []byte {
	wrapped, user := []byte(scriptSHA(scriptWithPrelude(body))), []byte(scriptSHA(body))
	return func(raw []byte) []byte {
		if !replyIsError(raw) || !bytes.Contains(raw, wrapped) {
			return raw
		}
		return bytes.ReplaceAll(raw, wrapped, user)
	}
}

// scriptSHA is the SHA1 a client expects for body.
func scriptSHA(body string) string {
	sum := sha1.Sum([]byte(body))
	return hex.EncodeToString(sum[:])
}

// absoluteDeadline converts the EXPIRE family's argument to an unshifted
// absolute deadline in ms at time t. ok is false when the argument does not
// parse or Redis would reject it as out of range, so the child answers the
// error itself.
func absoluteDeadline(name string, args [][]byte, t int64) (int64, bool) {
	if len(args) < 3 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		return 0, false
	}
	switch name {
	case "expire", "expireat":
		if n > math.MaxInt64/1000 || n < math.MinInt64/1000 {
			return 0, false
		}
		n *= 1000
	}
	if name == "expire" || name == "pexpire" {
		if n > math.MaxInt64-t {
			return 0, false
		}
		n += t
	}
	return n, true
}

// shifted renders a deadline as stored in the child (deadline + D). A
// deadline so far away that the shift would overflow is clamped to the
// largest one; both are beyond any real time.
func shifted(at int64) string {
	if at > math.MaxInt64-deadlineShift {
		return strconv.FormatInt(math.MaxInt64, 10)
	}
	return strconv.FormatInt(at+deadlineShift, 10)
}

// replaceArgs copies args with args[i] = a and, when j >= 0, args[j] = b.
func replaceArgs(args [][]byte, i int, a string, j int, b string) [][]byte {
	out := make([][]byte, len(args))
	copy(out, args)
	out[i] = []byte(a)
	if j >= 0 {
		out[j] = []byte(b)
	}
	return out
}

// xaddIDPos finds the position of the ID argument of XADD, after its options.
func xaddIDPos(args [][]byte) int {
	i := 2
	for i < len(args) {
		switch strings.ToLower(string(args[i])) {
		case "nomkstream":
			i++
		case "maxlen", "minid":
			i++
			if i < len(args) && (string(args[i]) == "=" || string(args[i]) == "~") {
				i++
			}
			i++
		case "limit":
			i += 2
		default:
			return i
		}
	}
	return -1
}

// planRead rewrites a read that runs a script or function so that it gets
// the prelude and the time now (TTL reads inside it answer as Redis would).
func planRead(info *commandInfo, args [][]byte, now int64, scripts scriptSource) readStep {
	switch info.name {
	case "eval_ro", "evalsha_ro":
		body := string(args[1])
		if info.name == "evalsha_ro" {
			b, ok := scripts(strings.ToLower(body))
			if !ok {
				return readStep{reply: respError("NOSCRIPT No matching script. Please use EVAL.")}
			}
			body = b
		}
		out := evalArgs(body, args[2:], -now) // negative: read-only context
		out[0] = []byte("EVAL_RO")
		return readStep{args: out, mapReply: userSHAInErrors(body)}
	case "fcall_ro":
		return readStep{args: append(append([][]byte(nil), args...), functionTimeArg(-now))}
	}
	return readStep{args: args}
}
