package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"strings"
	"testing"

	"github.com/redraft/redraft/internal/resp"
)

// equalCommands compares commands treating nil and empty slices alike.
func equalCommands(a, b []entryCmd) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].DB != b[i].DB || len(a[i].Args) != len(b[i].Args) || protoByte(a[i].Proto) != protoByte(b[i].Proto) {
			return false
		}
		for j := range a[i].Args {
			if !bytes.Equal(a[i].Args[j], b[i].Args[j]) {
				return false
			}
		}
		if !equalCommands(a[i].Sub, b[i].Sub) {
			return false
		}
	}
	return true
}

func equalEntries(a, b *entry) bool {
	if a.Kind != b.Kind || a.T != b.T || a.A != b.A || a.Stop != b.Stop || len(a.Keys) != len(b.Keys) {
		return false
	}
	for i := range a.Keys {
		if a.Keys[i] != b.Keys[i] {
			return false
		}
	}
	return equalCommands(a.Cmds, b.Cmds)
}

func sampleEntries() map[string]*entry {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	bin := make([]byte, 256)
	for i := range bin {
		bin[i] = byte(i)
	}
	return map[string]*entry{
		"single set": {Kind: entryCommands, T: 1_700_000_000_123, Cmds: []entryCmd{
			{DB: 0, Args: argv("SET", "k", "v")},
		}},
		"no commands": {Kind: entryCommands, T: 5},
		"zero T":      {Kind: entryCommands, T: 0, Cmds: []entryCmd{{Args: argv("PING")}}},
		"max T":       {Kind: entryCommands, T: math.MaxInt64, Cmds: []entryCmd{{Args: argv("PING")}}},
		"negative T":  {Kind: entryCommands, T: -1, Cmds: []entryCmd{{Args: argv("PING")}}},
		"empty args": {Kind: entryCommands, T: 1, Cmds: []entryCmd{
			{DB: 3},
			{DB: 4, Args: [][]byte{{}, {}, []byte("x"), {}}},
		}},
		"many dbs": {Kind: entryCommands, T: 1, Cmds: []entryCmd{
			{DB: 15, Args: argv("GET", "a")}, {DB: 1 << 20, Args: argv("GET", "b")}, {DB: 127, Args: argv("x")}, {DB: 128, Args: argv("y")},
		}},
		"big and binary args": {Kind: entryCommands, T: 42, Cmds: []entryCmd{
			{Args: [][]byte{[]byte("SET"), bin, big}},
			{Args: [][]byte{[]byte("APPEND"), []byte("k"), big[:300]}},
		}},
		"multi": {Kind: entryCommands, T: 99, Cmds: []entryCmd{
			{DB: 0, Args: argv("SET", "before", "1")},
			{DB: 2, Args: argv("EXEC"), Sub: []entryCmd{
				{DB: 2, Args: argv("SET", "a", "1")},
				{DB: 2, Args: argv("INCR", "a")},
				{DB: 5, Args: argv("SELECT", "5")},
				{DB: 5, Args: [][]byte{}},
			}},
			{DB: 0, Args: argv("GET", "after")},
		}},
		"sweep": {Kind: entrySweep, T: 1_700_000_000_000, Keys: []dbKey{
			{0, "a"}, {1, "b"}, {200, ""}, {3, string(bin)}, {0, strings.Repeat("k", 1000)},
		}},
		"empty sweep":   {Kind: entrySweep, T: 1},
		"applied index": {Kind: entryCommands, T: 7, A: 1 << 40, Cmds: []entryCmd{{Args: argv("EVAL", "return 1", "0")}}},
		"v1 commands":   {Kind: entryCommandsV1, T: 7, Cmds: []entryCmd{{Args: argv("SET", "k", "v")}}},
		"v1 sweep":      {Kind: entrySweepV1, T: 7, Keys: []dbKey{{1, "a"}}},
		"mark":          {Kind: entryMark, T: 8, A: 12},
		"stop":          {Kind: entryStop, T: 9, A: 11, Stop: scriptStop{Ref: scriptRef{Index: 12, Pos: 3}, Reason: stopAuto}},
	}
}

