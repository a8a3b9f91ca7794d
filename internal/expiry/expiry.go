// Package expiry is redraft's index of key deadlines: which keys carry a
// deadline, when each is due, and which are due at a given time, in little
// memory per key.
//
// Per database it keeps two structures. A hash table maps a key's 80-bit
// fingerprint (two hashes under seeds drawn at start, so nobody can aim
// keys at a collision) to its exact deadline in 16 bytes a slot, with no
// pointer for the garbage collector to follow. Buckets, one per second of
// deadline, hold the keys themselves, packed one after another; a key's
// entry in a bucket is live while the table still places its deadline in
// that second. Entries left behind by a deadline that moved or went away
// are dropped when their bucket is read, or all at once when they
// outnumber the live ones.
//
// A fingerprint collision between two keys would make them share one
// deadline; at 80 bits that is about one chance in 10^12 for a million
// keys.
package expiry

import (
	"container/heap"
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"sync"
)

// DBs is the number of databases indexed.
const DBs = 16

// Key names a key in a database.
type Key struct {
	DB  int
	Key string
}

// Index is the deadline of every key that has one, in every database. Safe
// for concurrent use.
type Index struct {
	mu     sync.Mutex
	seeds  [2]maphash.Seed
	dbs    [DBs]*dbIndex
	nextID uint64
}

// New returns an empty index.
func New() *Index {
	x := &Index{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	for i := range x.dbs {
		x.dbs[i] = newDBIndex()
	}
	return x
}

// Set records deadline at (Unix ms) for key in db, or forgets the key when
// at < 0.
func (x *Index) Set(db int, key string, at int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	d := x.db(db)
	if d == nil {
		return
	}
	d.set(x, key, at)
}

// Due reports whether key in db has a recorded deadline at or before t.
func (x *Index) Due(db int, key string, t int64) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	d := x.db(db)
	if d == nil {
		return false
	}
	at, ok := d.get(x.fingerprint(key))
	return ok && at <= t
}

// DueBy reports whether some recorded deadline is at or before t. It is
// cheap enough to ask before every read: it looks at the earliest bucket
// only, and scans it (once, then remembers its earliest deadline) only
// while t falls within that bucket's second.
func (x *Index) DueBy(t int64) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, d := range x.dbs {
		if d.dueBy(x, t) {
			return true
		}
	}
	return false
}

// DueKeys lists up to limit keys whose deadline is at or before t. The keys
// stay indexed until their deadline is set or forgotten.
func (x *Index) DueKeys(t int64, limit int) []Key {
	if limit <= 0 {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []Key
	seen := make(map[Key]bool)
	for db, d := range x.dbs {
		d.dueKeys(x, t, func(key string) bool {
			k := Key{db, key}
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
			return len(out) < limit
		})
		if len(out) >= limit {
			break
		}
	}
	return out
}

// Clear forgets every key of db, or of all databases when db < 0.
func (x *Index) Clear(db int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := range x.dbs {
		if db < 0 || i == db {
			x.dbs[i] = newDBIndex()
		}
	}
}

// Swap exchanges the keys of two databases (SWAPDB).
func (x *Index) Swap(a, b int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.db(a) != nil && x.db(b) != nil {
		x.dbs[a], x.dbs[b] = x.dbs[b], x.dbs[a]
	}
}

// Len is the number of keys with a deadline.
func (x *Index) Len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for _, d := range x.dbs {
		n += d.table.n + len(d.far)
	}
	return n
}

// Bytes is the memory the index holds, roughly.
func (x *Index) Bytes() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for _, d := range x.dbs {
		n += 8*cap(d.table.slots) + d.bucketBytes
		for k := range d.far {
			n += len(k) + 48
		}
	}
	return n
}

func (x *Index) db(db int) *dbIndex {
	if db < 0 || db >= DBs {
		return nil
	}
	return x.dbs[db]
}

