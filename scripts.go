package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redraft/redraft/internal/resp"
)

// This file holds the Lua preludes that make scripts and functions
// deterministic. The rewrites they perform inside Lua (TTL arguments, XADD
// *, TIME, TTL reads) mirror the Go rewrites in rewrite.go for commands sent
// directly; TestPreludeAgreesWithRewrites checks the two give the child the
// same commands.

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
// The shadow is a read-only proxy, so that assigning to one of its fields
// fails as it does on Redis's own redis table.
var scriptPrelude = `local __r = redis; local __keys = KEYS; local __T = tonumber(ARGV[#ARGV]); ARGV[#ARGV] = nil; local __ro = __T < 0; if __ro then __T = -__T end; local __D = ` + strconv.FormatInt(deadlineShift, 10) + `; local __fn = false; ` +
	strings.Join(scriptHelpers, " ") + ` ` +
	`local redis = __proxify({}, function(k) return __r[k] end, __r);`

// scriptHelpers are the Lua functions shared by the script and library
// preludes; they read __r (the real redis table), __T, __D and __fn (true
// in a function library).
var scriptHelpers = []string{
	`local function __n(v) local x = tonumber(v); if x and x == math.floor(x) and x > 0 then return x end return nil end;`,
	`local function __at(ms) return string.format('%.0f', ms + __D) end;`,
	`local function __lastms(k) local i = __r.pcall('XINFO', 'STREAM', k); if type(i) ~= 'table' or i.err then return '0' end; if i.map then i = {'last-generated-id', i.map['last-generated-id']} end; for j = 1, #i - 1, 2 do if i[j] == 'last-generated-id' then return string.match(i[j + 1], '^(%d+)') or '0' end end; return '0' end;`,
	`local function __msafter(a, b) if #a ~= #b then return #a > #b end; return a > b end;`,
	`local function __fix(a) local c = string.lower(tostring(a[1]));`,
	`if c == 'expire' or c == 'pexpire' or c == 'expireat' or c == 'pexpireat' then local v = tonumber(a[3]); if v and v == math.floor(v) then local ms = v; if c == 'expire' then ms = __T + v * 1000 elseif c == 'pexpire' then ms = __T + v elseif c == 'expireat' then ms = v * 1000 end; a[1] = 'PEXPIREAT'; a[3] = __at(ms) end;`,
	`elseif c == 'set' or c == 'getex' then local from = (c == 'set') and 4 or 3; for i = from, #a - 1 do local o = string.lower(tostring(a[i])); local v = __n(a[i + 1]); if v and (o == 'ex' or o == 'px' or o == 'exat' or o == 'pxat') then local ms = v; if o == 'ex' then ms = __T + v * 1000 elseif o == 'px' then ms = __T + v elseif o == 'exat' then ms = v * 1000 end; a[i] = 'PXAT'; a[i + 1] = __at(ms); break end end;`,
	`elseif c == 'setex' or c == 'psetex' then local v = __n(a[3]); if v then local ms = (c == 'setex') and (__T + v * 1000) or (__T + v); a = {'SET', a[2], a[4], 'PXAT', __at(ms)} end;`,
	`elseif c == 'restore' then local v = __n(a[3]); if v then local abs = false; for i = 5, #a do if string.lower(tostring(a[i])) == 'absttl' then abs = true end end; if abs then a[3] = __at(v) else a[3] = __at(__T + v); a[#a + 1] = 'ABSTTL' end end;`,
	`elseif c == 'xadd' then local i = 3; while i <= #a do local o = string.lower(tostring(a[i])); if o == 'nomkstream' then i = i + 1 elseif o == 'maxlen' or o == 'minid' then i = i + 1; if a[i] == '=' or a[i] == '~' then i = i + 1 end; i = i + 1 elseif o == 'limit' then i = i + 2 else break end end; if a[i] == '*' then local ms, last = string.format('%.0f', __T), __lastms(a[2]); if __msafter(last, ms) then ms = last end; a[i] = ms .. '-*' end;`,
	`end; return a end;`,
	`local __fixcmd = {expire = true, pexpire = true, expireat = true, pexpireat = true, set = true, getex = true, setex = true, psetex = true, restore = true, xadd = true};`,
	`local __random = {spop = true, srandmember = true, randomkey = true, hrandfield = true, zrandmember = true, scan = true, sscan = true, hscan = true, zscan = true, swapdb = true, move = true};`,
	`local __unordered = {smembers = true, sinter = true, sunion = true, sdiff = true, keys = true, hkeys = true, hvals = true};`,
	`local __ttlcmd = {expire = 2, pexpire = 2, expireat = 2, pexpireat = 2, set = 2, setex = 2, psetex = 2, getex = 2, restore = 2, rename = 3, renamenx = 3, copy = 3};`,
	`local function __setsttl(c, a) if c == 'set' or c == 'getex' then for i = 3, #a do local o = string.lower(tostring(a[i])); if o == 'ex' or o == 'px' or o == 'exat' or o == 'pxat' then return true end end; return false end; if c == 'restore' then return tostring(a[3]) ~= '0' end; return true end;`,
	`local __decl = nil; local __switched = false; local function __declared(k) if not __decl then __decl = {}; for _, x in ipairs(__keys or {}) do __decl[x] = true end end; return __decl[k] end;`,
	// After redis.setresp(3), sets and maps arrive as Lua tables keyed by
	// member or field, iterated in an order that depends on how they were
	// filled: __sortkeys refills one in sorted key order, so every node
	// iterates it alike.
	`local function __sortkeys(t) local ks = {}; for k in pairs(t) do ks[#ks + 1] = k end; table.sort(ks); local o = {}; for _, k in ipairs(ks) do o[k] = t[k] end; return o end;`,
	`local function __pairsort(t) local p = {}; for i = 1, #t, 2 do p[#p + 1] = {t[i], t[i + 1]} end; table.sort(p, function(x, y) return x[1] < y[1] end); local o = {}; for _, x in ipairs(p) do o[#o + 1] = x[1]; o[#o + 1] = x[2] end; return o end;`,
	ttlFormulaLua,
	`local function __ttl(c, k) return __ttlof(__r.call('PEXPIRETIME', k), __T, c) end;`,
	// Calls go through unchanged (f(...)) unless a rewrite needs them in a
	// table, so a call with as many arguments as Redis allows still works.
	`local function __unpack(f, a) local n = #a; if n <= 3 then return f(unpack(a, 1, n)) end; return f(a[1], a[2], a[3], unpack(a, 4, n)) end;`,
	`local function __call(f, ...) if __T == nil then return f(...) end; local c = string.lower(tostring((...)));`,
	`if c == 'time' then return {tostring(math.floor(__T / 1000)), tostring((__T % 1000) * 1000)} end;`,
	`local function __refuse(msg) local e = {err = msg}; if f == __r.pcall then return e end; error(e) end;`,
	`if not __ro then`,
	`if __random[c] then return __refuse('ERR ' .. string.upper(c) .. ' is not allowed in scripts that may write on redraft: its effect would differ between replicas or escape deadline tracking') end;`,
	`local n = __ttlcmd[c]; if n then local a = {...}; if __setsttl(c, a) then for i = 2, n do if a[i] ~= nil and not __declared(a[i]) then return __refuse('ERR ' .. string.upper(c) .. ' in a script that may write must name only keys declared in KEYS on redraft (deadlines are tracked per declared key)') end end; if c == 'copy' then for i = 4, #a do if string.lower(tostring(a[i])) == 'db' then return __refuse('ERR COPY ... DB is not allowed in scripts that may write on redraft') end end end;`,
	`if __fn and __switched then return __refuse('ERR ' .. string.upper(c) .. ' with a TTL after SELECT is not allowed in a function on redraft (deadlines are tracked in the caller\'s database)') end end; return __unpack(f, __fix(a)) end;`,
	`if __fixcmd[c] then return __unpack(f, __fix({...})) end;`,
	`if __unordered[c] then local r = f(...); if type(r) == 'table' and r.err == nil then if r.set then r.set = __sortkeys(r.set) else table.sort(r) end end; return r end;`,
	`if c == 'hgetall' then local r = f(...); if type(r) == 'table' and r.err == nil then if r.map then r.map = __sortkeys(r.map) else r = __pairsort(r) end end; return r end;`,
	`end;`,
	`if (c == 'ttl' or c == 'pttl' or c == 'expiretime' or c == 'pexpiretime') and select('#', ...) == 2 then return __ttl(c, select(2, ...)) end;`,
	`if c == 'select' then local r = f(...); if type(r) ~= 'table' or r.err == nil then __switched = true end; return r end;`,
	`return f(...) end;`,
	`local function __rcall(...) return __call(__r.call, ...) end; local function __rpcall(...) return __call(__r.pcall, ...) end;`,
	`local function __proxify(t, get, real) return setmetatable(t, {__index = function(_, k) if k == 'call' then return __rcall elseif k == 'pcall' then return __rpcall end; return get(k) end, __newindex = real, __metatable = false}) end;`,
}

