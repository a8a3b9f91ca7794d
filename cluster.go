package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/redraft/redraft/internal/command"
	"github.com/redraft/redraft/internal/resp"
)

// --cluster-mode: the Raft group speaks the Redis Cluster protocol as one
// shard that owns all 16384 hash slots. The leader is the shard's master and
// every other member one of its replicas (clustercmd.go answers CLUSTER
// SLOTS, SHARDS, NODES, … from Raft's current configuration and leader).
// This file holds the routing side, which Redis does in processCommand:
//
//   - keys in different slots get -CROSSSLOT, on every node, as in Redis
//     Cluster (one shard owns every slot, but a client written for Redis
//     Cluster must not learn to rely on that);
//   - a follower that knows the leader answers what it may not serve
//     (leaderOnly, the rule --follower-proxy relays by) with
//     -MOVED <slot> <leader>, the slot of the request's first key (0 for a
//     request without keys, which Redis Cluster would serve on any node);
//   - errors of the layers below that mean "not here" are answered the same
//     way (redirect), so a write that finds no leader before an election ends
//     gets -MOVED once there is one, or -CLUSTERDOWN;
//   - READONLY makes a connection read as --consistency low does, on any
//     node (reads.go, forClient); READWRITE undoes it; ASKING is accepted;
//   - only database 0: SELECT n, MOVE, SWAPDB and COPY … DB n are refused
//     with Redis Cluster's errors.

// clusterMode is --cluster-mode; the front end's is nil when it is off.
type clusterMode struct {
	node *raftNode
	tbl  *commandTable
}

// clusterSlots is the number of hash slots of Redis Cluster.
const clusterSlots = 16384

// errClusterDisabled is Redis's answer to the cluster commands when cluster
// mode is off.
const errClusterDisabled = "ERR This instance has cluster support disabled"

// movedError means a request on slot must go to the leader at leader (the
// -MOVED reply of cluster mode).
type movedError struct {
	slot   int
	leader string
}

func (e *movedError) Error() string {
	return fmt.Sprintf("slot %d is served by the leader at %s", e.slot, e.leader)
}

// errClusterDown means no leader is known, in cluster mode (-CLUSTERDOWN).
var errClusterDown = errors.New("the cluster is down")

// crc16Table is CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0),
// the checksum of Redis Cluster's key slots.
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

// keySlot is Redis Cluster's hash slot of key: the CRC16 of the key, or of
// the part between its first '{' and the next '}' when that part is not
// empty, modulo 16384.
func keySlot(key []byte) int {
	if open := bytes.IndexByte(key, '{'); open >= 0 {
		if n := bytes.IndexByte(key[open+1:], '}'); n > 0 {
			key = key[open+1 : open+1+n]
		}
	}
	var crc uint16
	for _, b := range key {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^b]
	}
	return int(crc) % clusterSlots
}

// slotOf is the slot of the first key of cmds (one command, or the queued
// commands of a transaction), 0 when they have none; ok is false when their
// keys are in different slots.
func (c *clusterMode) slotOf(cmds ...[][]byte) (slot int, ok bool) {
	first := true
	for _, args := range cmds {
		ci := c.tbl.lookup(args)
		if ci == nil || !ci.ArityOK(len(args)) {
			continue
		}
		for _, k := range command.Keys(ci.Info, args) {
			s := keySlot(k)
			switch {
			case first:
				slot, first = s, false
			case s != slot:
				return 0, false
			}
		}
	}
	return slot, true
}

// leaderElsewhere returns the leader's address when another node leads and
// this one knows it.
func (c *clusterMode) leaderElsewhere() (string, bool) {
	if c.node.isLeader() {
		return "", false
	}
	addr := c.node.leaderAddr()
	return addr, addr != "" && addr != c.node.id
}

// redirect turns the layers' "not here" errors into cluster mode's for a
// request on cmds (see slotOf): a *NotLeaderError into a *movedError,
// ErrNoLeader into errClusterDown. Other errors, and every error when
// cluster mode is off (c is nil), are returned as they are.
func (c *clusterMode) redirect(err error, cmds ...[][]byte) error {
	if c == nil {
		return err
	}
	var nl *NotLeaderError
	switch {
	case errors.As(err, &nl):
		slot, _ := c.slotOf(cmds...)
		return &movedError{slot: slot, leader: nl.Leader}
	case errors.Is(err, ErrNoLeader):
		return errClusterDown
	}
	return err
}

// errorReply is errorReply (errors.go) for a request on cmds: in cluster
// mode a redirect is Redis Cluster's (-MOVED, -CLUSTERDOWN).
func (c *clusterMode) errorReply(err error, cmds ...[][]byte) []byte {
	return errorReply(c.redirect(err, cmds...))
}

