package main

import (
	"bytes"
	"context"

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

// protocol is the protocol the client speaks.
func (cl *clientConn) protocol() resp.Proto {
	if cl.proto.Load() >= int32(resp.Proto3) {
		return resp.Proto3
	}
	return resp.Proto2
}

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

// toResp2 turns a RESP3 subscription into RESP2 subscriber mode after the
// client's HELLO 2 (as in Redis, the client stays subscribed): its child
// connection switches too, and from then on every command of the client
// goes to that connection (subscribedCommand).
func (sub *subscription) toResp2() {
	sub.cl.flush() // the replies owed, HELLO's included, before the pump's
	sub.cl.releaseHeld()
	sub.swallowHello.Store(true)
	sub.resp3.Store(false)
	if !sub.send(helloArgs(resp.Proto2)) {
		sub.cl.kill()
	}
}

// isHelloReply reports whether raw is the child's reply to HELLO.
func isHelloReply(raw []byte) bool {
	return bytes.HasPrefix(raw, []byte("*14\r\n$6\r\nserver\r\n")) || bytes.HasPrefix(raw, []byte("%7\r\n$6\r\nserver\r\n"))
}

// subscribe3 runs SUBSCRIBE and its kin for a RESP3 client: on its own
// child connection (opened in RESP3 on first use), waiting until the
// child has confirmed, so the confirmations (pushes, held by the pump)
// come out where the command's replies belong. It answers nil: the
// confirmations are the reply.
func (s *frontEnd) subscribe3(cl *clientConn, args [][]byte) []byte {
	if cl.sub == nil {
		conn, err := s.child.Dial()
		if err != nil {
			return resp.Error("ERR " + err.Error())
		}
		if _, err := conn.Do("HELLO", "3"); err != nil {
			conn.Close()
			return resp.Error("ERR " + err.Error())
		}
		cl.sub = newSubscription(cl, conn)
		cl.sub.resp3.Store(true)
		go cl.sub.pump()
	}
	if !cl.sub.send(args) {
		cl.kill()
		return nil
	}
	if _, ok := cl.sub.probe(); !ok {
		cl.kill()
		return nil
	}
	cl.subscribed.Store(cl.sub.subscriptionsLeft() > 0)
	return nil
}

// settleSubscription waits until every message the child had sent the
// RESP3 subscriber by now is held for it, so that a message its own
// PUBLISH caused comes before the PUBLISH's reply, as in Redis.
func (cl *clientConn) settleSubscription() {
	if cl.sub != nil && cl.sub.resp3.Load() {
		if _, ok := cl.sub.probe(); !ok {
			cl.kill()
		}
	}
}

// endSubscription3 drops a RESP3 client's subscriptions without a
// confirmation (RESET).
func endSubscription3(cl *clientConn) {
	if cl.sub == nil || !cl.sub.resp3.Load() {
		return
	}
	cl.sub.detached.Store(true)
	cl.sub.conn.Close()
	<-cl.sub.ended
	leaveSubscriberMode(cl)
}

// unsubscribedReply is Redis's answer to (P|S)UNSUBSCRIBE from a client
// with no subscriptions: one confirmation per channel with a count of 0
// (a push in RESP3), or one with a null channel when none is named.
func unsubscribedReply(p resp.Proto, name string, channels [][]byte) []byte {
	one := func(out []byte, ch []byte) []byte {
		out = resp.AppendPush(out, p, 3)
		out = resp.AppendBulkString(out, name)
		if ch == nil {
			out = resp.AppendNullBulk(out, p)
		} else {
			out = resp.AppendBulk(out, ch)
		}
		return resp.AppendInt(out, 0)
	}
	if len(channels) == 0 {
		return one(nil, nil)
	}
	var out []byte
	for _, ch := range channels {
		out = one(out, ch)
	}
	return out
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

// localFor runs a command on the local child in the client's protocol,
// without a consistency check (the commands of kindLocal).
func (s *frontEnd) localFor(ctx context.Context, cl *clientConn, args [][]byte) []byte {
	return s.reads.localIn(ctx, cl.protocol(), cl.db, args)
}
