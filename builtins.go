package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/redraft/redraft/internal/command"
	"github.com/redraft/redraft/internal/redisconn"
	"github.com/redraft/redraft/internal/resp"
)

// This file holds the commands redraft answers itself: connection state
// (PING, ECHO, SELECT, QUIT, RESET, AUTH, HELLO, CLIENT), INFO, WAIT, the
// TTL family, SCRIPT EXISTS, FUNCTION LIST and the RAFT* commands. Each is
// a handler named in the command table (commands.go).

// ping answers PING [message].
func (s *frontEnd) ping(_ context.Context, _ *clientConn, args [][]byte) []byte {
	if len(args) > 1 {
		return resp.Bulk(string(args[1]))
	}
	return resp.Status("PONG")
}

// echo answers ECHO message.
func (s *frontEnd) echo(_ context.Context, _ *clientConn, args [][]byte) []byte {
	return resp.Bulk(string(args[1]))
}

// selectDB answers SELECT db: the database is per connection and every
// command carries it into the log.
func (s *frontEnd) selectDB(_ context.Context, cl *clientConn, args [][]byte) []byte {
	db, ok := command.ParseInt(args[1])
	if !ok {
		return resp.Error("ERR value is not an integer or out of range")
	}
	if db < minInt32 || db > maxInt32 {
		return resp.Error("ERR value is out of range, value must between -2147483648 and 2147483647")
	}
	if db < 0 || db >= 16 {
		return resp.Error("ERR DB index is out of range")
	}
	cl.setDB(int(db))
	return resp.OK
}

// quit answers QUIT; the connection closes after the reply.
func (s *frontEnd) quit(_ context.Context, cl *clientConn, _ [][]byte) []byte {
	cl.closing.Store(true)
	return resp.OK
}

// reset answers RESET: the connection's state back to a new one's (no
// MULTI, no WATCH, database 0, no name, replies on; a subscriber leaves
// subscriber mode in subscribedCommand first).
func (s *frontEnd) reset(ctx context.Context, cl *clientConn, _ [][]byte) []byte {
	s.resetState(ctx, cl)
	s.monitors.remove(cl)
	return resp.Status("RESET")
}

// resetState clears a connection's state, as RESET does (tracking off,
// RESP2, no subscriptions).
func (s *frontEnd) resetState(ctx context.Context, cl *clientConn) {
	endSubscription3(cl)
	if cl.track.active.Load() {
		s.tracker.disable(cl)
	}
	s.setProtocol(cl, resp.Proto2)
	s.unwatch(ctx, cl)
	cl.setDB(0)
	cl.setTx(nil)
	cl.replyOff, cl.replySkip = false, 0
	cl.readOnly.Store(false)
	cl.setName("")
	s.deauthenticate(cl)
}

// auth answers AUTH [username] password.
func (s *frontEnd) auth(_ context.Context, cl *clientConn, args [][]byte) []byte {
	return s.authenticate(cl, args[1:])
}

// configGet answers CONFIG GET from the local child, with the values of
// the parameters redraft holds in place of the child's.
func (s *frontEnd) configGet(ctx context.Context, cl *clientConn, args [][]byte) []byte {
	return withHeld(s.localFor(ctx, cl, args), s.fsm.held)
}

// ttl answers TTL, PTTL, EXPIRETIME and PEXPIRETIME.
func (s *frontEnd) ttl(ctx context.Context, cl *clientConn, args [][]byte) []byte {
	reply, err := s.reads.forClient(cl).ttl(ctx, cl.db, command.Lower(args[0]), args[1])
	if err != nil {
		return s.cluster.errorReply(err, args)
	}
	return reply
}

// scriptExists answers SCRIPT EXISTS from the scripts every node knows.
func (s *frontEnd) scriptExists(_ context.Context, _ *clientConn, args [][]byte) []byte {
	out := resp.ArrayHeader(len(args) - 2)
	for _, sha := range args[2:] {
		_, ok := s.fsm.script(strings.ToLower(string(sha)))
		out = append(out, resp.Bool(ok)...)
	}
	return out
}

