package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	"github.com/tidwall/redcon"
)

// Pub/Sub: PUBLISH travels through the Raft log like any write, so every
// node's child delivers it to that node's subscribers. A subscribing client
// is given its own connection to the local child and the proxy relays both
// ways; the child does the matching, pattern handling, PING and RESP shapes.

// subscribeCommands enter subscriber mode.
var subscribeCommands = map[string]bool{"subscribe": true, "psubscribe": true, "ssubscribe": true}

// allowedInSubscriberMode are the commands a subscribed client may send.
var allowedInSubscriberMode = map[string]bool{
	"subscribe": true, "psubscribe": true, "ssubscribe": true,
	"unsubscribe": true, "punsubscribe": true, "sunsubscribe": true,
	"ping": true, "quit": true, "reset": true,
}

// subscribe hands conn to a relay to a dedicated child connection. rest
// are the commands pipelined from the first subscribe on. A connection
// already served by the proxy's own loop (after a blocking command) keeps
// its command channel; otherwise it is detached from redcon here.
func (s *server) subscribe(conn redcon.Conn, cl *client, rest []redcon.Command) {
	var dc redcon.DetachedConn
	next := func() (redcon.Command, bool) {
		c, err := dc.ReadCommand()
		return c, err == nil
	}
	if cl.cmds != nil {
		dc = conn.(redcon.DetachedConn)
		next = func() (redcon.Command, bool) {
			c, ok := <-cl.cmds
			return c, ok
		}
	} else {
		cl.detached = true
		dc = conn.Detach()
	}
	child, err := dialChild(s.child.sock)
	if err != nil {
		dc.WriteError("ERR " + err.Error())
		dc.Flush()
		dc.Close()
		return
	}
	r := &relay{client: dc, child: child, errs: make(map[string][]byte), done: func() { s.closeClient(cl) }}
	go r.fromChild()
	go func() {
		defer r.close()
		for _, c := range rest {
			if !r.forward(c.Args) {
				return
			}
		}
		for {
			c, ok := next()
			if !ok || !r.forward(c.Args) {
				return
			}
		}
	}()
}

// relay joins a subscribed client and its child connection.
type relay struct {
	client redcon.DetachedConn
	child  *respConn
	mu     sync.Mutex // serialises writes to the client
	once   sync.Once

	// A refused command is answered in order with the child's replies: a
	// PING carrying a marker goes to the child, and its echo is replaced by
	// the error.
	errMu  sync.Mutex
	errs   map[string][]byte
	serial int

	done func() // releases the client's proxy state
}

// forward sends one client command to the child; false ends the relay.
func (r *relay) forward(args [][]byte) bool {
	name := lower(args[0])
	switch {
	case name == "quit":
		r.write([]byte("+OK\r\n"))
		return false
	case !allowedInSubscriberMode[name]:
		r.errMu.Lock()
		r.serial++
		marker := fmt.Sprintf("\x00redraft-refused-%d", r.serial)
		r.errs[marker] = respError(fmt.Sprintf("ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", strings.ToLower(string(args[0]))))
		r.errMu.Unlock()
		args = [][]byte{[]byte("PING"), []byte(marker)}
	}
	r.child.send(args)
	return r.child.flush() == nil
}

// refusal returns the error to send in place of a marker echo, if raw is one.
func (r *relay) refusal(raw []byte) []byte {
	i := bytes.Index(raw, []byte("\x00redraft-refused-"))
	if i < 0 {
		return nil
	}
	end := bytes.IndexByte(raw[i:], '\r')
	if end < 0 {
		return nil
	}
	r.errMu.Lock()
	defer r.errMu.Unlock()
	marker := string(raw[i : i+end])
	e := r.errs[marker]
	delete(r.errs, marker)
	return e
}

// fromChild copies every reply and message from the child to the client.
func (r *relay) fromChild() {
	defer r.close()
	for {
		raw, err := r.child.readReply()
		if err != nil {
			return
		}
		if e := r.refusal(raw); e != nil {
			raw = e
		}
		if !r.write(raw) {
			return
		}
	}
}

func (r *relay) write(raw []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.client.WriteRaw(raw)
	return r.client.Flush() == nil
}

func (r *relay) close() {
	r.once.Do(func() {
		r.child.Close()
		r.client.Close()
		r.done()
	})
}