// fingerprint is a key's identity in the table.
type fingerprint struct {
	h uint64 // never 0 (0 marks an empty slot)
	f uint16
}

func (x *Index) fingerprint(key string) fingerprint {
	return newFingerprint(maphash.String(x.seeds[0], key), maphash.String(x.seeds[1], key))
}

// fingerprintBytes is fingerprint for a key held as bytes.
func (x *Index) fingerprintBytes(key []byte) fingerprint {
	return newFingerprint(maphash.Bytes(x.seeds[0], key), maphash.Bytes(x.seeds[1], key))
}

func newFingerprint(h, f uint64) fingerprint {
	if h == 0 {
		h = 1
	}
	return fingerprint{h: h, f: uint16(f)}
}

// maxTableAt is the largest deadline a table slot holds (48 bits of ms,
// year 10889); later or negative ones go to the far map.
const maxTableAt = 1<<48 - 1

// dbIndex is one database's deadlines.
type dbIndex struct {
	table table
	far   map[string]int64 // deadlines outside the table's range
	// buckets hold packed keys (uvarint length, bytes) by deadline second;
	// seconds is a min-heap of the bucket seconds.
	buckets     map[int64][]byte
	seconds     secondHeap
	entries     int // key entries in all buckets, live or not
	bucketBytes int
	// first caches the earliest live deadline of the bucket of second
	// firstSecond while firstKnown; any change that might move it clears
	// firstKnown.
	first       int64
	firstSecond int64
	firstKnown  bool
}

func newDBIndex() *dbIndex {
	return &dbIndex{buckets: make(map[int64][]byte), far: make(map[string]int64)}
}

func (d *dbIndex) get(fp fingerprint) (int64, bool) { return d.table.get(fp) }

// set records or forgets one key's deadline.
func (d *dbIndex) set(x *Index, key string, at int64) {
	fp := x.fingerprint(key)
	if at < 0 || at > maxTableAt {
		old, had := d.table.get(fp)
		if had {
			d.forgetFirst(old)
			d.table.remove(fp)
		}
		delete(d.far, key)
		if at > maxTableAt {
			d.far[key] = at
		}
		return
	}
	if len(d.far) > 0 {
		delete(d.far, key)
	}
	old, had := d.table.upsert(fp, at)
	if had {
		d.forgetFirst(old)
	}
	if d.firstKnown && second(at) <= d.firstSecond {
		d.firstKnown = false
	}
	if had && second(old) == second(at) {
		return // same bucket: its entry stays live
	}
	d.appendToBucket(second(at), key)
	if d.entries > 2*d.table.n+1024 {
		d.compact(x)
	}
}

func second(at int64) int64 { return at / 1000 }

// forgetFirst notes that a deadline at old went away: when it was in the
// earliest bucket, the earliest deadline may have moved.
func (d *dbIndex) forgetFirst(old int64) {
	if d.firstKnown && second(old) == d.firstSecond {
		d.firstKnown = false
	}
}

// appendToBucket adds key to the bucket of second s.
func (d *dbIndex) appendToBucket(s int64, key string) {
	b, ok := d.buckets[s]
	if !ok {
		heap.Push(&d.seconds, s)
	}
	before := cap(b)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	d.buckets[s] = b
	d.bucketBytes += cap(b) - before
	d.entries++
}

// eachEntry calls f with each key packed in b, as a slice of b.
func eachEntry(b []byte, f func(key []byte) bool) {
	for len(b) > 0 {
		n, w := binary.Uvarint(b)
		key := b[w : w+int(n)]
		b = b[w+int(n):]
		if !f(key) {
			return
		}
	}
}

// liveAt returns the deadline of a bucket entry for second s, if the entry
// is live: the table still places the key's deadline in that second.
func (d *dbIndex) liveAt(x *Index, key []byte, s int64) (int64, bool) {
	at, ok := d.table.get(x.fingerprintBytes(key))
	return at, ok && second(at) == s
}

