package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

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
	v, err := parseReply(raw)
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
			if asString(fields[i]) == "library_code" {
				if code, ok := fields[i+1].([]byte); ok {
					fields[i+1] = stripLibraryPrelude(code)
				}
			}
		}
	}
	return encodeValue(nil, v)
}

// encodeValue renders a parsed reply as RESP2.
func encodeValue(dst []byte, v any) []byte {
	switch t := v.(type) {
	case nil:
		return append(dst, respNullBulk...)
	case int64:
		return append(dst, respInt(t)...)
	case string:
		return append(dst, respStatus(t)...)
	case respErrorValue:
		return append(dst, respError(string(t))...)
	case []byte:
		dst = append(dst, '$')
		dst = strconv.AppendInt(dst, int64(len(t)), 10)
		dst = append(dst, "\r\n"...)
		dst = append(dst, t...)
		return append(dst, "\r\n"...)
	case []any:
		dst = append(dst, respArrayHeader(len(t))...)
		for _, e := range t {
			dst = encodeValue(dst, e)
		}
		return dst
	}
	panic(fmt.Sprintf("encodeValue: unexpected %T", v))
}

// addPreludeToLibraries gives every loaded library without the prelude one
// (after FUNCTION RESTORE). It runs synchronously in the apply path.
func (p *pipeline) addPreludeToLibraries() {
	if err := p.run(); err != nil {
		p.f.fatal(err)
	}
	raw, err := p.f.conn.do("FUNCTION", "LIST", "WITHCODE")
	if err != nil {
		p.f.fatal(err)
	}
	v, _ := parseReply(raw)
	libs, _ := v.([]any)
	for _, lib := range libs {
		fields, _ := lib.([]any)
		for i := 0; i+1 < len(fields); i += 2 {
			if asString(fields[i]) != "library_code" {
				continue
			}
			code := asString(fields[i+1])
			if strings.Contains(code, functionPreludeMarker) {
				continue
			}
			if _, err := p.f.conn.do("FUNCTION", "LOAD", "REPLACE", libraryWithPrelude(code)); err != nil {
				p.f.fatal(err)
			}
		}
	}
}

// functionTimeArg is the extra last FCALL argument carrying T (negative for
// FCALL_RO, the read-only flag).
func functionTimeArg(t int64) []byte {
	return []byte("\x00T" + strconv.FormatInt(t, 10))
}
