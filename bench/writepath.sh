#!/usr/bin/env bash
# bench/writepath.sh BIN : where a write's time goes. Starts a new
# NODES-node cluster with --metrics-addr on every node, runs redis-benchmark
# (SET, -c 50, -P P), and prints for each node the averages over the run of
# the stages it measures (from the _sum and _count of /metrics, before and
# after): the leader's proposal (from the proposer handing an entry to Raft
# until it is applied), its log write (dispatchLog, fsync included), the
# AppendEntries round trip to each follower, commit, apply; on a follower,
# its handling of AppendEntries (storeLogs, fsync included) and apply.
# Times in ms; EXTRA adds flags to every node, FIRST_EXTRA to the leader.
#
#   NODES=3 P=1 bench/writepath.sh ./redraft
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bin=${1:-./redraft}
N=${N:-100000}; P=${P:-1}; NODES=${NODES:-3}; port=${PORT:-18700}
work=$(mktemp -d /tmp/redraft-writepath.XXXXXX); pids=()
trap '{ kill -9 "${pids[@]}"; wait; } 2>/dev/null; rm -rf "$work"' EXIT
# shellcheck disable=SC2086
"$bin" -p "$port" -dir "$work/0" --metrics-addr "127.0.0.1:$((port + 50))" -loglevel warning ${EXTRA:-} ${FIRST_EXTRA:-} 2>"$work/0.log" & pids+=($!)
wait_leader "$port" || { tail -n 20 "$work/0.log" >&2; exit 1; }
for i in $(seq 1 $((NODES - 1))); do
  # shellcheck disable=SC2086
  "$bin" -p $((port + i)) -dir "$work/$i" -join "$port" --metrics-addr "127.0.0.1:$((port + 50 + i))" -loglevel warning ${EXTRA:-} 2>/dev/null & pids+=($!)
done
[ "$NODES" -gt 1 ] && wait_members "$port" "$NODES"
scrape() { # file suffix
  for i in $(seq 0 $((NODES - 1))); do
    curl -s "http://127.0.0.1:$((port + 50 + i))/metrics" | grep -v '^#' >"$work/m$1.$i"
  done
}
redis-benchmark -p "$port" -c 50 -n 20000 -r 100000 -P "$P" -t set >/dev/null 2>&1 # warm-up
scrape 0
echo "SET -P$P, $NODES node(s): $(redis-benchmark -p "$port" -c 50 -n "$N" -r 100000 -P "$P" -t set --csv 2>/dev/null | tail -1 | tr -d '"' | awk -F, '{printf "%s rps, p50 %s ms, p99 %s ms", $2, $5, $7}')"
scrape 1
for i in $(seq 0 $((NODES - 1))); do
  [ "$i" = 0 ] && echo "leader:" || echo "follower $i:"
  awk '
    FNR == NR { a[$1] = $2; next } { b[$1] = $2 }
    END {
      nr = split("redraft_proposal_duration_seconds:proposal, to applied (ms)|redraft_entry_commands:commands an entry|raft_leader_dispatchLog:log write on the leader (ms)|redraft_log_fsync_duration_seconds:one fsync (ms)|raft_commitTime:dispatch to commit (ms)|raft_rpc_appendEntries_storeLogs:log write on a follower (ms)|raft_rpc_appendEntries:AppendEntries handled (ms)|redraft_apply_duration_seconds:apply (ms)", rows, "|")
      n = 0; for (k in b) if (k ~ /^raft_replication_appendEntries_rpc_.*_sum$/) rtt[++n] = substr(k, 1, length(k) - 4)
      for (r = 1; r <= nr; r++) {
        split(rows[r], kv, ":"); k = kv[1]
        c = b[k "_count"] - a[k "_count"]; if (c <= 0) continue
        v = (b[k "_sum"] - a[k "_sum"]) / c; if (k ~ /_seconds$/) v *= 1000
        printf "  %-40s %8.3f  (%d)\n", kv[2], v, c
      }
      for (j = 1; j <= n; j++) {
        c = b[rtt[j] "_count"] - a[rtt[j] "_count"]; if (c <= 0) continue
        peer = rtt[j]; sub(/^raft_replication_appendEntries_rpc_/, "", peer); gsub(/_/, ".", peer)
        printf "  %-40s %8.3f  (%d)\n", "AppendEntries round trip to " peer, (b[rtt[j] "_sum"] - a[rtt[j] "_sum"]) / c, c
      }
    }' "$work/m0.$i" "$work/m1.$i"
done
