package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/redraft/redraft/internal/metrics"
	"github.com/redraft/redraft/internal/resp"
	"github.com/redraft/redraft/internal/version"
)

// registerMetrics registers the front end's state, read at every scrape.
func (s *frontEnd) registerMetrics(m *metrics.Metrics) {
	m.Gauge("connected_clients", "Client connections to this node.", func() float64 { return float64(s.clients.count()) })
	m.Gauge("blocked_clients", "Clients waiting in a blocking command.", func() float64 {
		return float64(s.blockedClients())
	})
	m.Counter("child_restarts_total", "Times redraft restarted its child redis-server (to stop a script that had written).", func() float64 {
		return float64(s.child.Restarts())
	})
	m.Gauge("child_up", "1 when the child redis-server answers PING within a second.", func() float64 {
		if s.childHealthy(time.Second) {
			return 1
		}
		return 0
	})
}

// blockedClients is the number of clients waiting in a blocking command.
func (s *frontEnd) blockedClients() int {
	return s.clients.countIf(func(cl *clientConn) bool { return cl.blocked.Load() })
}

// childHealthy reports whether the child answers PING within timeout.
func (s *frontEnd) childHealthy(timeout time.Duration) bool {
	c, err := s.reads.pool.Get()
	if err != nil {
		return false
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	raw, err := c.Do("PING")
	if err != nil {
		c.Close()
		return false
	}
	_ = c.SetDeadline(time.Time{})
	s.reads.pool.Put(c)
	return string(raw) == "+PONG\r\n"
}

// childVersion is the child redis-server's version ("7.0.0" if it cannot
// be read).
func (s *frontEnd) childVersion() string {
	info, _ := resp.ReplyString(s.reads.localStrings("INFO", "server"))
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "redis_version:"); ok {
			return v
		}
	}
	return "7.0.0"
}

// INFO answers from the local child, with what the child cannot know put
// right: # Server gains redraft's version and its port; # Clients counts
// redraft's clients; # Replication describes the Raft role instead of a
// lonely master; # Keyspace's avg_ttl is unshifted; # Cluster says
// cluster_enabled:1 in --cluster-mode; and a # Raft section
// follows. Names are lower_snake_case, lines end in CRLF, as in Redis.

// info answers INFO [section ...].
func (s *frontEnd) info(ctx context.Context, cl *clientConn, args [][]byte) []byte {
	var childArgs [][]byte
	raftSection := len(args) == 1
	for _, a := range args[1:] {
		switch name := strings.ToLower(string(a)); name {
		case "raft":
			raftSection = true
			continue
		case "all", "everything", "default":
			raftSection = true
		}
		childArgs = append(childArgs, a)
	}
	var b strings.Builder
	if len(args) == 1 || len(childArgs) > 0 {
		raw := s.reads.local(ctx, 0, append([][]byte{args[0]}, childArgs...))
		if resp.ReplyIsError(raw) {
			return raw
		}
		text, _ := resp.ReplyString(raw)
		s.rewriteInfo(&b, text)
	}
	if raftSection {
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		s.raftInfo(&b)
	}
	return textReply(cl.protocol(), s.trackingInfoLines(b.String()))
}

// rewriteInfo copies the child's INFO text to b, section by section, with
// the sections redraft knows better rewritten.
func (s *frontEnd) rewriteInfo(b *strings.Builder, text string) {
	if strings.TrimRight(text, "\r\n") == "" {
		return // no such section: an empty reply, as Redis gives
	}
	sections := strings.Split(strings.TrimRight(text, "\r\n"), "\r\n\r\n")
	for i, sec := range sections {
		if i > 0 {
			b.WriteString("\r\n")
		}
		lines := strings.Split(sec, "\r\n")
		switch lines[0] {
		case "# Server":
			lines = s.serverInfo(lines)
		case "# Clients":
			lines = append([]string{lines[0]}, strings.Split(strings.TrimSuffix(s.clientsInfo(), "\r\n"), "\r\n")...)
		case "# Replication":
			lines = s.replicationInfo()
		case "# Keyspace":
			lines = keyspaceInfo(lines)
		case "# Cluster":
			if s.cluster != nil {
				lines = []string{lines[0], "cluster_enabled:1"}
			}
		}
		for _, l := range lines {
			b.WriteString(l)
			b.WriteString("\r\n")
		}
	}
}