// scriptWithPrelude inserts the prelude, after a shebang line if present.
func scriptWithPrelude(body string) string {
	body = guardRedisAssignments(body)
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
		if !resp.ReplyIsError(raw) || !bytes.Contains(raw, wrapped) {
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

// Scripts and functions run with a prelude (see scriptPrelude) that makes
// their TTL arguments absolute, answers TIME with the entry time T and
// shifts TTL reads back. EVAL carries T as an extra last ARGV; a function
// library's registered callbacks receive T as an extra last argument marked
// "\x00T" (functionTimeArg), which the library prelude removes before calling
// the user's function. Without that argument (a library from FUNCTION DUMP
// loaded into a plain Redis) the prelude passes every call through.

// functionPreludeMarker starts every library prelude, so a library that
// lacks it (e.g. loaded by FUNCTION RESTORE) can be recognised.
const functionPreludeMarker = "local function __rt() return redis end;"

// functionPrelude is one line inserted after a library's shebang line. At
// load time only the restricted redis table exists (captured as __r0) and
// setmetatable is not reachable, so the user's redis starts as a plain
// table with the load-time fields, register_function wrapping each
// callback, and the run-time-only functions failing with Redis's error
// when called. When a callback first runs, __arm makes that table a view of
// Redis's own load-time table (so aliases taken at load time fail as they
// do in Redis) and points redis at the read-only proxy over the runtime
// table (looked up through __rt()). Writes to either reach Redis's tables,
// which refuse them with Redis's own error.
var functionPrelude = functionPreludeMarker + ` local __r0 = redis; local __r = nil; local __keys = nil; local __T = 0; local __ro = false; local __D = ` + strconv.FormatInt(deadlineShift, 10) + `; local __fn = true; local redis; ` +
	strings.Join(scriptHelpers, " ") + ` ` +
	`local __loadtime; local function __arm() if __loadtime == nil then __loadtime = redis; for k in pairs(__loadtime) do rawset(__loadtime, k, nil) end; setmetatable(__loadtime, {__index = __r0, __newindex = __r0, __metatable = false}); redis = __proxify({}, function(k) return (__r or __r0)[k] end, __r) end end; ` +
	`local function __wrap(cb) return function(keys, args) __r = __rt(); __arm(); __keys = keys; __decl = nil; __switched = false; local last = args[#args]; if type(last) == 'string' and string.sub(last, 1, 2) == '\0T' then table.remove(args); __T = tonumber(string.sub(last, 3)); __ro = __T < 0; if __ro then __T = -__T end else __T = nil end; return cb(keys, args) end end; ` +
	`local function __register(a, b) if b == nil then a.callback = __wrap(a.callback); return __r0.register_function(a) end; return __r0.register_function(a, __wrap(b)) end; ` +
	`redis = {register_function = __register, log = __r0.log, LOG_DEBUG = __r0.LOG_DEBUG, LOG_VERBOSE = __r0.LOG_VERBOSE, LOG_NOTICE = __r0.LOG_NOTICE, LOG_WARNING = __r0.LOG_WARNING, REDIS_VERSION = __r0.REDIS_VERSION, REDIS_VERSION_NUM = __r0.REDIS_VERSION_NUM}; ` +
	loadTimeMissing("call", "pcall", "setresp", "sha1hex", "error_reply", "status_reply", "set_repl", "replicate_commands", "breakpoint", "debug", "acl_check_cmd")

// loadTimeMissing is Lua that gives the load-time redis table each run-time
// function as one that fails the way Redis's load-time table does, by
// reading the global of that name (neither error nor _G exist at load
// time). Redis fails on the lookup, this on the call, with the same message
// but the prelude's line number.
func loadTimeMissing(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, " redis.%s = function() return %s end;", n, n)
	}
	return b.String()
}