// sweepBucket drops the dead entries of the bucket of second s and returns
// what is left (nil when nothing is: the bucket is gone).
func (d *dbIndex) sweepBucket(x *Index, s int64) []byte {
	b := d.buckets[s]
	var kept []byte
	n, live := 0, 0
	eachEntry(b, func(key []byte) bool {
		n++
		if _, ok := d.liveAt(x, key, s); ok {
			kept = binary.AppendUvarint(kept, uint64(len(key)))
			kept = append(kept, key...)
			live++
		}
		return true
	})
	d.entries -= n - live
	d.bucketBytes += cap(kept) - cap(b)
	if live == 0 {
		d.dropBucket(s)
		return nil
	}
	d.buckets[s] = kept
	return kept
}

// dropBucket forgets the bucket of second s.
func (d *dbIndex) dropBucket(s int64) {
	d.bucketBytes -= cap(d.buckets[s])
	delete(d.buckets, s)
	for i, v := range d.seconds {
		if v == s {
			heap.Remove(&d.seconds, i)
			break
		}
	}
}

// dueBy reports whether a deadline of this database is at or before t.
func (d *dbIndex) dueBy(x *Index, t int64) bool {
	for _, at := range d.far {
		if at <= t {
			return true
		}
	}
	for d.seconds.Len() > 0 {
		s := d.seconds[0]
		if s > second(t) {
			return false
		}
		first, ok := d.firstOf(x, s)
		if !ok {
			continue // the bucket held only dead entries and is gone
		}
		return first <= t
	}
	return false
}

// firstOf returns the earliest live deadline in the bucket of second s,
// which is the earliest bucket, dropping the bucket when nothing in it is
// live.
func (d *dbIndex) firstOf(x *Index, s int64) (int64, bool) {
	if d.firstKnown && d.firstSecond == s {
		return d.first, true
	}
	first, found := int64(0), false
	eachEntry(d.buckets[s], func(key []byte) bool {
		if at, ok := d.liveAt(x, key, s); ok && (!found || at < first) {
			first, found = at, true
		}
		return true
	})
	if !found {
		d.entries -= countEntries(d.buckets[s])
		d.dropBucket(s)
		return 0, false
	}
	d.first, d.firstSecond, d.firstKnown = first, s, true
	return first, true
}

func countEntries(b []byte) int {
	n := 0
	eachEntry(b, func([]byte) bool { n++; return true })
	return n
}

// dueKeys calls f with each key due at t until f returns false.
func (d *dbIndex) dueKeys(x *Index, t int64, f func(string) bool) {
	for key, at := range d.far {
		if at <= t && !f(key) {
			return
		}
	}
	// Buckets in order of their second, without disturbing the heap.
	for _, s := range d.seconds.upTo(second(t)) {
		b := d.sweepBucket(x, s)
		more := true
		eachEntry(b, func(key []byte) bool {
			if at, ok := d.liveAt(x, key, s); ok && at <= t {
				more = f(string(key))
			}
			return more
		})
		if !more {
			return
		}
	}
}

// compact rewrites every bucket without its dead entries.
func (d *dbIndex) compact(x *Index) {
	var keep secondHeap
	d.entries, d.bucketBytes = 0, 0
	seen := make(map[string]bool)
	for s, b := range d.buckets {
		var kept []byte
		clear(seen)
		eachEntry(b, func(key []byte) bool {
			if _, ok := d.liveAt(x, key, s); ok && !seen[string(key)] {
				seen[string(key)] = true
				kept = binary.AppendUvarint(kept, uint64(len(key)))
				kept = append(kept, key...)
				d.entries++
			}
			return true
		})
		if len(kept) == 0 {
			delete(d.buckets, s)
			continue
		}
		d.buckets[s] = kept
		d.bucketBytes += cap(kept)
		keep = append(keep, s)
	}
	heap.Init(&keep)
	d.seconds = keep
}

// secondHeap is a min-heap of bucket seconds.
type secondHeap []int64

