package main

import (
	"context"
	"fmt"

	"github.com/redraft/redraft/internal/command"
	"github.com/redraft/redraft/internal/resp"
)

// MULTI queues commands in the front end; EXEC proposes the whole queue as
// one log entry, which every child runs as one MULTI/EXEC. WATCH travels
// through the log and is decided by each child (watch.go).

// transaction is a connection's MULTI state.
type transaction struct {
	queue []entryCmd
	dirty bool // a queued command was rejected: EXEC aborts
	db    int  // database queued commands run in (SELECT inside MULTI)
}

// multi answers MULTI.
func (s *frontEnd) multi(_ context.Context, cl *clientConn, _ [][]byte) []byte {
	if cl.tx != nil {
		return resp.Error("ERR MULTI calls can not be nested")
	}
	cl.setTx(&transaction{db: cl.db})
	return resp.OK
}

// queue checks a command sent inside MULTI and queues it.
func (s *frontEnd) queue(cl *clientConn, ci *commandInfo, args [][]byte) []byte {
	reply := s.check(cl, ci, args)
	if reply == nil && ci.Name == "config|set" {
		// Inside MULTI the child runs it on every node: replicated
		// parameters only.
		if param := configSetRefused(args); param != "" {
			reply = configSetRefusal(param)
		}
	}
	if reply == nil && ci.NoMulti {
		reply = resp.Error("ERR Command not allowed inside a transaction")
	}
	if reply == nil && !ci.queueable() && !ci.isBlockingCall(args) {
		// Blocking calls are queued: the child runs them as non-blocking
		// ones inside the transaction, as Redis does.
		reply = resp.Error(fmt.Sprintf("ERR command '%s' cannot be used inside MULTI on redraft", ci.Name))
	}
	if reply != nil {
		cl.tx.dirty = true
		return reply
	}
	owned := make([][]byte, len(args))
	for i, a := range args {
		owned[i] = append([]byte(nil), a...)
	}
	cl.tx.queue = append(cl.tx.queue, entryCmd{DB: cl.tx.db, Args: owned})
	cl.inMulti.Store(int32(len(cl.tx.queue)))
	if ci.Name == "select" {
		// Commands queued after it run in that database.
		if db, ok := command.ParseDB(args[1]); ok {
			cl.tx.db = db
		}
	}
	return resp.Status("QUEUED")
}

// exec answers EXEC: the queued transaction is proposed as one log entry.
func (s *frontEnd) exec(ctx context.Context, cl *clientConn, _ [][]byte) []byte {
	tx := cl.tx
	if tx == nil {
		return resp.Error("ERR EXEC without MULTI")
	}
	cl.setTx(nil)
	if reply := s.clusterExec(tx); reply != nil {
		if cl.watching {
			s.unwatch(ctx, cl)
		}
		return reply
	}
	if tx.dirty || len(tx.queue) == 0 {
		if cl.watching {
			s.unwatch(ctx, cl)
		}
		if tx.dirty {
			return resp.Error("EXECABORT Transaction discarded because of previous errors.")
		}
		return resp.ArrayHeader(0)
	}
	queue, hellos := s.planHellos(cl, tx.queue)
	var reply []byte
	if s.readOnlyHere(cl, queue, hellos) {
		// Reads only: one round trip to this node's child, as a run of
		// reads is (clients that cache, such as rueidis, read this way).
		var err error
		if reply, err = s.reads.forClient(cl).tx(ctx, cl.protocol(), cl.db, argsOf(queue)); err != nil {
			return s.cluster.errorReply(err, argsOf(queue)...)
		}
	} else if s.relay.active() {
		cmds := append([][][]byte{{[]byte("MULTI")}}, argsOf(queue)...)
		cmds = append(cmds, [][]byte{[]byte("EXEC")})
		done := s.relayedWrite(ctx, cl, argsOf(queue))
		reply = s.relay.run(cl, cmds, len(queue)+1, requestTimeout)[0]
		cl.relayWatch = false // EXEC ends a WATCH
		done()
		if len(hellos) > 0 {
			cl.relayProto = protoUnknown // the leader ran the HELLOs
		}
	} else {
		execArgs := [][]byte{[]byte("EXEC")}
		if cl.watching {
			execArgs = append(execArgs, []byte(watchID(s.node.id, s.epoch, cl.id)))
			cl.watching = false
		}
		cmds := []entryCmd{{DB: cl.db, Args: execArgs, Sub: queue, Proto: cl.protocol()}}
		done := s.ownWrite(cl, cmds)
		replies, err := s.proposer.write(ctx, cmds)
		done()
		if err != nil {
			return s.cluster.errorReply(err, argsOf(queue)...)
		}
		reply = replies[0]
	}
	if len(reply) > 0 && reply[0] == '*' {
		for _, c := range tx.queue {
			if command.Lower(c.Args[0]) == "select" {
				if db, ok := command.ParseDB(c.Args[1]); ok {
					cl.setDB(db)
				}
			}
		}
		reply = s.answerHellos(cl, reply, hellos)
	}
	return reply
}

