package tests

// Real clients in RESP3: go-redis with Protocol 3 and rueidis with its
// default options (RESP3, client-side caching on through CLIENT TRACKING
// OPTIN), against the leader and against followers (one at --consistency
// low that serves reads itself, one that relays everything), with the
// writes that invalidate their caches made on another node.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

func TestRESP3Clients(t *testing.T) {
	e := startResp3Env(t)
	t.Run("GoRedisProtocol3", func(t *testing.T) {
		l := e.leader(t)
		for _, n := range e.all {
			goRedis3(t, n, l, e.all)
		}
	})
	t.Run("RueidisDefaults", func(t *testing.T) {
		l := e.leader(t)
		for _, n := range e.all {
			rueidisCache(t, n, l, e.all)
		}
	})
	t.Run("RedisCli3", func(t *testing.T) { e.redisCli3(t) })
	t.Run("RedisPyRedirect", func(t *testing.T) { e.redisPyRedirect(t) })
}

// TestRESP3ClusterMode: in --cluster-mode, rueidis with its default options
// finds the leader through the cluster commands (its cluster client, RESP3)
// and caches what it reads until a write made through a go-redis
// ClusterClient in RESP3, sent to a follower, invalidates it.
func TestRESP3ClusterMode(t *testing.T) {
	nodes := startCluster(t, 3, nodeOpts{Args: []string{"--cluster-mode"}})
	l := waitLeader(t, nodes...)
	f := others(nodes, l)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{f.Addr}, Protocol: 3, ClusterStateReloadInterval: time.Second})
	defer cc.Close()
	if err := cc.HSet(ctx, "cm:h", "a", "1").Err(); err != nil {
		t.Fatalf("HSET through a follower: %v", err)
	}
	if raw, err := cc.Do(ctx, "HGETALL", "cm:h").Result(); err != nil || fmt.Sprint(raw) != "map[a:1]" {
		t.Fatalf("HGETALL: %T %v, %v", raw, raw, err)
	}
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{f.Addr}})
	if err != nil {
		t.Fatalf("rueidis with default options: %v", err)
	}
	defer c.Close()
	if err := cc.Set(ctx, "cm:k", "v1", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	get := func() (string, bool) {
		t.Helper()
		r := c.DoCache(ctx, c.B().Get().Key("cm:k").Cache(), time.Hour)
		v, err := r.ToString()
		if err != nil {
			t.Fatalf("cached GET: %v", err)
		}
		return v, r.IsCacheHit()
	}
	if v, _ := get(); v != "v1" {
		t.Fatalf("cached GET = %q", v)
	}
	if v, hit := get(); v != "v1" || !hit {
		t.Fatalf("second cached GET = %q (hit %v): not cached", v, hit)
	}
	if err := cc.Set(ctx, "cm:k", "v2", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	eventually(t, 15*time.Second, func() error {
		if v, hit := get(); v != "v2" {
			return fmt.Errorf("cached GET = %q (hit %v) after the key changed", v, hit)
		}
		return nil
	})
}

// redisCli3: redis-cli -3 prints redraft's replies as it prints
// redis-server's (with its type-aware formatting, as on a terminal).
func (e *resp3Env) redisCli3(t *testing.T) {
	l := e.leader(t)
	flushBoth(t, l, e.bare)
	for _, c := range [][]string{{"HSET", "h", "a", "1"}, {"ZADD", "z", "2.5", "m"}, {"SADD", "s", "x"}} {
		l.MustDo(toArgs(c)...)
		dialR(t, e.bare.Addr).do(c...)
	}
	waitApplied(t, e.all...)
	bare := bareNode(e.bare)
	for _, n := range []*Node{l, e.n2, e.n3} {
		for _, c := range [][]string{{"HGETALL", "h"}, {"ZSCORE", "z", "m"}, {"SMEMBERS", "s"}, {"GET", "missing"},
			{"ZRANGE", "z", "0", "-1", "WITHSCORES"}, {"EVAL", "redis.setresp(3); return redis.call('HGETALL', KEYS[1])", "1", "h"},
			{"CLIENT", "TRACKINGINFO"}, {"XREAD", "STREAMS", "nostream", "0"}} {
			args := append([]string{"--no-raw", "-3"}, c...)
			if got, want := cli(t, n.Port, args...), cli(t, bare, args...); got != want {
				t.Errorf("%s: redis-cli -3 %q:\n got %q\nwant %q", n, c, got, want)
			}
		}
	}
}

// bareNode is the bare server's port, for cli.
func bareNode(b *bareRedis) int {
	_, port, _ := strings.Cut(b.Addr, ":")
	n, _ := strconv.Atoi(port)
	return n
}

// redisPyRedirect: redis-py (Debian's, RESP2 only) caches the RESP2 way: a
// connection subscribed to __redis__:invalidate receives the invalidations
// of another connection's CLIENT TRACKING on REDIRECT, on every node, for
// writes made on the leader.
func (e *resp3Env) redisPyRedirect(t *testing.T) {
	l := e.leader(t)
	const script = `
import sys, redis
port, leader, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
r = redis.Redis(port=port, socket_timeout=15)
inv = r.connection_pool.get_connection('inv')
inv.send_command('CLIENT', 'ID')
cid = inv.read_response()
inv.send_command('SUBSCRIBE', '__redis__:invalidate')
print(inv.read_response())
trk = r.connection_pool.get_connection('trk')
trk.send_command('CLIENT', 'TRACKING', 'on', 'REDIRECT', cid)
print(trk.read_response())
trk.send_command('GET', key)
print(trk.read_response())
redis.Redis(port=leader).set(key, 'v')
print(inv.read_response())
`
	for _, n := range e.all {
		key := "py:" + n.Name
		got := pyRedis(t, script, strconv.Itoa(n.Port), strconv.Itoa(l.Port), key)
		want := fmt.Sprintf("[b'subscribe', b'__redis__:invalidate', 1]\nb'OK'\nNone\n[b'message', b'__redis__:invalidate', [b'%s']]", key)
		if got != want {
			t.Errorf("%s: redis-py:\n got %q\nwant %q", n, got, want)
		}
	}
}

// goRedis3 runs go-redis in RESP3 against n; writes that n cannot serve go
// through its --follower-proxy.
func goRedis3(t *testing.T, n, l *Node, all []*Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: n.Addr, Protocol: 3, MaxRetries: -1})
	defer c.Close()
	if info, err := c.Do(ctx, "CLIENT", "INFO").Text(); err != nil || !strings.Contains(info, " resp=3") {
		t.Fatalf("%s: CLIENT INFO %q, %v: not a RESP3 connection", n, info, err)
	}
	prefix := "gr3:" + n.Name + ":"
	h, z := prefix+"h", prefix+"z"
	if err := c.HSet(ctx, h, "a", "1", "b", "2").Err(); err != nil {
		t.Fatalf("%s: HSET: %v", n, err)
	}
	if err := c.ZAdd(ctx, z, redis.Z{Score: 1.5, Member: "x"}, redis.Z{Score: 2.25, Member: "y"}).Err(); err != nil {
		t.Fatalf("%s: ZADD: %v", n, err)
	}
	waitApplied(t, all...) // a low follower serves reads from its own child
	if m, err := c.HGetAll(ctx, h).Result(); err != nil || fmt.Sprint(m) != "map[a:1 b:2]" {
		t.Errorf("%s: HGETALL: %v, %v", n, m, err)
	}
	if raw, err := c.Do(ctx, "HGETALL", h).Result(); err != nil || fmt.Sprintf("%T", raw) != "map[interface {}]interface {}" {
		t.Errorf("%s: HGETALL is not a RESP3 map: %T %v, %v", n, raw, raw, err)
	}
	if zs, err := c.ZRangeWithScores(ctx, z, 0, -1).Result(); err != nil || fmt.Sprint(zs) != "[{1.5 x} {2.25 y}]" {
		t.Errorf("%s: ZRANGE WITHSCORES: %v, %v", n, zs, err)
	}
	if f, err := c.Do(ctx, "ZSCORE", z, "y").Result(); err != nil || f != 2.25 {
		t.Errorf("%s: ZSCORE is not a RESP3 double: %T %v, %v", n, f, f, err)
	}
	if _, err := c.Get(ctx, prefix+"missing").Result(); err != redis.Nil {
		t.Errorf("%s: GET of a missing key: %v", n, err)
	}
	if v, err := c.Eval(ctx, "redis.setresp(3); return redis.call('HGETALL', KEYS[1])", []string{h}).Result(); err != nil || fmt.Sprint(v) != "map[a:1 b:2]" {
		t.Errorf("%s: EVAL with redis.setresp(3): %v, %v", n, v, err)
	}
	cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HGetAll(ctx, h)
		p.ZScore(ctx, z, "x")
		p.Incr(ctx, prefix+"n")
		return nil
	})
	if err != nil || len(cmds) != 3 || fmt.Sprint(cmds[0].(*redis.MapStringStringCmd).Val()) != "map[a:1 b:2]" || cmds[1].(*redis.FloatCmd).Val() != 1.5 {
		t.Errorf("%s: MULTI/EXEC: %v, %v", n, cmds, err)
	}
	// Blocking: served after a write on the leader.
	done := make(chan error, 1)
	go func() {
		v, err := c.BZPopMin(ctx, 30*time.Second, prefix+"bz").Result()
		if err == nil && (v.Member != "m" || v.Score != 3.5) {
			err = fmt.Errorf("BZPOPMIN = %+v", v)
		}
		done <- err
	}()
	waitBlocked(t, l.Addr, 1)
	if err := l.Client().ZAdd(ctx, prefix+"bz", redis.Z{Score: 3.5, Member: "m"}).Err(); err != nil {
		t.Fatalf("ZADD on the leader: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("%s: BZPOPMIN: %v", n, err)
	}
	// Pub/Sub: messages as RESP3 pushes, published on the leader.
	sub := c.Subscribe(ctx, prefix+"ch")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatalf("%s: SUBSCRIBE: %v", n, err)
	}
	if err := l.Client().Publish(ctx, prefix+"ch", "hello").Err(); err != nil {
		t.Fatalf("PUBLISH: %v", err)
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil || msg.Channel != prefix+"ch" || msg.Payload != "hello" {
		t.Errorf("%s: message %+v, %v", n, msg, err)
	}
}

