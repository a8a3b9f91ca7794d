package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/raft"

	"github.com/redraft/redraft/internal/command"
	"github.com/redraft/redraft/internal/resp"
)

// The CLUSTER command of --cluster-mode (cluster.go). Every answer is built
// from Raft's current configuration and leader when it is asked for, so
// after a failover the topology changes at once: the leader is the master
// of the one shard, which owns slots 0-16383, and every other member is a
// replica. Replies have Redis Cluster 7.0's shapes and errors.

// clusterNodeID is a member's node ID: 40 hex digits, the SHA-1 of its Raft
// ID (its advertise address), so it stays the same across restarts.
func clusterNodeID(raftID string) string {
	sum := sha1.Sum([]byte(raftID))
	return hex.EncodeToString(sum[:])
}

// shardMember is one member as Redis Cluster shows a node.
type shardMember struct {
	id     string // clusterNodeID
	host   string // the advertise address's host, as clients connect to it
	port   int
	master bool
	myself bool
}

// shard is the one shard as this node sees it now.
type shard struct {
	members []shardMember // the master first, when there is one
	master  *shardMember  // the leader, or the last one this node knew; nil if none
	ok      bool          // a leader is known now
	epoch   uint64        // the Raft term: every node's config epoch
	offset  int64         // this node's applied index: the replication offset shown
}

// shard reads the topology from Raft: members in configuration order, the
// leader (or, during an election, the last leader this node knew, as Redis
// Cluster shows a failed master until a replica replaces it) first.
func (s *frontEnd) shard() (*shard, error) {
	servers, err := s.node.members()
	if err != nil {
		return nil, fmt.Errorf("read the Raft configuration: %w", err)
	}
	master := s.node.lastLeaderAddr()
	sh := &shard{ok: s.node.leaderAddr() != "", offset: int64(s.fsm.appliedIndex())}
	sh.epoch, _ = strconv.ParseUint(s.node.stats()["term"], 10, 64)
	for _, srv := range servers {
		m := shardMember{id: clusterNodeID(string(srv.ID)), master: string(srv.Address) == master, myself: string(srv.ID) == s.node.id}
		m.host, m.port = splitAdvertise(srv.Address)
		if m.master {
			sh.members = append([]shardMember{m}, sh.members...)
		} else {
			sh.members = append(sh.members, m)
		}
	}
	if len(sh.members) > 0 && sh.members[0].master {
		sh.master = &sh.members[0]
	}
	return sh, nil
}

