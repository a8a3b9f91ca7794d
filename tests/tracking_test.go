package tests

// Client-side caching (CLIENT TRACKING): the same multi-connection scripts
// run against a bare redis-server and against redraft, with the tracking
// clients on the leader, on a --consistency low follower and on a
// --follower-proxy follower while the writers use the leader; every
// connection's replies and invalidation pushes are compared byte for byte.
// Then expiry, FLUSHALL and snapshot installs, which no script can time.

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// tstep is one step of a tracking script: commands sent at once on
// connection conn. "$ID<n>" in an argument stands for connection n's
// client ID.
type tstep struct {
	conn int
	cmds [][]string
}

// on builds a step of one command.
func on(conn int, args ...string) tstep { return tstep{conn: conn, cmds: [][]string{args}} }

// pipe builds a step of commands sent together (CLIENT CACHING and the
// command it is for: the PING that ends a step would use it up).
func pipe(conn int, cmds ...[]string) tstep { return tstep{conn: conn, cmds: cmds} }

// stepResult is what one step produced on each connection.
type stepResult struct {
	own    output     // the acting connection's output
	pushes [][][]byte // per other connection: pushes received
	others [][][]byte // per other connection: anything else received
}

// trackScript runs a script on connections opened to addrs (one per
// connection) and returns each step's outputs. With want (the bare
// server's results), connections other than the acting one wait for as
// many pushes as the bare server sent them (they arrive asynchronously in
// redraft) and the outputs are compared; nodes are brought to the same
// applied index after every step, so that reads on a follower see the
// writes before them.
func trackScript(t *testing.T, addrs []string, script []tstep, want []stepResult, nodes []*Node) []stepResult {
	t.Helper()
	conns := make([]*rconn, len(addrs))
	ids := make([]string, len(addrs))
	for i, a := range addrs {
		conns[i] = dialR(t, a)
		ids[i] = conns[i].clientID()
	}
	subst := func(args []string) []string {
		out := make([]string, len(args))
		for i, a := range args {
			out[i] = a
			for j := range ids {
				out[i] = strings.ReplaceAll(out[i], fmt.Sprintf("$ID%d", j), ids[j])
			}
		}
		return out
	}
	// Client IDs differ between servers: where one is shown (CLIENT
	// GETREDIR, TRACKINGINFO's redirect, a broken redirect's push), it is
	// replaced by $ID<n>.
	mask := func(raws [][]byte) [][]byte {
		out := normalizeAll(raws)
		for i := range out {
			out[i] = redirectID.ReplaceAllFunc(out[i], func(m []byte) []byte {
				prefix := redirectID.FindSubmatch(m)[1] // the ID follows it
				for j, id := range ids {
					if string(m[len(prefix):len(m)-2]) == id {
						return fmt.Appendf(bytes.Clone(prefix), "$ID%d\r\n", j)
					}
				}
				return m
			})
		}
		return out
	}
	results := make([]stepResult, len(script))
	for s, st := range script {
		r := stepResult{pushes: make([][][]byte, len(conns)), others: make([][][]byte, len(conns))}
		c := conns[st.conn]
		var out output
		if len(st.cmds) == 1 {
			out = c.step(subst(st.cmds[0])...)
		} else {
			cmds := make([][]string, len(st.cmds))
			for i, args := range st.cmds {
				cmds[i] = subst(args)
			}
			out = c.pipeline(cmds...)
		}
		r.own = output{all: mask(out.all), pushes: mask(out.pushes)}
		if nodes != nil {
			waitApplied(t, nodes...)
		}
		for j, o := range conns {
			if j == st.conn || o.closed {
				continue
			}
			if want == nil {
				r.pushes[j] = mask(o.sync().pushes)
				continue
			}
			pushes, others, err := o.waitPushes(len(want[s].pushes[j]), 15*time.Second)
			if err != nil {
				t.Fatalf("step %d %q: connection %d: %v", s, st.cmds, j, err) // the steps after it would wait too
			}
			r.pushes[j], r.others[j] = mask(pushes), others
		}
		results[s] = r
		if want == nil {
			continue
		}
		w := want[s]
		if !sameBytes(r.own.all, w.own.all) {
			t.Errorf("step %d: connection %d %q:\n   redraft %s:%s\n   redis-server:%s", s, st.conn, st.cmds, addrs[st.conn], r.own, w.own)
		}
		for j := range conns {
			if j != st.conn && (!sameBytes(r.pushes[j], w.pushes[j]) || len(r.others[j]) > 0) {
				t.Errorf("step %d %q: pushes to connection %d:\n   redraft %s: %q (and %q)\n   redis-server: %q", s, st.cmds, j, addrs[j], r.pushes[j], r.others[j], w.pushes[j])
			}
		}
	}
	return results
}

