package main

import (
	"math"
	"strconv"
	"strings"

	"github.com/redraft/redraft/internal/command"
	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// This file holds every determinism rewrite: the one place where a client
// command is turned into the command a child runs, using only the entry's
// time T and log position, never the applying node's clock.

// popScript pops from the first non-empty key, as BLPOP/BRPOP/BZPOPMIN/
// BZPOPMAX would: ARGV[1] is LPOP, RPOP, ZPOPMIN or ZPOPMAX.
const popScript = `local zset = string.sub(ARGV[1], 1, 1) == 'Z'
for _, k in ipairs(KEYS) do
  local t = redis.call('TYPE', k).ok
  if t ~= 'none' then
    if (zset and t ~= 'zset') or (not zset and t ~= 'list') then
      return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
    end
    local r = redis.call(ARGV[1], k)
    if zset then return {k, r[1], r[2]} end
    return {k, r}
  end
end
return false`

// cmdPop is the internal command a blocked BLPOP, BRPOP, BZPOPMIN or
// BZPOPMAX proposes when woken: "_redraft_pop <op> key...", run as
// popScript. Clients cannot send it (it is not in the command table).
const cmdPop = "_redraft_pop"

// internalScript is a step that runs one of redraft's own scripts.
func internalScript(db int, script string, keys [][]byte, argv ...[]byte) applyStep {
	args := make([][]byte, 0, 3+len(keys)+len(argv))
	args = append(args, []byte("EVAL"), []byte(script), []byte(strconv.Itoa(len(keys))))
	args = append(append(args, keys...), argv...)
	return applyStep{db: db, args: args, mapReply: internalScriptReply}
}

// dbKeysOf names keys in db.
func dbKeysOf(db int, keys [][]byte) []dbKey {
	out := make([]dbKey, len(keys))
	for i, k := range keys {
		out[i] = dbKey{db, string(k)}
	}
	return out
}

// scriptSource looks up a script body by SHA1 (the FSM's script cache).
type scriptSource func(sha string) (string, bool)

// planCommand turns c into the step(s) a child runs at time t. seed makes
// random choices (SPOP) a function of the log position.
func planCommand(tbl *command.Table, c *entryCmd, t int64, seed uint64, scripts scriptSource) applyStep {
	st := applyStep{db: c.DB, args: c.Args, proto: c.Proto}
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
			st.userScript = st.userScript || sub.userScript
			st.function = st.function || sub.function
			sub.precheck, sub.readBack = nil, nil
		}
		return st
	}
	if len(c.Args) > 2 && string(c.Args[0]) == cmdPop {
		st = internalScript(c.DB, popScript, c.Args[2:], c.Args[1])
		st.proto = c.Proto
		st.mapReply = popReplyIn(c.Proto, len(c.Args[1]) > 0 && c.Args[1][0] == 'Z')
		st.precheck = dbKeysOf(c.DB, c.Args[2:])
		return st
	}
	info := tbl.Lookup(c.Args)
	if info == nil {
		return st
	}
	keysOf := func(keys [][]byte) []dbKey { return dbKeysOf(c.DB, keys) }
	st.precheck = keysOf(command.Keys(info, c.Args))
	args := c.Args
	switch info.Name {
	case "expire", "pexpire", "expireat", "pexpireat":
		if at, ok := absoluteDeadline(info.Name, args, t); ok {
			st.args = replaceArgs(args, 0, argPEXPIREAT, 2, shiftedArg(at))
			st.readBack, st.expireNow = keysOf(args[1:2]), at <= t
			st.known = &knownDeadline{key: st.readBack[0], at: at, when: setIfOne}
		}
	case "set":
		st.planSetLike(args, 3, t, keysOf)
	case "getex":
		st.planSetLike(args, 2, t, keysOf)
	case "setex", "psetex":
		unit := int64(1000)
		if info.Name == "psetex" {
			unit = 1
		}
		if n, ok := command.ParseInt(args[2]); ok && n > 0 && n <= (math.MaxInt64-t)/unit {
			at := t + n*unit
			st.args = [][]byte{argSET, args[1], args[3], argPXAT, shiftedArg(at)}
			st.readBack = keysOf(args[1:2])
			st.known = &knownDeadline{key: st.readBack[0], at: at, when: setUnlessError}
		}
	case "restore":
		st.planRestore(args, t, keysOf)
	case "rename", "renamenx":
		st.readBack = keysOf(args[2:3])
	case "copy":
		st.readBack = keysOf(args[2:3])
		for i := 3; i+1 < len(args); i++ {
			if strings.EqualFold(string(args[i]), "db") {
				if db, ok := command.ParseDB(args[i+1]); ok {
					st.readBack = []dbKey{{db, string(args[2])}}
				}
			}
		}
	case "move":
		if db, ok := command.ParseDB(args[2]); ok {
			st.readBack = []dbKey{{db, string(args[1])}}
		}
	case "swapdb":
		a, okA := command.ParseDB(args[1])
		b, okB := command.ParseDB(args[2])
		if okA && okB {
			st.effect, st.swapA, st.swapB = effectSwapDB, a, b
		}
	case "flushdb":
		st.effect = effectFlushDB
	case "flushall":
		st.effect = effectFlushAll
	case "xadd":
		st.planXadd(args, t)
	case "spop":
		st.planSpop(args, seed)
	case "xreadgroup", "xclaim", "xautoclaim":
		st.planStreamCommand(info.Name, args, t)
	case "eval", "evalsha":
		st.planEval(args, t, scripts, keysOf)
	case "script|load":
		body := string(args[2])
		st.args = [][]byte{args[0], args[1], []byte(scriptWithPrelude(body))}
		st.script = body
		sha := scriptSHA(body)
		st.mapReply = func(raw []byte) []byte {
			if resp.ReplyIsError(raw) {
				return raw
			}
			return resp.Bulk(sha)
		}
	case "script|flush":
		st.flushAll = true
	case "fcall":
		st.args = append(append([][]byte(nil), args...), functionTimeArg(t))
		st.readBack = keysOf(command.NumKeysAt(args, 2))
		st.userScript, st.function = true, true
	case "function|load":
		st.args = replaceArgs(args, len(args)-1, []byte(libraryWithPrelude(string(args[len(args)-1]))), -1, nil)
	case "function|restore":
		st.reprelude = true
	case "config|set":
		st.planConfigSet(args)
	case "config|get":
		st.configGet = true
	case "ttl", "pttl", "expiretime", "pexpiretime":
		// Inside MULTI: answered from the shifted deadline at time T.
		st.args = ttlCommand(info.Name, args[1], t)
	}
	return st
}

