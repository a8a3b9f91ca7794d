package tests

// A randomized, seeded client workload over every data type, transactions,
// scripts and TTLs, run by several workers against a cluster while nodes
// are killed and restarted (TestDeterminismRandomWorkload).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ---------------------------------------------------------------------------
// Randomized workload (TestDeterminismRandomWorkload)

// detOp is one client operation of the workload.
type detOp struct {
	name string
	db   int
	cmd  []interface{}                                    // a single command, or
	tx   [][]interface{}                                  // MULTI/EXEC via TxPipelined, or
	run  func(ctx context.Context, c *redis.Client) error // anything else
}

// detScripts are the Lua scripts of the workload. All of them must be
// deterministic under redraft's design (TTL arguments rewritten from T,
// TIME answered with T, TTL reads relative to T).
var detScripts = []struct {
	body  string
	nkeys int
}{
	{"return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])", 1},
	{"local v = redis.call('INCR', KEYS[1]); redis.call('PEXPIRE', KEYS[1], ARGV[2]); return v", 1},
	{"local t = redis.call('TIME'); redis.call('SET', KEYS[1], t[1] .. '.' .. t[2], 'EX', 1 + (tonumber(ARGV[2]) % 3)); return t[1]", 1},
	{"redis.call('SETEX', KEYS[1], 1 + (tonumber(ARGV[2]) % 3), ARGV[1]); return redis.call('TTL', KEYS[1])", 1},
	{"local ttl = redis.call('PTTL', KEYS[1]); redis.call('SET', KEYS[2], tostring(ttl), 'PX', ARGV[2]); return ttl", 2},
	{"redis.call('APPEND', KEYS[1], ARGV[1]); return redis.call('EXPIRE', KEYS[1], 1 + (tonumber(ARGV[2]) % 3), 'GT')", 1},
	{"return redis.call('GETEX', KEYS[1], 'PX', ARGV[2])", 1},
	{"redis.call('PSETEX', KEYS[1], ARGV[2], ARGV[1]); return redis.call('PEXPIRETIME', KEYS[1])", 1},
}

// detEvalshaScript is run through go-redis Script (EVALSHA, EVAL on NOSCRIPT).
var detEvalshaScript = redis.NewScript("local v = redis.call('INCRBY', KEYS[1], ARGV[1]); redis.call('PEXPIRE', KEYS[1], ARGV[2]); return v")

// detGen generates workload operations from a seeded source.
type detGen struct {
	r  *rand.Rand
	id int
}

func (g *detGen) pick(prefix string, n int) string {
	return fmt.Sprintf("%s:%d", prefix, g.r.Intn(n))
}

func (g *detGen) str() string { return g.pick("s", 30) }

func (g *detGen) cnt() string { return g.pick("c", 8) }

func (g *detGen) flt() string { return g.pick("f", 4) }

func (g *detGen) lst() string { return g.pick("l", 8) }

func (g *detGen) hsh() string { return g.pick("h", 8) }

func (g *detGen) set() string { return g.pick("set", 8) }

func (g *detGen) zst() string { return g.pick("z", 8) }

func (g *detGen) strm() string { return g.pick("x", 4) }

func (g *detGen) hll() string { return g.pick("hll", 3) }

func (g *detGen) any() string {
	switch g.r.Intn(9) {
	case 0, 1:
		return g.str()
	case 2:
		return g.cnt()
	case 3:
		return g.lst()
	case 4:
		return g.hsh()
	case 5:
		return g.set()
	case 6:
		return g.zst()
	case 7:
		return g.strm()
	}
	return g.flt()
}

// sameType returns another key of the same kind as k (for RENAME/COPY).
func (g *detGen) sameType(k string) string {
	prefix := k[:strings.IndexByte(k, ':')]
	n := map[string]int{"s": 30, "c": 8, "f": 4, "l": 8, "h": 8, "set": 8, "z": 8, "x": 4, "hll": 3}[prefix]
	return g.pick(prefix, n)
}