// rueidisCache runs rueidis with its default options against n: a cached
// read is served from its cache until another client changes the key on
// the leader, and the next read then brings the new value.
func rueidisCache(t *testing.T, n, l *Node, all []*Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{n.Addr}})
	if err != nil {
		t.Fatalf("%s: rueidis with default options: %v", n, err)
	}
	defer c.Close()
	key := "rue:" + n.Name
	writer := l.Client()
	if err := writer.Set(ctx, key, "v1", 0).Err(); err != nil {
		t.Fatalf("SET on the leader: %v", err)
	}
	waitApplied(t, all...)
	get := func() (string, bool) {
		t.Helper()
		r := c.DoCache(ctx, c.B().Get().Key(key).Cache(), time.Hour)
		v, err := r.ToString()
		if err != nil {
			t.Fatalf("%s: cached GET: %v", n, err)
		}
		return v, r.IsCacheHit()
	}
	if v, hit := get(); v != "v1" || hit {
		t.Fatalf("%s: first cached GET = %q (hit %v)", n, v, hit)
	}
	if v, hit := get(); v != "v1" || !hit {
		t.Fatalf("%s: second cached GET = %q (hit %v): the value was not cached", n, v, hit)
	}
	if err := writer.Set(ctx, key, "v2", 0).Err(); err != nil {
		t.Fatalf("SET on the leader: %v", err)
	}
	eventually(t, 15*time.Second, func() error {
		if v, hit := get(); v != "v2" {
			return fmt.Errorf("%s: cached GET = %q (hit %v) after the leader changed the key", n, v, hit)
		}
		return nil
	})
	if v, hit := get(); v != "v2" || !hit {
		t.Errorf("%s: the new value is not cached: %q (hit %v)", n, v, hit)
	}
	// Its own writes, relayed by a follower, invalidate too; and a key
	// deleted by FLUSHALL on the leader is dropped.
	if err := c.Do(ctx, c.B().Set().Key(key).Value("v3").Build()).Error(); err != nil {
		t.Fatalf("%s: rueidis SET: %v", n, err)
	}
	eventually(t, 15*time.Second, func() error {
		if v, _ := get(); v != "v3" {
			return fmt.Errorf("%s: cached GET = %q after its own SET", n, v)
		}
		return nil
	})
	if err := writer.FlushAll(ctx).Err(); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
	eventually(t, 15*time.Second, func() error {
		r := c.DoCache(ctx, c.B().Get().Key(key).Cache(), time.Hour)
		if !rueidis.IsRedisNil(r.Error()) {
			v, _ := r.ToString()
			return fmt.Errorf("%s: cached GET = %q, %v after FLUSHALL", n, v, r.Error())
		}
		return nil
	})
	// Pub/Sub through rueidis: a RESP3 push.
	got := make(chan string, 1)
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = c.Receive(subCtx, c.B().Subscribe().Channel(key).Build(), func(m rueidis.PubSubMessage) { got <- m.Message })
	}()
	// The subscription is on n's child: wait until it counts it.
	eventually(t, 15*time.Second, func() error {
		v, err := n.Client().PubSubNumSub(ctx, key).Result()
		if err != nil || v[key] == 0 {
			return fmt.Errorf("%s: not subscribed yet: %v %v", n, v, err)
		}
		return nil
	})
	if err := writer.Publish(ctx, key, "m").Err(); err != nil {
		t.Fatalf("PUBLISH: %v", err)
	}
	select {
	case m := <-got:
		if m != "m" {
			t.Errorf("%s: message %q", n, m)
		}
	case <-ctx.Done():
		t.Errorf("%s: no message through rueidis", n)
	}
}