// clusterRedirect is Redis Cluster's redirection, in cluster mode only and
// where Redis checks it: after the command's name, arity and refusal,
// before memory. Keys in different slots get -CROSSSLOT on every node; a
// follower that knows the leader answers what it may not serve with -MOVED.
// Without a known leader the command goes on, and waits for an election
// like any other. nil lets the command through.
func (s *frontEnd) clusterRedirect(cl *clientConn, ci *commandInfo, args [][]byte) []byte {
	c := s.cluster
	if c == nil || ci == nil || !ci.ArityOK(len(args)) {
		return nil
	}
	slot, ok := c.slotOf(args)
	if !ok {
		return errorReply(errCrossSlot)
	}
	if len(command.Keys(ci.Info, args)) == 0 && s.clusterRefusal(ci, args) != nil {
		// Refused on every node (SWAPDB): no use sending it to the leader.
		return nil
	}
	if leader, away := c.leaderElsewhere(); away && s.leaderOnly(cl, ci, args) {
		return errorReply(&movedError{slot: slot, leader: leader})
	}
	return nil
}

// errCrossSlot is Redis Cluster's refusal of keys in different slots.
var errCrossSlot = errors.New("keys in request don't hash to the same slot")

// clusterExec is Redis Cluster's check of EXEC, over the whole transaction
// (cluster mode only): queued commands whose keys are in different slots
// get -CROSSSLOT, and a follower that knows the leader sends a transaction
// to it with -MOVED (EXEC always goes through the log; an aborted or empty
// one is answered here as by Redis).
func (s *frontEnd) clusterExec(tx *transaction) []byte {
	c := s.cluster
	if c == nil {
		return nil
	}
	slot, ok := c.slotOf(argsOf(tx.queue)...)
	if !ok {
		return errorReply(errCrossSlot)
	}
	if leader, away := c.leaderElsewhere(); away && !tx.dirty && len(tx.queue) > 0 {
		return errorReply(&movedError{slot: slot, leader: leader})
	}
	return nil
}

// clusterRefusal answers, in cluster mode, what Redis Cluster refuses
// because it has database 0 only: SELECT of another database, MOVE, SWAPDB,
// and COPY … DB n. Malformed arguments are left to the usual paths, which
// answer them as Redis does before its cluster check.
func (s *frontEnd) clusterRefusal(ci *commandInfo, args [][]byte) []byte {
	if s.cluster == nil {
		return nil
	}
	switch ci.Name {
	case "select":
		if db, ok := command.ParseInt(args[1]); ok && db != 0 && db >= minInt32 && db <= maxInt32 {
			return resp.Error("ERR SELECT is not allowed in cluster mode")
		}
	case "move":
		return resp.Error("ERR MOVE is not allowed in cluster mode")
	case "swapdb":
		return resp.Error("ERR SWAPDB is not allowed in cluster mode")
	case "copy":
		if copiesToOtherDB(args) {
			return resp.Error("ERR Copying to another database is not allowed in cluster mode")
		}
	}
	return nil
}

// The range of Redis's int arguments (getIntFromObjectOrReply).
const (
	minInt32 = -1 << 31
	maxInt32 = 1<<31 - 1
)

// copiesToOtherDB reports whether COPY's options parse, as Redis parses
// them, to a database other than 0. Options that do not parse answer false:
// the child then gives Redis's error for them.
func copiesToOtherDB(args [][]byte) bool {
	db := int64(0)
	for j := 3; j < len(args); j++ {
		switch opt := command.Lower(args[j]); {
		case opt == "replace":
		case opt == "db" && j+1 < len(args):
			n, ok := command.ParseInt(args[j+1])
			if !ok || n < 0 || n >= 16 {
				return false
			}
			db = n
			j++
		default:
			return false
		}
	}
	return db != 0
}

// readOnlyCommand answers READONLY and READWRITE: a READONLY connection
// reads as --consistency low does (reads.go, forClient).
func (s *frontEnd) readOnlyCommand(_ context.Context, cl *clientConn, args [][]byte) []byte {
	if s.cluster == nil {
		return resp.Error(errClusterDisabled)
	}
	cl.readOnly.Store(command.Lower(args[0]) == "readonly")
	return resp.OK
}

// asking answers ASKING: accepted (no slot ever migrates between shards).
func (s *frontEnd) asking(_ context.Context, _ *clientConn, _ [][]byte) []byte {
	if s.cluster == nil {
		return resp.Error(errClusterDisabled)
	}
	return resp.OK
}

// helloMode is the mode and role HELLO reports: Redis Cluster's "cluster",
// with "replica" on a follower, in cluster mode.
func (c *clusterMode) helloMode() [][2]string {
	switch {
	case c == nil:
		return [][2]string{{"mode", "standalone"}, {"role", "master"}}
	case c.node.isLeader():
		return [][2]string{{"mode", "cluster"}, {"role", "master"}}
	}
	return [][2]string{{"mode", "cluster"}, {"role", "replica"}}
}
