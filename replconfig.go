package main

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/redraft/redraft/internal/resp"
)

// replicatedConfig lists the CONFIG SET parameters that are safe to apply on
// every node through the log and are carried in snapshots: they change
// encodings, notifications and diagnostics, never which data a node holds.
// Everything else (memory limits, persistence, networking) is a per-node
// concern and refused.
var replicatedConfig = []string{
	"notify-keyspace-events",
	"hash-max-listpack-entries", "hash-max-listpack-value", "hash-max-ziplist-entries", "hash-max-ziplist-value",
	"list-max-listpack-size", "list-max-ziplist-size", "list-compress-depth",
	"set-max-intset-entries", "set-max-listpack-entries", "set-max-listpack-value",
	"zset-max-listpack-entries", "zset-max-listpack-value", "zset-max-ziplist-entries", "zset-max-ziplist-value",
	"stream-node-max-bytes", "stream-node-max-entries", "hll-sparse-max-bytes",
	"slowlog-log-slower-than", "slowlog-max-len", "latency-monitor-threshold",
	"lfu-log-factor", "lfu-decay-time", "busy-reply-threshold", "lua-time-limit",
}

// configSetRefused returns "" when every parameter of CONFIG SET args may be
// replicated or is held by redraft, else the first one that may not.
func configSetRefused(args [][]byte) string {
	for i := 2; i < len(args); i += 2 {
		name := strings.ToLower(string(args[i]))
		if heldParams[name] == nil && !slices.Contains(replicatedConfig, name) {
			return name
		}
	}
	return ""
}

// heldParams are the CONFIG parameters redraft holds itself rather than the
// child, each with its check and canonical form (as CONFIG GET shows it):
// requirepass, the client password (were it set in the child, redraft's
// own connections to it would need AUTH), and maxmemory, the cluster's
// write limit (the child itself never evicts).
var heldParams = map[string]func(string) (string, bool){
	"requirepass": func(v string) (string, bool) { return v, true },
	"maxmemory":   canonicalMemory,
}

// canonicalMemory reads a memory value as Redis's memtoull does, and gives
// it in bytes: decimal digits (saturating at 2^64-1) and an optional unit,
// b, k, m, g (powers of 1000) or kb, mb, gb (of 1024), in any case; the
// product wraps modulo 2^64 as in C. No digits at all reads as 0.
func canonicalMemory(v string) (string, bool) {
	end := 0
	for end < len(v) && v[end] >= '0' && v[end] <= '9' {
		end++
	}
	mul, ok := memoryUnits[strings.ToLower(v[end:])]
	if !ok || end >= 128 {
		return "", false
	}
	n, err := strconv.ParseUint(v[:end], 10, 64)
	if err != nil && end > 0 {
		n = math.MaxUint64 // strtoull's ERANGE, which memtoull ignores
	}
	return strconv.FormatUint(n*mul, 10), true
}

// memoryUnits are memtoull's units.
var memoryUnits = map[string]uint64{"": 1, "b": 1, "k": 1000, "kb": 1 << 10, "m": 1000 * 1000, "mb": 1 << 20, "g": 1000 * 1000 * 1000, "gb": 1 << 30}

// heldConfig is the value of each held parameter: one set through the log
// replaces, on every node, the flag the node started with, and is carried
// in snapshots. The front end reads it (AUTH, the write limit); the apply
// path writes it. Safe for concurrent use.
type heldConfig struct {
	startup    map[string]string                 // from flags; set before use
	replicated atomic.Pointer[map[string]string] // set through the log, copied on write
}

// newHeldConfig starts with the flags' values.
func newHeldConfig() *heldConfig {
	return &heldConfig{startup: map[string]string{"requirepass": "", "maxmemory": "0"}}
}

// get is a parameter's value now.
func (h *heldConfig) get(name string) string {
	if m := h.replicated.Load(); m != nil {
		if v, ok := (*m)[name]; ok {
			return v
		}
	}
	return h.startup[name]
}

// set records values applied from the log.
func (h *heldConfig) set(values map[string]string) {
	m := map[string]string{}
	if old := h.replicated.Load(); old != nil {
		maps.Copy(m, *old)
	}
	maps.Copy(m, values)
	h.replicated.Store(&m)
}

// fromLog is what was set through the log (for snapshots), nil if nothing.
func (h *heldConfig) fromLog() map[string]string {
	if m := h.replicated.Load(); m != nil {
		return *m
	}
	return nil
}

// forget drops what was set through the log (before a snapshot restore).
func (h *heldConfig) forget() { h.replicated.Store(nil) }

// planConfigSet splits CONFIG SET args into what the child runs and the
// held parameters' new values, in canonical form (nil when none). A CONFIG
// SET of held parameters alone leaves nothing for the child: child is nil
// then. bad is Redis's error for a value a held parameter refuses.
func planConfigSet(args [][]byte) (child [][]byte, held map[string]string, bad []byte) {
	if len(args)%2 != 0 {
		return args, nil, nil // a syntax error, which the child reports
	}
	child = args[:2:2]
	for i := 2; i+1 < len(args); i += 2 {
		name := strings.ToLower(string(args[i]))
		check := heldParams[name]
		if check == nil {
			child = append(child, args[i], args[i+1])
			continue
		}
		v, ok := check(string(args[i+1]))
		if !ok {
			return nil, nil, resp.Error(fmt.Sprintf("ERR CONFIG SET failed (possibly related to argument '%s') - argument must be a memory value", args[i]))
		}
		if held == nil {
			held = map[string]string{}
		}
		held[name] = v
	}
	if len(child) == 2 {
		return nil, held, nil
	}
	return child, held, nil
}

// configSetMalformed returns Redis's error for a CONFIG SET whose
// arguments do not pair up or name a parameter twice, or nil. The child
// never sees requirepass, so redraft checks these itself.
func configSetMalformed(args [][]byte) []byte {
	if len(args)%2 != 0 {
		return resp.Error("ERR syntax error")
	}
	seen := make(map[string]bool, len(args)/2)
	for i := 2; i < len(args); i += 2 {
		name := strings.ToLower(string(args[i]))
		if seen[name] {
			return resp.Error(fmt.Sprintf("ERR CONFIG SET failed (possibly related to argument '%s') - duplicate parameter", args[i]))
		}
		seen[name] = true
	}
	return nil
}

// withHeld puts the held parameters' values into a CONFIG GET reply (the
// child reports its own: requirepass "", maxmemory 0), keeping the child's
// order and the parameter names as the reply spells them.
func withHeld(raw []byte, h *heldConfig) []byte {
	items, err := resp.ArrayItems(raw)
	if err != nil || len(items)%2 != 0 {
		return raw
	}
	changed := false
	for i := 0; i+1 < len(items); i += 2 {
		name, ok := resp.ReplyString(items[i])
		if _, held := heldParams[strings.ToLower(name)]; ok && held {
			items[i+1] = resp.Bulk(h.get(strings.ToLower(name)))
			changed = true
		}
	}
	if !changed {
		return raw
	}
	return resp.Rebuild(raw, items) // an array in RESP2, a map in RESP3
}