func TestEntryRoundTrip(t *testing.T) {
	for name, e := range sampleEntries() {
		t.Run(name, func(t *testing.T) {
			data := encodeEntry(e)
			if data[0] != e.Kind {
				t.Fatalf("first byte %d, want kind %d", data[0], e.Kind)
			}
			got, err := decodeEntry(data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !equalEntries(e, got) {
				t.Fatalf("round trip mismatch:\n in: %+v\nout: %+v", e, got)
			}
			// Encoding is deterministic: every node must produce the same bytes.
			if again := encodeEntry(got); !bytes.Equal(again, data) {
				t.Fatalf("re-encoding differs")
			}
		})
	}
}

// resp3Entry holds commands of RESP3 and RESP2 clients, and a RESP3
// client's transaction.
func resp3Entry() *entry {
	return &entry{Kind: entryCommands, T: 11, A: 3, Cmds: []entryCmd{
		{DB: 1, Args: argv("HGETALL", "h"), Proto: resp.Proto3},
		{DB: 0, Args: argv("SET", "k", "v")},
		{DB: 2, Args: argv("EXEC"), Proto: resp.Proto3, Sub: []entryCmd{
			{DB: 2, Args: argv("ZSCORE", "z", "m"), Proto: resp.Proto3},
			{DB: 2, Args: argv("HELLO", "2"), Proto: resp.Proto2},
			{DB: 2, Args: argv("GET", "k"), Proto: resp.Proto2},
		}},
	}}
}

// An entry with a RESP3 client's command carries every command's protocol
// (kind 7, decoded as kind 3); one without is written exactly as before.
func TestEntryRoundTripRESP3(t *testing.T) {
	e := resp3Entry()
	data := encodeEntry(e)
	if data[0] != entryCommandsP {
		t.Fatalf("first byte %d, want %d", data[0], entryCommandsP)
	}
	got, err := decodeEntry(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != entryCommands || !equalEntries(e, got) {
		t.Fatalf("round trip mismatch:\n in: %+v\nout: %+v", e, got)
	}
	if got.Cmds[1].Proto != resp.Proto2 || got.Cmds[2].Sub[0].Proto != resp.Proto3 {
		t.Errorf("protocols: %+v", got.Cmds)
	}
	if again := encodeEntry(got); !bytes.Equal(again, data) {
		t.Errorf("re-encoding differs")
	}
	plain := &entry{Kind: entryCommands, T: 11, Cmds: []entryCmd{{Args: argv("SET", "k", "v")}}}
	explicit := &entry{Kind: entryCommands, T: 11, Cmds: []entryCmd{{Args: argv("SET", "k", "v"), Proto: resp.Proto2}}}
	if a, b := encodeEntry(plain), encodeEntry(explicit); !bytes.Equal(a, b) || a[0] != entryCommands {
		t.Errorf("RESP2 commands: %q and %q", a, b)
	}
	for _, bad := range [][]byte{{entryCommandsP, 1, 0, 1, 4}, {entryCommandsP, 1, 0, 1}} {
		if _, err := decodeEntry(bad); err == nil {
			t.Errorf("decodeEntry(%v) accepted a bad protocol byte", bad)
		}
	}
}

func TestEntryRoundTripRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var randCmd func(depth int) entryCmd
	randCmd = func(depth int) entryCmd {
		c := entryCmd{DB: rng.Intn(300)}
		for i, n := 0, rng.Intn(6); i < n; i++ {
			a := make([]byte, rng.Intn(200))
			rng.Read(a)
			c.Args = append(c.Args, a)
		}
		if depth < 1 && rng.Intn(4) == 0 {
			for i, n := 0, rng.Intn(4); i < n; i++ {
				c.Sub = append(c.Sub, randCmd(depth+1))
			}
		}
		return c
	}
	for i := 0; i < 500; i++ {
		e := &entry{Kind: entryCommands, T: rng.Int63()}
		for j, n := 0, rng.Intn(10); j < n; j++ {
			e.Cmds = append(e.Cmds, randCmd(0))
		}
		got, err := decodeEntry(encodeEntry(e))
		if err != nil || !equalEntries(e, got) {
			t.Fatalf("iteration %d: err=%v\n in: %+v\nout: %+v", i, err, e, got)
		}
	}
}

// The encoder's size estimate is meant to avoid regrowing the buffer.
func TestEncodeEntrySingleAllocation(t *testing.T) {
	e := benchEntry(64)
	if n := testing.AllocsPerRun(20, func() { _ = encodeEntry(e) }); n > 1 {
		t.Errorf("encodeEntry allocates %.0f times, want 1", n)
	}
}

func TestDecodeEntryAliasesButIsCapped(t *testing.T) {
	data := encodeEntry(&entry{Kind: entryCommands, T: 1, Cmds: []entryCmd{{Args: argv("SET", "k", "v")}, {Args: argv("GET", "k")}}})
	e, err := decodeEntry(data)
	if err != nil {
		t.Fatal(err)
	}
	// Appending to a decoded argument must not overwrite the next one.
	_ = append(e.Cmds[0].Args[1], 'X', 'X', 'X', 'X', 'X', 'X')
	if string(e.Cmds[0].Args[2]) != "v" || string(e.Cmds[1].Args[0]) != "GET" {
		t.Fatalf("append through a decoded arg clobbered the entry: %q %q", e.Cmds[0].Args[2], e.Cmds[1].Args[0])
	}
}

func TestDecodeEntryTruncated(t *testing.T) {
	for name, e := range sampleEntries() {
		if name == "big and binary args" {
			continue // covered below with fewer cut points
		}
		data := encodeEntry(e)
		for n := 0; n < len(data); n++ {
			if _, err := decodeEntry(data[:n]); err == nil {
				t.Errorf("%s: prefix of %d/%d bytes decoded without error", name, n, len(data))
			}
		}
	}
	data := encodeEntry(sampleEntries()["big and binary args"])
	for _, n := range []int{0, 1, 2, 10, 100, len(data) / 2, len(data) - 3, len(data) - 1} {
		if _, err := decodeEntry(data[:n]); err == nil {
			t.Errorf("big entry: prefix of %d bytes decoded without error", n)
		}
	}
}

func TestDecodeEntryGarbage(t *testing.T) {
	huge := binary.AppendUvarint(nil, math.MaxUint64)
	cases := map[string][]byte{
		"nil":               nil,
		"empty":             {},
		"unknown kind":      {9, 1, 0},
		"kind zero":         {0, 0, 0},
		"kind only":         {entryCommandsV1},
		"bad T varint":      {entryCommandsV1, 0x80, 0x80},
		"overlong varint":   append([]byte{entryCommandsV1}, bytes.Repeat([]byte{0xff}, 11)...),
		"count > bytes":     {entryCommandsV1, 1, 5, 0},
		"huge count":        append([]byte{entryCommandsV1, 1}, huge...),
		"huge arg count":    append([]byte{entryCommandsV1, 1, 1, 0}, huge...),
		"huge arg length":   append([]byte{entryCommandsV1, 1, 1, 0, 1}, append(huge, 'x')...),
		"arg length > rest": {entryCommandsV1, 1, 1, 0, 1, 10, 'a', 'b'},
		"missing sub count": {entryCommandsV1, 1, 1, 0, 1, 1, 'a'},
		"sub count > rest":  {entryCommandsV1, 1, 1, 0, 0, 3, 0},
		"sweep key > rest":  {entrySweepV1, 1, 1, 0, 4, 'a'},
		"sweep huge count":  append([]byte{entrySweepV1, 1}, huge...),
		"sweep missing db":  {entrySweepV1, 1, 1},
		"v2 missing A":      {entryCommands, 1},
		"stop missing ref":  {entryStop, 1, 1},
		"stop missing why":  {entryStop, 1, 1, 5, 0},
		"stop huge pos":     append([]byte{entryStop, 1, 1, 5}, huge...),
	}
	for name, data := range cases {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: decodeEntry panicked: %v", name, r)
				}
			}()
			if e, err := decodeEntry(data); err == nil {
				t.Errorf("%s: decoded %+v without error", name, e)
			}
		}()
	}
}

