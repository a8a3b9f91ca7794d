package main

import (
	"encoding/binary"
	"errors"
)

// Log entry kinds. Every entry carries the leader's time T in milliseconds;
// apply never reads the local clock.
const (
	entryCommands byte = 1 // a batch of client commands
	entrySweep    byte = 2 // delete the listed keys whose deadline is <= T
)

// entryCmd is one client command inside an entry. Commands of a transaction
// are sent as one command whose Args is MULTI and whose Sub holds the queue.
type entryCmd struct {
	DB   int
	Args [][]byte
	// Sub holds the queued commands of a MULTI/EXEC block (Args is then
	// [EXEC]); all of them run in one child transaction.
	Sub []entryCmd
}

// entry is the decoded form of a Raft log entry.
type entry struct {
	Kind byte
	T    int64 // leader time in ms, never decreasing
	Cmds []entryCmd
	Keys []dbKey // for entrySweep
}

// dbKey names a key in one database.
type dbKey struct {
	DB  int
	Key string
}

// errBadEntry reports an entry that cannot be decoded.
var errBadEntry = errors.New("malformed log entry")

// encodeEntry serialises e compactly: kind, T, then the commands or keys,
// lengths as uvarints.
func encodeEntry(e *entry) []byte {
	size := 16
	for i := range e.Cmds {
		size += cmdSize(&e.Cmds[i])
	}
	for _, k := range e.Keys {
		size += 12 + len(k.Key)
	}
	b := make([]byte, 0, size)
	b = append(b, e.Kind)
	b = binary.AppendUvarint(b, uint64(e.T))
	switch e.Kind {
	case entryCommands:
		b = binary.AppendUvarint(b, uint64(len(e.Cmds)))
		for i := range e.Cmds {
			b = appendCmd(b, &e.Cmds[i])
		}
	case entrySweep:
		b = binary.AppendUvarint(b, uint64(len(e.Keys)))
		for _, k := range e.Keys {
			b = binary.AppendUvarint(b, uint64(k.DB))
			b = binary.AppendUvarint(b, uint64(len(k.Key)))
			b = append(b, k.Key...)
		}
	}
	return b
}

func cmdSize(c *entryCmd) int {
	n := 12
	for _, a := range c.Args {
		n += 5 + len(a)
	}
	for i := range c.Sub {
		n += cmdSize(&c.Sub[i])
	}
	return n
}

func appendCmd(b []byte, c *entryCmd) []byte {
	b = binary.AppendUvarint(b, uint64(c.DB))
	b = binary.AppendUvarint(b, uint64(len(c.Args)))
	for _, a := range c.Args {
		b = binary.AppendUvarint(b, uint64(len(a)))
		b = append(b, a...)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Sub)))
	for i := range c.Sub {
		b = appendCmd(b, &c.Sub[i])
	}
	return b
}

// entryDecoder walks an encoded entry.
type entryDecoder struct {
	b   []byte
	err error
}

func (d *entryDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errBadEntry
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *entryDecoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || uint64(len(d.b)) < n {
		d.err = errBadEntry
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *entryDecoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) { // every element takes at least one byte
		d.err = errBadEntry
		return 0
	}
	return int(n)
}

// cmd decodes one command; only top-level commands may hold a transaction.
func (d *entryDecoder) cmd(top bool) entryCmd {
	var c entryCmd
	c.DB = int(d.uvarint())
	n := d.count()
	c.Args = make([][]byte, n)
	for i := 0; i < n && d.err == nil; i++ {
		c.Args[i] = d.bytes()
	}
	if ns := d.count(); ns > 0 {
		if !top {
			d.err = errBadEntry
			return c
		}
		c.Sub = make([]entryCmd, ns)
		for i := 0; i < ns && d.err == nil; i++ {
			c.Sub[i] = d.cmd(false)
		}
	}
	return c
}

// decodeEntry parses data; the returned slices alias data.
func decodeEntry(data []byte) (*entry, error) {
	if len(data) == 0 {
		return nil, errBadEntry
	}
	d := &entryDecoder{b: data[1:]}
	e := &entry{Kind: data[0]}
	e.T = int64(d.uvarint())
	switch e.Kind {
	case entryCommands:
		n := d.count()
		e.Cmds = make([]entryCmd, n)
		for i := 0; i < n && d.err == nil; i++ {
			e.Cmds[i] = d.cmd(true)
		}
	case entrySweep:
		n := d.count()
		e.Keys = make([]dbKey, n)
		for i := 0; i < n && d.err == nil; i++ {
			e.Keys[i].DB = int(d.uvarint())
			e.Keys[i].Key = string(d.bytes())
		}
	default:
		return nil, errBadEntry
	}
	if d.err != nil {
		return nil, d.err
	}
	return e, nil
}
