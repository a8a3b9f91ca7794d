package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	conf "github.com/redraft/redraft/internal/config"
	"github.com/redraft/redraft/internal/logging"
	"github.com/redraft/redraft/internal/peer"
)

// options is the node's configuration: every option, declared once in
// declareOptions and read from flags, REDRAFT_* environment variables and
// a --config file (in that order of precedence).
type options struct {
	port              int
	dir               string
	join              []string
	advertise         string
	bind              string
	consistency       consistency
	backend           string
	durability        string
	loglevel          string
	logFormat         string
	redisServer       string
	snapshotThreshold uint64
	trailingLogs      uint64
	snapshotInterval  time.Duration
	maxMemory         int64
	followerProxy     bool
	clusterMode       bool
	metricsAddr       string
	restore           string
	backupDir         string
	nonvoter          bool
	maxClients        int
	idleTimeout       int // seconds
	outputLimits      outputLimits
	queryBufferLimit  int64
	protoMaxBulkLen   int64
	// Security.
	requirePass       string
	clusterSecret     string
	clusterSecretFile string
	tlsCertFile       string
	tlsKeyFile        string
	tlsCAFile         string
	tlsAuthClients    string
}

// usage heads the -h output.
const usage = `redraft runs redis-server under Raft: one port for Redis clients and peers,
every write through a replicated log, applied to each node's own child.

Usage: redraft [options]

Examples:
  redraft                                  # one node on 127.0.0.1:7481, data in ./data
  redraft -p 7482 -dir data2 -join 7481    # a second node joins the first
  redraft --config /etc/redraft/redraft.conf

Options can be given as flags (-name value, --name=value), as environment
variables (REDRAFT_NAME, dashes as underscores) or in a --config file (one
"name value" per line, as in redis.conf). Flags win over the environment,
which wins over the file.
`

// consistencyValue is the --consistency option.
type consistencyValue struct{ p *consistency }

func (v consistencyValue) Set(s string) error {
	c, err := parseConsistency(s)
	if err != nil {
		return errors.New("not allowed") // the error adds the allowed values
	}
	*v.p = c
	return nil
}
func (v consistencyValue) String() string  { return v.p.String() }
func (v consistencyValue) Kind() string    { return "low|medium|high" }
func (v consistencyValue) Allowed() string { return "one of low, medium, high" }

