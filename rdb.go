package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"strconv"
)

// This file turns a snapshot stream (snapshot.go) into an RDB file that a
// plain redis-server loads: the backups of redis-cli --rdb, RAFTBACKUP and
// /backup. A snapshot already holds every key as a DUMP payload, which is
// an RDB value with a two-byte RDB version and a CRC64 after it, and its
// real (unshifted) deadline; FUNCTION DUMP's payload is the RDB's function
// section with the same trailer. So an RDB file is written from them
// without a redis-server and without parsing any value:
//
//	"REDIS" + 4-digit RDB version
//	aux fields        0xFA string(name) string(value)
//	functions         the FUNCTION DUMP payload without its trailer
//	per database      0xFE length(db), then per key:
//	                    [0xFC int64 LE deadline in ms] type string(key) value
//	end               0xFF, CRC64 (Jones, reflected, as Redis) of all before, LE
//
// A string is length(n) then n bytes; a length takes 1, 2, 5 or 9 bytes
// (rdbSaveLen). Scripts, replicated CONFIG values and WATCHes have no
// place in an RDB and are left out, as Redis 7 leaves scripts out.

// RDB opcodes (Redis's rdb.h).
const (
	rdbOpAux          = 0xFA
	rdbOpSelectDB     = 0xFE
	rdbOpExpireTimeMS = 0xFC
	rdbOpEOF          = 0xFF
)

// dumpTrailer is the RDB version and CRC64 at the end of a DUMP payload.
const dumpTrailer = 10

// defaultRDBVersion is used when a snapshot carries no payload to read the
// version from (Redis 7.0 writes version 10).
const defaultRDBVersion = 10

// rdbCRCTable is Redis's CRC64 (Jones polynomial, reflected).
var rdbCRCTable = crc64.MakeTable(0x95ac9329ac4bc9b5)

// rdbCRC extends Redis's CRC64 (initial value 0, no final inversion) by p;
// hash/crc64 inverts before and after, which the two inversions here undo.
func rdbCRC(crc uint64, p []byte) uint64 {
	return ^crc64.Update(^crc, rdbCRCTable, p)
}

// rdbOptions says what a backup holds and how it is labelled.
type rdbOptions struct {
	data, functions bool   // REPLCONF rdb-filter-only may leave either out
	redisVersion    string // aux field redis-ver: the child's version
}

// rdbStats describes a written RDB file.
type rdbStats struct {
	index uint64 // the log position the data is from
	keys  int64
	bytes int64
}

// rdbWriter writes an RDB file and keeps its running CRC64.
type rdbWriter struct {
	w       *bufio.Writer
	crc     uint64
	n       int64
	started bool
	db      int
	scratch [binary.MaxVarintLen64 + 1]byte
}

// Write writes p and extends the checksum.
func (r *rdbWriter) Write(p []byte) (int, error) {
	r.crc = rdbCRC(r.crc, p)
	r.n += int64(len(p))
	return r.w.Write(p)
}

func (r *rdbWriter) byte(b byte) { r.Write([]byte{b}) }

// length writes n in RDB's length encoding.
func (r *rdbWriter) length(n uint64) {
	b := r.scratch[:0]
	switch {
	case n < 1<<6:
		b = append(b, byte(n))
	case n < 1<<14:
		b = append(b, 0x40|byte(n>>8), byte(n))
	case n <= 0xFFFFFFFF:
		b = binary.BigEndian.AppendUint32(append(b, 0x80), uint32(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, 0x81), n)
	}
	r.Write(b)
}

// str writes an RDB string (raw encoding).
func (r *rdbWriter) str(s []byte) {
	r.length(uint64(len(s)))
	r.Write(s)
}

// header writes the magic and the aux fields, once.
func (r *rdbWriter) header(version int, opts rdbOptions, index uint64, lastT int64) {
	if r.started {
		return
	}
	r.started = true
	fmt.Fprintf(r, "REDIS%04d", version)
	aux := [][2]string{
		{"redis-ver", opts.redisVersion},
		{"redis-bits", "64"},
		{"ctime", strconv.FormatInt(lastT/1000, 10)},
		{"aof-base", "0"},
		{"redraft-index", strconv.FormatUint(index, 10)},
		{"redraft-time-ms", strconv.FormatInt(lastT, 10)},
	}
	for _, kv := range aux {
		if kv[1] == "" {
			continue
		}
		r.byte(rdbOpAux)
		r.str([]byte(kv[0]))
		r.str([]byte(kv[1]))
	}
}

// payloadVersion is the RDB version in a DUMP or FUNCTION DUMP payload's
// trailer.
func payloadVersion(p []byte) (int, error) {
	if len(p) < dumpTrailer {
		return 0, errors.New("payload shorter than its trailer")
	}
	return int(binary.LittleEndian.Uint16(p[len(p)-dumpTrailer:])), nil
}

// writeRDB converts the snapshot stream snap into an RDB file on dst.
func writeRDB(dst io.Writer, snap io.Reader, opts rdbOptions) (rdbStats, error) {
	var st rdbStats
	sr, err := newSnapshotReader(snap)
	if err != nil {
		return st, err
	}
	st.index = sr.applied
	r := &rdbWriter{w: bufio.NewWriterSize(dst, 256<<10), db: -1}
	for {
		rec, err := sr.next()
		if err != nil {
			return st, err
		}
		switch rec.kind {
		case recFunctions:
			err = r.functions(rec.body, opts, sr)
		case recKey:
			if err = r.key(rec, opts, sr); err == nil && opts.data {
				st.keys++
			}
		case recEnd:
			r.header(defaultRDBVersion, opts, sr.applied, sr.lastT)
			r.byte(rdbOpEOF)
			var sum [8]byte
			binary.LittleEndian.PutUint64(sum[:], r.crc)
			r.w.Write(sum[:])
			st.bytes = r.n + 8
			if err := r.w.Flush(); err != nil {
				return st, fmt.Errorf("write RDB: %w", err)
			}
			return st, nil
		}
		if err != nil {
			return st, err
		}
	}
}

// functions writes the function libraries of a FUNCTION DUMP payload.
func (r *rdbWriter) functions(payload []byte, opts rdbOptions, sr *snapshotReader) error {
	version, err := payloadVersion(payload)
	if err != nil {
		return fmt.Errorf("functions record: %w", err)
	}
	r.header(version, opts, sr.applied, sr.lastT)
	if opts.functions {
		r.Write(payload[:len(payload)-dumpTrailer])
	}
	return nil
}

// key writes one key: its database switch, deadline, type, name and value.
func (r *rdbWriter) key(rec snapshotRecord, opts rdbOptions, sr *snapshotReader) error {
	if len(rec.body) < dumpTrailer+1 {
		return fmt.Errorf("key %q: DUMP payload of %d bytes", rec.name, len(rec.body))
	}
	version, _ := payloadVersion(rec.body)
	r.header(version, opts, sr.applied, sr.lastT)
	if !opts.data {
		return nil
	}
	if rec.db != r.db {
		r.byte(rdbOpSelectDB)
		r.length(uint64(rec.db))
		r.db = rec.db
	}
	if rec.deadline != -1 {
		var at [9]byte
		at[0] = rdbOpExpireTimeMS
		binary.LittleEndian.PutUint64(at[1:], uint64(max(rec.deadline, 0)))
		r.Write(at[:])
	}
	r.byte(rec.body[0])
	r.str(rec.name)
	r.Write(rec.body[1 : len(rec.body)-dumpTrailer])
	return nil
}
