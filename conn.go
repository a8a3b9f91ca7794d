package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// single answers one command that is neither a plain read nor a plain
// write: validation errors, connection state, RAFT* commands, TTL reads and
// local introspection. closeAfter asks the caller to close the connection.
func (s *server) single(ctx context.Context, cl *client, info *commandInfo, args [][]byte) (reply []byte, closeAfter bool) {
	if info == nil && raftCommands[lower(args[0])] {
		name := lower(args[0])
		return s.raftCommand(ctx, name, args), false
	}
	switch {
	case info == nil:
		return respError(unknownCommandError(args)), false
	case !info.arityOK(len(args)):
		return respError(info.arityError()), false
	case info.kind == kindRefused:
		return respError(info.refusal), false
	case s.overMemory(info):
		return respError("OOM command not allowed when used memory > 'maxmemory'."), false
	case info.name == "config|set":
		return configSetRefusal(configSetAllowed(args)), false
	case info.kind == kindLocal:
		return s.readSteps(ctx, cl.db, []readStep{{args: args}}, false)[0], false
	}
	cmdName := info.name
	if strings.HasPrefix(cmdName, "client|") {
		cmdName = "client"
	}
	switch cmdName {
	case "ping":
		if len(args) > 1 {
			return respBulk(string(args[1])), false
		}
		return respStatus("PONG"), false
	case "echo":
		return respBulk(string(args[1])), false
	case "select":
		db, err := strconv.Atoi(string(args[1]))
		if err != nil {
			return respError("ERR value is not an integer or out of range"), false
		}
		if db < 0 || db >= 16 {
			return respError("ERR DB index is out of range"), false
		}
		cl.db = db
		return respOK, false
	case "quit":
		return respOK, true
	case "reset":
		s.unwatch(ctx, cl)
		cl.db, cl.multi, cl.inTx, cl.dirty = 0, nil, false, false
		cl.setName("")
		return respStatus("RESET"), false
	case "auth":
		return authReply(args[1:]), false
	case "hello":
		return s.hello(cl, args), false
	case "multi":
		if cl.inTx {
			return respError("ERR MULTI calls can not be nested"), false
		}
		cl.inTx, cl.multi, cl.dirty, cl.txDB = true, nil, false, cl.db
		return respOK, false
	case "exec":
		if !cl.inTx {
			return respError("ERR EXEC without MULTI"), false
		}
		return s.exec(ctx, cl), false
	case "discard":
		if !cl.inTx {
			return respError("ERR DISCARD without MULTI"), false
		}
		cl.inTx, cl.multi, cl.dirty = false, nil, false
		s.unwatch(ctx, cl)
		return respOK, false
	case "watch":
		if cl.inTx {
			return respError("ERR WATCH inside MULTI is not allowed"), false
		}
		return s.watch(ctx, cl, args[1:]), false
	case "unwatch":
		s.unwatch(ctx, cl)
		return respOK, false
	case "info":
		return s.info(ctx, args), false
	case "ttl", "pttl", "expiretime", "pexpiretime":
		if s.consistency != "low" && s.shouldForward() {
			return s.forward(cl, [][][]byte{args}, 0)[0], false
		}
		return s.readSteps(ctx, cl.db, []readStep{ttlStep(info.name, args[1])}, true)[0], false
	case "script|exists":
		out := respArrayHeader(len(args) - 2)
		for _, sha := range args[2:] {
			_, ok := s.fsm.script(strings.ToLower(string(sha)))
			out = append(out, respInt(boolInt(ok))...)
		}
		return out, false
	case "client":
		return s.clientCommand(cl, args), false
	case "wait":
		if s.shouldForward() {
			return s.forward(cl, [][][]byte{args}, 0)[0], false
		}
		return s.wait(ctx, args), false
	case "function|list":
		return s.readSteps(ctx, cl.db, []readStep{{args: args, mapReply: stripPreludeFromList}}, false)[0], false
	case "unsubscribe", "punsubscribe", "sunsubscribe":
		// Not subscribed: Redis answers with a zero count per channel.
		return unsubscribeReply(info.name, args[1:]), false
	}
	return respError(fmt.Sprintf("ERR command '%s' is not supported by redraft", info.name)), false
}

