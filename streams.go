package main

import (
	"bytes"
	"math"
	"strconv"
	"strings"

	"github.com/redraft/redraft/internal/command"
)

// Stream consumer groups keep, per pending entry, the time it was last
// delivered, and XCLAIM/XAUTOCLAIM compare it with "now". Both times come
// from the log here: deliveries are stamped with the entry time T (XCLAIM
// ... TIME T), and idle times are judged against T. The scripts recover an
// entry's exact delivery time from XPENDING's idle time and the child's
// clock, bracketing XPENDING between two TIME calls in the same millisecond.

// streamHelpers is shared Lua: __now() is the child's clock in ms, and
// __pending(key, group, start, count) returns PEL entries as
// {id, consumer, delivered (absolute ms), count}.
const streamHelpers = `local function __now() local t = redis.call('TIME'); return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end
local function __pending(key, group, start, stop, count)
  while true do
    local a = __now()
    local p = redis.call('XPENDING', key, group, 'IDLE', 0, start, stop, count)
    if __now() == a then
      for _, e in ipairs(p) do e[3] = a - e[3] end
      return p
    end
  end
end
`

// xreadgroupScript runs XREADGROUP (ARGV[2..]) and stamps what it delivered
// with T (ARGV[1]).
const xreadgroupScript = `local T = ARGV[1]
local args = {}
for i = 2, #ARGV do args[#args + 1] = ARGV[i] end
local group, consumer, noack = nil, nil, false
for i = 1, #args do
  local a = string.lower(args[i])
  if a == 'group' then group = args[i + 1]; consumer = args[i + 2]
  elseif a == 'noack' then noack = true
  elseif a == 'streams' then break end
end
local r = redis.call('XREADGROUP', unpack(args))
if r and not noack then
  for _, s in ipairs(r) do
    local ids = {}
    for _, e in ipairs(s[2]) do ids[#ids + 1] = e[1] end
    for i = 1, #ids, 1000 do
      local a = {s[1], group, consumer, 0}
      for j = i, math.min(i + 999, #ids) do a[#a + 1] = ids[j] end
      a[#a + 1] = 'TIME'; a[#a + 1] = T; a[#a + 1] = 'JUSTID'
      redis.call('XCLAIM', unpack(a))
    end
  end
end
return r`

// xclaimScript is XCLAIM judged at T, its arguments checked and normalised
// by planXclaim: ARGV = T, key, group, consumer, min-idle, the number of
// IDs, the IDs ("ms-seq"), then the options, TIME always among them.
var xclaimScript = streamHelpers + `local T = tonumber(ARGV[1])
local key, group, consumer, minidle, n = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('XPENDING', key, group, 'IDLE', 0, '-', '+', 1)
local keep = {}
for i = 7, 6 + n do
  local id = ARGV[i]
  local p = __pending(key, group, id, id, 1)
  if minidle == 0 or #p == 0 or T - p[1][3] >= minidle then keep[#keep + 1] = id end
end
if #keep == 0 then return {} end
local args = {key, group, consumer, 0}
for _, id in ipairs(keep) do args[#args + 1] = id end
for i = 7 + n, #ARGV do args[#args + 1] = ARGV[i] end
return redis.call('XCLAIM', unpack(args))`