// declareOptions declares every option of c, with its group, default,
// help and example.
func declareOptions(s *conf.Set, c *options) {
	c.consistency = consistencyMedium
	for _, o := range []conf.Option{
		// Cluster.
		{Name: "port", Synonyms: []string{"p"}, Group: conf.Cluster, Example: "7482",
			Help: "TCP port shared by Redis clients and Raft peers.", Value: conf.IntRange(&c.port, 7481, 1, 65535)},
		{Name: "bind", Group: conf.Cluster, Arg: "ip", Example: "0.0.0.0",
			Help: "Address to listen on (0.0.0.0 for every interface); a specific IP is also where connections to other nodes leave from.", Value: conf.String(&c.bind, "127.0.0.1")},
		{Name: "advertise", Group: conf.Cluster, Arg: "host:port", DefaultText: "127.0.0.1:PORT", Example: "10.0.0.1:7481",
			Help:  "Address other nodes and clients use to reach this node; it is also the node's Raft ID and the address in -TRY replies.",
			Value: conf.String(&c.advertise, "")},
		{Name: "join", Group: conf.Cluster, Arg: "host:port,...", Example: "10.0.0.1:7481,10.0.0.2:7481",
			Help:  "Members of an existing cluster to join, tried in turn (a bare port means 127.0.0.1). Ignored when the data directory already holds Raft state.",
			Value: conf.List(&c.join)},
		{Name: "nonvoter", Group: conf.Cluster,
			Help:  "With -join: join as a non-voting member, which receives the log and serves --consistency low reads but never votes (RAFTPROMOTE makes it a voter).",
			Value: conf.Bool(&c.nonvoter, false)},
		// Client.
		{Name: "consistency", Group: conf.Client, Example: "high",
			Help: "Reads: low (any node, may be stale), medium (the leader), high (linearizable).", Value: consistencyValue{&c.consistency}},
		{Name: "follower-proxy", Group: conf.Client,
			Help: "Followers relay writes, and reads they may not serve, to the leader instead of answering -TRY.", Value: conf.Bool(&c.followerProxy, false)},
		{Name: "cluster-mode", Group: conf.Client,
			Help:  "Speak the Redis Cluster protocol: the group is one shard owning all 16384 slots, the leader its master; followers answer -MOVED, CLUSTER SLOTS/SHARDS/NODES describe the members, database 0 only. Excludes --follower-proxy.",
			Value: conf.Bool(&c.clusterMode, false)},
		{Name: "maxclients", Group: conf.Client, Example: "50000",
			Help: "Most clients connected at once; more are refused with Redis's error.", Value: conf.IntRange(&c.maxClients, 10000, 1, 1<<20)},
		{Name: "timeout", Group: conf.Client, Arg: "seconds", Example: "300",
			Help: "Close a client idle for this many seconds (0: never). Blocked and subscribed clients are not idle.", Value: conf.IntRange(&c.idleTimeout, 0, 0, 1<<31-1)},
		{Name: "client-output-buffer-limit", Group: conf.Client, Example: `"normal 256mb 64mb 60"`,
			DefaultText: "normal 0 0 0 pubsub 32mb 8mb 60",
			Help:        "Disconnect a client whose unsent replies pass the hard limit, or the soft one for that many seconds (0 disables), per class as in Redis: normal, pubsub (replica is accepted and ignored).",
			Value:       outputLimitsValue{&c.outputLimits}},
		{Name: "client-query-buffer-limit", Group: conf.Client, Example: "256mb",
			Help: "Close a client that sends more unprocessed bytes than this.", Value: conf.Size(&c.queryBufferLimit, 1<<30)},
		{Name: "proto-max-bulk-len", Group: conf.Client, Example: "64mb",
			Help: "Largest string argument a client may send.", Value: conf.Size(&c.protoMaxBulkLen, 512<<20)},
		// Storage.
		{Name: "dir", Group: conf.Storage, Arg: "path", Example: "/var/lib/redraft",
			Help: "Data directory: Raft log, snapshots, and the child's working directory and socket.", Value: conf.String(&c.dir, "data")},
		{Name: "backend", Group: conf.Storage,
			Help: "Raft log store: wal (raft-wal), bolt (raft-boltdb) or inmem (lost on exit; tests only).", Value: conf.Enum(&c.backend, "wal", "wal", "bolt", "inmem")},
		{Name: "durability", Group: conf.Storage,
			Help: "When the log reaches disk: high (fsync before acknowledging), medium (every second), low (left to the OS).", Value: conf.Enum(&c.durability, "high", "low", "medium", "high")},
		{Name: "snapshot-threshold", Group: conf.Storage, Example: "100000",
			Help: "New log entries after which a snapshot is taken.", Value: conf.Uint64(&c.snapshotThreshold, 8192)},
		{Name: "trailing-logs", Group: conf.Storage,
			Help: "Log entries kept after a snapshot, so a follower slightly behind catches up without one.", Value: conf.Uint64(&c.trailingLogs, 10240)},
		{Name: "snapshot-interval", Group: conf.Storage, Example: "30s",
			Help: "How often (randomised up to twice this) to check the snapshot threshold.", Value: conf.Duration(&c.snapshotInterval, 10*time.Second)},
		{Name: "maxmemory", Group: conf.Storage, Example: "2gb",
			Help: "Refuse writes that grow memory (-OOM) when the leader's child uses more; 0 for no limit.", Value: conf.Size(&c.maxMemory, 0)},
		{Name: "restore", Group: conf.Storage, Arg: "file.rdb", Example: "backup.rdb",
			Help:  "Start a new cluster whose data is this RDB file (from redis-cli --rdb, RAFTBACKUP or any redis-server). Only on a node without Raft state and without -join; other nodes join it as usual.",
			Value: conf.String(&c.restore, "")},
		{Name: "backup-dir", Group: conf.Storage, Arg: "path", Example: "/var/backups/redraft",
			Help:  "The directory RAFTBACKUP may write into (a relative name is a file in it). Without it RAFTBACKUP is refused, so that a client cannot write files wherever this process may; redis-cli --rdb and /backup write on the client's side and need none.",
			Value: conf.String(&c.backupDir, "")},
		{Name: "redis-server", Group: conf.Storage, Arg: "path", DefaultText: "beside redraft, then $PATH",
			Help: "The redis-server executable to run as the child.", Value: conf.String(&c.redisServer, "")},
		// Security.
		{Name: "requirepass", Group: conf.Security, Arg: "password", Secret: true,
			Help:  "Clients must AUTH with this password (CONFIG SET requirepass changes it on every node through the log). Also the cluster secret, unless --cluster-secret or --cluster-secret-file is given.",
			Value: conf.String(&c.requirePass, "")},
		{Name: "cluster-secret", Group: conf.Security, Arg: "secret", Secret: true, DefaultText: "--requirepass",
			Help:  "Secret every node proves it knows (challenge and response; never sent) before any Raft traffic, -join or relay is accepted. It does not follow CONFIG SET requirepass.",
			Value: conf.String(&c.clusterSecret, "")},
		{Name: "cluster-secret-file", Group: conf.Security, Arg: "path", Example: "/etc/redraft/cluster-secret",
			Help:  "Read the cluster secret from this file instead: one secret a line, the first proves this node, all are accepted (for rotation). Re-read on SIGHUP.",
			Value: conf.String(&c.clusterSecretFile, "")},
		{Name: "tls-cert-file", Group: conf.Security, Arg: "path", Example: "/etc/redraft/tls/node.crt",
			Help:  "Certificate of this node (PEM). With it the port speaks TLS only, to clients and peers; needs --tls-key-file and --tls-ca-cert-file. Re-read on SIGHUP and when the files change.",
			Value: conf.String(&c.tlsCertFile, "")},
		{Name: "tls-key-file", Group: conf.Security, Arg: "path", Example: "/etc/redraft/tls/node.key",
			Help: "Private key of --tls-cert-file (PEM).", Value: conf.String(&c.tlsKeyFile, "")},
		{Name: "tls-ca-cert-file", Group: conf.Security, Arg: "path", Example: "/etc/redraft/tls/ca.crt",
			Help:  "CA certificate(s) (PEM) that signed every node's certificate, and clients' when they present one.",
			Value: conf.String(&c.tlsCAFile, "")},
		{Name: "tls-auth-clients", Group: conf.Security,
			Help:  "Whether clients must present a certificate the CA signed: yes, optional (checked when given) or no. Peers always must.",
			Value: conf.Enum(&c.tlsAuthClients, "yes", "yes", "no", "optional")},
		// Observability.
		{Name: "loglevel", Group: conf.Observability,
			Help: "quiet (errors only), warning, notice, verbose or debug.", Value: conf.Enum(&c.loglevel, "notice", logging.LevelNames()...)},
		{Name: "log-format", Group: conf.Observability,
			Help: "text or json.", Value: conf.Enum(&c.logFormat, "text", logging.Formats()...)},
		{Name: "metrics-addr", Group: conf.Observability, Arg: "host:port", Example: "127.0.0.1:9121",
			Help:  "Serve HTTP on this address: Prometheus metrics (/metrics), health checks (/livez, /readyz), a backup (/backup) and Go's profiles (/debug/pprof/); off by default.",
			Value: conf.String(&c.metricsAddr, "")},
	} {
		s.Add(o)
	}
}

