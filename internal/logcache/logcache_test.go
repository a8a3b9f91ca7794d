package logcache

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"
)

func entry(i uint64, size int) *raft.Log {
	return &raft.Log{Index: i, Term: 1, Data: bytes.Repeat([]byte{byte(i)}, size)}
}

// countingStore counts the reads that reach the store behind the cache.
type countingStore struct {
	*raft.InmemStore
	reads int
}

func (s *countingStore) GetLog(i uint64, l *raft.Log) error {
	s.reads++
	return s.InmemStore.GetLog(i, l)
}

func TestCacheServesNewestWithinBudget(t *testing.T) {
	store := &countingStore{InmemStore: raft.NewInmemStore()}
	c, err := New(store, 8, 4*(1000+entryOverhead))
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 10; i++ {
		if err := c.StoreLogs([]*raft.Log{entry(i, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := c.Bytes(), 4*(1000+entryOverhead); got != want {
		t.Fatalf("cached bytes %d, want %d", got, want)
	}
	for i := uint64(1); i <= 10; i++ {
		var l raft.Log
		if err := c.GetLog(i, &l); err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		if l.Index != i || len(l.Data) != 1000 || l.Data[0] != byte(i) {
			t.Fatalf("get %d: got index %d, %d bytes", i, l.Index, len(l.Data))
		}
	}
	if store.reads != 6 {
		t.Fatalf("%d reads reached the store, want 6 (entries 1-6 evicted by the byte budget)", store.reads)
	}
}

func TestCacheKeepsTheNewestEntryWhateverItsSize(t *testing.T) {
	store := &countingStore{InmemStore: raft.NewInmemStore()}
	c, _ := New(store, 8, 100)
	if err := c.StoreLogs([]*raft.Log{entry(1, 10), entry(2, 5000)}); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := c.GetLog(2, &l); err != nil || store.reads != 0 {
		t.Fatalf("newest entry not cached: err %v, store reads %d", err, store.reads)
	}
	if err := c.GetLog(1, &l); err != nil || store.reads != 1 {
		t.Fatalf("older entry should come from the store: err %v, store reads %d", err, store.reads)
	}
}

func TestCacheCountLimitAndTruncation(t *testing.T) {
	store := &countingStore{InmemStore: raft.NewInmemStore()}
	c, _ := New(store, 4, 1<<20)
	for i := uint64(1); i <= 6; i++ {
		if err := c.StoreLog(entry(i, 10)); err != nil {
			t.Fatal(err)
		}
	}
	var l raft.Log
	for i := uint64(3); i <= 6; i++ {
		if err := c.GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
	}
	if store.reads != 0 {
		t.Fatalf("entries 3-6 should be cached, %d store reads", store.reads)
	}
	// A new leader overwrites the tail: entries 5-6 are deleted and
	// rewritten under the same indexes with other data.
	if err := c.DeleteRange(5, 6); err != nil {
		t.Fatal(err)
	}
	rewritten := &raft.Log{Index: 5, Term: 2, Data: []byte("new")}
	if err := c.StoreLog(rewritten); err != nil {
		t.Fatal(err)
	}
	if err := c.GetLog(5, &l); err != nil || l.Term != 2 || string(l.Data) != "new" {
		t.Fatalf("rewritten entry: %+v, %v", l, err)
	}
	if err := c.GetLog(6, &l); err == nil {
		t.Fatalf("deleted entry 6 still served: %+v", l)
	}
	// A gap (a snapshot installed, the log restarted further on) starts
	// the cached range afresh.
	if err := c.StoreLog(entry(20, 10)); err != nil {
		t.Fatal(err)
	}
	if c.Bytes() != 10+entryOverhead {
		t.Fatalf("after a gap the cache should hold only the new entry, holds %d bytes", c.Bytes())
	}
}

func TestNewRejectsNonPositiveLimits(t *testing.T) {
	if _, err := New(raft.NewInmemStore(), 0, 1); err == nil {
		t.Fatal("zero entries accepted")
	}
	if _, err := New(raft.NewInmemStore(), 1, 0); err == nil {
		t.Fatal("zero bytes accepted")
	}
}
