package main

import (
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/internal/child"
)

// bareRedis starts a plain redis-server child to compare replies with.
func bareRedis(t *testing.T) string {
	t.Helper()
	path, err := child.FindServer("")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sock := child.SocketPath(dir)
	proc, err := child.Supervise(path, dir, sock, child.Args(sock, dir), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proc.Stop(time.Second) })
	return sock
}

// scriptCorpus are scripts whose replies must be the bytes redis-server
// gives: the prelude is invisible.
var scriptCorpus = [][]string{
	{"EVAL", "redis = function() return 1 end", "0"},
	{"EVAL", "redis.call = nil", "0"},
	{"EVAL", "function redis() return 1 end", "0"},
	{"EVAL", "redis.foo = 1", "0"},
	{"EVAL", "x = 1", "0"},
	{"EVAL", "return y", "0"},
	{"EVAL", "local redis = 5 return redis", "0"},
	{"EVAL", "local t = {redis = 1} return t.redis", "0"},
	{"EVAL", "return 'redis = 1'", "0"},
	{"EVAL", "-- redis = 1\nreturn 2", "0"},
	{"EVAL", "local a = {} for i = 1, 7999 do a[i] = i end return redis.call('lpush', 'biglist', unpack(a))", "0"},
	{"EVAL", "local a = {} for i = 1, 7000 do a[i] = 'f' .. i end return redis.call('hset', KEYS[1], unpack(a))", "1", "h"},
	{"EVAL", "redis.setresp(3) return redis.call('hgetall', 'nosuch')", "0"},
	{"EVAL", "return redis.error_reply('MY custom error')", "0"},
	{"EVAL", "return redis.status_reply('FINE')", "0"},
	{"EVAL", "return redis.pcall('incr', KEYS[1])", "1", "biglist"},
	{"EVAL", "local r = redis.pcall('nosuchcommand') return r", "0"},
	{"EVAL", "return redis.call('nosuchcommand')", "0"},
	{"EVAL", "return pcall(function() redis.call('incr', 'biglist') end)", "0"},
	{"EVAL", "redis.call('select', 3) redis.call('set', 'in3', 'v') return redis.call('get', 'in3')", "0"},
	{"EVAL", "return redis.call('get', 'in3')", "0"},
	{"EVAL", "return {1, 2, {3, 'x'}, false, true}", "0"},
	{"EVAL", "return redis.sha1hex('x')", "0"},
	{"EVAL", "return cjson.encode({1, 2})", "0"},
	{"EVAL", "return tonumber(ARGV[1]) + #KEYS", "1", "k", "41"},
	{"EVAL", "return redis.REPL_ALL", "0"},
	{"EVAL", "error('boom')", "0"},
	{"EVAL", "error({err = 'ERR table error'})", "0"},
	{"EVAL", "return redis.call('set', KEYS[1], 'v', 'ex', 'notanumber')", "1", "k"},
	{"EVAL", "#!lua flags=no-writes\nreturn redis.call('get', 'k')", "0"},
	{"EVAL", "return 1 +", "0"},
	{"EVAL", "return redis.call('SET', KEYS[1])", "1", "k"},
	{"EVAL", "return redis.pcall('EXPIRE', KEYS[1])", "1", "k"},
	{"EVAL", "return redis.call('SET')", "0"},
	// Function libraries: load-time and run-time behaviour.
	{"FUNCTION", "LOAD", "#!lua name=l1\nredis.register_function('f1', function(keys, args) return redis.call('set', keys[1], args[1]) end)"},
	{"FCALL", "f1", "1", "fk", "fv"}, {"FCALL_RO", "f1", "1", "fk", "fv"}, {"FCALL", "f1", "-1"}, {"FCALL", "f1", "x"},
	{"FUNCTION", "LOAD", "REPLACE", "#!lua name=l1\nlocal r = redis\nr.register_function{function_name = 'f1', callback = function(keys) return r.call('get', keys[1]) end, flags = {'no-writes'}}"},
	{"FCALL_RO", "f1", "1", "fk"},
	{"FUNCTION", "LOAD", "#!lua name=l2\nredis = 1"},
	{"FUNCTION", "LOAD", "#!lua name=l2\nlocal x = setmetatable"},
	{"FUNCTION", "LOAD", "#!lua name=l2\nlocal x = redis.call('get', 'x')"},
	{"FUNCTION", "LOAD", "#!lua name=l2\nredis.log(redis.LOG_NOTICE, 'loading ' .. redis.REDIS_VERSION)\nredis.register_function('f2', function() redis = 5 return 1 end)"},
	{"FCALL", "f2", "0"},
	{"FUNCTION", "LOAD", "REPLACE", "#!lua name=l2\nredis.register_function('f2', function() redis.call = 5 return 1 end)"},
	{"FCALL", "f2", "0"},
	{"FUNCTION", "LOAD", "REPLACE", "#!lua name=l2\nredis.register_function('f2', function() redis.setresp(3) return {redis.call('time')[1] ~= nil, redis.error_reply('E1').err, redis.status_reply('S').ok, redis.pcall('nosuch').err} end)"},
	{"FCALL", "f2", "0"},
	{"FUNCTION", "LOAD", "REPLACE", "#!lua name=l2\nredis.register_function('f2', function() return redis.nosuchfield end)"},
	{"FCALL", "f2", "0"},
	{"FUNCTION", "LOAD", "REPLACE", "#!lua name=l2\nredis.register_function('f2', function() return redis.call('incr', 'fk') end)"},
	{"FCALL", "f2", "0"},
	{"FUNCTION", "LOAD", "REPLACE", "#!lua name=l2\nredis.register_function('f2', function() return redis.pcall('incr', 'fk') end)"},
	{"FCALL", "f2", "0"},
	{"FUNCTION", "LOAD", "REPLACE", "#!lua name=l2\n\nredis.register_function('f2', function()\n  redis.call = 5\nend)"},
	{"FCALL", "f2", "0"},
	{"FUNCTION", "LOAD", "REPLACE", "#!lua name=l2\nlocal r = redis\nredis.register_function('f2', function()\n\n  r.x = 5\nend)"},
	{"FCALL", "f2", "0"},
	{"EVAL", "\n\nredis.call = 1", "0"},
	{"EVAL", "local r = redis\n\nr.x = 1", "0"},
	{"EVAL", "\nlocal r = redis\n\nreturn r.nosuchfield", "0"},
	{"FUNCTION", "DELETE", "l1"}, {"FUNCTION", "DELETE", "l2"}, {"FUNCTION", "DELETE", "l2"},
}

func TestScriptsAnswerAsRedis(t *testing.T) {
	_, addr, _ := newTestNode(t, nil)
	sock := bareRedis(t)
	bare, err := child.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	c := dialTest(t, addr)
	for _, cmd := range scriptCorpus {
		want, err := bare.Do(cmd...)
		if err != nil {
			t.Fatal(err)
		}
		got := c.do(encodeTestCommand(cmd))
		if got != string(want) {
			t.Errorf("%q:\n  redraft %q\n  redis   %q", strings.Join(cmd, " "), got, want)
		}
	}
}

// encodeTestCommand is a RESP request.
func encodeTestCommand(args []string) string {
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	return b.String()
}
