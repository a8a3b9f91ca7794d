package peer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Joining (-join) runs over a stream authenticated with PurposeJoin: once
// the handshake is done (and the joiner has stored the cluster ID it
// learned), the joiner sends one request and the member answers.
//
//	joiner→member  'J' (as a voter) or 'N' (as a non-voting member)
//	member→joiner  status:1 len:2 text      (JoinOK; JoinTry: text is the leader; JoinFailed: why)

// JoinStatus is a member's answer to a join request.
type JoinStatus byte

// The answers to a join request.
const (
	// JoinOK: the joiner is a member now (or was already).
	JoinOK JoinStatus = 0
	// JoinTry: this member does not lead; the text is the leader's address.
	JoinTry JoinStatus = 1
	// JoinFailed: the text says why (no leader yet, a timeout, ...).
	JoinFailed JoinStatus = 2
)

// JoinReply is a member's answer.
type JoinReply struct {
	Status JoinStatus
	Text   string
}

// The requests: join as a voter, or as a non-voting member.
const (
	joinRequest         = 'J'
	joinNonvoterRequest = 'N'
)

// maxJoinText bounds a reply's text.
const maxJoinText = 4096

// RequestJoin sends the join request on rw (to join as a non-voting
// member with nonvoter) and reads the answer.
func RequestJoin(rw io.ReadWriter, nonvoter bool) (JoinReply, error) {
	req := byte(joinRequest)
	if nonvoter {
		req = joinNonvoterRequest
	}
	if _, err := rw.Write([]byte{req}); err != nil {
		return JoinReply{}, fmt.Errorf("send join request: %w", err)
	}
	head := make([]byte, 3)
	if _, err := io.ReadFull(rw, head); err != nil {
		return JoinReply{}, fmt.Errorf("read join reply: %w", err)
	}
	n := binary.BigEndian.Uint16(head[1:])
	if n > maxJoinText || head[0] > byte(JoinFailed) {
		return JoinReply{}, errors.New("malformed join reply")
	}
	text := make([]byte, n)
	if _, err := io.ReadFull(rw, text); err != nil {
		return JoinReply{}, fmt.Errorf("read join reply: %w", err)
	}
	return JoinReply{Status: JoinStatus(head[0]), Text: string(text)}, nil
}

// ReadJoinRequest waits for the joiner's request and reports whether it
// asks to join as a non-voting member.
func ReadJoinRequest(r io.Reader) (nonvoter bool, err error) {
	b := make([]byte, 1)
	if _, err := io.ReadFull(r, b); err != nil {
		return false, fmt.Errorf("read join request: %w", err)
	}
	switch b[0] {
	case joinRequest:
		return false, nil
	case joinNonvoterRequest:
		return true, nil
	}
	return false, errors.New("malformed join request")
}

// WriteJoinReply answers a join request.
func WriteJoinReply(w io.Writer, r JoinReply) error {
	text := r.Text
	if len(text) > maxJoinText {
		text = text[:maxJoinText]
	}
	out := []byte{byte(r.Status), 0, 0}
	binary.BigEndian.PutUint16(out[1:], uint16(len(text)))
	_, err := w.Write(append(out, text...))
	return err
}