// ttlStep reads the shifted deadline and answers TTL, PTTL, EXPIRETIME or
// PEXPIRETIME as Redis would, against the local clock.
func ttlStep(name string, key []byte) readStep {
	return readStep{
		args: [][]byte{[]byte("PEXPIRETIME"), key},
		mapReply: func(raw []byte) []byte {
			at, ok := replyInt(raw)
			if !ok || at < 0 {
				return raw
			}
			return respInt(ttlReply(name, unshift(at), nowMS()))
		},
	}
}

// ttlReply computes a TTL-family reply from an absolute deadline.
func ttlReply(name string, deadline, now int64) int64 {
	left := deadline - now
	if left <= 0 && (name == "ttl" || name == "pttl") {
		return -2
	}
	switch name {
	case "ttl":
		return (left + 500) / 1000
	case "pttl":
		return left
	case "expiretime":
		return (deadline + 500) / 1000
	}
	return deadline
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// hello answers HELLO for RESP2; RESP3 is not offered.
func (s *server) hello(cl *client, args [][]byte) []byte {
	if len(args) > 1 {
		v, err := strconv.Atoi(string(args[1]))
		if err != nil {
			return respError("ERR Protocol version is not an integer or out of range")
		}
		if v != 2 {
			return respError("NOPROTO unsupported protocol version")
		}
		for i := 2; i < len(args); i++ {
			switch strings.ToLower(string(args[i])) {
			case "auth":
				if i+2 >= len(args) {
					return respError("ERR Syntax error in HELLO option 'auth'")
				}
				if reply := authReply(args[i+1 : i+3]); !bytes.Equal(reply, respOK) {
					return reply
				}
				i += 2
			case "setname":
				if i+1 < len(args) {
					cl.setName(string(args[i+1]))
					i++
				}
			}
		}
	}
	version := "7.0.0"
	if raw := s.local("INFO", "server"); raw != nil {
		info, _ := replyString(raw)
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "redis_version:"); ok {
				version = v
			}
		}
	}
	out := respArrayHeader(14)
	for _, kv := range [][2]string{{"server", "redis"}, {"version", version}} {
		out = append(out, respBulk(kv[0])...)
		out = append(out, respBulk(kv[1])...)
	}
	out = append(out, respBulk("proto")...)
	out = append(out, respInt(2)...)
	out = append(out, respBulk("id")...)
	out = append(out, respInt(cl.id)...)
	for _, kv := range [][2]string{{"mode", "standalone"}, {"role", "master"}} {
		out = append(out, respBulk(kv[0])...)
		out = append(out, respBulk(kv[1])...)
	}
	out = append(out, respBulk("modules")...)
	return append(out, respArrayHeader(0)...)
}

// clientCommand handles CLIENT for this node's connections.
func (s *server) clientCommand(cl *client, args [][]byte) []byte {
	sub := strings.ToLower(string(args[1]))
	switch sub {
	case "setname":
		if len(args) != 3 {
			return respError("ERR wrong number of arguments for 'client|setname' command")
		}
		if strings.ContainsAny(string(args[2]), " \n") {
			return respError("ERR Client names cannot contain spaces, newlines or special characters.")
		}
		cl.setName(string(args[2]))
		return respOK
	case "getname":
		if name := cl.getName(); name != "" {
			return respBulk(name)
		}
		return respNullBulk
	case "id":
		return respInt(cl.id)
	case "setinfo", "no-evict", "no-touch":
		return respOK
	case "reply":
		if len(args) != 3 {
			return respError("ERR wrong number of arguments for 'client|reply' command")
		}
		switch strings.ToLower(string(args[2])) {
		case "on":
			cl.replyOff, cl.replySkip = false, 0
		case "off":
			cl.replyOff = true
		case "skip":
			cl.replySkip = 2 // this reply and the next one
		default:
			return respError("ERR syntax error")
		}
		return respOK
	case "info":
		return respBulk(clientLine(cl, cl.db) + "\n")
	case "list":
		var b strings.Builder
		s.clients.Range(func(_, v any) bool {
			other := v.(*client)
			db := -1
			if other == cl {
				db = cl.db
			}
			b.WriteString(clientLine(other, db) + "\n")
			return true
		})
		return respBulk(b.String())
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
			"HELP", "    Print this help.",
		}
		out := respArrayHeader(len(lines))
		for _, l := range lines {
			out = append(out, respStatus(l)...)
		}
		return out
	}
	return respError(fmt.Sprintf("ERR unknown subcommand or wrong number of arguments for '%s'. Try CLIENT HELP.", args[1]))
}

