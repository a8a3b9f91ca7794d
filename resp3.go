package main

import (
	"github.com/redraft/redraft/internal/resp"
)

// RESP3 in the front end (docs/DESIGN.md, "RESP3"). A connection speaks
// RESP2 until HELLO 3, and again after HELLO 2 or RESET. Replies that come
// from a child are produced in the client's protocol by the child itself:
// reads run on a pool of RESP3 connections, writes carry the protocol into
// the log (protocol.go). What redraft answers itself is built here in the
// client's protocol. A RESP3 client that subscribes keeps running ordinary
// commands: its subscriptions live on a child connection of its own, whose
// output reaches the client as pushes (pubsub.go, push.go).

// setProtocol switches the connection to p (HELLO, RESET). A RESP3
// connection holds the pushes that arrive while it executes a batch, from
// the command that switched it on.
func (s *frontEnd) setProtocol(cl *clientConn, p resp.Proto) {
	p = protoOf(p)
	if p == cl.protocol() {
		return
	}
	if p == resp.Proto3 {
		cl.hold()
	}
	cl.proto.Store(int32(p))
	if cl.sub != nil && p == resp.Proto2 {
		cl.sub.toResp2()
	}
}

// helloMap is HELLO's reply in p: the server's description, with the
// client's protocol and ID.
func (s *frontEnd) helloMap(cl *clientConn, p resp.Proto, version string) []byte {
	out := resp.AppendMap(nil, p, 7)
	for _, kv := range [][2]string{{"server", "redis"}, {"version", version}} {
		out = resp.AppendBulkString(out, kv[0])
		out = resp.AppendBulkString(out, kv[1])
	}
	out = resp.AppendBulkString(out, "proto")
	out = resp.AppendInt(out, int64(protoOf(p)))
	out = resp.AppendBulkString(out, "id")
	out = resp.AppendInt(out, cl.id)
	for _, kv := range s.cluster.helloMode() {
		out = resp.AppendBulkString(out, kv[0])
		out = resp.AppendBulkString(out, kv[1])
	}
	out = resp.AppendBulkString(out, "modules")
	return resp.AppendArray(out, 0)
}

// textReply is a text redraft produced in place of a child's: a verbatim
// string in RESP3 (INFO, CLIENT INFO, CLIENT LIST), a bulk string in RESP2.
func textReply(p resp.Proto, text string) []byte {
	return resp.AppendVerbatim(nil, p, "txt", text)
}