// ttl returns a TTL in ms: 0.1–3 s, and now and then a long one.
func (g *detGen) ttl() int64 {
	if g.r.Intn(20) == 0 {
		return 30000 + g.r.Int63n(90000)
	}
	return 100 + g.r.Int63n(2900)
}

func (g *detGen) val() string { return fmt.Sprintf("v%d.%d", g.id, g.r.Intn(1000)) }

func (g *detGen) member() string { return fmt.Sprintf("m%02d", g.r.Intn(40)) }

// simple returns one random single command (usable inside MULTI).
func (g *detGen) simple() (string, []interface{}) {
	r := g.r
	now := time.Now().UnixMilli()
	switch r.Intn(40) {
	case 0, 1, 2:
		k := g.str()
		switch r.Intn(8) {
		case 0:
			return "SET PX", []interface{}{"SET", k, g.val(), "PX", g.ttl()}
		case 1:
			return "SET EX", []interface{}{"SET", k, g.val(), "EX", 1 + r.Intn(3)}
		case 2:
			return "SET PXAT", []interface{}{"SET", k, g.val(), "PXAT", now + g.ttl()}
		case 3:
			return "SET EXAT", []interface{}{"SET", k, g.val(), "EXAT", now/1000 + 1 + int64(r.Intn(3))}
		case 4:
			return "SET KEEPTTL", []interface{}{"SET", k, g.val(), "KEEPTTL"}
		case 5:
			return "SET NX PX", []interface{}{"SET", k, g.val(), "NX", "PX", g.ttl()}
		case 6:
			return "SET XX GET", []interface{}{"SET", k, g.val(), "XX", "GET"}
		}
		return "SET", []interface{}{"SET", k, g.val()}
	case 3, 4:
		return "APPEND", []interface{}{"APPEND", g.str(), "x"}
	case 5:
		switch r.Intn(4) {
		case 0:
			return "GETEX PX", []interface{}{"GETEX", g.str(), "PX", g.ttl()}
		case 1:
			return "GETEX EX", []interface{}{"GETEX", g.str(), "EX", 1 + r.Intn(3)}
		case 2:
			return "GETEX PERSIST", []interface{}{"GETEX", g.str(), "PERSIST"}
		}
		return "GETEX PXAT", []interface{}{"GETEX", g.str(), "PXAT", now + g.ttl()}
	case 6:
		if r.Intn(2) == 0 {
			return "SETEX", []interface{}{"SETEX", g.str(), 1 + r.Intn(3), g.val()}
		}
		return "PSETEX", []interface{}{"PSETEX", g.str(), g.ttl(), g.val()}
	case 7:
		return "SETRANGE", []interface{}{"SETRANGE", g.str(), r.Intn(5), "zz"}
	case 8, 9:
		k := g.cnt()
		switch r.Intn(4) {
		case 0:
			return "SET cnt PX", []interface{}{"SET", k, r.Intn(100), "PX", g.ttl()}
		case 1:
			return "INCRBY", []interface{}{"INCRBY", k, r.Intn(10) - 3}
		}
		return "INCR", []interface{}{"INCR", k}
	case 10, 11:
		incs := []string{"0.1", "1.7", "-0.3", "3e2", "0.000123", "1.0000000001"}
		return "INCRBYFLOAT", []interface{}{"INCRBYFLOAT", g.flt(), incs[r.Intn(len(incs))]}
	case 12, 13:
		k := g.any()
		opts := []string{"", "NX", "XX", "GT", "LT"}
		o := opts[r.Intn(len(opts))]
		var c []interface{}
		switch r.Intn(6) {
		case 0:
			c = []interface{}{"EXPIRE", k, 1 + r.Intn(3)}
		case 1:
			c = []interface{}{"PEXPIRE", k, g.ttl()}
		case 2:
			c = []interface{}{"PEXPIREAT", k, now + g.ttl()}
		case 3:
			c = []interface{}{"EXPIREAT", k, now/1000 + 1 + int64(r.Intn(3))}
		case 4:
			return "PERSIST", []interface{}{"PERSIST", k}
		default:
			// A deadline already in the past deletes the key at once.
			return "PEXPIRE past", []interface{}{"PEXPIRE", k, -1 - r.Intn(1000)}
		}
		if o != "" {
			c = append(c, o)
		}
		return fmt.Sprint(c[0]), c
	case 14, 15:
		k := g.lst()
		switch r.Intn(7) {
		case 0:
			return "LPUSH", []interface{}{"LPUSH", k, g.val(), g.val()}
		case 1:
			return "LPOP", []interface{}{"LPOP", k, 1 + r.Intn(2)}
		case 2:
			return "RPOP", []interface{}{"RPOP", k}
		case 3:
			return "LTRIM", []interface{}{"LTRIM", k, 0, 10}
		case 4:
			return "LMOVE", []interface{}{"LMOVE", k, g.lst(), "LEFT", "RIGHT"}
		case 5:
			return "LINSERT", []interface{}{"LINSERT", k, "BEFORE", "x", g.val()}
		}
		return "RPUSH", []interface{}{"RPUSH", k, g.val(), "x"}
	case 16, 17:
		k := g.hsh()
		switch r.Intn(5) {
		case 0:
			return "HDEL", []interface{}{"HDEL", k, g.member()}
		case 1:
			return "HINCRBY", []interface{}{"HINCRBY", k, "n", r.Intn(5)}
		case 2:
			return "HINCRBYFLOAT", []interface{}{"HINCRBYFLOAT", k, "fl", "0.25"}
		}
		return "HSET", []interface{}{"HSET", k, g.member(), g.val(), g.member(), g.val()}
	case 18, 19, 20:
		k := g.set()
		switch r.Intn(7) {
		case 0:
			return "SREM", []interface{}{"SREM", k, g.member()}
		case 1:
			return "SPOP", []interface{}{"SPOP", k}
		case 2:
			return "SPOP count", []interface{}{"SPOP", k, 1 + r.Intn(4)}
		case 3:
			return "SMOVE", []interface{}{"SMOVE", k, g.set(), g.member()}
		case 4:
			return "SUNIONSTORE", []interface{}{"SUNIONSTORE", k, g.set(), g.set()}
		case 5:
			return "SINTERSTORE", []interface{}{"SINTERSTORE", k, g.set(), g.set()}
		}
		c := []interface{}{"SADD", k}
		for i := 0; i < 1+r.Intn(6); i++ {
			c = append(c, g.member())
		}
		return "SADD", c
	case 21, 22:
		k := g.zst()
		switch r.Intn(5) {
		case 0:
			return "ZINCRBY", []interface{}{"ZINCRBY", k, "1.5", g.member()}
		case 1:
			return "ZREM", []interface{}{"ZREM", k, g.member()}
		case 2:
			return "ZPOPMIN", []interface{}{"ZPOPMIN", k, 1 + r.Intn(2)}
		case 3:
			return "ZRANGESTORE", []interface{}{"ZRANGESTORE", g.zst(), k, 0, 4}
		}
		return "ZADD", []interface{}{"ZADD", k, r.Intn(100), g.member(), fmt.Sprintf("%.3f", r.Float64()), g.member()}
	case 23, 24:
		k := g.strm()
		switch r.Intn(5) {
		case 0:
			return "XADD MAXLEN~", []interface{}{"XADD", k, "MAXLEN", "~", 50, "*", "f", g.val()}
		case 1:
			return "XTRIM", []interface{}{"XTRIM", k, "MAXLEN", 30}
		case 2:
			return "XGROUP CREATE", []interface{}{"XGROUP", "CREATE", k, "g", "0", "MKSTREAM"}
		case 3:
			return "XADD MAXLEN", []interface{}{"XADD", k, "MAXLEN", 40, "*", "f", g.val(), "n", g.r.Intn(9)}
		}
		return "XADD", []interface{}{"XADD", k, "*", "f", g.val()}
	case 25, 26, 27:
		s := detScripts[r.Intn(len(detScripts))]
		args := []interface{}{"EVAL", s.body, s.nkeys}
		if s.nkeys == 1 {
			args = append(args, g.str())
		} else {
			args = append(args, g.str(), g.str())
		}
		return "EVAL", append(args, g.val(), g.ttl())
	case 28:
		k := g.any()
		if r.Intn(2) == 0 {
			return "RENAME", []interface{}{"RENAME", k, g.sameType(k)}
		}
		return "RENAMENX", []interface{}{"RENAMENX", k, g.sameType(k)}
	case 29:
		k := g.any()
		if r.Intn(3) == 0 {
			return "COPY DB", []interface{}{"COPY", k, g.sameType(k), "DB", 3 - 3*r.Intn(2), "REPLACE"}
		}
		return "COPY", []interface{}{"COPY", k, g.sameType(k), "REPLACE"}
	case 30:
		return "MOVE", []interface{}{"MOVE", g.any(), 3}
	case 31:
		if r.Intn(2) == 0 {
			return "UNLINK", []interface{}{"UNLINK", g.any()}
		}
		return "DEL", []interface{}{"DEL", g.any(), g.any()}
	case 32:
		return "PFADD", []interface{}{"PFADD", g.hll(), g.member(), g.member()}
	case 33:
		return "SORT STORE", []interface{}{"SORT", g.lst(), "ALPHA", "STORE", g.lst()}
	case 34:
		return "GETDEL", []interface{}{"GETDEL", g.str()}
	case 35:
		return "HSETNX", []interface{}{"HSETNX", g.hsh(), "once", g.val()}
	case 36:
		return "LSET", []interface{}{"LSET", g.lst(), 0, g.val()}
	case 37:
		return "ZADD GT", []interface{}{"ZADD", g.zst(), "GT", r.Intn(100), g.member()}
	case 38:
		return "INCRBYFLOAT hash", []interface{}{"HINCRBYFLOAT", g.hsh(), "f", "-1.5e-3"}
	}
	return "SET long", []interface{}{"SET", g.str(), g.val(), "PX", 30000 + r.Intn(60000)}
}

