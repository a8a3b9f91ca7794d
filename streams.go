package main

import (
	"strconv"
	"strings"
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

// xclaimScript is XCLAIM judged at T: ARGV = T, key, group, consumer,
// min-idle, then ids and options as given.
var xclaimScript = streamHelpers + `local T = tonumber(ARGV[1])
local key, group, consumer, minidle = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local ids, opts, timed = {}, {}, false
local i = 6
while i <= #ARGV and string.find(ARGV[i], '^%d') do ids[#ids + 1] = ARGV[i]; i = i + 1 end
while i <= #ARGV do
  local o = string.upper(ARGV[i])
  if o == 'IDLE' then opts[#opts + 1] = 'TIME'; opts[#opts + 1] = string.format('%.0f', T - tonumber(ARGV[i + 1])); timed = true; i = i + 2
  elseif o == 'TIME' or o == 'RETRYCOUNT' or o == 'LASTID' then opts[#opts + 1] = o; opts[#opts + 1] = ARGV[i + 1]; timed = timed or o == 'TIME'; i = i + 2
  else opts[#opts + 1] = ARGV[i]; i = i + 1 end
end
if not timed then opts[#opts + 1] = 'TIME'; opts[#opts + 1] = ARGV[1] end
local keep = {}
for _, id in ipairs(ids) do
  local p = __pending(key, group, id, id, 1)
  if #p == 0 or T - p[1][3] >= minidle then keep[#keep + 1] = id end
end
if #keep == 0 then return {} end
local args = {key, group, consumer, 0}
for _, id in ipairs(keep) do args[#args + 1] = id end
for _, o in ipairs(opts) do args[#args + 1] = o end
return redis.call('XCLAIM', unpack(args))`

// xautoclaimScript is XAUTOCLAIM judged at T: ARGV = T, key, group,
// consumer, min-idle, start, then COUNT n / JUSTID. It walks the PEL as
// Redis does (at most COUNT*10 entries), drops entries whose message was
// deleted, and claims the idle ones with XCLAIM ... TIME T.
var xautoclaimScript = streamHelpers + `local T = ARGV[1]
local key, group, consumer, minidle, start = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local count, justid = 100, false
local i = 7
while i <= #ARGV do
  local o = string.upper(ARGV[i])
  if o == 'COUNT' then count = tonumber(ARGV[i + 1]); i = i + 2
  elseif o == 'JUSTID' then justid = true; i = i + 1
  else return redis.error_reply('ERR syntax error') end
end
if string.sub(start, 1, 1) == '(' then return redis.error_reply('ERR Invalid stream ID specified as stream command argument') end
redis.call('XPENDING', key, group, 'IDLE', 0, '-', '+', 1)
local attempts = count * 10
local pel = __pending(key, group, start, '+', attempts + 1)
local claim, deleted, next = {}, {}, '0-0'
local examined = 0
for _, e in ipairs(pel) do
  if examined >= attempts or #claim >= count then next = e[1]; break end
  examined = examined + 1
  if minidle == 0 or tonumber(T) - e[3] >= minidle then
    if #redis.call('XRANGE', key, e[1], e[1]) == 0 then
      deleted[#deleted + 1] = e[1]
      redis.call('XACK', key, group, e[1])
    else
      claim[#claim + 1] = e[1]
    end
  end
end
local claimed = {}
if #claim > 0 then
  local args = {key, group, consumer, 0}
  for _, id in ipairs(claim) do args[#args + 1] = id end
  args[#args + 1] = 'TIME'; args[#args + 1] = T
  if justid then args[#args + 1] = 'JUSTID' end
  claimed = redis.call('XCLAIM', unpack(args))
end
return {next, claimed, deleted}`

// planStreamCommand rewrites the consumer-group commands that read the
// clock. ok is false when args do not parse, so the child answers the error.
func (st *applyStep) planStreamCommand(name string, args [][]byte, t int64) {
	tt := []byte(strconv.FormatInt(t, 10))
	switch name {
	case "xreadgroup":
		st.args = append([][]byte{[]byte("EVAL"), []byte(xreadgroupScript), []byte("0"), tt}, args[1:]...)
		st.mapReply = internalScriptReply
	case "xclaim":
		if len(args) < 6 || !isNonNegInt(args[4]) {
			return
		}
		st.args = append([][]byte{[]byte("EVAL"), []byte(xclaimScript), []byte("0"), tt}, args[1:]...)
		st.mapReply = internalScriptReply
	case "xautoclaim":
		if len(args) < 6 || !isNonNegInt(args[4]) {
			return
		}
		for i := 6; i < len(args); i++ {
			if strings.EqualFold(string(args[i]), "count") && (i+1 >= len(args) || !isPositiveInt(args[i+1])) {
				return
			}
		}
		st.args = append([][]byte{[]byte("EVAL"), []byte(xautoclaimScript), []byte("0"), tt}, args[1:]...)
		st.mapReply = internalScriptReply
	}
}

func isNonNegInt(b []byte) bool {
	n, err := strconv.ParseInt(string(b), 10, 64)
	return err == nil && n >= 0
}

func isPositiveInt(b []byte) bool {
	n, err := strconv.ParseInt(string(b), 10, 64)
	return err == nil && n > 0
}