func (h secondHeap) Len() int           { return len(h) }
func (h secondHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h secondHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *secondHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *secondHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

// upTo lists the seconds at or before s, in increasing order.
func (h secondHeap) upTo(s int64) []int64 {
	var out []int64
	// Walk the heap from its root, only into subtrees that may qualify.
	var walk func(i int)
	walk = func(i int) {
		if i >= len(h) || h[i] > s {
			return
		}
		out = append(out, h[i])
		walk(2*i + 1)
		walk(2*i + 2)
	}
	walk(0)
	sortInt64s(out)
	return out
}

func sortInt64s(a []int64) {
	// insertion sort: the lists are short (buckets already due)
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// table is an open-addressing hash table (linear probing, deletion by
// backward shift) of fingerprint -> deadline, two words a slot:
// word 0 is the hash (0: empty), word 1 the deadline << 16 | f. Its size
// is any number of slots (a key's home slot is its hash scaled to the
// size), so it can grow by half instead of doubling: between 53% and 80%
// full, where a doubling table of a million keys may sit at 48%.
type table struct {
	slots []uint64
	n     int
}

const minSlots = 64

// size is the number of slots.
func (t *table) size() int { return len(t.slots) / 2 }

// home is the first slot probed for hash h.
func (t *table) home(h uint64) int {
	hi, _ := bits.Mul64(h, uint64(t.size()))
	return int(hi)
}

// next is the slot after i, wrapping around.
func (t *table) next(i int) int {
	if i++; i == t.size() {
		return 0
	}
	return i
}

// find returns the slot of fp, or the empty slot where it would go.
func (t *table) find(fp fingerprint) (int, bool) {
	if len(t.slots) == 0 {
		return -1, false
	}
	for i := t.home(fp.h); ; i = t.next(i) {
		h := t.slots[2*i]
		if h == 0 {
			return i, false
		}
		if h == fp.h && uint16(t.slots[2*i+1]) == fp.f {
			return i, true
		}
	}
}

func (t *table) get(fp fingerprint) (int64, bool) {
	i, ok := t.find(fp)
	if !ok {
		return 0, false
	}
	return int64(t.slots[2*i+1] >> 16), true
}

func (t *table) put(fp fingerprint, at int64) { t.upsert(fp, at) }

// upsert sets fp's deadline to at and returns the deadline it replaces,
// with one probe of the table.
func (t *table) upsert(fp fingerprint, at int64) (int64, bool) {
	if len(t.slots) == 0 || 5*(t.n+1) > 4*t.size() {
		t.grow()
	}
	i, ok := t.find(fp)
	var old int64
	if ok {
		old = int64(t.slots[2*i+1] >> 16)
	} else {
		t.n++
		t.slots[2*i] = fp.h
	}
	t.slots[2*i+1] = uint64(at)<<16 | uint64(fp.f)
	return old, ok
}

func (t *table) remove(fp fingerprint) {
	i, ok := t.find(fp)
	if !ok {
		return
	}
	t.n--
	// Backward shift: a later member of the run moves into the hole unless
	// its home slot lies cyclically in (hole, its slot].
	for j := t.next(i); t.slots[2*j] != 0; j = t.next(j) {
		home := t.home(t.slots[2*j])
		stays := home > i && home <= j
		if i > j {
			stays = home > i || home <= j
		}
		if !stays {
			t.slots[2*i], t.slots[2*i+1] = t.slots[2*j], t.slots[2*j+1]
			i = j
		}
	}
	t.slots[2*i], t.slots[2*i+1] = 0, 0
}

// grow makes the table half as large again (two words a slot).
func (t *table) grow() {
	old := t.slots
	t.slots = make([]uint64, 2*max(minSlots, t.size()*3/2))
	t.n = 0
	for i := 0; i < len(old); i += 2 {
		if old[i] != 0 {
			t.put(fingerprint{h: old[i], f: uint16(old[i+1])}, int64(old[i+1]>>16))
		}
	}
}