// serverInfo adds redraft's version beside the child's and gives
// redraft's own port (the child has none).
func (s *frontEnd) serverInfo(lines []string) []string {
	v := version.Get()
	out := make([]string, 0, len(lines)+3)
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "tcp_port:"):
			l = "tcp_port:" + strconv.Itoa(s.port)
		case strings.HasPrefix(l, "redis_mode:"):
			out = append(out, l, "redraft_mode:raft")
			continue
		}
		out = append(out, l)
		if strings.HasPrefix(l, "redis_version:") {
			out = append(out, "redraft_version:"+v.Version, "redraft_git_sha1:"+v.ShortCommit(), "redraft_go_version:"+v.GoVersion)
		}
	}
	return out
}

// keyspaceInfo turns avg_ttl, which the child computes from shifted
// deadlines, back into the real average.
func keyspaceInfo(lines []string) []string {
	for i, l := range lines {
		at := strings.Index(l, "avg_ttl=")
		if at < 0 {
			continue
		}
		rest := l[at+len("avg_ttl="):]
		end := strings.IndexByte(rest, ',')
		if end < 0 {
			end = len(rest)
		}
		ttl, err := strconv.ParseInt(rest[:end], 10, 64)
		if err != nil || ttl <= 0 {
			continue
		}
		lines[i] = l[:at] + "avg_ttl=" + strconv.FormatInt(max(ttl-deadlineShift, 0), 10) + rest[end:]
	}
	return lines
}

// memberView is one member as this node sees it.
type memberView struct {
	raft.Server
	state       string // leader, follower, nonvoter
	match       uint64 // known on the leader (the leader's own: its last index)
	lastContact int64  // ms since this node last heard from it; -1 unknown
}

// memberViews lists the members: the leader knows every follower's match
// index and last contact (peers.go); a follower knows its leader's.
func (s *frontEnd) memberViews() []memberView {
	servers, _ := s.node.members()
	leader := s.node.leaderAddr()
	isLeader := s.node.isLeader()
	now := time.Now()
	out := make([]memberView, 0, len(servers))
	for _, srv := range servers {
		m := memberView{Server: srv, state: "follower", lastContact: -1}
		switch {
		case string(srv.Address) == leader:
			m.state = "leader"
		case srv.Suffrage != raft.Voter:
			m.state = "nonvoter"
		}
		switch {
		case string(srv.ID) == s.node.id:
			m.lastContact = 0
			if isLeader {
				m.match = s.node.lastIndex()
			}
		case isLeader:
			match, at := s.node.peers.progress(srv.ID)
			m.match = match
			if !at.IsZero() {
				m.lastContact = now.Sub(at).Milliseconds()
			}
		case string(srv.Address) == leader:
			if at := s.node.lastContact(); !at.IsZero() {
				m.lastContact = now.Sub(at).Milliseconds()
			}
		}
		out = append(out, m)
	}
	return out
}

// onlineWithin is how recently a follower must have answered the leader
// to count as online.
const onlineWithin = 5 * time.Second

