package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redraft/redraft/internal/command"
	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// Pub/Sub: PUBLISH travels through the Raft log like any write, so every
// node's child delivers it to that node's subscribers. A subscribing client
// gets its own connection to the local child; its commands go there, and a
// pump copies the child's replies and messages back. The child does the
// matching, pattern handling, PING and reply shapes.

// allowedInSubscriberMode are the commands a subscribed client may send.
var allowedInSubscriberMode = map[string]bool{
	"subscribe": true, "psubscribe": true, "ssubscribe": true,
	"unsubscribe": true, "punsubscribe": true, "sunsubscribe": true,
	"ping": true, "quit": true, "reset": true,
}

// subscription is a client in subscriber mode.
type subscription struct {
	cl   *clientConn
	conn *redisconn.Conn // the client's own connection to the child
	once sync.Once

	// A refused command (or QUIT) is answered in order with the child's
	// replies: a PING carrying a marker goes to the child, and the pump
	// replaces its echo with the answer.
	mu      sync.Mutex
	answers map[string][]byte
	serial  int
	quit    string        // the marker of a QUIT, once sent
	leave   string        // the marker of a RESET, once sent
	ended   chan struct{} // closed when the pump stops
	// probes are markers sent after an unsubscribe, answered with nothing:
	// the pump reports on each whether no subscription is left (and then
	// stops, the client leaving subscriber mode, as in Redis).
	probes map[string]chan bool

	// resp3: the client speaks RESP3, so the child's output (pushes) is
	// held around the replies of the commands the client runs meanwhile
	// (resp3.go); detached: RESET ended it and the client stays;
	// swallowHello: the pump drops the child's reply to the HELLO 2 that
	// follows the client's own.
	resp3, detached, swallowHello atomic.Bool
}

// newSubscription pairs cl with its own connection to the child.
func newSubscription(cl *clientConn, conn *redisconn.Conn) *subscription {
	return &subscription{cl: cl, conn: conn, answers: make(map[string][]byte), probes: make(map[string]chan bool), ended: make(chan struct{})}
}

// subscribe enters subscriber mode and sends the command to the child;
// the reply comes from the child, through the pump.
func (s *frontEnd) subscribe(_ context.Context, cl *clientConn, args [][]byte) []byte {
	if cl.protocol() == resp.Proto3 {
		return s.subscribe3(cl, args)
	}
	conn, err := s.child.Dial()
	if err != nil {
		return resp.Error("ERR " + err.Error())
	}
	cl.flush() // replies owed before subscribing go first
	cl.sub = newSubscription(cl, conn)
	cl.subscribed.Store(true)
	go cl.sub.pump()
	if !cl.sub.send(args) {
		cl.kill()
	}
	return nil
}

// subscribedCommand handles one command of a subscribed client; false
// ends the connection.
func (s *frontEnd) subscribedCommand(cl *clientConn, args [][]byte) bool {
	sub := cl.sub
	name := command.Lower(args[0])
	if reply := s.clusterRedirect(cl, s.cmds.lookup(args), args); reply != nil {
		// Redis Cluster redirects before it looks at subscriber mode.
		return sub.send([][]byte{[]byte("PING"), []byte(sub.marker(reply))})
	}
	switch {
	case name == "quit":
		sub.endWith(resp.OK, &sub.quit)
		return false
	case name == "reset":
		// RESET leaves subscriber mode: the pump writes +RESET after the
		// replies owed, and the connection is a normal one again.
		if !sub.endWith(resp.Status("RESET"), &sub.leave) {
			return false
		}
		leaveSubscriberMode(cl)
		s.resetState(context.Background(), cl)
		return true
	case name == "unsubscribe" || name == "punsubscribe" || name == "sunsubscribe":
		// With no subscription left, the client leaves subscriber mode
		// before its next command, as in Redis.
		if !sub.send(args) {
			return false
		}
		left, ok := sub.probe()
		if left {
			leaveSubscriberMode(cl)
		}
		return ok
	case !allowedInSubscriberMode[name]:
		marker := sub.marker(resp.Error(fmt.Sprintf("ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", strings.ToLower(string(args[0])))))
		args = [][]byte{[]byte("PING"), []byte(marker)}
	}
	return sub.send(args)
}

// leaveSubscriberMode makes a client whose pump has stopped a normal one.
func leaveSubscriberMode(cl *clientConn) {
	cl.sub = nil
	cl.subscribed.Store(false)
	for i := range cl.subs {
		cl.subs[i].Store(0)
	}
}

// probe sends a marked PING that the pump answers with nothing and waits
// for it: left reports that no subscription was left then (the pump has
// stopped), ok that the connection is still usable.
func (sub *subscription) probe() (left, ok bool) {
	done := make(chan bool, 1)
	sub.mu.Lock()
	sub.serial++
	m := fmt.Sprintf("\x00redraft-answer-%d", sub.serial)
	sub.probes[m] = done
	sub.mu.Unlock()
	if !sub.send([][]byte{[]byte("PING"), []byte(m)}) {
		return false, false
	}
	select {
	case left = <-done:
		if left {
			<-sub.ended
		}
		return left, true
	case <-sub.ended:
		return false, false
	case <-time.After(requestTimeout):
		return false, false
	}
}

