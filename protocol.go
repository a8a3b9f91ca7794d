package main

import (
	"strconv"
	"strings"

	"github.com/redraft/redraft/internal/resp"
)

// The protocol a child answers in (docs/DESIGN.md, "RESP3"). Replies cannot
// be converted from RESP2 to RESP3 after the fact (shapes are per command,
// and RESP2 has two nulls where RESP3 has one), so the child itself answers
// a RESP3 client's command in RESP3: every command in the log carries its
// client's protocol, and the apply connection is switched with HELLO only
// where the protocol changes. HELLO changes no data, so the state every
// node reaches is the same whatever the protocols. This file holds the
// switching and the RESP3 shapes of the replies of redraft's own scripts,
// which the child gives in the shapes of Lua's conversions.

// protoUnknown marks a connection whose protocol is not known (after a
// transaction that ran HELLO): the next command switches it explicitly.
const protoUnknown resp.Proto = -1

// protoOf normalises p: RESP3, or RESP2 for anything below.
func protoOf(p resp.Proto) resp.Proto {
	if p >= resp.Proto3 {
		return resp.Proto3
	}
	return resp.Proto2
}

// helloArgs is the command that switches a connection to p.
func helloArgs(p resp.Proto) [][]byte {
	return [][]byte{[]byte("HELLO"), []byte(strconv.Itoa(int(protoOf(p))))}
}

// runsHello reports whether a transaction's queued commands include HELLO,
// which switches the connection's protocol inside EXEC.
func runsHello(subs []applyStep) bool {
	for _, sub := range subs {
		if len(sub.args) > 0 && strings.EqualFold(string(sub.args[0]), "hello") {
			return true
		}
	}
	return false
}

// setReplyIn gives SPOP with a count its RESP3 shape, a set: the script
// returns a Lua array, which the child sends as an array.
func setReplyIn(proto resp.Proto) func([]byte) []byte {
	return func(raw []byte) []byte {
		raw = internalScriptReply(raw)
		if proto >= resp.Proto3 && len(raw) > 0 && raw[0] == '*' {
			out := append([]byte(nil), raw...)
			out[0] = '~'
			return out
		}
		return raw
	}
}

// popReplyIn gives a blocked BZPOPMIN/BZPOPMAX's pop its RESP3 shape, the
// score a double: the script returns it as the string RESP2 sends.
func popReplyIn(proto resp.Proto, zset bool) func([]byte) []byte {
	if proto < resp.Proto3 || !zset {
		return internalScriptReply
	}
	return func(raw []byte) []byte {
		raw = internalScriptReply(raw)
		items, err := resp.ArrayItems(raw)
		if err != nil || len(items) != 3 {
			return raw
		}
		score, ok := resp.BulkAsDouble(items[2])
		if !ok {
			return raw
		}
		return resp.Rebuild(raw, [][]byte{items[0], items[1], score})
	}
}

// streamsReplyIn gives XREADGROUP's reply (from its script) Redis's shape
// in proto: a map of stream to entries in RESP3, null when nothing was
// read (a script can only return a null bulk).
func streamsReplyIn(proto resp.Proto) func([]byte) []byte {
	return func(raw []byte) []byte {
		if resp.ReplyIsNull(raw) {
			return resp.NullArrayIn(proto)
		}
		raw = internalScriptReply(raw)
		if proto < resp.Proto3 || resp.ReplyIsError(raw) {
			return raw
		}
		streams, err := resp.ArrayItems(raw)
		if err != nil {
			return raw
		}
		out := resp.AppendMap(nil, resp.Proto3, len(streams))
		for _, s := range streams {
			pair, err := resp.ArrayItems(s)
			if err != nil || len(pair) != 2 {
				return raw
			}
			out = append(append(out, pair[0]...), pair[1]...)
		}
		return out
	}
}