// replicationInfo describes the Raft role in # Replication's terms: the
// leader is the master, with its followers as replicas (offset is the log
// index each holds, lag the seconds since it last answered); a follower
// is a replica of the leader.
func (s *frontEnd) replicationInfo() []string {
	out := []string{"# Replication"}
	members := s.memberViews()
	last := s.node.lastIndex()
	if s.node.isLeader() {
		out = append(out, "role:master", "raft_role:leader", "leader:"+s.node.id)
		var replicas []string
		online := 0
		for _, m := range members {
			if string(m.ID) == s.node.id {
				continue
			}
			host, port, _ := net.SplitHostPort(string(m.Address))
			state, lag := "offline", int64(-1)
			if m.lastContact >= 0 {
				lag = m.lastContact / 1000
				if m.lastContact < onlineWithin.Milliseconds() {
					state = "online"
					online++
				}
			}
			replicas = append(replicas, fmt.Sprintf("slave%d:ip=%s,port=%s,state=%s,offset=%d,lag=%d,match_index=%d,entries_behind=%d,voter=%d",
				len(replicas), host, port, state, m.match, lag, m.match, last-min(m.match, last), b2i(m.Suffrage == raft.Voter)))
		}
		out = append(out, "connected_slaves:"+strconv.Itoa(online))
		out = append(out, replicas...)
		return append(out, "master_repl_offset:"+strconv.FormatUint(last, 10))
	}
	leader := s.node.leaderAddr()
	role := "follower"
	for _, m := range members {
		if string(m.ID) == s.node.id && m.Suffrage != raft.Voter {
			role = "nonvoter"
		}
	}
	if st := s.node.state(); st == raft.Candidate || st == raft.Shutdown {
		role = strings.ToLower(st.String())
	}
	host, port, _ := net.SplitHostPort(leader)
	link, lastIO := "down", int64(-1)
	for _, m := range members {
		if string(m.Address) == leader && m.lastContact >= 0 {
			lastIO = m.lastContact / 1000
			if m.lastContact < onlineWithin.Milliseconds() {
				link = "up"
			}
		}
	}
	applied := s.fsm.appliedIndex()
	commit := s.node.commitIndex()
	return append(out, "role:slave", "raft_role:"+role, "leader:"+leader,
		"master_host:"+host, "master_port:"+port,
		"master_link_status:"+link, "master_last_io_seconds_ago:"+strconv.FormatInt(lastIO, 10),
		"master_sync_in_progress:0",
		"slave_read_repl_offset:"+strconv.FormatUint(last, 10),
		"slave_repl_offset:"+strconv.FormatUint(applied, 10),
		"slave_read_only:1", "connected_slaves:0",
		"master_repl_offset:"+strconv.FormatUint(commit, 10),
		"entries_behind:"+strconv.FormatUint(commit-min(applied, commit), 10))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// raftInfo writes the # Raft section.
func (s *frontEnd) raftInfo(b *strings.Builder) {
	stats := s.raftStats()
	b.WriteString("# Raft\r\n")
	for _, k := range []string{"id", "cluster_id", "state", "leader", "term", "last_log_index", "commit_index", "applied_index", "num_peers", "last_snapshot_index"} {
		fmt.Fprintf(b, "raft_%s:%s\r\n", k, stats[k])
	}
	b.WriteString("raft_consistency:" + s.reads.level.String() + "\r\n")
	members := s.memberViews()
	fmt.Fprintf(b, "raft_members:%d\r\n", len(members))
	for i, m := range members {
		suffrage := "voter"
		if m.Suffrage != raft.Voter {
			suffrage = "nonvoter"
		}
		fmt.Fprintf(b, "raft_member%d:id=%s,address=%s,suffrage=%s,state=%s,match_index=%d,last_contact_ms=%d\r\n",
			i, m.ID, m.Address, suffrage, m.state, m.match, m.lastContact)
	}
	_, snapBytes := s.node.lastSnapshot()
	fmt.Fprintf(b, "raft_log_entries:%d\r\nraft_log_bytes:%d\r\nraft_last_snapshot_bytes:%d\r\n",
		s.node.logEntries(), s.node.logBytes(), snapBytes)
	sy := s.node.syncs
	count, total := sy.count.Load(), sy.totalNS.Load()
	avg := int64(0)
	if count > 0 {
		avg = total / count / 1000
	}
	fmt.Fprintf(b, "raft_fsync_count:%d\r\nraft_fsync_avg_usec:%d\r\nraft_fsync_last_usec:%d\r\nraft_fsync_max_usec:%d\r\n",
		count, avg, sy.lastNS.Load()/1000, sy.maxNS.Load()/1000)
}

// clientsInfo is INFO's Clients section for redraft's own clients (the
// child's are redraft's internal connections).
func (s *frontEnd) clientsInfo() string {
	connected, blocked, withTimeout := 0, 0, 0
	s.clients.forEach(func(cl *clientConn) {
		connected++
		if cl.blocked.Load() {
			blocked++
			if cl.withTimeout.Load() {
				withTimeout++
			}
		}
	})
	return fmt.Sprintf("connected_clients:%d\r\ncluster_connections:0\r\nmaxclients:%d\r\n"+
		"client_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\n"+
		"blocked_clients:%d\r\ntracking_clients:%d\r\nclients_in_timeout_table:%d\r\n",
		connected, s.maxClients, blocked, s.tracker.count.Load(), withTimeout)
}

// raftStats is Raft's statistics plus redraft's own.
func (s *frontEnd) raftStats() map[string]string {
	stats := s.node.stats()
	stats["applied_index"] = strconv.FormatUint(s.fsm.appliedIndex(), 10)
	stats["fsm_last_time_ms"] = strconv.FormatInt(s.fsm.lastTime(), 10)
	stats["expiry_index_keys"] = strconv.Itoa(s.fsm.expiryKeyCount())
	stats["leader"] = s.node.leaderAddr()
	stats["id"] = s.node.id
	stats["cluster_id"] = s.node.clusterID()
	return stats
}
