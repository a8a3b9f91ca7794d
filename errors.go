package main

import (
	"errors"

	"github.com/redraft/redraft/internal/resp"
)

// The layers below the front end return typed errors (raft.go: a
// *NotLeaderError with the leader's address, ErrNoLeader, ErrTimeout,
// ErrLeadershipLost); only the front end turns them into replies, here.

// repliesOrError returns replies, or n copies of err's reply.
func repliesOrError(n int, replies [][]byte, err error) [][]byte {
	if err == nil {
		return replies
	}
	out := make([][]byte, n)
	reply := errorReply(err)
	for i := range out {
		out[i] = reply
	}
	return out
}

// errorReply turns an error from the layers below into the reply a Redis
// client expects. It is the only place that knows these replies.
func errorReply(err error) []byte {
	var nl *NotLeaderError
	switch {
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
