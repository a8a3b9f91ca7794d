package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"net"

	"github.com/redraft/redraft/internal/mux"
	"github.com/redraft/redraft/internal/resp"
)

// Client authentication, as Redis does it with requirepass (the default
// user and its password; no ACL users). The password is the FSM's
// requirePass: --requirepass until CONFIG SET requirepass is applied from
// the log. A connection is authenticated when it connects while no
// password is set, when AUTH or HELLO … AUTH succeeds, or when it is a
// follower's relay stream (authenticated as a peer). Until then every
// command except AUTH, HELLO, QUIT and RESET gets NOAUTH, nothing it sends
// reaches the log, the child or a RAFT* command, and Redis's tighter
// protocol limits apply to what it sends.

// Redis's replies for authentication, word for word (7.0).
const (
	errNoAuth       = "NOAUTH Authentication required."
	errWrongPass    = "WRONGPASS invalid username-password pair or user is disabled."
	errNoPassword   = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	errHelloNoAuth  = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
	defaultUserName = "default"
)

// connectedAuthenticated is whether a new connection starts
// authenticated: a relay stream from a follower always, a client when no
// password is set (it stays authenticated if one is set later, as in Redis).
func (s *frontEnd) connectedAuthenticated(nc net.Conn) bool {
	if _, ok := nc.(*mux.PeerConn); ok {
		return true
	}
	return s.fsm.requirePass() == ""
}

// mustAuth reports whether cl has to authenticate before its commands run.
func (s *frontEnd) mustAuth(cl *clientConn) bool {
	return !cl.authed && s.fsm.requirePass() != ""
}

// prepareRead sets the protocol limits for cl's next read: Redis's
// tighter ones before authentication (the reader then returns one command
// at a time, so that an AUTH lifts them for the very next command, as in
// Redis). It returns how many commands a batch may hold.
func (s *frontEnd) prepareRead(cl *clientConn) int {
	cl.rd.SetAuthenticated(!s.mustAuth(cl))
	return maxBatch
}

// authGate answers a command from a connection that must authenticate:
// an unknown command or a wrong argument count gets its usual error (Redis
// checks those first), every command but AUTH, HELLO, QUIT and RESET gets
// NOAUTH. nil lets the command run.
func (s *frontEnd) authGate(ci *commandInfo, args [][]byte) []byte {
	if ci == nil || !ci.ArityOK(len(args)) {
		return s.check(nil, ci, args)
	}
	if ci.noAuth {
		return nil
	}
	return resp.Error(errNoAuth)
}

// authenticate answers AUTH's arguments (password, or username password),
// also used by HELLO … AUTH; on success cl is authenticated. A failed
// attempt leaves an authenticated connection authenticated, as in Redis.
func (s *frontEnd) authenticate(cl *clientConn, args [][]byte) []byte {
	reply := s.checkPassword(args)
	if bytes.Equal(reply, resp.OK) {
		cl.authed = true
	}
	return reply
}

// checkPassword answers AUTH's arguments without changing the connection:
// OK or Redis's error.
func (s *frontEnd) checkPassword(args [][]byte) []byte {
	password := s.fsm.requirePass()
	var user, pass []byte
	switch len(args) {
	case 1:
		if password == "" {
			return resp.Error(errNoPassword)
		}
		user, pass = []byte(defaultUserName), args[0]
	case 2:
		user, pass = args[0], args[1]
	default:
		return resp.Error("ERR syntax error")
	}
	if string(user) != defaultUserName || (password != "" && !samePassword(pass, password)) {
		return resp.Error(errWrongPass)
	}
	return resp.OK
}

// deauthenticate is RESET's part: the connection is as if new.
func (s *frontEnd) deauthenticate(cl *clientConn) {
	cl.authed = s.fsm.requirePass() == ""
}

// samePassword compares in constant time (over digests, so the length of
// the password does not show either).
func samePassword(given []byte, want string) bool {
	a, b := sha256.Sum256(given), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