// parseConfig reads the configuration from args, environ and the --config
// file. version prints --version.
func parseConfig(args, environ []string, version func() string) (*options, *conf.Set, error) {
	c := &options{outputLimits: defaultOutputLimits}
	s := conf.New("redraft")
	s.Usage = usage
	s.Version = version
	s.IgnoreEnv("REDRAFT_BIN", "REDRAFT_TEST_*", "REDRAFT_SOAK_*", "REDRAFT_BENCH_*")
	declareOptions(s, c)
	if err := s.Parse(args, environ); err != nil {
		return nil, s, err
	}
	if c.advertise == "" {
		c.advertise = "127.0.0.1:" + strconv.Itoa(c.port)
	}
	if err := c.checkSecurity(); err != nil {
		return nil, s, err
	}
	switch {
	case c.clusterMode && c.followerProxy:
		return nil, s, errors.New("--cluster-mode and --follower-proxy are exclusive: Redis Cluster clients follow -MOVED to the leader themselves")
	case c.restore != "" && len(c.join) > 0:
		return nil, s, errors.New("--restore starts a new cluster and cannot be combined with -join")
	case c.nonvoter && len(c.join) == 0:
		return nil, s, errors.New("--nonvoter needs -join: a node without -join starts a new cluster, whose first member votes")
	}
	return c, s, nil
}