// functionList answers FUNCTION LIST from the local child, without the
// library prelude.
func (s *frontEnd) functionList(ctx context.Context, cl *clientConn, args [][]byte) []byte {
	return s.reads.localStep(ctx, cl.protocol(), cl.db, redisconn.Step{Args: args, MapReply: stripPreludeFromList})
}

// scriptKill answers SCRIPT KILL and FUNCTION KILL: this node's read-only
// script is killed here; the script the log runs only through the leader,
// only while it has not written (UNKILLABLE otherwise, as in Redis), and
// then on every node.
func (s *frontEnd) scriptKill(_ context.Context, _ *clientConn, args [][]byte) []byte {
	function := command.Lower(args[0]) == "function"
	if reply, handled, err := s.scripts.killReadOnly(function); handled {
		if err != nil {
			return s.cluster.errorReply(err)
		}
		return reply
	}
	reply, running, err := s.scripts.killApplyScript(function)
	switch {
	case !running:
		return resp.Error("NOTBUSY No scripts in execution right now.")
	case err != nil:
		return s.cluster.errorReply(err)
	}
	return reply
}

// unsubscribe answers (P|S)UNSUBSCRIBE outside RESP2 subscriber mode: a
// RESP3 client's subscriptions are on its own child connection; without
// any, Redis replies with a zero count per channel.
func (s *frontEnd) unsubscribe(_ context.Context, cl *clientConn, args [][]byte) []byte {
	if cl.sub != nil {
		return s.subscribe3(cl, args)
	}
	return unsubscribedReply(cl.protocol(), command.Lower(args[0]), args[1:])
}

// hello answers HELLO [protover [AUTH username password] [SETNAME name]].
func (s *frontEnd) hello(_ context.Context, cl *clientConn, args [][]byte) []byte {
	h := s.helloOutcome(cl, args, cl.authed, cl.protocol())
	s.applyHello(cl, h)
	return h.reply
}

// helloResult is what a HELLO does to a connection: its reply, the
// protocol after it, the name it sets (nil: none) and whether its AUTH
// succeeded. The name and the authentication stick even when the command
// fails on a later option, as in Redis 7.0.
type helloResult struct {
	reply  []byte
	proto  resp.Proto
	name   []byte
	authed bool
	ok     bool // the command succeeded
}

// helloOutcome works out what HELLO args does to cl, which is authenticated
// (authed) and speaks proto, without changing cl (a HELLO queued in MULTI
// takes effect only if EXEC runs it). It checks in Redis 7.0's order: the
// version, then each option as it comes (AUTH authenticates and SETNAME
// names on the spot, so a bad option after them leaves the connection
// authenticated and named), then whether the connection is authenticated
// at all.
func (s *frontEnd) helloOutcome(cl *clientConn, args [][]byte, authed bool, proto resp.Proto) helloResult {
	h := helloResult{proto: proto, authed: authed}
	fail := func(msg string) helloResult { h.reply = resp.Error(msg); return h }
	if len(args) > 1 {
		v, ok := command.ParseInt(args[1])
		if !ok {
			return fail("ERR Protocol version is not an integer or out of range")
		}
		if v != 2 && v != 3 {
			return fail("NOPROTO unsupported protocol version")
		}
		h.proto = resp.Proto(v)
	}
	for i := 2; i < len(args); i++ {
		more := len(args) - 1 - i
		switch opt := string(args[i]); {
		case strings.EqualFold(opt, "auth") && more >= 2:
			if reply := s.checkPassword(args[i+1 : i+3]); !bytes.Equal(reply, resp.OK) {
				h.reply = reply
				return h
			}
			h.authed = true
			i += 2
		case strings.EqualFold(opt, "setname") && more >= 1:
			if !validClientName(args[i+1]) {
				return fail(errClientName)
			}
			h.name = args[i+1]
			i++
		default:
			return fail(fmt.Sprintf("ERR Syntax error in HELLO option '%s'", opt))
		}
	}
	if !h.authed && s.fsm.requirePass() != "" {
		return fail(errHelloNoAuth)
	}
	h.ok = true
	h.reply = s.helloMap(cl, h.proto, s.childVersion())
	return h
}

