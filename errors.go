package main

import (
	"errors"
	"fmt"
	"net"

	"github.com/redraft/redraft/internal/resp"
)

// The layers below the front end return typed errors (raft.go: a
// *NotLeaderError with the leader's address, ErrNoLeader, ErrTimeout,
// ErrLeadershipLost); only the front end turns them into replies, here.
// In cluster mode (cluster.go) a request's redirects become Redis
// Cluster's first (clusterMode.redirect), and are answered here too.

// repliesOrError returns replies, or for each command of run the reply to
// err (in cluster mode a redirect names each command's own slot).
func repliesOrError(c *clusterMode, run []resp.Command, replies [][]byte, err error) [][]byte {
	if err == nil {
		return replies
	}
	out := make([][]byte, len(run))
	for i, cmd := range run {
		out[i] = c.errorReply(err, cmd.Args)
	}
	return out
}

// errorReply turns an error from the layers below into the reply a Redis
// client expects. It is the only place that knows these replies.
func errorReply(err error) []byte {
	var nl *NotLeaderError
	var moved *movedError
	switch {
	case errors.As(err, &moved):
		return resp.Error(fmt.Sprintf("MOVED %d %s", moved.slot, movedTarget(moved.leader)))
	case errors.Is(err, errCrossSlot):
		return resp.Error("CROSSSLOT Keys in request don't hash to the same slot")
	case errors.Is(err, errClusterDown):
		return resp.Error("CLUSTERDOWN The cluster is down")
	case errors.As(err, &nl):
		return resp.Error("TRY " + nl.Leader)
	case errors.Is(err, ErrNoLeader):
		return resp.Error("CLUSTERDOWN no leader is known yet; try again shortly")
	case errors.Is(err, ErrTimeout):
		return resp.Error("ERR timed out waiting for the Raft log; the write may or may not have been applied")
	case errors.Is(err, ErrLeadershipLost):
		return resp.Error("ERR leadership changed before the write was acknowledged; it may or may not have been applied")
	}
	return resp.Error("ERR " + err.Error())
}

// movedTarget is the leader's address as -MOVED names it: host:port, the
// host without brackets (Redis prints "::1:7000" for IPv6).
func movedTarget(leader string) string {
	host, port, err := net.SplitHostPort(leader)
	if err != nil {
		return leader
	}
	return host + ":" + port
}