// outputLimitsValue parses --client-output-buffer-limit.
type outputLimitsValue struct{ p *outputLimits }

// Set reads "class hard soft seconds" groups, as Redis's CONFIG SET does.
func (v outputLimitsValue) Set(s string) error {
	f := strings.Fields(s)
	if len(f) == 0 || len(f)%4 != 0 {
		return fmt.Errorf("wrong number of arguments: want <class> <hard> <soft> <seconds>, repeated")
	}
	next := *v.p
	for i := 0; i < len(f); i += 4 {
		hard, err1 := conf.ParseSize(f[i+1])
		soft, err2 := conf.ParseSize(f[i+2])
		secs, err3 := strconv.Atoi(f[i+3])
		if err := errors.Join(err1, err2, err3); err != nil || secs < 0 {
			return fmt.Errorf("bad limits for class %q", f[i])
		}
		l := outputLimit{hard: hard, soft: soft, softFor: time.Duration(secs) * time.Second}
		switch strings.ToLower(f[i]) {
		case "normal":
			next.normal = l
		case "pubsub":
			next.pubsub = l
		case "replica", "slave":
		default:
			return fmt.Errorf("unknown class %q (normal, replica or pubsub)", f[i])
		}
	}
	*v.p = next
	return nil
}

func (v outputLimitsValue) String() string {
	return fmt.Sprintf("normal %s pubsub %s", v.p.normal, v.p.pubsub)
}
func (v outputLimitsValue) Kind() string { return "class hard soft seconds" }
func (v outputLimitsValue) Allowed() string {
	return `"<class> <hard> <soft> <seconds>" groups, class normal, replica or pubsub, e.g. "pubsub 32mb 8mb 60"`
}

// checkSecurity rejects security options that do not go together.
func (c *options) checkSecurity() error {
	if c.clusterSecret != "" && c.clusterSecretFile != "" {
		return errors.New("--cluster-secret and --cluster-secret-file are exclusive: give one")
	}
	set := 0
	for _, f := range []string{c.tlsCertFile, c.tlsKeyFile, c.tlsCAFile} {
		if f != "" {
			set++
		}
	}
	if set != 0 && set != 3 {
		return errors.New("TLS needs all of --tls-cert-file, --tls-key-file and --tls-ca-cert-file (the CA checks every peer's certificate)")
	}
	return nil
}

// tlsEnabled reports whether the port speaks TLS.
func (c *options) tlsEnabled() bool { return c.tlsCertFile != "" }

// clusterSecrets are the secrets the peer handshake uses: --cluster-secret,
// else the lines of --cluster-secret-file, else the --requirepass the node
// started with (never a password set later with CONFIG SET), else none.
func (c *options) clusterSecrets() ([]string, error) {
	switch {
	case c.clusterSecret != "":
		return []string{c.clusterSecret}, nil
	case c.clusterSecretFile != "":
		return peer.ReadSecretFile(c.clusterSecretFile)
	case c.requirePass != "":
		return []string{c.requirePass}, nil
	}
	return nil, nil
}