// xautoclaimScript is XAUTOCLAIM judged at T, its arguments checked and
// normalised by planXautoclaim: ARGV = T, key, group, consumer, min-idle,
// start ("ms-seq"), count, "1" for JUSTID, "1" when COUNT is too high to
// allocate for (see xautoclaimAllocLimit). It walks the PEL as Redis does:
// at most count*10 entries, dropping those whose message was deleted (which
// count towards count), claiming the idle ones with XCLAIM ... TIME T.
var xautoclaimScript = streamHelpers + `local T = tonumber(ARGV[1])
local key, group, consumer, minidle, start = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local left, justid = tonumber(ARGV[7]), ARGV[8] == '1'
redis.call('XPENDING', key, group, 'IDLE', 0, '-', '+', 1)
if ARGV[9] == '1' then return redis.error_reply('ERR Insufficient memory, failed allocating transient memory, COUNT too high.') end
local attempts = math.min(left * 10, 1000000000)
local pel = __pending(key, group, start, '+', attempts + 1)
local claim, deleted = {}, {}
local i = 1
while attempts > 0 and left > 0 and i <= #pel do
  attempts = attempts - 1
  local e = pel[i]
  i = i + 1
  if #redis.call('XRANGE', key, e[1], e[1]) == 0 then
    deleted[#deleted + 1] = e[1]
    redis.call('XACK', key, group, e[1])
    left = left - 1
  elseif minidle == 0 or T - e[3] >= minidle then
    claim[#claim + 1] = e[1]
    left = left - 1
  end
end
local next = '0-0'
if i <= #pel then next = pel[i][1] end
local claimed = {}
if #claim > 0 then
  local args = {key, group, consumer, 0}
  for _, id in ipairs(claim) do args[#args + 1] = id end
  args[#args + 1] = 'TIME'; args[#args + 1] = ARGV[1]
  if justid then args[#args + 1] = 'JUSTID' end
  claimed = redis.call('XCLAIM', unpack(args))
end
return {next, claimed, deleted}`

// planStreamCommand rewrites the consumer-group commands that read the
// clock. Arguments Redis would refuse are left as they are, so the child
// answers the error (each refuses before it changes anything).
func (st *applyStep) planStreamCommand(name string, args [][]byte, t int64) {
	tt := []byte(strconv.FormatInt(t, 10))
	var argv [][]byte
	switch name {
	case "xreadgroup":
		st.args = append([][]byte{[]byte("EVAL"), []byte(xreadgroupScript), []byte("0"), tt}, args[1:]...)
		st.mapReply = streamsReplyIn(st.proto)
		return
	case "xclaim":
		argv = planXclaim(args, t)
		if argv == nil {
			return
		}
		st.args = append([][]byte{[]byte("EVAL"), []byte(xclaimScript), []byte("0")}, argv...)
	case "xautoclaim":
		argv = planXautoclaim(args, t)
		if argv == nil {
			return
		}
		st.args = append([][]byte{[]byte("EVAL"), []byte(xautoclaimScript), []byte("0")}, argv...)
	}
	st.mapReply = internalScriptReply
}

// planXclaim checks XCLAIM's arguments as Redis parses them and returns
// xclaimScript's ARGV, or nil when Redis would refuse them. The delivery
// time is decided here from T: IDLE and TIME as given, clamped to [0, T]
// as Redis clamps to its clock; T without either.
func planXclaim(args [][]byte, t int64) [][]byte {
	if len(args) < 6 {
		return nil
	}
	minIdle, ok := command.ParseInt(args[4])
	if !ok {
		return nil
	}
	var ids [][]byte
	j := 5
	for ; j < len(args); j++ {
		ms, seq, ok := parseStreamID(args[j], 0, true)
		if !ok {
			break
		}
		ids = append(ids, []byte(formatStreamID(ms, seq)))
	}
	delivery := t
	var opts [][]byte
	for ; j < len(args); j++ {
		more := j+1 < len(args)
		switch opt := command.Lower(args[j]); {
		case opt == "force" || opt == "justid":
			opts = append(opts, args[j])
		case (opt == "idle" || opt == "time") && more:
			n, ok := command.ParseInt(args[j+1])
			if !ok {
				return nil
			}
			if opt == "idle" {
				n = t - n // wraps as in Redis's C
			}
			delivery = n
			j++
		case opt == "retrycount" && more:
			if _, ok := command.ParseInt(args[j+1]); !ok {
				return nil
			}
			opts = append(opts, args[j], args[j+1])
			j++
		case opt == "lastid" && more:
			if _, _, ok := parseStreamID(args[j+1], 0, true); !ok {
				return nil
			}
			opts = append(opts, args[j], args[j+1])
			j++
		default:
			return nil
		}
	}
	if delivery < 0 || delivery > t {
		delivery = t
	}
	argv := [][]byte{[]byte(strconv.FormatInt(t, 10)), args[1], args[2], args[3],
		[]byte(strconv.FormatInt(max(minIdle, 0), 10)), []byte(strconv.Itoa(len(ids)))}
	argv = append(argv, ids...)
	argv = append(argv, opts...)
	return append(argv, []byte("TIME"), []byte(strconv.FormatInt(delivery, 10)))
}

