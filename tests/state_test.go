package tests

// The one helper set for cluster state: a canonical dump of every key of
// every database (type, value, PEXPIRETIME), read while the applied index
// does not move, with the consumer groups of every stream and RAFTDIGEST
// (readView); comparisons (diffStates, diffViews) and waits until nodes
// agree (waitSameState, converged, waitIndex).

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ---------------------------------------------------------------------------
// Full state dump

// keyState is what clusterState records per key.
type keyState struct {
	Type        string
	Value       string // canonical rendering (DUMP hex for unknown types)
	PExpireTime int64  // -1 = no expiry
}

// clusterState reads every key of every db (0..15) from n via SCAN. For a
// follower this needs a node started with --consistency low (otherwise reads
// get TRY). Keys map as "db:key". Values are rendered canonically (sets and
// hashes sorted) rather than via DUMP, because the object encoding (and so
// the DUMP payload) legitimately differs between a node that built a value
// by commands and one that loaded it from an RDB snapshot.
func clusterState(t testing.TB, n *Node) map[string]keyState {
	t.Helper()
	st, err := readState(n)
	if err != nil {
		t.Fatalf("clusterState(%s): %v", n, err)
	}
	return st
}

func readState(n *Node) (map[string]keyState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]keyState{}
	for db := 0; db < 16; db++ {
		c := newClient(n.Addr, db)
		err := readDB(ctx, c, db, out)
		c.Close()
		if err != nil {
			return nil, fmt.Errorf("db %d: %w", db, err)
		}
	}
	return out, nil
}

func readDB(ctx context.Context, c *redis.Client, db int, out map[string]keyState) error {
	var cursor uint64
	seen := map[string]bool{}
	for {
		keys, next, err := c.Scan(ctx, cursor, "*", 1000).Result()
		if err != nil {
			return fmt.Errorf("SCAN %d: %w", cursor, err)
		}
		for _, k := range keys {
			if seen[k] {
				continue
			}
			seen[k] = true
			ks, ok, err := readKey(ctx, c, k)
			if err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
			if ok {
				out[fmt.Sprintf("%d:%s", db, k)] = ks
			}
		}
		cursor = next
		if cursor == 0 {
			return nil
		}
	}
}

func readKey(ctx context.Context, c *redis.Client, k string) (keyState, bool, error) {
	typ, err := c.Type(ctx, k).Result()
	if err != nil {
		return keyState{}, false, fmt.Errorf("TYPE: %w", err)
	}
	if typ == "none" { // expired or deleted between SCAN and TYPE
		return keyState{}, false, nil
	}
	var val string
	switch typ {
	case "string":
		val, err = c.Get(ctx, k).Result()
		val = strconv.Quote(val)
	case "list":
		var l []string
		l, err = c.LRange(ctx, k, 0, -1).Result()
		val = quoteAll(l)
	case "set":
		var l []string
		l, err = c.SMembers(ctx, k).Result()
		sort.Strings(l)
		val = quoteAll(l)
	case "zset":
		var l []redis.Z
		l, err = c.ZRangeWithScores(ctx, k, 0, -1).Result()
		parts := make([]string, len(l))
		for i, z := range l {
			parts[i] = fmt.Sprintf("%q=%s", z.Member, strconv.FormatFloat(z.Score, 'g', -1, 64))
		}
		val = strings.Join(parts, ",")
	case "hash":
		var m map[string]string
		m, err = c.HGetAll(ctx, k).Result()
		parts := make([]string, 0, len(m))
		for f, v := range m {
			parts = append(parts, fmt.Sprintf("%q=%q", f, v))
		}
		sort.Strings(parts)
		val = strings.Join(parts, ",")
	case "stream":
		var l []redis.XMessage
		l, err = c.XRange(ctx, k, "-", "+").Result()
		val = fmt.Sprint(l)
	default:
		val, err = c.Dump(ctx, k).Result()
		val = hex.EncodeToString([]byte(val))
	}
	if err == redis.Nil {
		return keyState{}, false, nil
	}
	if err != nil {
		return keyState{}, false, fmt.Errorf("read %s: %w", typ, err)
	}
	pexp, err := c.Do(ctx, "PEXPIRETIME", k).Int64()
	if err != nil {
		return keyState{}, false, fmt.Errorf("PEXPIRETIME: %w", err)
	}
	if pexp == -2 {
		return keyState{}, false, nil
	}
	return keyState{Type: typ, Value: val, PExpireTime: pexp}, true, nil
}