// next returns the next operation.
func (g *detGen) next() detOp {
	r := g.r
	db := 0
	if r.Intn(4) == 0 {
		db = 3
	}
	switch n := r.Intn(100); {
	case n < 8: // MULTI/EXEC
		var tx [][]interface{}
		for i := 0; i < 2+r.Intn(4); i++ {
			_, c := g.simple()
			tx = append(tx, c)
		}
		return detOp{name: "MULTI/EXEC", db: db, tx: tx}
	case n < 11: // EVALSHA (go-redis Script: EVALSHA, then EVAL on NOSCRIPT)
		k, inc, ttl := g.cnt(), r.Intn(5), g.ttl()
		return detOp{name: "EVALSHA", db: db, run: func(ctx context.Context, c *redis.Client) error {
			return detEvalshaScript.Run(ctx, c, []string{k}, inc, ttl).Err()
		}}
	case n < 13: // DUMP + RESTORE with a relative or absolute TTL
		src, dst, ttl, abs := g.str(), g.str(), g.ttl(), r.Intn(2) == 0
		return detOp{name: "RESTORE", db: db, run: func(ctx context.Context, c *redis.Client) error {
			payload, err := c.Dump(ctx, src).Result()
			if err != nil {
				return err
			}
			args := []interface{}{"RESTORE", dst, ttl, payload, "REPLACE"}
			if abs {
				args = []interface{}{"RESTORE", dst, time.Now().UnixMilli() + ttl, payload, "REPLACE", "ABSTTL"}
			}
			return c.Do(ctx, args...).Err()
		}}
	case n < 15: // XREADGROUP then XACK of the first entry read
		k, consumer, ack := g.strm(), fmt.Sprintf("c%d", r.Intn(3)), r.Intn(2) == 0
		return detOp{name: "XREADGROUP+XACK", db: db, run: func(ctx context.Context, c *redis.Client) error {
			res, err := c.Do(ctx, "XREADGROUP", "GROUP", "g", consumer, "COUNT", 2, "STREAMS", k, ">").Result()
			if err != nil || !ack {
				return err
			}
			id := detFirstStreamID(res)
			if id == "" {
				return nil
			}
			return c.Do(ctx, "XACK", k, "g", id).Err()
		}}
	case n < 16:
		return detOp{name: "XAUTOCLAIM", db: db, cmd: []interface{}{"XAUTOCLAIM", g.strm(), "g", fmt.Sprintf("c%d", r.Intn(3)), 0, "0-0", "COUNT", 2}}
	case n < 19: // reads: exercise hiding of keys past their deadline
		reads := [][]interface{}{{"GET", g.str()}, {"EXISTS", g.any(), g.any()}, {"TTL", g.any()}, {"PTTL", g.str()},
			{"MGET", g.str(), g.str()}, {"SCAN", 0, "COUNT", 20}, {"SMEMBERS", g.set()}, {"XRANGE", g.strm(), "-", "+", "COUNT", 3}}
		return detOp{name: "read", db: db, cmd: reads[r.Intn(len(reads))]}
	case n == 19 && r.Intn(40) == 0:
		return detOp{name: "SWAPDB", db: 0, cmd: []interface{}{"SWAPDB", 0, 3}}
	case n == 20 && r.Intn(40) == 0:
		return detOp{name: "FLUSHDB", db: 3, cmd: []interface{}{"FLUSHDB"}}
	}
	name, c := g.simple()
	return detOp{name: name, db: db, cmd: c}
}

