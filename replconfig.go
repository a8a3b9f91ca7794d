package main

import "strings"

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
// replicated, else the first one that may not.
func configSetRefused(args [][]byte) string {
	for i := 2; i < len(args); i += 2 {
		name := strings.ToLower(string(args[i]))
		ok := false
		for _, p := range replicatedConfig {
			if p == name {
				ok = true
				break
			}
		}
		if !ok {
			return name
		}
	}
	return ""
}
