package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/raft"
)

// single answers one command that is neither a plain read nor a plain
// write: validation errors, connection state, RAFT* commands, TTL reads and
// local introspection. closeAfter asks the caller to close the connection.
func (s *server) single(ctx context.Context, cl *client, info *commandInfo, args [][]byte) (reply []byte, closeAfter bool) {
	name := lower(args[0])
	if raftCommands[name] {
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
		cl.db, cl.multi, cl.inTx, cl.dirty, cl.name = 0, nil, false, false, ""
		return respStatus("RESET"), false
	case "auth":
		return respError("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"), false
	case "hello":
		return s.hello(cl, args), false
	case "multi":
		if cl.inTx {
			return respError("ERR MULTI calls can not be nested"), false
		}
		cl.inTx, cl.multi, cl.dirty = true, nil, false
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
		return deadline / 1000
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
				return respError("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
			case "setname":
				if i+1 < len(args) {
					cl.name = string(args[i+1])
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

// clientCommand handles CLIENT for this connection.
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
		cl.name = string(args[2])
		return respOK
	case "getname":
		if cl.name == "" {
			return respNullBulk
		}
		return respBulk(cl.name)
	case "id":
		return respInt(cl.id)
	case "setinfo":
		return respOK
	case "info":
		return respBulk(clientLine(cl) + "\n")
	case "list":
		return respBulk(clientLine(cl) + "\n")
	case "reply":
		return respOK
	}
	return respError(fmt.Sprintf("ERR unknown subcommand or wrong number of arguments for '%s'. Try CLIENT HELP.", args[1]))
}

// clientLine renders a CLIENT LIST line for cl.
func clientLine(cl *client) string {
	return fmt.Sprintf("id=%d addr=%s name=%s db=%d multi=%d cmd=client", cl.id, cl.addr, cl.name, cl.db, map[bool]int{true: len(cl.multi), false: -1}[cl.inTx])
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
