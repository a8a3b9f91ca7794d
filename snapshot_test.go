package main

import (
	"bufio"
	"bytes"
	"testing"
)

// encodedSnapshot builds a small valid snapshot stream with one record of
// every kind.
func encodedSnapshot() []byte {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	w.WriteString(snapshotMagic)
	writeUvarint(w, 42)
	writeUvarint(w, 1_700_000_000_000)
	w.WriteByte(recConfig)
	writeBytes(w, []byte("notify-keyspace-events"))
	writeBytes(w, []byte("KEA"))
	w.WriteByte(recWatch)
	writeBytes(w, []byte("n1/abc/7"))
	writeUvarint(w, 1_700_000_000_000)
	writeBool(w, false)
	writeUvarint(w, 1)
	writeUvarint(w, 3)
	writeBytes(w, []byte("wk"))
	w.WriteByte(recScript)
	writeBytes(w, []byte("return 1"))
	w.WriteByte(recKey)
	writeUvarint(w, 2)
	writeBytes(w, []byte("k"))
	writeBytes(w, []byte("\x00\x01v\x0a\x00payload"))
	writeVarint(w, 1_700_000_100_000)
	w.WriteByte(recKey)
	writeUvarint(w, 0)
	writeBytes(w, []byte("nottl"))
	writeBytes(w, []byte("x"))
	writeVarint(w, -1)
	w.WriteByte(recEnd)
	w.Flush()
	return buf.Bytes()
}

func TestSnapshotReaderRoundTrip(t *testing.T) {
	sr, err := newSnapshotReader(bytes.NewReader(encodedSnapshot()))
	if err != nil {
		t.Fatal(err)
	}
	if sr.applied != 42 || sr.lastT != 1_700_000_000_000 {
		t.Errorf("header: %d %d", sr.applied, sr.lastT)
	}
	var kinds []byte
	for {
		rec, err := sr.next()
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, rec.kind)
		switch rec.kind {
		case recKey:
			if string(rec.name) == "k" && (rec.db != 2 || rec.deadline != 1_700_000_100_000) {
				t.Errorf("key record %+v", rec)
			}
		case recWatch:
			if rec.watch.id != "n1/abc/7" || len(rec.watch.keys) != 1 || rec.watch.keys[0] != (dbKey{3, "wk"}) {
				t.Errorf("watch record %+v", rec.watch)
			}
		}
		if rec.kind == recEnd {
			break
		}
	}
	if want := []byte{recConfig, recWatch, recScript, recKey, recKey, recEnd}; !bytes.Equal(kinds, want) {
		t.Errorf("records %v, want %v", kinds, want)
	}
}

// Every prefix of a valid snapshot is an error, never a panic or a record
// read from missing bytes.
func TestSnapshotReaderTruncated(t *testing.T) {
	full := encodedSnapshot()
	for n := 0; n < len(full); n++ {
		sr, err := newSnapshotReader(bytes.NewReader(full[:n]))
		if err != nil {
			continue
		}
		for {
			rec, err := sr.next()
			if err != nil {
				break
			}
			if rec.kind == recEnd {
				t.Fatalf("a snapshot cut at %d of %d bytes reads to its end", n, len(full))
			}
		}
	}
}

// FuzzSnapshotReader: any bytes decode to records or an error, never a
// panic, and allocate no more than what they contain (a field announcing
// 512 MB in a short input must not allocate it).
func FuzzSnapshotReader(f *testing.F) {
	f.Add(encodedSnapshot())
	f.Add([]byte(snapshotMagic + "\x01\x01\x01\xff\xff\xff\xff\x01"))
	f.Add([]byte(snapshotMagic + "\x00\x00\x05\x00\x80\x80\x80\x80\x02"))
	f.Fuzz(func(t *testing.T, in []byte) {
		sr, err := newSnapshotReader(bytes.NewReader(in))
		if err != nil {
			return
		}
		for i := 0; i < 1000; i++ {
			rec, err := sr.next()
			if err != nil || rec.kind == recEnd {
				return
			}
			if len(rec.name)+len(rec.body) > len(in) {
				t.Fatalf("a record holds more bytes than the input")
			}
		}
	})
}
