package main

import (
	"bufio"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// With --follower-proxy a follower relays what it may not serve (writes,
// and reads above --consistency low) to the leader over a connection of the
// client's own, so pipelines keep their order, SELECT its database, and
// WATCH/MULTI/EXEC their atomicity (the whole transaction is sent as one
// pipeline on that connection).

// shouldForward reports whether a request must be relayed to the leader.
func (s *server) shouldForward() bool {
	if !s.followerProxy || s.node.raft.State() == raft.Leader {
		return false
	}
	addr := s.node.leaderAddr()
	return addr != "" && addr != s.node.id
}

// forward sends cmds to the leader on the client's relay connection and
// returns the leader's replies. skip leading replies are dropped (MULTI's
// OK and the QUEUED answers of a forwarded transaction).
func (s *server) forward(cl *client, cmds [][][]byte, skip int) [][]byte {
	return s.forwardWithin(cl, cmds, skip, requestTimeout)
}

// forwardWithin is forward with a deadline for the leader's answer (0: none,
// for a blocking command that may wait forever).
func (s *server) forwardWithin(cl *client, cmds [][][]byte, skip int, limit time.Duration) [][]byte {
	fail := func(msg string) [][]byte {
		out := make([][]byte, len(cmds)-skip)
		for i := range out {
			out[i] = respError("ERR cannot reach the leader: " + msg)
		}
		return out
	}
	leader := s.node.leaderAddr()
	if cl.fwd != nil && cl.fwdAddr != leader {
		cl.fwd.Close()
		cl.fwd = nil
	}
	if cl.fwd == nil {
		nc, err := net.DialTimeout("tcp", leader, 3*time.Second)
		if err != nil {
			return fail(err.Error())
		}
		cl.fwd = &respConn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), bw: bufio.NewWriterSize(nc, 64<<10)}
		cl.fwdAddr = leader
	}
	c := cl.fwd
	if limit > 0 {
		_ = c.nc.SetDeadline(time.Now().Add(limit))
		defer c.nc.SetDeadline(time.Time{})
	}
	selected := c.selectDB(cl.db)
	for _, args := range cmds {
		c.send(args)
	}
	err := c.flush()
	if err == nil && selected {
		_, err = c.readReply()
	}
	out := make([][]byte, 0, len(cmds))
	for i := 0; err == nil && i < len(cmds); i++ {
		var raw []byte
		if raw, err = c.readReply(); err == nil && i >= skip {
			out = append(out, raw)
		}
	}
	if err != nil {
		c.Close()
		cl.fwd = nil
		return fail(err.Error())
	}
	return out
}

// argsOf lists the arguments of commands.
func argsOf(cmds []command) [][][]byte {
	out := make([][][]byte, len(cmds))
	for i, c := range cmds {
		out[i] = c.Args
	}
	return out
}