// readOnlyHere reports whether a transaction may run on this node's child
// as a read: it holds only reads (TTL reads, PING and ECHO included, no
// scripts, no HELLO), no WATCH is in force, and this node serves reads
// itself (it is not relaying them to the leader). All its commands are in
// the connection's database, since SELECT is not a read.
func (s *frontEnd) readOnlyHere(cl *clientConn, queue []entryCmd, hellos map[int]helloResult) bool {
	if cl.watching || cl.relayWatch || len(hellos) > 0 || (s.relay.active() && s.reads.forClient(cl).level != consistencyLow) {
		return false
	}
	for _, c := range queue {
		ci := s.cmds.lookup(c.Args)
		switch {
		case ci == nil || c.DB != cl.db:
			return false
		case ci.kind == kindRead:
			switch ci.Name {
			case "eval_ro", "evalsha_ro", "fcall_ro":
				return false
			}
		case ci.relay == relayAsRead && ci.multi == multiQueue: // TTL, PTTL, EXPIRETIME, PEXPIRETIME
		case ci.Name == "ping" || ci.Name == "echo":
		default:
			return false
		}
	}
	return true
}

// planHellos gives each queued command the protocol its reply is written
// in, and turns each queued HELLO into what the child runs in its place:
// HELLO with the protocol it leads to (so the child answers the commands
// after it in that protocol, as Redis does inside EXEC), or PING when it
// fails. The HELLOs' own outcomes are worked out here, in order, and
// returned by position.
func (s *frontEnd) planHellos(cl *clientConn, queue []entryCmd) ([]entryCmd, map[int]helloResult) {
	out := make([]entryCmd, len(queue))
	var hellos map[int]helloResult
	proto, authed := cl.protocol(), cl.authed
	for i, c := range queue {
		c.Proto = proto
		if command.Lower(c.Args[0]) == "hello" {
			h := s.helloOutcome(cl, c.Args, authed, proto)
			authed = h.authed
			c.Args = [][]byte{[]byte("PING")}
			if h.ok {
				proto = h.proto
				c.Args = helloArgs(proto)
			}
			c.Proto = proto
			if hellos == nil {
				hellos = make(map[int]helloResult)
			}
			hellos[i] = h
		}
		out[i] = c
	}
	return out, hellos
}

// answerHellos puts the queued HELLOs' replies into EXEC's reply and makes
// their changes to the connection, in order.
func (s *frontEnd) answerHellos(cl *clientConn, reply []byte, hellos map[int]helloResult) []byte {
	if len(hellos) == 0 {
		return reply
	}
	items, err := resp.ArrayItems(reply)
	if err != nil {
		return reply
	}
	for i := range items {
		if h, ok := hellos[i]; ok {
			items[i] = h.reply
			s.applyHello(cl, h)
		}
	}
	return resp.Rebuild(reply, items)
}

// discard answers DISCARD.
func (s *frontEnd) discard(ctx context.Context, cl *clientConn, _ [][]byte) []byte {
	if cl.tx == nil {
		return resp.Error("ERR DISCARD without MULTI")
	}
	cl.setTx(nil)
	s.unwatch(ctx, cl)
	return resp.OK
}

// watch answers WATCH key...: recorded through the log.
func (s *frontEnd) watch(ctx context.Context, cl *clientConn, args [][]byte) []byte {
	if cl.tx != nil {
		return resp.Error("ERR WATCH inside MULTI is not allowed")
	}
	keys := args[1:]
	watchArgs := append([][]byte{[]byte(cmdWatch), []byte(watchID(s.node.id, s.epoch, cl.id))}, keys...)
	replies, err := s.proposer.write(ctx, []entryCmd{{DB: cl.db, Args: watchArgs}})
	if err != nil {
		return s.cluster.errorReply(err, args)
	}
	if string(replies[0]) == string(resp.OK) {
		cl.watching = true
	}
	return replies[0]
}

// unwatchCommand answers UNWATCH.
func (s *frontEnd) unwatchCommand(ctx context.Context, cl *clientConn, _ [][]byte) []byte {
	s.unwatch(ctx, cl)
	return resp.OK
}

// unwatch drops this client's WATCH, if any: on the leader through the
// relay connection, and through the log.
func (s *frontEnd) unwatch(ctx context.Context, cl *clientConn) {
	if cl.relay != nil {
		s.relay.run(cl, [][][]byte{{[]byte("UNWATCH")}}, 0, requestTimeout)
		cl.relayWatch = false
	}
	if !cl.watching {
		return
	}
	cl.watching = false
	s.proposer.write(ctx, []entryCmd{{DB: cl.db, Args: [][]byte{[]byte(cmdUnwatch), []byte(watchID(s.node.id, s.epoch, cl.id))}}})
}
