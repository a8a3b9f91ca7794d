package main

import (
	"math/rand"
	"reflect"
	"sort"
	"sync"
	"testing"
)

// checkIndex verifies that every deadline in the map has a live item in
// the heap and that the heap property holds.
func TestExpiryIndexSetDue(t *testing.T) {
	x := newExpiryIndex()
	k := dbKey{0, "a"}
	if x.due(k, 1<<62) {
		t.Error("unknown key is due")
	}
	x.set(k, 100)
	if x.due(k, 99) || !x.due(k, 100) || !x.due(k, 101) {
		t.Error("due must be at <= t")
	}
	if x.due(dbKey{1, "a"}, 1000) {
		t.Error("same name in another db is due")
	}
	x.set(k, -1) // persisted
	if x.due(k, 1000) || x.size() != 0 {
		t.Errorf("set(-1) did not forget the key (size %d)", x.size())
	}
	x.set(k, -2) // forgetting an unknown key is fine
	x.set(dbKey{0, "zero"}, 0)
	if !x.due(dbKey{0, "zero"}, 0) {
		t.Error("a deadline of 0 is a deadline")
	}
}

func TestExpiryIndexStaleUpdates(t *testing.T) {
	x := newExpiryIndex()
	k := dbKey{0, "k"}
	x.set(k, 100)
	x.set(k, 500) // moved later: the old deadline must not linger in the tree
	if x.due(k, 150) {
		t.Error("old deadline still due")
	}
	if got := x.dueKeys(150, 10); len(got) != 0 {
		t.Errorf("dueKeys(150) = %v", got)
	}
	if x.dueBy(499) || !x.dueBy(500) {
		t.Errorf("dueBy around 500 = %v %v", x.dueBy(499), x.dueBy(500))
	}
	x.set(k, 500) // same value again
	x.set(k, 50)  // moved earlier
	if x.dueBy(49) || !x.dueBy(50) || x.size() != 1 {
		t.Errorf("dueBy(49) %v dueBy(50) %v size %d", x.dueBy(49), x.dueBy(50), x.size())
	}
}

func TestExpiryIndexOrdering(t *testing.T) {
	x := newExpiryIndex()
	if x.dueBy(1 << 62) {
		t.Error("empty index has a due deadline")
	}
	if got := x.dueKeys(1<<62, 10); got != nil {
		t.Errorf("empty dueKeys = %v", got)
	}
	x.set(dbKey{1, "b"}, 20)
	x.set(dbKey{0, "z"}, 10)
	x.set(dbKey{0, "c"}, 20)
	x.set(dbKey{0, "a"}, 20)
	x.set(dbKey{2, "a"}, 5)
	x.set(dbKey{0, "late"}, 1000)
	if x.dueBy(4) || !x.dueBy(5) {
		t.Errorf("dueBy(4) %v dueBy(5) %v", x.dueBy(4), x.dueBy(5))
	}
	// Any order: the leader puts the keys it picked in the sweep's entry.
	want := []dbKey{{0, "a"}, {0, "c"}, {0, "z"}, {1, "b"}, {2, "a"}}
	got := x.dueKeys(20, 100)
	sort.Slice(got, func(i, j int) bool { return got[i].DB < got[j].DB || got[i].DB == got[j].DB && got[i].Key < got[j].Key })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dueKeys(20) = %v, want %v", got, want)
	}
	if got := x.dueKeys(20, 3); len(got) != 3 {
		t.Errorf("dueKeys(20, 3) = %v", got)
	}
	if got := x.dueKeys(4, 100); len(got) != 0 {
		t.Errorf("dueKeys(4) = %v", got)
	}
	if got := x.dueKeys(20, 0); len(got) != 0 {
		t.Errorf("limit 0 = %v", got)
	}
}

func TestExpiryIndexClear(t *testing.T) {
	x := newExpiryIndex()
	for db := 0; db < 3; db++ {
		for _, k := range []string{"a", "b", "c"} {
			x.set(dbKey{db, k}, int64(db*10+len(k)))
		}
	}
	x.clear(1)
	if x.size() != 6 || x.due(dbKey{1, "a"}, 1<<40) || !x.due(dbKey{0, "a"}, 1<<40) || !x.due(dbKey{2, "c"}, 1<<40) {
		t.Errorf("clear(1): size %d", x.size())
	}
	for _, k := range x.dueKeys(1<<40, 100) {
		if k.DB == 1 {
			t.Errorf("dueKeys still lists %v", k)
		}
	}
	x.clear(7) // no such db
	if x.size() != 6 {
		t.Errorf("clear(7) changed size to %d", x.size())
	}
	x.clear(-1)
	if x.size() != 0 {
		t.Errorf("clear(-1) left %d keys", x.size())
	}
	if x.dueBy(1 << 62) {
		t.Error("clear(-1) left a due deadline")
	}
}