// planConfigSet keeps the held parameters away from the child: the child
// runs the other parameters, and a CONFIG SET of held ones alone becomes a
// PING answered with OK. A malformed CONFIG SET or a refused value (the
// front end refuses those) is answered with Redis's error without reaching
// the child.
func (st *applyStep) planConfigSet(args [][]byte) {
	bad := configSetMalformed(args)
	child, held, badValue := planConfigSet(args)
	if bad == nil {
		bad = badValue
	}
	if bad != nil {
		st.args = [][]byte{[]byte("PING")}
		st.mapReply = func([]byte) []byte { return bad }
		return
	}
	st.held = held
	if child == nil {
		st.args = [][]byte{[]byte("PING")}
		st.mapReply = func(raw []byte) []byte {
			if resp.ReplyIsError(raw) {
				return raw
			}
			return resp.OK
		}
		return
	}
	st.args = child
	for i := 2; i < len(child); i += 2 {
		switch strings.ToLower(string(child[i])) {
		case "notify-keyspace-events":
			st.notifyChange = true
		case "busy-reply-threshold", "lua-time-limit":
			st.thresholdChange = true
		}
	}
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
		var unit int64
		var relative bool
		switch opt := args[i]; {
		case optionIs(opt, "ex"):
			unit, relative = 1000, true
		case optionIs(opt, "px"):
			unit, relative = 1, true
		case optionIs(opt, "exat"):
			unit = 1000
		case optionIs(opt, "pxat"):
			unit = 1
		default:
			continue
		}
		n, ok := command.ParseInt(args[i+1])
		if !ok || n <= 0 || n > math.MaxInt64/unit || (relative && n*unit > math.MaxInt64-t) {
			return // the child answers the error
		}
		at := n * unit
		if relative {
			at += t
		}
		st.args = replaceArgs(args, i, argPXAT, i+1, shiftedArg(at))
		st.readBack, st.expireNow = keysOf(args[1:2]), at <= t
		if when, ok := setLikeOutcome(args, from); ok {
			st.known = &knownDeadline{key: st.readBack[0], at: at, when: when}
		}
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

// setUnlessError: the command sets the deadline unless it fails (SETEX,
// SET without NX or XX).
func setUnlessError(reply []byte) bool { return !resp.ReplyIsError(reply) }

// setIfValue: the command sets the deadline when it answers something
// other than an error or a null (SET NX/XX answer nil when they do not
// set, GETEX answers nil for a missing key).
func setIfValue(reply []byte) bool { return !resp.ReplyIsError(reply) && !resp.ReplyIsNull(reply) }

// setIfOne: the EXPIRE family answers 1 when it set the deadline.
func setIfOne(reply []byte) bool { return string(reply) == ":1\r\n" }

// setLikeOutcome says how the reply of SET (options from index 3) or GETEX
// (from 2) tells whether the new deadline was set, or false when it cannot
// (SET NX/XX with GET answers nil both when it did not set and when there
// was no old value).
func setLikeOutcome(args [][]byte, from int) (func([]byte) bool, bool) {
	if !strings.EqualFold(string(args[0]), "set") {
		return setIfValue, true // GETEX
	}
	var conditional, get bool
	for _, a := range args[from:] {
		switch {
		case optionIs(a, "nx"), optionIs(a, "xx"):
			conditional = true
		case optionIs(a, "get"):
			get = true
		}
	}
	switch {
	case conditional && get:
		return nil, false
	case conditional:
		return setIfValue, true
	default:
		return setUnlessError, true
	}
}

// planRestore makes RESTORE's TTL absolute and shifted (ABSTTL).
func (st *applyStep) planRestore(args [][]byte, t int64, keysOf func([][]byte) []dbKey) {
	ttl, ok := command.ParseInt(args[2])
	if !ok || ttl <= 0 {
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
	out := replaceArgs(args, 2, shiftedArg(at), -1, nil)
	if !abs {
		out = append(out, []byte("ABSTTL"))
	}
	st.args = out
	st.readBack, st.expireNow = keysOf(args[1:2]), at <= t
}

// spopScript pops members chosen by a seeded generator over the sorted
// members, so every node removes the same ones. A count covering the whole
// set returns it as Redis does (SUNION's order) and deletes the key. ARGV[1] is the seed,
// ARGV[2] the count ("" for the single-member form).
const spopScript = `local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'set' and t ~= 'none' then
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
local single = ARGV[2] == ''
local count = single and 1 or tonumber(ARGV[2])
if not single and count >= redis.call('SCARD', KEYS[1]) then
  local all = redis.call('SUNION', KEYS[1])
  redis.call('DEL', KEYS[1])
  return all
end
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

// xaddScript runs XADD with the ID "<ms>-*", ms being T or the stream's
// last generated ID's milliseconds if later (Redis generates the next ID
// after the top item): ARGV[1] is T, ARGV[2] the ID's position among the
// arguments after the key, ARGV[3..] those arguments. Milliseconds are
// compared as decimal strings: IDs go up to 2^64-1, past Lua's numbers.
const xaddScript = `local ms = ARGV[1]
local i = redis.pcall('XINFO', 'STREAM', KEYS[1])
if type(i) == 'table' and not i.err then
  for j = 1, #i - 1, 2 do
    if i[j] == 'last-generated-id' then
      local m = string.match(i[j + 1], '^(%d+)')
      if m and (#m > #ms or #m == #ms and m > ms) then ms = m end
    end
  end
end
local a = {}
for j = 3, #ARGV do a[#a + 1] = ARGV[j] end
a[tonumber(ARGV[2])] = ms .. '-*'
return redis.call('XADD', KEYS[1], unpack(a))`

// maxScriptArgs bounds the arguments a Lua script can pass on (unpack).
const maxScriptArgs = 7000

// planXadd gives XADD * an ID from T: through xaddScript, so that an ID
// after a later top item is generated as Redis would; for a huge XADD, as
// "T-*" directly.
func (st *applyStep) planXadd(args [][]byte, t int64) {
	i := xaddIDPos(args)
	if i <= 0 || string(args[i]) != "*" {
		return
	}
	if len(args) > maxScriptArgs {
		st.args = replaceArgs(args, i, []byte(strconv.FormatInt(t, 10)+"-*"), -1, nil)
		return
	}
	argv := append([][]byte{[]byte(strconv.FormatInt(t, 10)), []byte(strconv.Itoa(i - 1))}, args[2:]...)
	mapped := internalScript(st.db, xaddScript, args[1:2], argv...)
	st.args, st.mapReply = mapped.args, mapped.mapReply
}

// planSpop replaces SPOP with the deterministic script.
func (st *applyStep) planSpop(args [][]byte, seed uint64) {
	count := ""
	if len(args) == 3 {
		n, ok := command.ParseInt(args[2])
		if !ok || n < 0 {
			return // the child answers the error
		}
		count = strconv.FormatInt(n, 10)
	} else if len(args) != 2 {
		return
	}
	mapped := internalScript(st.db, spopScript, args[1:2], []byte(strconv.FormatUint(seed%(1<<31), 10)), []byte(count))
	st.args, st.mapReply = mapped.args, mapped.mapReply
	if count != "" {
		st.mapReply = setReplyIn(st.proto)
	}
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
	st.userScript = true
	st.mapReply = userSHAInErrors(body)
	st.readBack = keysOf(command.NumKeysAt(args, 2))
	if mentionsSelect(body) {
		// The script may SELECT: its declared keys are checked and read
		// back in every database, wherever it set their deadlines.
		st.precheck = inEveryDB(st.precheck)
		st.readBack = inEveryDB(st.readBack)
	}
}

// mentionsSelect reports whether a script's text names SELECT (a script
// that switches databases must name it).
func mentionsSelect(body string) bool {
	return strings.Contains(strings.ToLower(body), "select")
}

// inEveryDB names keys in all 16 databases.
func inEveryDB(keys []dbKey) []dbKey {
	seen := make(map[string]bool, len(keys))
	var out []dbKey
	for _, k := range keys {
		if seen[k.Key] {
			continue
		}
		seen[k.Key] = true
		for db := 0; db < 16; db++ {
			out = append(out, dbKey{db, k.Key})
		}
	}
	return out
}

// absoluteDeadline converts the EXPIRE family's argument to an unshifted
// absolute deadline in ms at time t. ok is false when the argument does not
// parse or Redis would reject it as out of range, so the child answers the
// error itself.
func absoluteDeadline(name string, args [][]byte, t int64) (int64, bool) {
	if len(args) < 3 {
		return 0, false
	}
	n, ok := command.ParseInt(args[2])
	if !ok {
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

// replaceArgs copies args with args[i] = a and, when j >= 0, args[j] = b.
func replaceArgs(args [][]byte, i int, a []byte, j int, b []byte) [][]byte {
	out := make([][]byte, len(args))
	copy(out, args)
	out[i] = a
	if j >= 0 {
		out[j] = b
	}
	return out
}

// Arguments the rewrites put in commands, shared: nothing writes to them.
var (
	argSET       = []byte("SET")
	argPXAT      = []byte("PXAT")
	argPEXPIREAT = []byte("PEXPIREAT")
)

// optionIs reports whether a is the option name (ASCII, any case), without
// allocating.
func optionIs(a []byte, name string) bool {
	return len(a) == len(name) && strings.EqualFold(string(a), name)
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
func planRead(info *command.Info, args [][]byte, now int64, scripts scriptSource) redisconn.Step {
	switch info.Name {
	case "eval_ro", "evalsha_ro":
		body := string(args[1])
		if info.Name == "evalsha_ro" {
			b, ok := scripts(strings.ToLower(body))
			if !ok {
				return redisconn.Step{Reply: resp.Error("NOSCRIPT No matching script. Please use EVAL.")}
			}
			body = b
		}
		out := evalArgs(body, args[2:], -now) // negative: read-only context
		out[0] = []byte("EVAL_RO")
		return redisconn.Step{Args: out, MapReply: userSHAInErrors(body)}
	case "fcall_ro":
		return redisconn.Step{Args: append(append([][]byte(nil), args...), functionTimeArg(-now))}
	}
	return redisconn.Step{Args: args}
}