// libraryWithPrelude inserts the prelude after the shebang line.
func libraryWithPrelude(code string) string {
	code = guardRedisAssignments(code)
	i := strings.IndexByte(code, '\n')
	if i < 0 {
		return code + "\n" + functionPrelude
	}
	return code[:i+1] + functionPrelude + " " + code[i+1:]
}

// stripLibraryPrelude undoes libraryWithPrelude.
func stripLibraryPrelude(code []byte) []byte {
	code = bytes.ReplaceAll(code, []byte(readonlyGlobal), []byte("redis"))
	p := []byte(functionPrelude + " ")
	if i := bytes.Index(code, p); i >= 0 {
		return append(append([]byte(nil), code[:i]...), code[i+len(p):]...)
	}
	p = []byte("\n" + functionPrelude)
	if bytes.HasSuffix(code, p) {
		return code[:len(code)-len(p)]
	}
	return code
}

// stripPreludeFromList removes the prelude from FUNCTION LIST WITHCODE.
func stripPreludeFromList(raw []byte) []byte {
	if !bytes.Contains(raw, []byte(functionPreludeMarker)) {
		return raw
	}
	v, err := resp.Parse(raw)
	if err != nil {
		return raw
	}
	libs, ok := v.([]any)
	if !ok {
		return raw
	}
	proto := resp.Proto2
	for _, lib := range libs {
		fields, ok := lib.([]any)
		if m, isMap := lib.(resp.Map); isMap {
			fields, ok, proto = m, true, resp.Proto3 // RESP3: a map per library
		}
		if !ok {
			continue
		}
		for i := 0; i+1 < len(fields); i += 2 {
			if resp.AsString(fields[i]) == "library_code" {
				if code, ok := fields[i+1].([]byte); ok {
					fields[i+1] = stripLibraryPrelude(code)
				}
			}
		}
	}
	return resp.AppendValue(nil, proto, v)
}