func TestExpiryIndexSwap(t *testing.T) {
	x := newExpiryIndex()
	x.set(dbKey{0, "a"}, 10)
	x.set(dbKey{0, "both"}, 11)
	x.set(dbKey{1, "b"}, 20)
	x.set(dbKey{1, "both"}, 21)
	x.set(dbKey{2, "c"}, 30)
	x.swap(0, 1)
	want := map[dbKey]int64{{1, "a"}: 10, {1, "both"}: 11, {0, "b"}: 20, {0, "both"}: 21, {2, "c"}: 30}
	for k, at := range want {
		if !x.due(k, at) || x.due(k, at-1) {
			t.Errorf("after swap: %v is not due at exactly %d", k, at)
		}
	}
	if x.size() != len(want) {
		t.Errorf("after swap: %d keys, want %d", x.size(), len(want))
	}
	x.swap(1, 0) // and back
	if !x.due(dbKey{0, "a"}, 10) || !x.due(dbKey{1, "b"}, 20) || x.due(dbKey{0, "b"}, 25) {
		t.Error("swap back failed")
	}
	x.swap(2, 2) // a database with itself: unchanged
	if !x.due(dbKey{2, "c"}, 30) || x.size() != 5 {
		t.Error("swap(2, 2) changed the index")
	}
	x.swap(2, 9) // with an empty database
	if x.due(dbKey{2, "c"}, 30) || !x.due(dbKey{9, "c"}, 30) {
		t.Error("swap with an empty db failed")
	}
}

// A random sequence of operations against a simple model.
func TestExpiryIndexModel(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	x := newExpiryIndex()
	model := map[dbKey]int64{}
	for i := 0; i < 5000; i++ {
		k := dbKey{rng.Intn(4), string(rune('a' + rng.Intn(20)))}
		switch op := rng.Intn(10); {
		case op < 6:
			at := int64(rng.Intn(1000)) - 50
			x.set(k, at)
			if at < 0 {
				delete(model, k)
			} else {
				model[k] = at
			}
		case op == 6:
			db := rng.Intn(5) - 1
			x.clear(db)
			for mk := range model {
				if db < 0 || mk.DB == db {
					delete(model, mk)
				}
			}
		case op == 7:
			a, b := rng.Intn(4), rng.Intn(4)
			x.swap(a, b)
			next := map[dbKey]int64{}
			for mk, at := range model {
				switch mk.DB {
				case a:
					mk.DB = b
				case b:
					mk.DB = a
				}
				next[mk] = at
			}
			model = next
		default:
			tt := int64(rng.Intn(1000))
			var want []dbKey
			for mk, at := range model {
				if at <= tt {
					want = append(want, mk)
				}
			}
			limit := rng.Intn(10) + 1
			got := x.dueKeys(tt, limit)
			if len(got) != min(limit, len(want)) {
				t.Fatalf("step %d: dueKeys(%d, %d) gave %d keys of %d due", i, tt, limit, len(got), len(want))
			}
			seen := map[dbKey]bool{}
			for _, k := range got {
				if at, ok := model[k]; !ok || at > tt || seen[k] {
					t.Fatalf("step %d: dueKeys(%d, %d) gave %v (deadline %d, %v, twice %v)", i, tt, limit, k, at, ok, seen[k])
				}
				seen[k] = true
			}
		}
		if x.size() != len(model) {
			t.Fatalf("step %d: size %d, model %d", i, x.size(), len(model))
		}
	}
}

func TestExpiryIndexConcurrent(t *testing.T) {
	x := newExpiryIndex()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				k := dbKey{g % 3, string(rune('a' + i%26))}
				x.set(k, int64(i))
				x.due(k, int64(i))
				x.dueBy(int64(i))
				x.dueKeys(int64(i), 5)
				if i%100 == 0 {
					x.swap(0, 1)
					x.clear(2)
				}
			}
		}(g)
	}
	wg.Wait()
}

// shifted is shiftedArg as a string, for expected commands.
func shifted(at int64) string { return string(shiftedArg(at)) }
