package main

import (
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

// subscribe detaches conn from the request loop and relays it to a
// dedicated child connection. rest are commands pipelined after the first
// subscribe (included).
func (s *server) subscribe(conn redcon.Conn, rest []redcon.Command) {
	dc := conn.Detach()
	child, err := dialChild(s.child.sock)
	if err != nil {
		dc.WriteError("ERR " + err.Error())
		dc.Flush()
		dc.Close()
		return
	}
	r := &relay{client: dc, child: child}
	go r.fromChild()
	go func() {
		defer r.close()
		for _, c := range rest {
			if !r.forward(c.Args) {
				return
			}
		}
		for {
			c, err := dc.ReadCommand()
			if err != nil {
				return
			}
			if !r.forward(c.Args) {
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
}

// forward sends one client command to the child; false ends the relay.
func (r *relay) forward(args [][]byte) bool {
	name := lower(args[0])
	switch {
	case name == "quit":
		r.write([]byte("+OK\r\n"))
		return false
	case !allowedInSubscriberMode[name]:
		r.write(respError(fmt.Sprintf("ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", strings.ToLower(string(args[0])))))
		return true
	}
	r.child.send(args)
	return r.child.flush() == nil
}

// fromChild copies every reply and message from the child to the client.
func (r *relay) fromChild() {
	defer r.close()
	for {
		raw, err := r.child.readReply()
		if err != nil {
			return
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
	})
}