// detFirstStreamID digs the first entry ID out of an XREADGROUP reply.
func detFirstStreamID(res interface{}) string {
	streams := asList(res)
	if len(streams) == 0 {
		return ""
	}
	st := asList(streams[0])
	if len(st) < 2 {
		return ""
	}
	entries := asList(st[1])
	if len(entries) == 0 {
		return ""
	}
	e := asList(entries[0])
	if len(e) == 0 {
		return ""
	}
	return fmt.Sprint(e[0])
}

// detStats counts workload outcomes.
type detStats struct {
	mu        sync.Mutex
	ok        int
	redirects int
	infra     map[string]int // failed because of the cluster (node down, election, TRY loop)
	app       map[string]int // rejected by Redis semantics (WRONGTYPE, no such key, ...)
	byOp      map[string]int
}

func newDetStats() *detStats {
	return &detStats{infra: map[string]int{}, app: map[string]int{}, byOp: map[string]int{}}
}

func (s *detStats) add(f func(s *detStats)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

func (s *detStats) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	top := func(m map[string]int, n int) string {
		type kv struct {
			k string
			v int
		}
		var l []kv
		total := 0
		for k, v := range m {
			l = append(l, kv{k, v})
			total += v
		}
		sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || (l[i].v == l[j].v && l[i].k < l[j].k) })
		var parts []string
		for i, e := range l {
			if i == n {
				parts = append(parts, "...")
				break
			}
			parts = append(parts, fmt.Sprintf("%dx %q", e.v, e.k))
		}
		return fmt.Sprintf("%d [%s]", total, strings.Join(parts, ", "))
	}
	return fmt.Sprintf("ok=%d redirects=%d\n  cluster failures=%s\n  app errors=%s\n  ops by kind=%s",
		s.ok, s.redirects, top(s.infra, 8), top(s.app, 8), top(s.byOp, 60))
}