// splitAdvertise splits a member's address into the host and port clients
// connect to.
func splitAdvertise(addr raft.ServerAddress) (string, int) {
	host, p, err := net.SplitHostPort(string(addr))
	if err != nil {
		return string(addr), 0
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

// clusterCommand answers CLUSTER: in cluster mode the subcommands that
// describe the shard and its slots; otherwise Redis's "cluster support
// disabled", as a redis-server without cluster-enabled answers.
func (s *frontEnd) clusterCommand(ctx context.Context, cl *clientConn, args [][]byte) []byte {
	ci := s.cmds.lookup(args)
	if ci.Name == "cluster" {
		return resp.Error(unknownSubcommand(args))
	}
	if s.cluster == nil {
		return resp.Error(errClusterDisabled)
	}
	sub := strings.TrimPrefix(ci.Name, "cluster|")
	if why, ok := clusterRefused[sub]; ok {
		return resp.Error(fmt.Sprintf("ERR CLUSTER %s is not supported by redraft: %s", strings.ToUpper(sub), why))
	}
	switch sub {
	case "myid":
		return resp.Bulk(clusterNodeID(s.node.id))
	case "keyslot":
		return resp.Integer(int64(keySlot(args[2])))
	case "countkeysinslot":
		return s.countKeysInSlot(ctx, args[2])
	case "getkeysinslot":
		return s.getKeysInSlot(ctx, args[2], args[3])
	case "help":
		return clusterHelp()
	}
	sh, err := s.shard()
	if err != nil {
		return resp.Error("ERR " + err.Error())
	}
	p := cl.protocol()
	switch sub {
	case "slots":
		return sh.slotsReply(p)
	case "shards":
		return sh.shardsReply(p)
	case "nodes":
		return resp.AppendVerbatim(nil, p, "txt", sh.nodesText(s.wall()))
	case "info":
		return resp.AppendVerbatim(nil, p, "txt", sh.infoText())
	case "replicas", "slaves":
		return sh.replicasReply(args[2], s.wall())
	}
	return resp.Error(unknownSubcommand(args))
}

// clusterRefused are the CLUSTER subcommands redraft does not offer, with
// the reason: Raft, not the cluster bus, decides members, roles and slots.
var clusterRefused = func() map[string]string {
	const (
		members = "the Raft group is one shard whose members change with -join, RAFTADDPEER and RAFTREMOVEPEER"
		slots   = "the Raft group is one shard that owns every slot"
		raftBus = "the nodes talk Raft, not the cluster bus"
	)
	m := map[string]string{
		"failover": "leadership is decided by Raft (the leader is the master)",
	}
	for _, sub := range []string{"meet", "forget", "replicate", "reset"} {
		m[sub] = members
	}
	for _, sub := range []string{"addslots", "addslotsrange", "delslots", "delslotsrange", "flushslots", "setslot"} {
		m[sub] = slots
	}
	for _, sub := range []string{"bumpepoch", "set-config-epoch", "saveconfig", "links", "count-failure-reports"} {
		m[sub] = raftBus
	}
	return m
}()

// unknownSubcommand is Redis's error for a subcommand the command lacks.
func unknownSubcommand(args [][]byte) string {
	sub := args[1]
	if len(sub) > 128 {
		sub = sub[:128]
	}
	msg := fmt.Sprintf("ERR unknown subcommand '%s'. Try %s HELP.", sub, strings.ToUpper(string(args[0])))
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
}

// clusterHelp lists the subcommands redraft answers, in Redis's help shape.
func clusterHelp() []byte {
	lines := []string{
		"CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"COUNTKEYSINSLOT <slot>", "    Return the number of keys in <slot>.",
		"GETKEYSINSLOT <slot> <count>", "    Return key names stored by current node in a slot.",
		"INFO", "    Return information about the cluster.",
		"KEYSLOT <key>", "    Return the hash slot for <key>.",
		"MYID", "    Return the node id.",
		"NODES", "    Return cluster configuration seen by node. Output format:",
		"    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
		"REPLICAS <node-id>", "    Return <node-id> replicas.",
		"SLOTS", "    Return information about slots range mappings. Each range is made of:",
		"    start, end, master and replicas IP addresses, ports and ids",
		"SHARDS", "    Return information about slot range mappings and the nodes associated with them.",
		"HELP", "    Prints this help.",
	}
	out := resp.ArrayHeader(len(lines))
	for _, l := range lines {
		out = append(out, resp.Status(l)...)
	}
	return out
}

// slotsReply is CLUSTER SLOTS: one range, 0-16383, served by the master
// and its replicas (none when no leader was ever known).
func (sh *shard) slotsReply(p resp.Proto) []byte {
	if sh.master == nil {
		return resp.ArrayHeader(0)
	}
	out := resp.ArrayHeader(1)
	out = resp.AppendArray(out, 2+len(sh.members))
	out = resp.AppendInt(out, 0)
	out = resp.AppendInt(out, clusterSlots-1)
	for _, m := range sh.members {
		out = resp.AppendArray(out, 4)
		out = resp.AppendBulkString(out, m.host)
		out = resp.AppendInt(out, int64(m.port))
		out = resp.AppendBulkString(out, m.id)
		out = resp.AppendMap(out, p, 0) // no hostname metadata
	}
	return out
}

// shardsReply is CLUSTER SHARDS: the one shard, its slots and its nodes.
func (sh *shard) shardsReply(p resp.Proto) []byte {
	out := resp.ArrayHeader(1)
	out = resp.AppendMap(out, p, 2)
	out = resp.AppendBulkString(out, "slots")
	if sh.master == nil {
		out = resp.AppendArray(out, 0)
	} else {
		out = resp.AppendArray(out, 2)
		out = resp.AppendInt(out, 0)
		out = resp.AppendInt(out, clusterSlots-1)
	}
	out = resp.AppendBulkString(out, "nodes")
	out = resp.AppendArray(out, len(sh.members))
	for _, m := range sh.members {
		role := "replica"
		if m.master || sh.master == nil {
			role = "master"
		}
		out = resp.AppendMap(out, p, 7)
		for _, kv := range []struct {
			k string
			v any
		}{
			{"id", m.id}, {"port", m.port}, {"ip", m.host}, {"endpoint", m.host},
			{"role", role}, {"replication-offset", sh.offset}, {"health", "online"},
		} {
			out = resp.AppendBulkString(out, kv.k)
			switch v := kv.v.(type) {
			case string:
				out = resp.AppendBulkString(out, v)
			case int:
				out = resp.AppendInt(out, int64(v))
			case int64:
				out = resp.AppendInt(out, v)
			}
		}
	}
	return out
}

// nodeLine is one node's CLUSTER NODES line, without the newline:
// id ip:port@cport flags master ping-sent pong-recv config-epoch link slots.
// The cluster bus port is the node's one port, which its peers use.
func (sh *shard) nodeLine(m shardMember, nowMS int64) string {
	flags, master := "master", "-"
	if sh.master != nil && !m.master {
		flags, master = "slave", sh.master.id
	}
	if m.myself {
		flags = "myself," + flags
	}
	pong := nowMS
	if m.myself {
		pong = 0
	}
	line := fmt.Sprintf("%s %s:%d@%d %s %s 0 %d %d connected", m.id, m.host, m.port, m.port, flags, master, pong, sh.epoch)
	if m.master {
		line += " 0-" + strconv.Itoa(clusterSlots-1)
	}
	return line
}

// nodesText is CLUSTER NODES: one line per member.
func (sh *shard) nodesText(nowMS int64) string {
	var b strings.Builder
	for _, m := range sh.members {
		b.WriteString(sh.nodeLine(m, nowMS))
		b.WriteByte('\n')
	}
	return b.String()
}

// infoText is CLUSTER INFO. While no leader is known the state is "fail"
// and the slots of the master last known count as failed.
func (sh *shard) infoText() string {
	state, assigned, ok, failed, size := "ok", clusterSlots, clusterSlots, 0, 1
	switch {
	case sh.master == nil:
		state, assigned, ok, size = "fail", 0, 0, 0
	case !sh.ok:
		state, ok, failed = "fail", 0, clusterSlots
	}
	var b strings.Builder
	for _, kv := range []struct {
		k string
		v any
	}{
		{"cluster_state", state}, {"cluster_slots_assigned", assigned}, {"cluster_slots_ok", ok},
		{"cluster_slots_pfail", 0}, {"cluster_slots_fail", failed}, {"cluster_known_nodes", len(sh.members)},
		{"cluster_size", size}, {"cluster_current_epoch", sh.epoch}, {"cluster_my_epoch", sh.epoch},
		{"cluster_stats_messages_sent", 0}, {"cluster_stats_messages_received", 0},
		{"total_cluster_links_buffer_limit_exceeded", 0},
	} {
		fmt.Fprintf(&b, "%s:%v\r\n", kv.k, kv.v)
	}
	return b.String()
}

// replicasReply is CLUSTER REPLICAS (and SLAVES) node-id: the replicas'
// CLUSTER NODES lines.
func (sh *shard) replicasReply(id []byte, nowMS int64) []byte {
	i := slices.IndexFunc(sh.members, func(m shardMember) bool { return m.id == string(id) })
	switch {
	case i < 0:
		return resp.Error(strings.NewReplacer("\r", " ", "\n", " ").Replace("ERR Unknown node " + string(id)))
	case !sh.members[i].master && sh.master != nil:
		return resp.Error("ERR The specified node is not a master")
	}
	var lines []string
	if sh.members[i].master {
		for _, m := range sh.members[1:] {
			lines = append(lines, sh.nodeLine(m, nowMS))
		}
	}
	out := resp.ArrayHeader(len(lines))
	for _, l := range lines {
		out = resp.AppendBulkString(out, l)
	}
	return out
}

// parseSlotArg reads a slot or count as Redis does
// (getLongLongFromObjectOrReply).
func parseSlotArg(b []byte) (int64, []byte) {
	n, ok := command.ParseInt(b)
	if !ok {
		return 0, resp.Error("ERR value is not an integer or out of range")
	}
	return n, nil
}

// countKeysInSlot answers CLUSTER COUNTKEYSINSLOT slot from this node's
// child. The children keep no slot index, so this scans database 0.
func (s *frontEnd) countKeysInSlot(ctx context.Context, arg []byte) []byte {
	slot, bad := parseSlotArg(arg)
	if bad != nil {
		return bad
	}
	if slot < 0 || slot >= clusterSlots {
		return resp.Error("ERR Invalid slot")
	}
	var n int64
	err := s.scanSlot(ctx, int(slot), func([]byte) { n++ })
	if err != nil {
		return resp.Error("ERR " + err.Error())
	}
	return resp.Integer(n)
}

// getKeysInSlot answers CLUSTER GETKEYSINSLOT slot count from this node's
// child: at most count keys of the slot, in byte order (Redis lists the
// newest first; the children keep no slot index, so this scans database 0).
func (s *frontEnd) getKeysInSlot(ctx context.Context, slotArg, countArg []byte) []byte {
	count, bad := parseSlotArg(countArg)
	if bad != nil {
		return bad
	}
	slot, bad := parseSlotArg(slotArg)
	if bad != nil {
		return bad
	}
	if count < 0 || slot < 0 || slot >= clusterSlots {
		return resp.Error("ERR Invalid slot or number of keys")
	}
	var keys [][]byte
	err := s.scanSlot(ctx, int(slot), func(k []byte) { keys = append(keys, bytes.Clone(k)) })
	if err != nil {
		return resp.Error("ERR " + err.Error())
	}
	slices.SortFunc(keys, bytes.Compare)
	keys = keys[:min(int64(len(keys)), count)]
	out := resp.ArrayHeader(len(keys))
	for _, k := range keys {
		out = resp.AppendBulk(out, k)
	}
	return out
}

// scanSlot calls fn for every key of database 0 in slot, SCANning this
// node's child.
func (s *frontEnd) scanSlot(ctx context.Context, slot int, fn func(key []byte)) error {
	cursor := []byte("0")
	for {
		raw := s.reads.local(ctx, 0, [][]byte{[]byte("SCAN"), cursor, []byte("COUNT"), []byte("1000")})
		if resp.ReplyIsError(raw) {
			s, _ := resp.ReplyString(raw)
			return fmt.Errorf("scan: %s", s)
		}
		parts, err := resp.ArrayItems(raw)
		if err != nil || len(parts) != 2 {
			return fmt.Errorf("scan: unexpected reply: %w", err)
		}
		next, _ := resp.ReplyString(parts[0])
		keys, err := resp.ArrayItems(parts[1])
		if err != nil {
			return fmt.Errorf("scan: unexpected keys: %w", err)
		}
		for _, k := range keys {
			if key, ok := resp.ReplyString(k); ok && keySlot([]byte(key)) == slot {
				fn([]byte(key))
			}
		}
		if next == "0" {
			return nil
		}
		cursor = []byte(next)
	}
}