// clientKill closes this node's connections matching CLIENT KILL's filters
// (the old "addr" form, or ID, ADDR and SKIPME pairs).
func (s *server) clientKill(self *client, args [][]byte) []byte {
	if len(args) == 1 {
		killed := s.killClients(self, func(c *client) bool { return c.addr == string(args[0]) }, false)
		if killed == 0 {
			return respError("ERR No such client")
		}
		return respOK
	}
	if len(args) == 0 || len(args)%2 != 0 {
		return respError("ERR syntax error")
	}
	var filters []func(*client) bool
	skipMe := true
	for i := 0; i < len(args); i += 2 {
		v := string(args[i+1])
		switch strings.ToLower(string(args[i])) {
		case "id":
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return respError("ERR client-id should be greater than 0")
			}
			filters = append(filters, func(c *client) bool { return c.id == id })
		case "addr":
			filters = append(filters, func(c *client) bool { return c.addr == v })
		case "skipme":
			skipMe = strings.EqualFold(v, "yes")
		default:
			return respError("ERR syntax error")
		}
	}
	match := func(c *client) bool {
		for _, f := range filters {
			if !f(c) {
				return false
			}
		}
		return true
	}
	return respInt(int64(s.killClients(self, match, skipMe)))
}

// killClients closes every matching connection and counts them.
func (s *server) killClients(self *client, match func(*client) bool, skipMe bool) int {
	n := 0
	s.clients.Range(func(_, v any) bool {
		c := v.(*client)
		if (c != self || !skipMe) && match(c) {
			c.conn.Close()
			n++
		}
		return true
	})
	return n
}

func (c *client) setName(name string) {
	c.nameMu.Lock()
	c.name = name
	c.nameMu.Unlock()
}

func (c *client) getName() string {
	c.nameMu.Lock()
	defer c.nameMu.Unlock()
	return c.name
}

// clientLine renders a CLIENT LIST line (db < 0: not known here).
func clientLine(cl *client, db int) string {
	return fmt.Sprintf("id=%d addr=%s laddr= fd=0 name=%s db=%d cmd=client", cl.id, cl.addr, cl.getName(), db)
}

// info answers INFO from the local child, with a Raft section added.
func (s *server) info(ctx context.Context, args [][]byte) []byte {
	section := ""
	if len(args) > 1 {
		section = strings.ToLower(string(args[1]))
	}
	var text string
	if section != "raft" {
		raw := s.readSteps(ctx, 0, []readStep{{args: args}}, false)[0]
		if replyIsError(raw) {
			return raw
		}
		text, _ = replyString(raw)
	}
	if section == "" || section == "raft" || section == "all" || section == "everything" || section == "default" {
		stats := s.raftStats()
		var b strings.Builder
		if text != "" {
			b.WriteString(strings.TrimRight(text, "\r\n"))
			b.WriteString("\r\n\r\n")
		}
		b.WriteString("# Raft\r\n")
		for _, k := range []string{"id", "state", "leader", "term", "last_log_index", "commit_index", "applied_index", "num_peers", "last_snapshot_index"} {
			fmt.Fprintf(&b, "raft_%s:%s\r\n", k, stats[k])
		}
		b.WriteString("raft_consistency:" + s.consistency + "\r\n")
		text = b.String()
	}
	return respBulk(text)
}