// detIsInfraError reports errors caused by node failures or elections
// rather than by the command itself; rotate says: try another node.
func detIsInfraError(err error) (infra, rotate bool) {
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) {
		return true, true
	}
	msg := err.Error()
	for _, s := range []string{"connection refused", "connection reset", "broken pipe", "EOF", "i/o timeout",
		"use of closed network connection", "pool timeout", "CLUSTERDOWN", "closed"} {
		if strings.Contains(msg, s) {
			return true, true
		}
	}
	for _, s := range []string{"leadership", "timed out waiting for the Raft log", "ERR raft:", "not the leader",
		"redis-server connection failed", "linearizable read failed"} {
		if strings.Contains(msg, s) {
			return true, false
		}
	}
	return false, false
}

// detWorker runs workload operations against the leader, following TRY
// redirects and moving to another node when its node is unreachable.
type detWorker struct {
	gen     *detGen
	addrs   []string
	cur     string
	clients map[string]*redis.Client
	stats   *detStats
}

func (w *detWorker) client(db int) *redis.Client {
	key := fmt.Sprintf("%s/%d", w.cur, db)
	c := w.clients[key]
	if c == nil {
		c = newClient(w.cur, db)
		w.clients[key] = c
	}
	return c
}

func (w *detWorker) close() {
	for _, c := range w.clients {
		c.Close()
	}
}