// functionTimeArg is the extra last FCALL argument carrying T (negative for
// FCALL_RO, the read-only flag).
func functionTimeArg(t int64) []byte {
	return []byte("\x00T" + strconv.FormatInt(t, 10))
}

// scriptCache remembers every script body seen in the log by SHA1, so
// EVALSHA can be sent to a child as the full, prelude-wrapped EVAL.
type scriptCache struct {
	mu     sync.RWMutex
	bodies map[string]string
}

func newScriptCache() *scriptCache { return &scriptCache{bodies: make(map[string]string)} }

// get returns the body of the script with SHA1 sha.
func (c *scriptCache) get(sha string) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	b, ok := c.bodies[sha]
	return b, ok
}

// remember records body under its SHA1.
func (c *scriptCache) remember(body string) {
	c.mu.Lock()
	c.bodies[scriptSHA(body)] = body
	c.mu.Unlock()
}

// forget empties the cache (SCRIPT FLUSH, restore).
func (c *scriptCache) forget() {
	c.mu.Lock()
	c.bodies = make(map[string]string)
	c.mu.Unlock()
}

// all lists every remembered body.
func (c *scriptCache) all() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, 0, len(c.bodies))
	for _, b := range c.bodies {
		out = append(out, b)
	}
	return out
}

// readonlyGlobal replaces the name redis where a script assigns to it:
// redis is a local of the prelude there, which Lua would let the script
// overwrite; as an undeclared global, the assignment fails as it does in
// Redis ("Attempt to modify a readonly table").
const readonlyGlobal = "__redraft_global_redis"