func quoteAll(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// diffStates compares two state dumps. Absolute expiry times may differ by
// up to ttlTol (0 = must be identical; -1 = don't compare expiry times, only
// whether a key has one). Returns nil if equal, else an error listing up to
// 10 differences.
func diffStates(a, b map[string]keyState, ttlTol time.Duration) error {
	var diffs []string
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		x, okx := a[k]
		y, oky := b[k]
		switch {
		case !okx:
			diffs = append(diffs, fmt.Sprintf("%s: missing in first, second has %+v", k, y))
		case !oky:
			diffs = append(diffs, fmt.Sprintf("%s: missing in second, first has %+v", k, x))
		case x.Type != y.Type || x.Value != y.Value:
			diffs = append(diffs, fmt.Sprintf("%s: %s %s != %s %s", k, x.Type, trunc(x.Value), y.Type, trunc(y.Value)))
		case (x.PExpireTime < 0) != (y.PExpireTime < 0):
			diffs = append(diffs, fmt.Sprintf("%s: PEXPIRETIME %d != %d", k, x.PExpireTime, y.PExpireTime))
		case ttlTol >= 0 && absDur(x.PExpireTime-y.PExpireTime) > ttlTol:
			diffs = append(diffs, fmt.Sprintf("%s: PEXPIRETIME %d != %d (diff %dms > %v)", k, x.PExpireTime, y.PExpireTime, x.PExpireTime-y.PExpireTime, ttlTol))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	total := len(diffs)
	if total > 10 {
		diffs = diffs[:10]
	}
	return fmt.Errorf("%d keys differ (first has %d keys, second %d):\n  %s", total, len(a), len(b), strings.Join(diffs, "\n  "))
}

func absDur(ms int64) time.Duration {
	if ms < 0 {
		ms = -ms
	}
	return time.Duration(ms) * time.Millisecond
}

func trunc(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// sameStateAs fails the test unless every node holds the state ref holds,
// expiry times to the millisecond (read once; the nodes must have applied
// the same log, e.g. after waitApplied).
func sameStateAs(t testing.TB, ref *Node, nodes ...*Node) {
	t.Helper()
	want := clusterState(t, ref)
	for _, n := range nodes {
		if err := diffStates(want, clusterState(t, n), 0); err != nil {
			t.Errorf("%s differs from %s: %v", n, ref, err)
		}
	}
}

// waitSameStateAs polls until every node holds the state ref holds at that
// moment, expiry times to the millisecond.
func waitSameStateAs(t testing.TB, ref *Node, nodes ...*Node) {
	t.Helper()
	eventually(t, appliedTimeout, func() error {
		want, err := readState(ref)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			got, err := readState(n)
			if err != nil {
				return fmt.Errorf("%s: %v", n, err)
			}
			if err := diffStates(want, got, 0); err != nil {
				return fmt.Errorf("%s differs from %s: %v", n, ref, err)
			}
		}
		return nil
	})
}

// waitSameState polls until every node's clusterState equals want (within
// ttlTol), then returns nil; the nodes must serve local reads (--consistency
// low) unless only the leader is passed.
func waitSameState(t testing.TB, want map[string]keyState, ttlTol time.Duration, nodes ...*Node) {
	t.Helper()
	eventually(t, appliedTimeout, func() error {
		for _, n := range nodes {
			got, err := readState(n)
			if err != nil {
				return fmt.Errorf("%s: %v", n, err)
			}
			if err := diffStates(want, got, ttlTol); err != nil {
				return fmt.Errorf("%s differs from expected: %v", n, err)
			}
		}
		return nil
	})
}

// stateView is one node's state read while its applied index did not move.
type stateView struct {
	node *Node
	dig  digest
	keys map[string]keyState // "db:key" -> type, canonical value, PEXPIRETIME
	// groups renders the consumer groups of each stream key ("db:key")
	// with PEL delivery times; groupsNoTime without them; groupsSeen also
	// with the consumers' seen-time (which Redis 7.0 always takes from its
	// own clock, so it is not compared by default).
	groups       map[string]string
	groupsNoTime map[string]string
	groupsSeen   map[string]string
}

// readView reads n's full state between two RAFTDIGEST calls and returns
// an error if the applied index moved meanwhile (the caller retries). It
// also checks that no key whose deadline had already passed when the read
// started is visible (a hard failure: such a read must have been preceded by
// a sweep).
func readView(n *Node) (stateView, error) {
	d1, err := raftDigest(n)
	if err != nil {
		return stateView{}, fmt.Errorf("RAFTDIGEST: %w", err)
	}
	start := time.Now().UnixMilli()
	keys, err := readState(n)
	if err != nil {
		return stateView{}, err
	}
	g, gn, gs, err := streamGroups(n, keys)
	if err != nil {
		return stateView{}, err
	}
	d2, err := raftDigest(n)
	if err != nil {
		return stateView{}, fmt.Errorf("RAFTDIGEST: %w", err)
	}
	if d1 != d2 {
		return stateView{}, fmt.Errorf("applied index moved during the read (%d -> %d)", d1.Applied, d2.Applied)
	}
	for k, ks := range keys {
		if ks.PExpireTime >= 0 && ks.PExpireTime < start {
			return stateView{}, stopPolling(fmt.Errorf("%s returned key %s (%s %s) although its deadline %d had passed before the read started at %d",
				n, k, ks.Type, trunc(ks.Value), ks.PExpireTime, start))
		}
	}
	return stateView{node: n, dig: d1, keys: keys, groups: g, groupsNoTime: gn, groupsSeen: gs}, nil
}

// splitKey splits a clusterState key "db:key".
func splitKey(k string) (int, string) {
	i := strings.IndexByte(k, ':')
	db, _ := strconv.Atoi(k[:i])
	return db, k[i+1:]
}

// streamGroups reads XINFO STREAM key FULL for every stream in keys.
// DEBUG DIGEST (and so RAFTDIGEST) does not cover consumer groups, and
// clusterState renders only the entries, so groups are compared separately.
func streamGroups(n *Node, keys map[string]keyState) (withT, noT, seen map[string]string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	withT, noT, seen = map[string]string{}, map[string]string{}, map[string]string{}
	clients := map[int]*redis.Client{}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for k, ks := range keys {
		if ks.Type != "stream" {
			continue
		}
		db, key := splitKey(k)
		c := clients[db]
		if c == nil {
			c = newClient(n.Addr, db)
			clients[db] = c
		}
		v, err := c.Do(ctx, "XINFO", "STREAM", key, "FULL").Result()
		if err != nil {
			if strings.Contains(err.Error(), "no such key") {
				continue // deleted (expired) after the scan; the digest check catches the move
			}
			return nil, nil, nil, fmt.Errorf("XINFO STREAM %s FULL: %w", k, err)
		}
		withT[k] = renderXInfo(v, deliveryTimes)
		noT[k] = renderXInfo(v, noTimes)
		seen[k] = renderXInfo(v, allTimes)
	}
	return withT, noT, seen, nil
}

// Which time fields renderXInfo keeps.
const (
	noTimes       = iota // neither delivery times nor seen-times
	deliveryTimes        // PEL delivery times
	allTimes             // also consumers' seen-time / active-time
)

// renderXInfo renders an XINFO STREAM FULL reply canonically. Radix-tree
// sizes (an encoding detail) and the entries (compared by clusterState) are
// left out, and the time fields that times does not keep.
func renderXInfo(v interface{}, times int) string {
	top, ok := v.([]interface{})
	if !ok {
		return fmt.Sprintf("%#v", v)
	}
	var b strings.Builder
	for i := 0; i+1 < len(top); i += 2 {
		name := fmt.Sprint(top[i])
		switch name {
		case "radix-tree-keys", "radix-tree-nodes", "entries":
			continue
		case "groups":
			b.WriteString("groups=[")
			for _, g := range asList(top[i+1]) {
				b.WriteString("{" + renderKV(g, times) + "}")
			}
			b.WriteString("];")
		default:
			fmt.Fprintf(&b, "%s=%v;", name, top[i+1])
		}
	}
	return b.String()
}

// renderKV renders a flat name/value array of a group or consumer.
func renderKV(v interface{}, times int) string {
	l := asList(v)
	var b strings.Builder
	for i := 0; i+1 < len(l); i += 2 {
		name := fmt.Sprint(l[i])
		val := l[i+1]
		switch name {
		case "seen-time", "active-time":
			if times != allTimes {
				val = "*"
			}
			fmt.Fprintf(&b, "%s=%v;", name, val)
		case "consumers":
			b.WriteString("consumers=[")
			for _, c := range asList(val) {
				b.WriteString("{" + renderKV(c, times) + "}")
			}
			b.WriteString("];")
		case "pending":
			b.WriteString("pending=[")
			for _, p := range asList(val) {
				e := append([]interface{}(nil), asList(p)...)
				if times == noTimes {
					// group PEL: [id consumer delivery-time count];
					// consumer PEL: [id delivery-time count]
					switch len(e) {
					case 4:
						e[2] = "*"
					case 3:
						e[1] = "*"
					}
				}
				fmt.Fprintf(&b, "%v", e)
			}
			b.WriteString("];")
		default:
			fmt.Fprintf(&b, "%s=%v;", name, val)
		}
	}
	return b.String()
}

func asList(v interface{}) []interface{} {
	l, _ := v.([]interface{})
	return l
}

// diffViews compares b against a: RAFTDIGEST, every key (value and
// PEXPIRETIME to the millisecond) and the consumer groups (with their times
// when groupTimes). Returns nil when equal.
func diffViews(a, b stateView, groupTimes bool) error {
	var diffs []string
	if a.dig.Hash != b.dig.Hash {
		diffs = append(diffs, fmt.Sprintf("RAFTDIGEST %s has %s, %s has %s", a.node, a.dig.Hash, b.node, b.dig.Hash))
	}
	if err := diffStates(a.keys, b.keys, 0); err != nil {
		diffs = append(diffs, fmt.Sprintf("state of %s vs %s: %v", a.node, b.node, err))
	}
	ga, gb := a.groupsNoTime, b.groupsNoTime
	if groupTimes {
		ga, gb = a.groups, b.groups
	}
	var gd []string
	for _, k := range unionKeys(ga, gb) {
		if ga[k] != gb[k] {
			x, y := firstDiff(ga[k], gb[k])
			gd = append(gd, fmt.Sprintf("%s: %s has %s; %s has %s", k, a.node, x, b.node, y))
		}
	}
	if len(gd) > 0 {
		if len(gd) > 5 {
			gd = append(gd[:5], fmt.Sprintf("... %d more", len(gd)-5))
		}
		diffs = append(diffs, "consumer groups differ:\n    "+strings.Join(gd, "\n    "))
	}
	if len(diffs) == 0 {
		return nil
	}
	return errors.New(strings.Join(diffs, "\n  "))
}

func unionKeys(a, b map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]string{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// converged polls until every node reports the same applied index, then
// requires, at that index, the same RAFTDIGEST and the same full state on
// all of them (every key with value and PEXPIRETIME to the millisecond,
// consumer groups). A difference at an equal applied index is a divergence,
// not lag, and fails the test at once. Returns the agreed view.
func converged(t testing.TB, timeout time.Duration, groupTimes bool, nodes ...*Node) stateView {
	t.Helper()
	var out stateView
	eventually(t, timeout, func() error {
		views := make([]stateView, len(nodes))
		for i, n := range nodes {
			v, err := readView(n)
			if err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
			views[i] = v
		}
		for _, v := range views[1:] {
			if v.dig.Applied != views[0].dig.Applied {
				return fmt.Errorf("not caught up yet: %s at applied index %d, %s at %d", views[0].node, views[0].dig.Applied, v.node, v.dig.Applied)
			}
		}
		var errs []string
		for _, v := range views[1:] {
			if err := diffViews(views[0], v, groupTimes); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if len(errs) > 0 {
			return stopPolling(fmt.Errorf("nodes DIVERGED at the same applied index %d:\n  %s", views[0].dig.Applied, strings.Join(errs, "\n  ")))
		}
		out = views[0]
		return nil
	})
	return out
}

// sameData fails unless two views hold the same data (digest, keys with
// PEXPIRETIME, groups) regardless of their applied index (e.g. before and
// after a restart that added only no-op entries).
func sameData(t testing.TB, what string, a, b stateView, groupTimes bool) {
	t.Helper()
	if err := diffViews(a, b, groupTimes); err != nil {
		t.Fatalf("%s: data changed:\n  %v", what, err)
	}
}

// waitIndex waits until every node reports the same applied index in
// RAFTDIGEST, whatever the digests (waitApplied also requires equal digests
// and so cannot wait for nodes that diverged).
func waitIndex(t testing.TB, nodes ...*Node) {
	t.Helper()
	eventually(t, appliedTimeout, func() error {
		var first digest
		for i, n := range nodes {
			d, err := raftDigest(n)
			if err != nil {
				return fmt.Errorf("%s: %v", n, err)
			}
			if i == 0 {
				first = d
			} else if d.Applied != first.Applied {
				return fmt.Errorf("%s at applied index %d, %s at %d", n, d.Applied, nodes[0], first.Applied)
			}
		}
		return nil
	})
}

// firstDiff returns the parts of a and b around their first difference.
func firstDiff(a, b string) (string, string) {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	cut := func(s string) string {
		from, to := max(0, i-100), min(len(s), i+60)
		out := s[from:to]
		if from > 0 {
			out = "..." + out
		}
		if to < len(s) {
			out += "..."
		}
		return out
	}
	return cut(a), cut(b)
}