// applyHello makes h's changes to cl.
func (s *frontEnd) applyHello(cl *clientConn, h helloResult) {
	if h.authed {
		cl.authed = true
	}
	if h.name != nil {
		cl.setName(string(h.name))
	}
	if h.ok {
		s.setProtocol(cl, h.proto)
	}
}

// errClientName is Redis's refusal of a client name.
const errClientName = "ERR Client names cannot contain spaces, newlines or special characters."

// validClientName accepts what Redis accepts: printable ASCII, no spaces.
func validClientName(name []byte) bool {
	for _, c := range name {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}

// client handles CLIENT for this node's connections.
func (s *frontEnd) client(_ context.Context, cl *clientConn, args [][]byte) []byte {
	sub := strings.ToLower(string(args[1]))
	switch sub {
	case "setname":
		if len(args) != 3 {
			return resp.Error("ERR wrong number of arguments for 'client|setname' command")
		}
		if !validClientName(args[2]) {
			return resp.Error(errClientName)
		}
		cl.setName(string(args[2]))
		return resp.OK
	case "getname":
		if name := cl.getName(); name != "" {
			return resp.Bulk(name)
		}
		return resp.NullBulkIn(cl.protocol())
	case "id":
		return resp.Integer(cl.id)
	case "setinfo", "no-evict", "no-touch":
		return resp.OK
	case "reply":
		if len(args) != 3 {
			return resp.Error("ERR wrong number of arguments for 'client|reply' command")
		}
		switch strings.ToLower(string(args[2])) {
		case "on":
			cl.replyOff, cl.replySkip = false, 0
		case "off":
			cl.replyOff = true
		case "skip":
			cl.replySkip = 2 // this reply and the next one
		default:
			return resp.Error("ERR syntax error")
		}
		return resp.OK
	case "info":
		return textReply(cl.protocol(), cl.listLine(s.wall())+"\n")
	case "list":
		var b strings.Builder
		now := s.wall()
		s.clients.each(func(other *clientConn) { b.WriteString(other.listLine(now) + "\n") })
		return textReply(cl.protocol(), b.String())
	case "tracking":
		return s.clientTrackingCommand(cl, args)
	case "caching":
		return s.clientCaching(cl, args)
	case "getredir":
		return clientGetRedir(cl)
	case "trackinginfo":
		return clientTrackingInfo(cl)
	case "kill":
		return s.clientKill(cl, args[2:])
	case "help":
		lines := []string{
			"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GETNAME", "    Return the name of the current connection.",
			"ID", "    Return the ID of the current connection.",
			"INFO", "    Return information about the current client connection.",
			"KILL <ip:port>|ID <id>|ADDR <ip:port>|SKIPME yes|no", "    Kill connections of this node.",
			"LIST", "    Return information about this node's client connections.",
			"REPLY (ON|OFF|SKIP)", "    Control the replies sent to the current connection.",
			"SETNAME <name>", "    Assign the name <name> to the current connection.",
			"SETINFO <LIB-NAME|LIB-VER> <value>", "    Accepted and ignored.",
			"TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]", "         [OPTIN] [OPTOUT] [NOLOOP]",
			"    Control server assisted client side caching.",
			"CACHING (YES|NO)", "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
			"GETREDIR", "    Return the client ID we are redirecting to when tracking is enabled.",
			"TRACKINGINFO", "    Return information about current client's tracking status.",
			"HELP", "    Print this help.",
		}
		out := resp.ArrayHeader(len(lines))
		for _, l := range lines {
			out = append(out, resp.Status(l)...)
		}
		return out
	}
	return resp.Error(fmt.Sprintf("ERR unknown subcommand or wrong number of arguments for '%s'. Try CLIENT HELP.", args[1]))
}

// clientKill closes this node's connections matching CLIENT KILL's filters
// (the old "addr" form, or ID, ADDR and SKIPME pairs).
func (s *frontEnd) clientKill(self *clientConn, args [][]byte) []byte {
	if len(args) == 1 {
		killed := s.killClients(self, func(c *clientConn) bool { return c.addr == string(args[0]) }, false)
		if killed == 0 {
			return resp.Error("ERR No such client")
		}
		return resp.OK
	}
	if len(args) == 0 || len(args)%2 != 0 {
		return resp.Error("ERR syntax error")
	}
	var filters []func(*clientConn) bool
	skipMe := true
	for i := 0; i < len(args); i += 2 {
		v := string(args[i+1])
		switch strings.ToLower(string(args[i])) {
		case "id":
			id, ok := command.ParseInt([]byte(v))
			if !ok {
				return resp.Error("ERR client-id should be greater than 0")
			}
			filters = append(filters, func(c *clientConn) bool { return c.id == id })
		case "addr":
			filters = append(filters, func(c *clientConn) bool { return c.addr == v })
		case "skipme":
			skipMe = strings.EqualFold(v, "yes")
		default:
			return resp.Error("ERR syntax error")
		}
	}
	match := func(c *clientConn) bool {
		for _, f := range filters {
			if !f(c) {
				return false
			}
		}
		return true
	}
	return resp.Integer(int64(s.killClients(self, match, skipMe)))
}

// killClients closes every matching connection and counts them.
func (s *frontEnd) killClients(self *clientConn, match func(*clientConn) bool, skipMe bool) int {
	n := 0
	s.clients.each(func(c *clientConn) {
		if (c != self || !skipMe) && match(c) {
			c.kill()
			n++
		}
	})
	return n
}

// raftCommand answers redraft's own RAFT* commands.
func (s *frontEnd) raftCommand(ctx context.Context, cl *clientConn, args [][]byte) []byte {
	switch command.Lower(args[0]) {
	case "raftleader":
		if addr := s.node.leaderAddr(); addr != "" {
			return resp.Bulk(addr)
		}
		return resp.Error("CLUSTERDOWN no leader is known yet")
	case "raftstate":
		return resp.Status(s.node.state().String())
	case "raftterm":
		return resp.Integer(int64(s.node.term()))
	case "raftstats":
		return sortedPairs(cl.protocol(), s.raftStats())
	case "raftpeers":
		return s.peers()
	case "raftsnapshot":
		if err := s.node.snapshot(); err != nil {
			return resp.Error("ERR snapshot failed: " + err.Error())
		}
		return resp.OK
	case "raftdigest":
		return s.digest()
	case "raftaddpeer":
		switch {
		case len(args) == 2:
			return s.changeMembers(args[1], s.node.addPeer)
		case len(args) == 3 && strings.EqualFold(string(args[2]), "nonvoter"):
			return s.changeMembers(args[1], s.node.addNonvoter)
		}
		return resp.Error("ERR syntax error")
	case "raftremovepeer":
		return s.changeMembers(args[1], s.node.removePeer)
	case "raftpromote":
		return s.changeMembers(args[1], s.node.promote)
	case "rafttransferleader":
		return s.transferLeader(args)
	}
	return resp.Error("ERR unknown command")
}

// transferLeader answers RAFTTRANSFERLEADER [host:port].
func (s *frontEnd) transferLeader(args [][]byte) []byte {
	if len(args) > 2 {
		return resp.Error("ERR syntax error")
	}
	target := ""
	if len(args) == 2 {
		a, err := normalizeAddr(string(args[1]))
		if err != nil {
			return resp.Error("ERR " + err.Error())
		}
		target = a
	}
	return s.changeMembers([]byte(s.node.id), func(string) error { return s.node.transferLeadership(target) })
}

// changeMembers adds or removes the member at addr (leader only).
func (s *frontEnd) changeMembers(addr []byte, change func(string) error) []byte {
	if !s.node.isLeader() {
		return s.cluster.errorReply(s.node.leaderError())
	}
	a, err := normalizeAddr(string(addr))
	if err != nil {
		return resp.Error("ERR " + err.Error())
	}
	if err := change(a); err != nil {
		return s.cluster.errorReply(err)
	}
	return resp.OK
}

// digest answers RAFTDIGEST: the applied index and a digest of the data.
func (s *frontEnd) digest() []byte {
	c, err := s.reads.pool.Get()
	if err != nil {
		return resp.Error("ERR " + err.Error())
	}
	idx, digest, err := s.fsm.digest(c)
	if err != nil {
		c.Close()
		return resp.Error("ERR " + err.Error())
	}
	s.reads.pool.Put(c)
	return append(append(resp.ArrayHeader(2), resp.Integer(int64(idx))...), resp.Bulk(digest)...)
}

// sortedPairs renders m as a map in RESP3, a flat array of key/value bulks
// in RESP2, by key.
func sortedPairs(p resp.Proto, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := resp.AppendMap(nil, p, len(keys))
	for _, k := range keys {
		out = append(out, resp.Bulk(k)...)
		out = append(out, resp.Bulk(m[k])...)
	}
	return out
}

// peers lists every member with its address and role.
func (s *frontEnd) peers() []byte {
	servers, err := s.node.members()
	if err != nil {
		return resp.Error("ERR " + err.Error())
	}
	leader := s.node.leaderAddr()
	out := resp.ArrayHeader(len(servers))
	for _, srv := range servers {
		state := "Follower"
		switch {
		case string(srv.Address) == leader:
			state = "Leader"
		case srv.Suffrage != raft.Voter:
			state = "Nonvoter"
		}
		out = append(out, resp.ArrayHeader(3)...)
		out = append(out, resp.Bulk(string(srv.ID))...)
		out = append(out, resp.Bulk(string(srv.Address))...)
		out = append(out, resp.Bulk(state)...)
	}
	return out
}

// wait answers WAIT: a write is acknowledged only once a Raft majority holds
// it, so the replicas known to hold the connection's writes are a majority
// less this node. WAIT returns that number without blocking longer than its
// timeout (at once for timeout 0: more cannot be promised).
func (s *frontEnd) wait(ctx context.Context, _ *clientConn, args [][]byte) []byte {
	want, ok1 := command.ParseInt(args[1])
	timeout, ok2 := command.ParseInt(args[2])
	if !ok1 || !ok2 {
		return resp.Error("ERR value is not an integer or out of range")
	}
	if timeout < 0 {
		return resp.Error("ERR timeout is negative")
	}
	if !s.node.isLeader() {
		return s.cluster.errorReply(s.node.leaderError())
	}
	servers, err := s.node.members()
	if err != nil {
		return resp.Error("ERR " + err.Error())
	}
	voters := 0
	for _, srv := range servers {
		if srv.Suffrage == raft.Voter {
			voters++
		}
	}
	have := int64(voters / 2)
	if have < want && timeout > 0 {
		t := time.NewTimer(time.Duration(timeout) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return resp.Integer(have)
}

// configSet answers CONFIG SET. Parameters that every node may share go
// through the log; a per-node parameter set to the value the child already
// has is a no-op and answers OK, as it would on Redis; any other per-node
// change is refused.
func (s *frontEnd) configSet(ctx context.Context, cl *clientConn, args [][]byte) []byte {
	if len(args) < 4 {
		return resp.Error("ERR wrong number of arguments for 'config|set' command")
	}
	if bad := configSetMalformed(args); bad != nil {
		return bad // odd arguments, a parameter twice (requirepass never reaches the child to tell)
	}
	shared := [][]byte{args[0], args[1]}
	local := [][]byte{args[0], args[1]}
	for i := 2; i+1 < len(args); i += 2 {
		if configSetRefused([][]byte{nil, nil, args[i], args[i+1]}) == "" {
			shared = append(shared, args[i], args[i+1])
			continue
		}
		known, same, err := s.childHas(ctx, string(args[i]), string(args[i+1]))
		switch {
		case err != nil:
			return errorReply(err)
		case !known:
			return resp.Error(fmt.Sprintf("ERR Unknown option or number of arguments for CONFIG SET - '%s'", args[i]))
		case !same:
			return configSetRefusal(strings.ToLower(string(args[i])))
		}
		local = append(local, args[i], args[i+1])
	}
	if len(local) > 2 {
		// Unchanged values: the local child still judges them, so that an
		// immutable or protected parameter fails as it does in Redis.
		if raw := s.reads.local(ctx, 0, local); resp.ReplyIsError(raw) {
			return raw
		}
	}
	if len(shared) == 2 {
		return resp.OK
	}
	replies, err := s.proposer.write(ctx, []entryCmd{{DB: cl.db, Args: shared}})
	if err != nil {
		return s.cluster.errorReply(err)
	}
	return replies[0]
}

// childHas reports whether the local child knows a parameter (by its exact
// name, not as a pattern) and whether it already has value, compared as
// CONFIG GET shows it, case-insensitively.
func (s *frontEnd) childHas(ctx context.Context, param, value string) (known, same bool, err error) {
	raw := s.reads.local(ctx, 0, [][]byte{[]byte("CONFIG"), []byte("GET"), []byte(param)})
	if resp.ReplyIsError(raw) {
		return false, false, nil
	}
	v, err := resp.Parse(raw)
	if err != nil {
		return false, false, err
	}
	items, _ := v.([]any)
	for i := 0; i+1 < len(items); i += 2 {
		if strings.EqualFold(resp.AsString(items[i]), param) {
			return true, strings.EqualFold(resp.AsString(items[i+1]), value), nil
		}
	}
	return false, false, nil
}

// configSetRefusal explains why a CONFIG SET parameter is not replicated.
func configSetRefusal(param string) []byte {
	return resp.Error(fmt.Sprintf("ERR CONFIG SET '%s' is not supported by redraft: only parameters that are safe to apply on every node can be set (see README)", param))
}

// save answers SAVE and BGSAVE: redraft's data is durable in the Raft log;
// they take a Raft snapshot (BGSAVE in the background), as Redis takes an
// RDB snapshot.
func (s *frontEnd) save(_ context.Context, _ *clientConn, args [][]byte) []byte {
	if command.Lower(args[0]) == "save" {
		if err := s.snapshotNow(); err != nil {
			return resp.Error("ERR " + err.Error())
		}
		return resp.OK
	}
	if !s.saving.CompareAndSwap(false, true) {
		return resp.Error("ERR Background save already in progress")
	}
	go func() {
		defer s.saving.Store(false)
		if err := s.snapshotNow(); err != nil {
			s.log.Warn("BGSAVE", "err", err)
		}
	}()
	return resp.Status("Background saving started")
}

// snapshotNow takes a Raft snapshot; nothing new to snapshot is not an
// error here (what is there is saved already).
func (s *frontEnd) snapshotNow() error {
	err := s.node.snapshot()
	if err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return err
	}
	s.lastSaveAt.Store(s.wall() / 1000)
	return nil
}

// lastSave answers LASTSAVE: when the last snapshot finished (or the node
// started), in Unix seconds.
func (s *frontEnd) lastSave(_ context.Context, _ *clientConn, _ [][]byte) []byte {
	return resp.Integer(s.lastSaveAt.Load())
}
