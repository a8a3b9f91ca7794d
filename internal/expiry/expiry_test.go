package expiry

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"
)

// model is the plain reference: every key's deadline.
type model map[Key]int64

func (m model) earliest() (int64, bool) {
	best, found := int64(0), false
	for _, at := range m {
		if !found || at < best {
			best, found = at, true
		}
	}
	return best, found
}

func (m model) dueBy(t int64) bool {
	for _, at := range m {
		if at <= t {
			return true
		}
	}
	return false
}

func (m model) due(t int64) []Key {
	var out []Key
	for k, at := range m {
		if at <= t {
			out = append(out, k)
		}
	}
	sortKeys(out)
	return out
}

func sortKeys(ks []Key) {
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].DB != ks[j].DB {
			return ks[i].DB < ks[j].DB
		}
		return ks[i].Key < ks[j].Key
	})
}

// TestIndexAgreesWithModel drives the index and a plain map with the same
// random operations (deadlines set, moved within and across seconds,
// forgotten, far in the future; FLUSHDB, FLUSHALL, SWAPDB) and compares
// every answer.
func TestIndexAgreesWithModel(t *testing.T) {
	for seed := int64(1); seed <= 5; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			x, m := New(), model{}
			const base = int64(1_700_000_000_000)
			for op := 0; op < 60000; op++ {
				k := Key{DB: rng.Intn(3), Key: fmt.Sprintf("k%d", rng.Intn(3000))}
				switch r := rng.Intn(100); {
				case r < 55:
					at := base + rng.Int63n(600_000)
					if r < 2 {
						at = maxTableAt + 1 + rng.Int63n(1000) // beyond the table's range
					}
					x.Set(k.DB, k.Key, at)
					m[k] = at
				case r < 75:
					x.Set(k.DB, k.Key, -2)
					delete(m, k)
				case r < 90:
					at, ok := m[k]
					tt := base + rng.Int63n(600_000)
					if got, want := x.Due(k.DB, k.Key, tt), ok && at <= tt; got != want {
						t.Fatalf("op %d: Due(%v, %d) = %v, want %v", op, k, tt, got, want)
					}
				case r < 97:
					tt := base + rng.Int63n(600_000)
					got := x.DueKeys(tt, 1<<30)
					sortKeys(got)
					if want := m.due(tt); fmt.Sprint(got) != fmt.Sprint(want) {
						t.Fatalf("op %d: DueKeys(%d): %d keys, want %d", op, tt, len(got), len(want))
					}
					if lim := x.DueKeys(tt, 7); len(lim) != min(7, len(m.due(tt))) {
						t.Fatalf("op %d: DueKeys(%d, 7) gave %d keys", op, tt, len(lim))
					}
				case r < 98:
					db := rng.Intn(4) - 1
					x.Clear(db)
					for k := range m {
						if db < 0 || k.DB == db {
							delete(m, k)
						}
					}
				default:
					a, b := rng.Intn(3), rng.Intn(3)
					x.Swap(a, b)
					moved := model{}
					for k, at := range m {
						switch k.DB {
						case a:
							k.DB = b
						case b:
							k.DB = a
						}
						moved[k] = at
					}
					m = moved
				}
				if op%50 == 0 {
					tt := base + rng.Int63n(600_000)
					if got, want := x.DueBy(tt), m.dueBy(tt); got != want {
						t.Fatalf("op %d: DueBy(%d) = %v, want %v", op, tt, got, want)
					}
					// Around the earliest deadline, where the index answers
					// from its earliest bucket.
					if first, ok := m.earliest(); ok {
						for _, tt := range []int64{first - 1, first, first + rng.Int63n(1000) - 500} {
							if got, want := x.DueBy(tt), m.dueBy(tt); got != want {
								t.Fatalf("op %d: DueBy(%d) = %v, want %v (earliest %d)", op, tt, got, want, first)
							}
						}
					}
				}
				if op%500 == 0 {
					if x.Len() != len(m) {
						t.Fatalf("op %d: Len = %d, want %d", op, x.Len(), len(m))
					}
				}
			}
		})
	}
}

// TestTableRemoveKeepsRuns: deleting from the middle of probe runs (keys
// crowded into few home slots) leaves every other key findable.
func TestTableRemoveKeepsRuns(t *testing.T) {
	var tb table
	fps := make([]fingerprint, 0, 500)
	for i := 0; i < 500; i++ {
		// Few homes, some at the very end of the table, so runs wrap
		// around to slot 0.
		h := uint64(i%7+1) << 61
		if i%2 == 0 {
			h = ^uint64(i % 5)
		}
		fp := fingerprint{h: h, f: uint16(i)}
		fps = append(fps, fp)
		tb.put(fp, int64(i))
	}
	for i := 0; i < 500; i += 3 {
		tb.remove(fps[i])
	}
	for i, fp := range fps {
		at, ok := tb.get(fp)
		if i%3 == 0 {
			if ok {
				t.Fatalf("removed %d still there", i)
			}
			continue
		}
		if !ok || at != int64(i) {
			t.Fatalf("key %d: %d %v after removals", i, at, ok)
		}
	}
	if tb.n != 500-167 {
		t.Fatalf("n = %d", tb.n)
	}
}

// TestStaleEntriesDoNotPile: a key whose deadline keeps moving leaves
// entries behind in old buckets; they are dropped, so memory follows the
// live keys, not the history.
func TestStaleEntriesDoNotPile(t *testing.T) {
	x := New()
	const base = int64(1_700_000_000_000)
	for round := 0; round < 200; round++ {
		for i := 0; i < 1000; i++ {
			x.Set(0, fmt.Sprintf("session:%d", i), base+int64(round)*1000+3_600_000)
		}
	}
	d := x.dbs[0]
	if d.entries > 2*d.table.n+1024 {
		t.Fatalf("%d bucket entries for %d keys", d.entries, d.table.n)
	}
	if got := len(x.DueKeys(base+200*1000+3_600_000, 1<<30)); got != 1000 {
		t.Fatalf("DueKeys after the last move: %d keys, want 1000", got)
	}
	if got := len(x.DueKeys(base+198*1000+3_600_000, 1<<30)); got != 0 {
		t.Fatalf("keys due at an old deadline: %d", got)
	}
}

// BenchmarkSet: the cost of recording a deadline, and the bytes per key.
func BenchmarkSet(b *testing.B) {
	x := New()
	keys := make([]string, 1<<20)
	for i := range keys {
		keys[i] = fmt.Sprintf("k:%d", i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x.Set(0, keys[i&(1<<20-1)], int64(1_700_000_000_000+i))
	}
	b.ReportMetric(float64(x.Bytes())/float64(x.Len()), "bytes/key")
}