// xautoclaimMaxCount is the largest COUNT XAUTOCLAIM takes (Redis:
// LONG_MAX / max(sizeof(streamID), attempts factor)).
const xautoclaimMaxCount = math.MaxInt64 / 16

// xautoclaimAllocLimit is the largest COUNT for which XAUTOCLAIM runs:
// Redis allocates COUNT stream IDs (16 bytes each) up front and answers
// "COUNT too high" when that fails, which depends on the host's memory.
// Every node must decide alike, so redraft fixes the line at 1 TiB.
const xautoclaimAllocLimit = 1 << 36

// planXautoclaim checks XAUTOCLAIM's arguments as Redis parses them and
// returns xautoclaimScript's ARGV, or nil when Redis would refuse them.
func planXautoclaim(args [][]byte, t int64) [][]byte {
	if len(args) < 6 {
		return nil
	}
	minIdle, ok := command.ParseInt(args[4])
	if !ok {
		return nil
	}
	var ms, seq uint64
	if a := args[5]; len(a) > 1 && a[0] == '(' {
		if ms, seq, ok = parseStreamID(a[1:], 0, true); !ok {
			return nil
		}
		if ms, seq, ok = nextStreamID(ms, seq); !ok {
			return nil // "invalid start ID for the interval"
		}
	} else if ms, seq, ok = parseStreamID(a, 0, false); !ok {
		return nil
	}
	count, justid := int64(100), "0"
	for j := 6; j < len(args); j++ {
		switch opt := command.Lower(args[j]); {
		case opt == "count" && j+1 < len(args):
			n, ok := command.ParseInt(args[j+1])
			if !ok || n < 1 || n > xautoclaimMaxCount {
				return nil
			}
			count = n
			j++
		case opt == "justid":
			justid = "1"
		default:
			return nil
		}
	}
	tooHigh := "0"
	if count > xautoclaimAllocLimit {
		tooHigh = "1"
	}
	return [][]byte{[]byte(strconv.FormatInt(t, 10)), args[1], args[2], args[3],
		[]byte(strconv.FormatInt(max(minIdle, 0), 10)), []byte(formatStreamID(ms, seq)),
		[]byte(strconv.FormatInt(count, 10)), []byte(justid), []byte(tooHigh)}
}

// parseStreamID parses a stream ID as Redis does: "ms" (seq = missingSeq)
// or "ms-seq", each part as string2ull reads it; "-" and "+" are the
// smallest and largest IDs unless strict. The ID ends at a NUL byte, as the
// C string Redis copies it to does.
func parseStreamID(b []byte, missingSeq uint64, strict bool) (ms, seq uint64, ok bool) {
	if len(b) > 127 {
		return 0, 0, false
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	switch string(b) {
	case "-":
		return 0, 0, !strict
	case "+":
		return math.MaxUint64, math.MaxUint64, !strict
	}
	msPart, seqPart, dash := bytes.Cut(b, []byte("-"))
	if ms, ok = string2ull(msPart); !ok {
		return 0, 0, false
	}
	if !dash {
		return ms, missingSeq, true
	}
	seq, ok = string2ull(seqPart)
	return ms, seq, ok
}

// string2ull is Redis's: a non-negative string2ll, else what C's strtoull
// accepts in full (leading spaces, a sign, leading zeros; a minus sign
// negates modulo 2^64), else nothing.
func string2ull(b []byte) (uint64, bool) {
	if n, ok := command.ParseInt(b); ok {
		return uint64(n), n >= 0
	}
	s := strings.TrimLeft(string(b), " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || s[0] == '+' || s[0] == '-' || s[0] == '_' || strings.Contains(s, "_") {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// nextStreamID is the ID after ms-seq; false after the largest one.
func nextStreamID(ms, seq uint64) (uint64, uint64, bool) {
	switch {
	case seq < math.MaxUint64:
		return ms, seq + 1, true
	case ms < math.MaxUint64:
		return ms + 1, 0, true
	}
	return 0, 0, false
}

// formatStreamID is an ID as Redis writes it.
func formatStreamID(ms, seq uint64) string {
	return strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(seq, 10)
}
