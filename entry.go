package main

import (
	"encoding/binary"
	"errors"

	"github.com/redraft/redraft/internal/resp"
)

// Log entry kinds. Every entry carries the leader's time T in milliseconds
// (apply never reads the local clock) and, since kind 3, the index the
// proposing leader had applied when it proposed the entry (A), which
// decides the outcome of long scripts (docs/DESIGN.md, "A script that never
// ends").
const (
	entryCommandsV1 byte = 1 // a batch of client commands (without A; still read)
	entrySweepV1    byte = 2 // a sweep (without A; still read)
	entryCommands   byte = 3 // a batch of client commands
	entrySweep      byte = 4 // delete the listed keys whose deadline is <= T
	entryMark       byte = 5 // nothing but T and A: decides earlier scripts
	entryStop       byte = 6 // stop the script of command Pos of entry Index
	// entryCommandsP is entryCommands whose commands each start with the
	// protocol (2 or 3) of the client that sent them, so that every node
	// runs a RESP3 client's command in RESP3. It is written only when some
	// command needs RESP3 and decodes to Kind entryCommands.
	entryCommandsP byte = 7
)

// Why a script was stopped (entryStop).
const (
	stopAuto byte = 1 // it ran longer than busy-reply-threshold
	stopUser byte = 2 // a client sent SCRIPT KILL or FUNCTION KILL
)

// entryCmd is one client command inside an entry. Commands of a transaction
// are sent as one command whose Args is MULTI and whose Sub holds the queue.
type entryCmd struct {
	DB   int
	Args [][]byte
	// Sub holds the queued commands of a MULTI/EXEC block (Args is then
	// [EXEC]); all of them run in one child transaction.
	Sub []entryCmd
	// Proto is the protocol the child answers the command in: RESP3 for a
	// client that sent HELLO 3 (zero means RESP2). It never changes data,
	// only reply shapes, and it is in the log so every node does the same.
	Proto resp.Proto
}

// entry is the decoded form of a Raft log entry.
type entry struct {
	Kind byte
	T    int64  // leader time in ms, never decreasing
	A    uint64 // the index the proposing leader had applied
	Cmds []entryCmd
	Keys []dbKey    // for entrySweep
	Stop scriptStop // for entryStop
}

// scriptStop names the script command an entryStop stops.
type scriptStop struct {
	Ref    scriptRef
	Reason byte
}

// maxEntryCommands bounds a command position in an entry.
const maxEntryCommands = 1 << 24

// scriptRef names command Pos of log entry Index.
type scriptRef struct {
	Index uint64
	Pos   int
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
	kind := e.Kind
	withProto := kind == entryCommands && anyResp3(e.Cmds)
	if withProto {
		kind = entryCommandsP
	}
	b = append(b, kind)
	b = binary.AppendUvarint(b, uint64(e.T))
	if e.Kind >= entryCommands {
		b = binary.AppendUvarint(b, e.A)
	}
	switch e.Kind {
	case entryStop:
		b = binary.AppendUvarint(b, e.Stop.Ref.Index)
		b = binary.AppendUvarint(b, uint64(e.Stop.Ref.Pos))
		b = append(b, e.Stop.Reason)
	case entryCommands, entryCommandsV1:
		b = binary.AppendUvarint(b, uint64(len(e.Cmds)))
		for i := range e.Cmds {
			b = appendCmd(b, &e.Cmds[i], withProto)
		}
	case entrySweep, entrySweepV1:
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

// anyResp3 reports whether a command (or a queued one) answers in RESP3.
func anyResp3(cmds []entryCmd) bool {
	for i := range cmds {
		if cmds[i].Proto >= resp.Proto3 || anyResp3(cmds[i].Sub) {
			return true
		}
	}
	return false
}

// appendCmd encodes c, with its protocol first when withProto is set.
func appendCmd(b []byte, c *entryCmd, withProto bool) []byte {
	if withProto {
		b = append(b, protoByte(c.Proto))
	}
	b = binary.AppendUvarint(b, uint64(c.DB))
	b = binary.AppendUvarint(b, uint64(len(c.Args)))
	for _, a := range c.Args {
		b = binary.AppendUvarint(b, uint64(len(a)))
		b = append(b, a...)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Sub)))
	for i := range c.Sub {
		b = appendCmd(b, &c.Sub[i], withProto)
	}
	return b
}

// protoByte is p as written in an entry: 3 for RESP3, 2 for anything else.
func protoByte(p resp.Proto) byte {
	if p >= resp.Proto3 {
		return 3
	}
	return 2
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
// withProto: the command starts with its protocol byte (entryCommandsP).
func (d *entryDecoder) cmd(top, withProto bool) entryCmd {
	var c entryCmd
	if withProto {
		c.Proto = d.proto()
	}
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
			c.Sub[i] = d.cmd(false, withProto)
		}
	}
	return c
}

// proto decodes a protocol byte: 2 or 3.
func (d *entryDecoder) proto() resp.Proto {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 || (d.b[0] != 2 && d.b[0] != 3) {
		d.err = errBadEntry
		return 0
	}
	p := resp.Proto(d.b[0])
	d.b = d.b[1:]
	return p
}

// decodeEntry parses data; the returned slices alias data.
func decodeEntry(data []byte) (*entry, error) {
	if len(data) == 0 {
		return nil, errBadEntry
	}
	d := &entryDecoder{b: data[1:]}
	e := &entry{Kind: data[0]}
	e.T = int64(d.uvarint())
	if e.Kind >= entryCommands {
		e.A = d.uvarint()
	}
	switch e.Kind {
	case entryCommands, entryCommandsV1, entryCommandsP:
		withProto := e.Kind == entryCommandsP
		if withProto {
			e.Kind = entryCommands
		}
		n := d.count()
		e.Cmds = make([]entryCmd, n)
		for i := 0; i < n && d.err == nil; i++ {
			e.Cmds[i] = d.cmd(true, withProto)
		}
	case entrySweep, entrySweepV1:
		n := d.count()
		e.Keys = make([]dbKey, n)
		for i := 0; i < n && d.err == nil; i++ {
			e.Keys[i].DB = int(d.uvarint())
			e.Keys[i].Key = string(d.bytes())
		}
	case entryMark:
	case entryStop:
		e.Stop.Ref.Index = d.uvarint()
		pos := d.uvarint()
		if pos > maxEntryCommands {
			return nil, errBadEntry
		}
		e.Stop.Ref.Pos = int(pos)
		if len(d.b) < 1 {
			return nil, errBadEntry
		}
		e.Stop.Reason = d.b[0]
		d.b = d.b[1:]
	default:
		return nil, errBadEntry
	}
	if d.err != nil {
		return nil, d.err
	}
	return e, nil
}

// isCommands reports whether e carries client commands.
func (e *entry) isCommands() bool { return e.Kind == entryCommands || e.Kind == entryCommandsV1 }

// isSweep reports whether e is a sweep of due keys.
func (e *entry) isSweep() bool { return e.Kind == entrySweep || e.Kind == entrySweepV1 }

// decides reports whether e settles the outcome of a script started by
// entry index: e was proposed by a leader that had applied it.
func (e *entry) decides(index uint64) bool { return e.Kind >= entryCommands && e.A >= index }