// nestedBomb builds a small entry whose commands are nested depth levels
// deep, each declaring as many subcommands as bytes remain.
func nestedBomb(size int) []byte {
	b := []byte{entryCommandsV1, 0, 1}
	for len(b)+4 <= size {
		rest := size - len(b) - 4
		b = append(b, 0, 0) // DB 0, no args
		b = binary.AppendUvarint(b, uint64(rest))
	}
	return append(b, make([]byte, size-len(b))...)
}

// count bounds every allocation by the input size ("every element takes at
// least one byte"), but nested subcommands multiply it: each level allocates
// a []entryCmd as long as the remaining input before the decoder fails.
func TestDecodeEntryAllocationBounded(t *testing.T) {
	data := nestedBomb(2000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := decodeEntry(data)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("bomb decoded without error")
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d input bytes -> %d bytes allocated", len(data), alloc)
	if alloc > 1000*uint64(len(data)) {
		t.Errorf("decodeEntry allocates %d bytes for a %d-byte malformed entry", alloc, len(data))
	}
}

func FuzzDecodeEntry(f *testing.F) {
	for _, e := range sampleEntries() {
		data := encodeEntry(e)
		if len(data) < 4096 {
			f.Add(data)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{entryCommands})
	f.Add([]byte{entrySweep, 0x80})
	f.Add([]byte{entryCommands, 1, 1, 0, 1, 10, 'a', 'b'})
	f.Add([]byte{3, 0, 0})
	f.Add(encodeEntry(resp3Entry()))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<12 { // nested garbage allocates quadratically (see TestDecodeEntryAllocationBounded)
			return
		}
		e, err := decodeEntry(data)
		if err != nil {
			if e != nil {
				t.Fatalf("non-nil entry with error %v", err)
			}
			return
		}
		if e.Kind < entryCommandsV1 || e.Kind > entryStop {
			t.Fatalf("decoded unknown kind %d", e.Kind)
		}
		// Whatever decodes must survive an encode/decode round trip.
		again, err := decodeEntry(encodeEntry(e))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !equalEntries(e, again) {
			t.Fatalf("round trip mismatch:\n%+v\n%+v", e, again)
		}
	})
}

