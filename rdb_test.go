package main

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/internal/child"
	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// Redis's CRC64 check value (crc64.c: crc64(0, "123456789")).
func TestRDBCRC(t *testing.T) {
	if got := rdbCRC(0, []byte("123456789")); got != 0xe9c6d914c4b8d9ca {
		t.Fatalf("crc64 = %#x, want 0xe9c6d914c4b8d9ca", got)
	}
	// Incremental use gives the same sum.
	if got := rdbCRC(rdbCRC(0, []byte("1234")), []byte("56789")); got != 0xe9c6d914c4b8d9ca {
		t.Fatalf("incremental crc64 = %#x", got)
	}
}

// Lengths at each boundary of RDB's length encoding.
func TestRDBLength(t *testing.T) {
	for _, c := range []struct {
		n    uint64
		want string
	}{
		{0, "00"}, {63, "3f"}, {64, "4040"}, {16383, "7fff"}, {16384, "8000004000"},
		{0xFFFFFFFF, "80ffffffff"}, {0x100000000, "810000000100000000"},
	} {
		var b bytes.Buffer
		w := &rdbWriter{w: bufio.NewWriter(&b)}
		w.length(c.n)
		w.w.Flush()
		if got := strings.TrimSpace(strings.ReplaceAll(string(hexOf(b.Bytes())), " ", "")); got != c.want {
			t.Errorf("length(%d) = %s, want %s", c.n, got, c.want)
		}
	}
}

func hexOf(b []byte) []byte {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&0xf])
	}
	return out
}

// An RDB file written from a snapshot stream loads into a plain
// redis-server with every key, value, database and deadline, and with the
// function libraries: every type, keys of every length encoding, binary
// names, an empty database in between.
func TestRDBLoadsIntoRedis(t *testing.T) {
	src := startThrowaway(t, "")
	deadline := time.Now().Add(time.Hour).UnixMilli()
	cmds := [][]string{
		{"SET", "str", "hello"},
		{"SET", "int", "12345"},
		{"SET", "ttl", "v", "PXAT", strconv.FormatInt(deadline, 10)},
		{"SET", strings.Repeat("k", 64), "two-byte length"},
		{"SET", strings.Repeat("K", 16384), strings.Repeat("v", 70000)},
		{"SET", "bin\x00\r\n\xff", "\x00\x01"},
		{"RPUSH", "list", "a", "b", "c"},
		{"HSET", "hash", "f", "v", "g", "w"},
		{"SADD", "set", "x", "y"},
		{"SADD", "intset", "1", "2", "3"},
		{"ZADD", "zset", "1.5", "a", "2", "b"},
		{"PFADD", "hll", "a", "b", "c"},
		{"XADD", "stream", "1-1", "f", "v"},
		{"XGROUP", "CREATE", "stream", "g", "0"},
		{"SELECT", "15"}, // selected through the connection, which tracks it
		{"SET", "last", "db"},
		{"PEXPIREAT", "last", strconv.FormatInt(deadline+1, 10)},
		{"FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('echo1', function(keys, args) return args[1] end)"},
	}
	for _, c := range cmds {
		if c[0] == "SELECT" {
			if err := src.SelectNow(15); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if raw, err := src.Do(c...); err != nil || resp.ReplyIsError(raw) {
			t.Fatalf("%.40q: %q %v", c, raw, err)
		}
	}
	var snap bytes.Buffer
	w := bufio.NewWriter(&snap)
	w.Write(snapshotHeader(77, deadline))
	if _, err := writeSnapshot(w, src, nil, func(at int64) int64 { return at }); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "out.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := writeRDB(f, bytes.NewReader(snap.Bytes()), rdbOptions{data: true, functions: true, redisVersion: "7.0.15"})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if st.keys != 14 || st.index != 77 {
		t.Errorf("stats %+v, want 14 keys at index 77", st)
	}
	dst := startThrowaway(t, filepath.Join(dir, "out.rdb"))
	for _, db := range []int{0, 15} {
		keys, err := scanAll(src, db)
		if err != nil {
			t.Fatal(err)
		}
		got, err := scanAll(dst, db)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(keys, "\x00") != strings.Join(got, "\x00") {
			t.Fatalf("db %d: %d keys, want %d", db, len(got), len(keys))
		}
		for _, k := range keys {
			for _, cmd := range [][]string{{"DEBUG", "DIGEST-VALUE", k}, {"PEXPIRETIME", k}} {
				a, _ := src.Do(cmd...)
				b, _ := dst.Do(cmd...)
				if !bytes.Equal(a, b) {
					t.Errorf("db %d key %.20q: %s %q, want %q", db, k, cmd[0], b, a)
				}
			}
		}
	}
	a, _ := src.Do("DEBUG", "DIGEST")
	b, _ := dst.Do("DEBUG", "DIGEST")
	if !bytes.Equal(a, b) {
		t.Errorf("DEBUG DIGEST %q, want %q", b, a)
	}
	if raw, _ := dst.Do("FCALL", "echo1", "0", "x"); string(raw) != "$1\r\nx\r\n" {
		t.Errorf("FCALL after load: %q", raw)
	}
	// Only the functions (redis-cli --functions-rdb).
	var fonly bytes.Buffer
	if _, err := writeRDB(&fonly, bytes.NewReader(snap.Bytes()), rdbOptions{functions: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f.rdb"), fonly.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fdst := startThrowaway(t, filepath.Join(dir, "f.rdb"))
	if raw, _ := fdst.Do("DBSIZE"); string(raw) != ":0\r\n" {
		t.Errorf("functions-only RDB holds keys: DBSIZE %q", raw)
	}
	if raw, _ := fdst.Do("FCALL", "echo1", "0", "y"); string(raw) != "$1\r\ny\r\n" {
		t.Errorf("FCALL after functions-only load: %q", raw)
	}
}

// A damaged RDB file (its checksum no longer matches) is refused by
// redis-server, so a backup that lost a byte is never loaded silently.
func TestRDBChecksumIsChecked(t *testing.T) {
	var out bytes.Buffer
	snap := append(snapshotHeader(1, 0), recEnd)
	if _, err := writeRDB(&out, bytes.NewReader(snap), rdbOptions{data: true, functions: true, redisVersion: "7.0.15"}); err != nil {
		t.Fatal(err)
	}
	b := out.Bytes()
	b[12] ^= 0xff // inside the first aux field
	path := filepath.Join(t.TempDir(), "bad.rdb")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := startThrowawayErr(t, path); err == nil {
		t.Fatal("redis-server loaded an RDB file with a wrong checksum")
	}
}

// startThrowaway starts a plain redis-server (loading rdb when not "")
// and connects to it.
func startThrowaway(t *testing.T, rdb string) *redisconn.Conn {
	t.Helper()
	c, err := startThrowawayErr(t, rdb)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func startThrowawayErr(t *testing.T, rdb string) (*redisconn.Conn, error) {
	path, err := child.FindServer("")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sock := child.SocketPath(dir)
	args := child.Args(sock, dir)
	if rdb != "" {
		args = append(args, "--dir", filepath.Dir(rdb), "--dbfilename", filepath.Base(rdb))
	}
	p, err := child.Start(path, dir, sock, args, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, err
	}
	t.Cleanup(p.Kill)
	c, err := p.Dial()
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}