// guardRedisAssignments rewrites the assignments to the name redis in a
// script's source (redis = ..., function redis() ...), leaving strings,
// comments, field names, table keys and local declarations alone. Reads of
// redis are untouched, and the source keeps its lines.
func guardRedisAssignments(src string) string {
	toks := luaTokens(src)
	var out strings.Builder
	last := 0
	// open holds the brackets and blocks around a token: "redis =" is an
	// assignment in a block (or at top level), a table key inside "{".
	var open []string
	for i, t := range toks {
		switch t.text {
		case "(", "{", "[", "function", "do", "then", "repeat":
			open = append(open, t.text)
		case "elseif", ")", "}", "]", "end", "until":
			if len(open) > 0 {
				open = open[:len(open)-1]
			}
		}
		inBrackets := len(open) > 0 && strings.Contains("({[", open[len(open)-1])
		if t.text != "redis" || inBrackets || !assignedAt(toks, i) {
			continue
		}
		out.WriteString(src[last:t.pos])
		out.WriteString(readonlyGlobal)
		last = t.pos + len(t.text)
	}
	if last == 0 {
		return src
	}
	out.WriteString(src[last:])
	return out.String()
}

// assignedAt reports whether the name at toks[i] is assigned there as a
// variable: "name =" outside a local declaration, or "function name(".
func assignedAt(toks []luaToken, i int) bool {
	prev, next := "", ""
	if i > 0 {
		prev = toks[i-1].text
	}
	if i+1 < len(toks) {
		next = toks[i+1].text
	}
	switch {
	case prev == "." || prev == ":":
		return false
	case prev == "function":
		return next == "(" && (i < 2 || toks[i-2].text != "local")
	case next != "=":
		return false
	}
	// A local (or for) name list: local a, redis = ...
	for j := i - 1; j >= 0; j-- {
		switch tk := toks[j]; {
		case tk.text == "local" || tk.text == "for":
			return false
		case tk.text == "," || tk.name:
			continue
		}
		break
	}
	return true
}

// luaToken is one significant token of Lua source.
type luaToken struct {
	text string
	pos  int
	name bool
}

// luaTokens splits Lua 5.1 source into tokens, skipping spaces, comments
// and the contents of strings (a string is one token).
func luaTokens(src string) []luaToken {
	var toks []luaToken
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
			i++
		case strings.HasPrefix(src[i:], "--"):
			i += 2
			if end, ok := longBracketEnd(src, i); ok {
				i = end
			} else if nl := strings.IndexByte(src[i:], '\n'); nl >= 0 {
				i += nl + 1
			} else {
				i = len(src)
			}
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			toks = append(toks, luaToken{text: "\"", pos: i})
			i = min(j+1, len(src))
		case c == '[':
			if end, ok := longBracketEnd(src, i); ok {
				toks = append(toks, luaToken{text: "\"", pos: i})
				i = end
			} else {
				toks = append(toks, luaToken{text: "[", pos: i})
				i++
			}
		case isNameStart(c):
			j := i + 1
			for j < len(src) && (isNameStart(src[j]) || (src[j] >= '0' && src[j] <= '9')) {
				j++
			}
			toks = append(toks, luaToken{text: src[i:j], pos: i, name: true})
			i = j
		case c >= '0' && c <= '9' || (c == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9'):
			j := i + 1
			for j < len(src) && (isNameStart(src[j]) || (src[j] >= '0' && src[j] <= '9') || src[j] == '.' ||
				((src[j] == '+' || src[j] == '-') && (src[j-1] == 'e' || src[j-1] == 'E'))) {
				j++
			}
			toks = append(toks, luaToken{text: src[i:j], pos: i})
			i = j
		default:
			n := 1
			for _, op := range []string{"...", "..", "==", "~=", "<=", ">="} {
				if strings.HasPrefix(src[i:], op) {
					n = len(op)
					break
				}
			}
			toks = append(toks, luaToken{text: src[i : i+n], pos: i})
			i += n
		}
	}
	return toks
}

// longBracketEnd returns the end of a long bracket ([[ ]], [==[ ]==]) that
// opens at src[i], and whether one opens there.
func longBracketEnd(src string, i int) (int, bool) {
	if i >= len(src) || src[i] != '[' {
		return 0, false
	}
	j := i + 1
	for j < len(src) && src[j] == '=' {
		j++
	}
	if j >= len(src) || src[j] != '[' {
		return 0, false
	}
	closer := "]" + strings.Repeat("=", j-i-1) + "]"
	if end := strings.Index(src[j+1:], closer); end >= 0 {
		return j + 1 + end + len(closer), true
	}
	return len(src), true
}

func isNameStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}