// benchEntry is a batch of n "SET key value" commands.
func benchEntry(n int) *entry {
	e := &entry{Kind: entryCommands, T: 1_700_000_000_000}
	for i := 0; i < n; i++ {
		e.Cmds = append(e.Cmds, entryCmd{Args: argv("SET", fmt.Sprintf("key:%06d", i), "value-"+strings.Repeat("x", 10))})
	}
	return e
}

func BenchmarkEncodeEntry(b *testing.B) {
	e := benchEntry(64)
	b.SetBytes(int64(len(encodeEntry(e))))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = encodeEntry(e)
	}
}

func BenchmarkDecodeEntry(b *testing.B) {
	data := encodeEntry(benchEntry(64))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := decodeEntry(data); err != nil {
			b.Fatal(err)
		}
	}
}

// Only a top-level command may carry a transaction: an entry with a
// transaction nested inside a transaction is malformed.
func TestDecodeEntryRejectsNestedTransactions(t *testing.T) {
	e := &entry{Kind: entryCommands, T: 7, Cmds: []entryCmd{
		{Args: argv("EXEC"), Sub: []entryCmd{
			{Args: argv("a"), Sub: []entryCmd{{DB: 9, Args: argv("c")}}},
		}},
	}}
	if _, err := decodeEntry(encodeEntry(e)); err == nil {
		t.Fatal("nested transaction decoded without error")
	}
}