// raftCommand answers redraft's own RAFT* commands.
func (s *server) raftCommand(ctx context.Context, name string, args [][]byte) []byte {
	wantArgs := map[string]int{"raftaddpeer": 2, "raftremovepeer": 2}[name]
	if wantArgs == 0 {
		wantArgs = 1
	}
	if len(args) != wantArgs {
		return respError(fmt.Sprintf("ERR wrong number of arguments for '%s' command", name))
	}
	switch name {
	case "raftleader":
		if addr := s.node.leaderAddr(); addr != "" {
			return respBulk(addr)
		}
		return respError("CLUSTERDOWN no leader is known yet")
	case "raftstate":
		return respStatus(s.node.raft.State().String())
	case "raftstats":
		return sortedPairs(s.raftStats())
	case "raftpeers":
		return s.peers()
	case "raftsnapshot":
		if err := s.node.raft.Snapshot().Error(); err != nil {
			return respError("ERR snapshot failed: " + err.Error())
		}
		return respOK
	case "raftdigest":
		c, err := s.pool.get()
		if err != nil {
			return respError("ERR " + err.Error())
		}
		idx, digest, err := s.fsm.digest(c)
		if err != nil {
			c.Close()
			return respError("ERR " + err.Error())
		}
		s.pool.put(c)
		return append(append(respArrayHeader(2), respInt(int64(idx))...), respBulk(digest)...)
	case "raftaddpeer", "raftremovepeer":
		if s.node.raft.State() != raft.Leader {
			return s.node.notLeaderError()
		}
		addr, err := normalizeAddr(string(args[1]))
		if err != nil {
			return respError("ERR " + err.Error())
		}
		if name == "raftaddpeer" {
			err = s.node.addPeer(addr)
		} else {
			err = s.node.removePeer(addr)
		}
		if err != nil {
			if err == raft.ErrNotLeader {
				return s.node.notLeaderError()
			}
			return respError("ERR " + err.Error())
		}
		return respOK
	}
	return respError("ERR unknown command")
}

// peers lists every member with its address and role.
func (s *server) peers() []byte {
	fut := s.node.raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		return respError("ERR " + err.Error())
	}
	leader := s.node.leaderAddr()
	servers := fut.Configuration().Servers
	out := respArrayHeader(len(servers))
	for _, srv := range servers {
		state := "Follower"
		switch {
		case string(srv.Address) == leader:
			state = "Leader"
		case srv.Suffrage != raft.Voter:
			state = "Nonvoter"
		}
		out = append(out, respArrayHeader(3)...)
		out = append(out, respBulk(string(srv.ID))...)
		out = append(out, respBulk(string(srv.Address))...)
		out = append(out, respBulk(state)...)
	}
	return out
}

// unsubscribeReply is Redis's answer to UNSUBSCRIBE outside subscriber mode.
func unsubscribeReply(name string, channels [][]byte) []byte {
	if len(channels) == 0 {
		return append(append(append(respArrayHeader(3), respBulk(name)...), respNullBulk...), respInt(0)...)
	}
	var out []byte
	for _, ch := range channels {
		out = append(out, respArrayHeader(3)...)
		out = append(out, respBulk(name)...)
		out = append(out, respBulk(string(ch))...)
		out = append(out, respInt(0)...)
	}
	return out
}

// configSetRefusal explains why a CONFIG SET parameter is not replicated.
func configSetRefusal(param string) []byte {
	return respError(fmt.Sprintf("ERR CONFIG SET '%s' is not supported by redraft: only parameters that are safe to apply on every node can be set (see README)", param))
}

// wait answers WAIT: a write is acknowledged only once a Raft majority holds
// it, so the replicas known to hold the connection's writes are a majority
// less this node. WAIT returns that number without blocking longer than its
// timeout (at once for timeout 0: more cannot be promised).
func (s *server) wait(ctx context.Context, args [][]byte) []byte {
	want, err1 := strconv.ParseInt(string(args[1]), 10, 64)
	timeout, err2 := strconv.ParseInt(string(args[2]), 10, 64)
	if err1 != nil || err2 != nil {
		return respError("ERR value is not an integer or out of range")
	}
	if timeout < 0 {
		return respError("ERR timeout is negative")
	}
	if s.node.raft.State() != raft.Leader {
		return s.node.notLeaderError()
	}
	fut := s.node.raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		return respError("ERR " + err.Error())
	}
	voters := 0
	for _, srv := range fut.Configuration().Servers {
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
	return respInt(have)
}

// authReply answers AUTH [username] password: there are no passwords yet,
// so the default user (which has none) accepts any password, as Redis does.
func authReply(args [][]byte) []byte {
	switch {
	case len(args) == 1:
		return respError("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
	case len(args) == 2 && string(args[0]) == "default":
		return respOK
	case len(args) == 2:
		return respError("WRONGPASS invalid username-password pair or user is disabled.")
	}
	return respError("ERR syntax error")
}