// endWith sends a marked PING whose echo the pump replaces with answer,
// after which the pump stops; marker records which one it is. It waits for
// the pump and reports whether it stopped in time.
func (sub *subscription) endWith(answer []byte, marker *string) bool {
	m := sub.marker(answer)
	sub.mu.Lock()
	*marker = m
	sub.mu.Unlock()
	if !sub.send([][]byte{[]byte("PING"), []byte(m)}) {
		return false
	}
	select {
	case <-sub.ended:
		return true
	case <-time.After(requestTimeout):
		return false
	}
}

// marker registers the answer to send in place of a marked PING's echo.
func (sub *subscription) marker(answer []byte) string {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.serial++
	m := fmt.Sprintf("\x00redraft-answer-%d", sub.serial)
	sub.answers[m] = answer
	return m
}

// answer returns the answer registered for the marker raw echoes, if any.
func (sub *subscription) answer(raw []byte) (answer []byte, marker string) {
	i := bytes.Index(raw, []byte("\x00redraft-answer-"))
	if i < 0 {
		return nil, ""
	}
	end := bytes.IndexByte(raw[i:], '\r')
	if end < 0 {
		return nil, ""
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	marker = string(raw[i : i+end])
	answer = sub.answers[marker]
	delete(sub.answers, marker)
	return answer, marker
}

// takeProbe returns the probe waiting for marker, if it is one.
func (sub *subscription) takeProbe(marker string) chan bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	done := sub.probes[marker]
	delete(sub.probes, marker)
	return done
}

// subscriptionsLeft counts the client's channels, patterns and shard
// channels.
func (sub *subscription) subscriptionsLeft() int32 {
	var n int32
	for i := range sub.cl.subs {
		n += sub.cl.subs[i].Load()
	}
	return n
}

// send forwards one command to the child.
func (sub *subscription) send(args [][]byte) bool {
	sub.conn.Send(args)
	return sub.conn.Flush() == nil
}

// pump reads every reply and message from the child as it comes, so the
// child never holds them, and queues them for the client (push.go), whose
// writer sends them as fast as the client takes them. What the client has
// not taken is counted in cl.queued, for --client-output-buffer-limit
// pubsub. In RESP3 the child's output is all pushes, held around the
// replies of the client's other commands. The pump ends when either side
// fails or the client quits.
func (sub *subscription) pump() {
	leaving := false
	defer func() {
		switch {
		case leaving || sub.detached.Load():
			sub.conn.Close() // RESET: the client stays
		default:
			if q := sub.cl.queue(); q != nil {
				_ = q.drained() // what the client is owed, QUIT's OK included
			}
			sub.close()
		}
		close(sub.ended)
	}()
	for {
		raw, err := sub.conn.ReadReply()
		if err != nil {
			return
		}
		if sub.swallowHello.Load() && isHelloReply(raw) {
			sub.swallowHello.Store(false) // HELLO 2 sent for the client (resp3.go)
			continue
		}
		answer, marker := sub.answer(raw)
		if answer != nil {
			raw = answer
		}
		if done := sub.takeProbe(marker); done != nil {
			if sub.resp3.Load() {
				done <- false // RESP3 has no subscriber mode to leave
				continue
			}
			leaving = sub.subscriptionsLeft() == 0
			done <- leaving
			if leaving {
				return
			}
			continue
		}
		sub.mu.Lock()
		quit := marker != "" && marker == sub.quit
		leaving = marker != "" && marker == sub.leave
		sub.mu.Unlock()
		sub.countSubscriptions(raw)
		if sub.resp3.Load() {
			sub.cl.deliver(raw, false)
		} else {
			sub.cl.enqueue(raw)
		}
		if quit || leaving {
			return
		}
	}
}

// subscriptionKinds are the confirmations that change a subscription
// count: the index in clientConn.subs, and +1 or -1.
var subscriptionKinds = map[string][2]int{
	"subscribe": {0, 1}, "unsubscribe": {0, -1}, "psubscribe": {1, 1}, "punsubscribe": {1, -1},
	"ssubscribe": {2, 1}, "sunsubscribe": {2, -1},
}

// countSubscriptions follows the client's subscription counts (for CLIENT
// LIST) from the child's confirmations.
func (sub *subscription) countSubscriptions(raw []byte) {
	if len(raw) < 5 || (raw[0] != '*' && raw[0] != '>') || !bytes.HasPrefix(raw[1:], []byte("3\r\n$")) || bytes.HasPrefix(raw[1:], []byte("3\r\n$7\r\nmessage")) {
		return
	}
	items, err := resp.ArrayItems(raw)
	if err != nil || len(items) != 3 {
		return
	}
	kind, _ := resp.ReplyString(items[0])
	k, ok := subscriptionKinds[kind]
	if !ok {
		return
	}
	if _, named := resp.ReplyString(items[1]); !named && k[1] < 0 {
		return // unsubscribing from nothing
	}
	if n := sub.cl.subs[k[0]].Add(int32(k[1])); n < 0 {
		sub.cl.subs[k[0]].Store(0)
	}
}

// close ends the subscription and the client's connection.
func (sub *subscription) close() {
	sub.once.Do(func() {
		sub.conn.Close()
		sub.cl.kill()
	})
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
