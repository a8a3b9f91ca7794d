package main

import (
	"net"
	"strconv"
	"time"

	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// With --follower-proxy a follower relays what it may not serve (writes,
// and reads above --consistency low) to the leader over a connection of the
// client's own, so pipelines keep their order, SELECT its database, and
// WATCH/MULTI/EXEC their atomicity (the whole transaction is sent as one
// pipeline on that connection). route (commands.go) decides what is
// relayed.

// leaderRelay relays requests to the leader for clients of a follower.
type leaderRelay struct {
	enabled bool // --follower-proxy
	node    *raftNode
	// dial opens an authenticated peer stream to the leader, which serves
	// it as an authenticated client (so relays need no client password).
	dial func(addr string, timeout time.Duration) (net.Conn, error)
}

// active reports whether requests that need the leader must be relayed to
// it: --follower-proxy is on, this node is a follower, and a leader is
// known.
func (r *leaderRelay) active() bool {
	if !r.enabled || r.node.isLeader() {
		return false
	}
	addr := r.node.leaderAddr()
	return addr != "" && addr != r.node.id
}

// run sends cmds to the leader on the client's relay connection and
// returns the leader's replies. skip leading replies are dropped (MULTI's
// OK and the QUEUED answers of a relayed transaction). limit bounds the
// wait for the leader's answer (0: none, for a blocking command that may
// wait forever).
func (r *leaderRelay) run(cl *clientConn, cmds [][][]byte, skip int, limit time.Duration) [][]byte {
	fail := func(msg string) [][]byte {
		out := make([][]byte, len(cmds)-skip)
		for i := range out {
			out[i] = resp.Error("ERR cannot reach the leader: " + msg)
		}
		return out
	}
	c, err := r.conn(cl)
	if err != nil {
		return fail(err.Error())
	}
	if limit > 0 {
		_ = c.SetDeadline(time.Now().Add(limit))
		defer c.SetDeadline(time.Time{})
	}
	switched := r.useProto(cl, c)
	selected := c.SelectDB(cl.db)
	for _, args := range cmds {
		c.Send(args)
	}
	err = c.Flush()
	if err == nil && switched {
		_, err = c.ReadReply()
	}
	if err == nil && selected {
		_, err = c.ReadReply()
	}
	out := make([][]byte, 0, len(cmds))
	for i := 0; err == nil && i < len(cmds); i++ {
		var raw []byte
		if raw, err = c.ReadReply(); err == nil && i >= skip {
			out = append(out, raw)
		}
	}
	if err != nil {
		c.Close()
		cl.relay = nil
		return fail(err.Error())
	}
	return out
}

// useProto queues a HELLO on the relay connection when the client now
// speaks another protocol than the leader answers it in (the leader's
// front end then answers in the client's protocol); it reports whether a
// reply must be read for it.
func (r *leaderRelay) useProto(cl *clientConn, c *redisconn.Conn) bool {
	p := cl.protocol()
	if cl.relayProto == p || (cl.relayProto == 0 && p == resp.Proto2) {
		return false
	}
	c.Send(helloArgs(p))
	cl.relayProto = p
	return true
}

// conn returns the client's connection to the current leader,
// replacing one to a former leader.
func (r *leaderRelay) conn(cl *clientConn) (*redisconn.Conn, error) {
	leader := r.node.leaderAddr()
	if cl.relay != nil && cl.relayTo != leader {
		cl.relay.Close()
		cl.relay = nil
	}
	if cl.relay == nil {
		cl.relayProto = 0 // a new connection speaks RESP2
	}
	if cl.relay == nil {
		nc, err := r.dial(leader, 3*time.Second)
		if err != nil {
			return nil, err
		}
		cl.relay, cl.relayTo = redisconn.New(nc), leader
	}
	return cl.relay, nil
}

// blocking relays a blocking call; the leader does the waiting, for
// as long as it takes. A client that leaves ends the wait by closing the
// relay connection.
func (r *leaderRelay) blocking(cl *clientConn, args [][]byte) []byte {
	c, err := r.conn(cl)
	if err != nil {
		return resp.Error("ERR cannot reach the leader: " + err.Error())
	}
	gone, stop := cl.watchDeparture()
	defer stop()
	cl.blocked.Store(true) // the leader does the waiting
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-gone:
			c.Close()
		case <-done:
		}
	}()
	return r.run(cl, [][][]byte{args}, 0, 0)[0]
}

// appliedOnLeader asks the leader, on cl's relay connection, for its
// applied index (RAFTSTATS): after a relayed write has been answered, it
// is at least the write's index.
func (r *leaderRelay) appliedOnLeader(cl *clientConn) (uint64, bool) {
	if cl.relay == nil {
		return 0, false
	}
	raw := r.run(cl, [][][]byte{{[]byte("RAFTSTATS")}}, 0, requestTimeout)[0]
	items, err := resp.ArrayItems(raw)
	if err != nil {
		return 0, false
	}
	for i := 0; i+1 < len(items); i += 2 {
		if name, _ := resp.ReplyString(items[i]); name == "applied_index" {
			v, _ := resp.ReplyString(items[i+1])
			n, err := strconv.ParseUint(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// argsOf lists the arguments of commands.
func argsOf(cmds []entryCmd) [][][]byte {
	out := make([][][]byte, len(cmds))
	for i, c := range cmds {
		out[i] = c.Args
	}
	return out
}