func (w *detWorker) rotate() {
	for i, a := range w.addrs {
		if a == w.cur {
			w.cur = w.addrs[(i+1)%len(w.addrs)]
			return
		}
	}
	w.cur = w.addrs[0]
}

// exec runs one operation against the current node.
func (w *detWorker) exec(op detOp) error {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	c := w.client(op.db)
	switch {
	case op.run != nil:
		return op.run(ctx, c)
	case op.tx != nil:
		_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, cmd := range op.tx {
				p.Do(ctx, cmd...)
			}
			return nil
		})
		return err
	}
	return c.Do(ctx, op.cmd...).Err()
}

// do runs op, following up to 3 TRY redirects, and records the outcome.
func (w *detWorker) do(op detOp) {
	w.stats.add(func(s *detStats) { s.byOp[op.name]++ })
	for attempt := 0; ; attempt++ {
		err := w.exec(op)
		if err == nil || err == redis.Nil {
			w.stats.add(func(s *detStats) { s.ok++ })
			return
		}
		msg := err.Error()
		if addr, ok := strings.CutPrefix(msg, "TRY "); ok {
			w.stats.add(func(s *detStats) { s.redirects++ })
			w.cur = strings.TrimSpace(addr)
			if attempt < 3 {
				continue
			}
			w.stats.add(func(s *detStats) { s.infra["TRY loop"]++ })
			return
		}
		if infra, rotate := detIsInfraError(err); infra {
			if len(msg) > 60 {
				msg = msg[:60]
			}
			w.stats.add(func(s *detStats) { s.infra[msg]++ })
			if rotate {
				w.rotate()
			}
			// Back off a little while the cluster recovers (rate limit,
			// not synchronisation).
			time.Sleep(20 * time.Millisecond)
			return
		}
		if i := strings.IndexAny(msg, " "); i > 0 && strings.ToUpper(msg[:i]) == msg[:i] && msg[:i] != "ERR" {
			msg = msg[:i] // WRONGTYPE, BUSYGROUP, NOGROUP, EXECABORT, ...
		} else if len(msg) > 50 {
			msg = msg[:50]
		}
		w.stats.add(func(s *detStats) { s.app[op.name+": "+msg]++ })
		return
	}
}

// short is a one-line progress summary.
func (s *detStats) short() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	infra := 0
	for _, v := range s.infra {
		infra += v
	}
	app := 0
	for _, v := range s.app {
		app += v
	}
	return fmt.Sprintf("ok=%d failed=%d app-errors=%d redirects=%d", s.ok, infra, app, s.redirects)
}
