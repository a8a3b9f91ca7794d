// Package logcache keeps the most recent Raft log entries in memory, so a
// leader serves them to followers (and the FSM rereads them) without going
// to disk. Unlike raft.LogCache, which holds a fixed number of entries
// whatever their size, it is bounded by bytes as well: redraft's entries
// are batches of up to 512 KiB, and a count alone would let the cache grow
// to hundreds of megabytes.
package logcache

import (
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
)

// entryOverhead approximates what one cached entry costs beyond its data:
// the raft.Log struct and the ring slot.
const entryOverhead = 96

// Cache wraps a raft.LogStore with an in-memory window of its newest
// entries: a contiguous range of indexes, at most maxEntries of them and
// at most maxBytes of data (but always the newest one).
type Cache struct {
	store raft.LogStore

	mu       sync.RWMutex
	ring     []*raft.Log // entry i at ring[i % len(ring)] while lo <= i <= hi
	lo, hi   uint64      // the cached range; empty when hi < lo
	bytes    int         // cost of the cached entries
	maxBytes int
}

// New returns a cache over store holding up to maxEntries entries and
// maxBytes bytes.
func New(store raft.LogStore, maxEntries, maxBytes int) (*Cache, error) {
	if maxEntries <= 0 || maxBytes <= 0 {
		return nil, fmt.Errorf("log cache: limits must be positive (entries %d, bytes %d)", maxEntries, maxBytes)
	}
	return &Cache{store: store, ring: make([]*raft.Log, maxEntries), lo: 1, maxBytes: maxBytes}, nil
}

// cost is what l counts against the byte budget: the memory its slices
// hold (their capacity), not only their length.
func cost(l *raft.Log) int { return cap(l.Data) + cap(l.Extensions) + entryOverhead }

// GetLog implements raft.LogStore.
func (c *Cache) GetLog(index uint64, log *raft.Log) error {
	c.mu.RLock()
	if c.lo <= index && index <= c.hi {
		*log = *c.ring[index%uint64(len(c.ring))]
		c.mu.RUnlock()
		return nil
	}
	c.mu.RUnlock()
	return c.store.GetLog(index, log)
}

// StoreLog implements raft.LogStore.
func (c *Cache) StoreLog(log *raft.Log) error { return c.StoreLogs([]*raft.Log{log}) }

// StoreLogs implements raft.LogStore: the entries are cached only once the
// store has them.
func (c *Cache) StoreLogs(logs []*raft.Log) error {
	if err := c.store.StoreLogs(logs); err != nil {
		return fmt.Errorf("unable to store logs within log store: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range logs {
		c.add(l)
	}
	return nil
}

// add appends l to the cached range, starting the range afresh when l does
// not follow it, and evicts the oldest entries past either limit.
func (c *Cache) add(l *raft.Log) {
	if c.hi < c.lo || l.Index != c.hi+1 {
		c.clear()
		c.lo = l.Index
	}
	c.hi = l.Index
	// A copy: on the leader, l points into Raft's future for the entry,
	// which also holds the FSM's response; keeping l would keep every
	// cached entry's replies alive too.
	cp := *l
	c.ring[l.Index%uint64(len(c.ring))] = &cp
	c.bytes += cost(l)
	for c.hi-c.lo+1 > uint64(len(c.ring)) || (c.bytes > c.maxBytes && c.lo < c.hi) {
		c.evictOldest()
	}
}

// evictOldest drops the entry at lo.
func (c *Cache) evictOldest() {
	slot := &c.ring[c.lo%uint64(len(c.ring))]
	if *slot != nil && (*slot).Index == c.lo {
		c.bytes -= cost(*slot)
		*slot = nil
	}
	c.lo++
}

// clear empties the cache.
func (c *Cache) clear() {
	for i := range c.ring {
		c.ring[i] = nil
	}
	c.lo, c.hi, c.bytes = 1, 0, 0
}

// FirstIndex implements raft.LogStore.
func (c *Cache) FirstIndex() (uint64, error) { return c.store.FirstIndex() }

// LastIndex implements raft.LogStore.
func (c *Cache) LastIndex() (uint64, error) { return c.store.LastIndex() }

// DeleteRange implements raft.LogStore. The cache is emptied: a deleted
// tail may be rewritten with other entries under the same indexes.
func (c *Cache) DeleteRange(min, max uint64) error {
	c.mu.Lock()
	c.clear()
	c.mu.Unlock()
	return c.store.DeleteRange(min, max)
}

// IsMonotonic implements raft.MonotonicLogStore by asking the store.
func (c *Cache) IsMonotonic() bool {
	m, ok := c.store.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// Bytes returns what the cached entries cost now.
func (c *Cache) Bytes() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.bytes
}
