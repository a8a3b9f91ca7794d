package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
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
	ttlFormulaLua,
	`local function __ttl(c, k) return __ttlof(__r.call('PEXPIRETIME', k), __T, c) end;`,
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
// load time only the restricted redis table exists (captured as __r0); the
// runtime one is looked up through __rt() when a callback runs, and the
// user's redis table is completed from it then.
var functionPrelude = functionPreludeMarker + ` local __r0 = redis; local __r = nil; local __keys = nil; local __T = 0; local __ro = false; local __D = ` + strconv.FormatInt(deadlineShift, 10) + `; ` +
	strings.Join(scriptHelpers, " ") + ` ` +
	`local redis = {log = __r0.log}; local __filled = false; ` +
	`local function __wrap(cb) return function(keys, args) __r = __rt(); if not __filled then for k, v in pairs(__r) do if redis[k] == nil then redis[k] = v end end; __filled = true end; __keys = keys; __decl = nil; local last = args[#args]; if type(last) == 'string' and string.sub(last, 1, 2) == '\0T' then table.remove(args); __T = tonumber(string.sub(last, 3)); __ro = __T < 0; if __ro then __T = -__T end else __T = nil end; return cb(keys, args) end end; ` +
	`redis.call = function(...) return __call(__r.call, ...) end; redis.pcall = function(...) return __call(__r.pcall, ...) end; ` +
	`redis.register_function = function(a, b) if b == nil then a.callback = __wrap(a.callback); return __r0.register_function(a) end; return __r0.register_function(a, __wrap(b)) end;`

// libraryWithPrelude inserts the prelude after the shebang line.
func libraryWithPrelude(code string) string {
	i := strings.IndexByte(code, '\n')
	if i < 0 {
		return code + "\n" + functionPrelude
	}
	return code[:i+1] + functionPrelude + " " + code[i+1:]
}

// stripLibraryPrelude undoes libraryWithPrelude.
func stripLibraryPrelude(code []byte) []byte {
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
	for _, lib := range libs {
		fields, ok := lib.([]any)
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
	return resp.AppendValue(nil, resp.Proto2, v)
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