// redirectID finds the client IDs a tracking reply shows: GETREDIR's whole
// reply, TRACKINGINFO's redirect field, a broken redirect's push.
var redirectID = regexp.MustCompile(`(^:|\$8\r\nredirect\r\n:|\$21\r\ntracking-redir-broken\r\n:)(\d+)\r\n`)

// trackingScripts are the scripts, by name; connection 0 writes (RESP2)
// and the others track.
func trackingScripts() map[string][]tstep {
	return map[string][]tstep{
		"default": {
			on(1, "HELLO", "3"), on(1, "CLIENT", "TRACKING", "on"), on(1, "GET", "a"), on(1, "MGET", "b", "c"), on(1, "HGETALL", "h"),
			on(0, "SET", "a", "1"), on(0, "MSET", "b", "1", "c", "2"), on(0, "SET", "a", "2"), on(0, "HSET", "h", "f", "v"),
			on(1, "GET", "a"), on(1, "SET", "a", "3"), on(0, "SET", "a", "4"), on(1, "GET", "a"), on(1, "EXISTS", "b"),
			on(0, "DEL", "b", "nosuch"), on(1, "MGET", "m1", "m2"), on(0, "DEL", "m1", "m2"), on(0, "SET", "m1", "x"),
			on(1, "GET", "d1"), on(0, "SELECT", "1"), on(0, "SET", "d1", "in-db1"), on(0, "SELECT", "0"),
			on(1, "EVAL", "return redis.call('GET', KEYS[1])", "1", "sk"), on(0, "SET", "sk", "1"),
			on(1, "EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "sk2"), on(0, "SET", "sk2", "1"),
			on(1, "MULTI"), on(1, "GET", "tx1"), on(1, "HGETALL", "tx2"), on(1, "EXEC"), on(0, "MSET", "tx1", "1", "tx2", "2"),
			on(1, "GET", "ex"), on(0, "SET", "ex", "v", "EX", "100"), on(1, "GET", "ex"), on(0, "EXPIRE", "ex", "200"),
			on(0, "PERSIST", "ex"), on(1, "GET", "ex"), on(0, "RENAME", "ex", "ex2"), on(1, "GET", "ex2"), on(0, "RENAME", "ex2", "ex"),
			on(1, "LRANGE", "l", "0", "-1"), on(0, "RPUSH", "l", "a"), on(1, "LRANGE", "l", "0", "-1"), on(0, "LPOP", "l"),
			on(1, "SMEMBERS", "s"), on(0, "SADD", "s", "x"), on(1, "SCARD", "s"), on(0, "SPOP", "s"),
			on(1, "GET", "a"), on(0, "FLUSHALL"), on(0, "SET", "a", "after-flush"), on(1, "GET", "a"), on(0, "FLUSHDB"),
			on(1, "GET", "z"), on(1, "CLIENT", "TRACKING", "off"), on(0, "SET", "z", "1"),
			on(1, "CLIENT", "TRACKING", "on", "NOLOOP"), on(1, "GET", "n"), on(1, "SET", "n", "mine"), on(0, "SET", "n", "theirs"),
			on(1, "GET", "n"), on(0, "SET", "n", "theirs2"), on(1, "CLIENT", "TRACKINGINFO"), on(1, "CLIENT", "GETREDIR"),
			on(0, "CLIENT", "TRACKINGINFO"), on(0, "INFO", "nosuchsection"),
		},
		"bcast": {
			on(1, "HELLO", "3"), on(1, "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "p:", "PREFIX", "q:"),
			on(0, "SET", "p:1", "a"), on(0, "MSET", "p:2", "1", "q:1", "2", "r:1", "3"), on(0, "SET", "r:2", "x"),
			on(1, "GET", "p:1"), on(1, "SET", "q:2", "own"), on(0, "DEL", "p:1", "p:2"), on(0, "FLUSHDB"),
			on(1, "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "z:"), on(1, "CLIENT", "TRACKINGINFO"), on(0, "SET", "z:1", "x"),
			on(1, "CLIENT", "TRACKING", "off"), on(0, "SET", "p:3", "x"),
			on(1, "CLIENT", "TRACKING", "on", "BCAST", "NOLOOP"), on(1, "SET", "own", "x"), on(0, "SET", "theirs", "y"),
			on(1, "CLIENT", "TRACKINGINFO"), on(2, "HELLO", "3"), on(2, "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "p:"),
			on(0, "MSET", "p:9", "1", "k", "2"),
		},
		"optin": {
			on(1, "HELLO", "3"), on(1, "CLIENT", "TRACKING", "on", "OPTIN"), on(1, "GET", "o1"),
			pipe(1, []string{"CLIENT", "CACHING", "yes"}, []string{"GET", "o2"}, []string{"GET", "o3"}), on(0, "MSET", "o1", "1", "o2", "2", "o3", "3"),
			pipe(1, []string{"CLIENT", "CACHING", "yes"}, []string{"CLIENT", "TRACKINGINFO"}, []string{"MULTI"}, []string{"GET", "o4"},
				[]string{"GET", "o5"}, []string{"EXEC"}),
			on(0, "MSET", "o4", "1", "o5", "2"), pipe(1, []string{"CLIENT", "CACHING", "yes"}, []string{"PING"}, []string{"GET", "o6"}), on(0, "SET", "o6", "1"),
			pipe(1, []string{"CLIENT", "CACHING", "yes"}, []string{"CLIENT", "GETREDIR"}, []string{"GET", "o7"}), on(0, "SET", "o7", "1"),
			pipe(1, []string{"CLIENT", "CACHING", "yes"}, []string{"MULTI"}, []string{"GET", "o8"}, []string{"BOGUS"}, []string{"EXEC"}, []string{"GET", "o9"}),
			on(0, "MSET", "o8", "1", "o9", "1"),
			on(1, "CLIENT", "TRACKING", "off"), on(1, "CLIENT", "TRACKING", "on", "OPTOUT"), on(1, "GET", "p1"),
			pipe(1, []string{"CLIENT", "CACHING", "no"}, []string{"GET", "p2"}, []string{"GET", "p3"}), on(0, "MSET", "p1", "1", "p2", "2", "p3", "3"),
			pipe(1, []string{"CLIENT", "CACHING", "no"}, []string{"CLIENT", "TRACKINGINFO"}), on(1, "CLIENT", "CACHING", "yes"),
		},
		"redirect": {
			on(2, "SUBSCRIBE", "__redis__:invalidate"), on(1, "CLIENT", "TRACKING", "on", "REDIRECT", "$ID2"),
			on(1, "GET", "k"), on(0, "SET", "k", "1"), on(1, "CLIENT", "GETREDIR"), on(1, "CLIENT", "TRACKINGINFO"),
			on(1, "GET", "k"), on(0, "FLUSHALL"), on(1, "MGET", "k", "j"), on(1, "SET", "j", "own"),
			on(3, "HELLO", "3"), on(1, "CLIENT", "TRACKING", "on", "REDIRECT", "$ID3"), on(1, "CLIENT", "TRACKING", "on", "BCAST", "REDIRECT", "$ID3"),
			on(1, "CLIENT", "TRACKING", "off"), on(1, "CLIENT", "TRACKING", "on", "REDIRECT", "$ID3", "BCAST", "PREFIX", "k"),
			on(0, "SET", "k", "2"), on(0, "FLUSHDB"), on(1, "CLIENT", "TRACKING", "off"),
			on(4, "HELLO", "3"), on(4, "CLIENT", "TRACKING", "on", "REDIRECT", "$ID1"), on(4, "GET", "x"), on(0, "SET", "x", "1"),
			on(4, "GET", "x"), on(1, "QUIT"), on(0, "SET", "x", "2"), on(4, "CLIENT", "TRACKINGINFO"), on(4, "GET", "x"), on(0, "SET", "x", "3"),
			on(4, "CLIENT", "TRACKING", "on", "REDIRECT", "$ID1"),
		},
	}
}

func TestTracking(t *testing.T) {
	e := startResp3Env(t)
	scripts := trackingScripts()
	conns := map[string]int{"default": 2, "bcast": 3, "optin": 2, "redirect": 5}
	for _, name := range []string{"default", "bcast", "optin", "redirect"} {
		script := scripts[name]
		t.Run(name, func(t *testing.T) {
			l := e.leader(t)
			for _, layout := range []struct {
				what             string
				trackers, writer *Node
			}{{"on the leader", l, l}, {"on a low follower", e.n2, l}, {"on a relaying follower", e.n3, l},
				{"on a low follower, writes relayed by another follower", e.n2, e.n3}} {
				flushBoth(t, l, e.bare)
				waitApplied(t, e.all...)
				bareAddrs := make([]string, conns[name])
				addrs := make([]string, conns[name])
				for i := range addrs {
					bareAddrs[i], addrs[i] = e.bare.Addr, layout.trackers.Addr
				}
				addrs[0] = layout.writer.Addr
				t.Logf("%s: trackers %s", name, layout.what)
				want := trackScript(t, bareAddrs, script, nil, nil)
				trackScript(t, addrs, script, want, e.all)
			}
		})
	}
	t.Run("Expiry", func(t *testing.T) { e.trackingExpiry(t) })
	t.Run("Info", func(t *testing.T) { e.trackingInfo(t) })
}

// trackingExpiry: a key that expires is invalidated, as Redis's own expiry
// does, for clients of every node (by the sweep each node applies).
func (e *resp3Env) trackingExpiry(t *testing.T) {
	l := e.leader(t)
	for _, addr := range []string{e.bare.Addr, l.Addr, e.n2.Addr, e.n3.Addr} {
		w, c := dialR(t, addr), dialR(t, addr)
		if addr != e.bare.Addr {
			w = dialR(t, l.Addr)
		}
		c.do("HELLO", "3")
		c.do("CLIENT", "TRACKING", "on")
		key := "exp:" + addr
		if got := w.do("SET", key, "v", "PX", "300"); string(got) != "+OK\r\n" {
			t.Fatalf("%s: SET: %q", addr, got)
		}
		if addr != e.bare.Addr {
			waitApplied(t, e.all...)
		}
		if got := c.do("GET", key); string(got) != "$1\r\nv\r\n" {
			t.Fatalf("%s: GET: %q", addr, got)
		}
		// Nothing else touches the key: the invalidation is expiry's.
		pushes, _, err := c.waitPushes(1, 15*time.Second)
		want := fmt.Sprintf(">2\r\n$10\r\ninvalidate\r\n*1\r\n$%d\r\n%s\r\n", len(key), key)
		if err != nil || len(pushes) != 1 || string(pushes[0]) != want {
			t.Errorf("%s: after expiry: %q, %v; want %q", addr, pushes, err, want)
		}
		if got := c.do("GET", key); string(got) != "_\r\n" {
			t.Errorf("%s: GET after expiry: %q", addr, got)
		}
	}
}

// trackingInfo: INFO and CLIENT LIST count and flag tracking clients as
// Redis does.
func (e *resp3Env) trackingInfo(t *testing.T) {
	l := e.leader(t)
	for _, addr := range []string{e.bare.Addr, l.Addr, e.n2.Addr} {
		a, b, r := dialR(t, addr), dialR(t, addr), dialR(t, addr)
		before := infoField(string(r.do("INFO", "clients")), "tracking_clients")
		a.do("HELLO", "3")
		a.do("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "info:")
		b.do("CLIENT", "TRACKING", "on", "REDIRECT", a.clientID())
		info := string(r.do("INFO", "clients"))
		if got := infoField(info, "tracking_clients"); got == "" || got == before {
			t.Errorf("%s: tracking_clients %q before, %q after two turned tracking on", addr, before, got)
		}
		if got := string(a.do("CLIENT", "INFO")); !strings.Contains(got, " flags=tB ") || !strings.Contains(got, " redir=0 ") || !strings.Contains(got, " resp=3") {
			t.Errorf("%s: CLIENT INFO of a BCAST client: %q", addr, got)
		}
		if got := string(b.do("CLIENT", "INFO")); !strings.Contains(got, " flags=t ") || !strings.Contains(got, " redir="+a.clientID()+" ") {
			t.Errorf("%s: CLIENT INFO of a redirecting client: %q", addr, got)
		}
		a.c.Close()
		b.do("GET", "info:k")
		w := dialR(t, l.Addr)
		if addr == e.bare.Addr {
			w = dialR(t, addr)
		}
		w.do("SET", "info:k", "x")
		eventually(t, 10*time.Second, func() error {
			got := string(b.do("CLIENT", "INFO"))
			if !strings.Contains(got, " flags=tR ") {
				return fmt.Errorf("%s: CLIENT INFO after the redirect target left: %q", addr, got)
			}
			return nil
		})
		if got := infoField(string(r.do("INFO", "stats")), "tracking_total_prefixes"); got == "" {
			t.Errorf("%s: no tracking_total_prefixes in INFO stats", addr)
		}
	}
}
