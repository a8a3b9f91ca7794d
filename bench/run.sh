#!/usr/bin/env bash
# make bench: bare redis-server vs redraft (1 node; 3 nodes at medium and
# high consistency; 3 nodes on the bolt log store) under redis-benchmark,
# plus a TTL-heavy write (SET ... EX). Every measurement runs RUNS times
# (best of them kept); one table gives rps, p50, p99 and the ratio to a
# bare redis-server measured just before that cluster, a second compares
# each with its target
# (issue 14), and bench/memory.sh adds redraft's memory beside its child's.
#
#   REQUESTS=200000 CLIENTS=50 RUNS=2 ./bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-100000}
CLIENTS=${CLIENTS:-50}
KEYSPACE=${KEYSPACE:-100000}
BASE_PORT=${BASE_PORT:-17400}
TESTS=${TESTS:-set,get}
PIPELINES=${PIPELINES:-1 16}
EXTRA_FLAGS=${EXTRA_FLAGS:-}
RUNS=${RUNS:-2}
MEMORY=${MEMORY:-1} # 0 skips bench/memory.sh
work=$(mktemp -d /tmp/redraft-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

[ -x ./redraft ] || go build -o redraft .
command -v redis-benchmark >/dev/null || { echo "redis-benchmark not found (apt-get install redis-tools)"; exit 1; }

# shellcheck source=bench/lib.sh
. bench/lib.sh # cwd is the repository root

start_bare() { # port
  redis-server --port "$1" --save "" --appendonly no --daemonize no --dir "$work" --logfile "$work/bare.log" &
  pids+=($!)
  wait_ping "$1"
}
start_cluster() { # first_port n consistency
  local p=$1 n=$2 c=$3
  ./redraft -p "$p" -dir "$work/n$p" --consistency "$c" -loglevel warning $EXTRA_FLAGS 2>"$work/n$p.log" &
  pids+=($!)
  wait_leader "$p" || { tail -n 20 "$work/n$p.log" >&2; return 1; }
  for i in $(seq 1 $((n - 1))); do
    ./redraft -p $((p + i)) -dir "$work/n$((p + i))" -join "$p" --consistency "$c" -loglevel warning $EXTRA_FLAGS 2>"$work/n$((p + i)).log" &
    pids+=($!)
  done
  wait_members "$p" "$n"
}
stop_all() { # and forget their data: every run starts new clusters
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  rm -rf "$work"/n*
}

results="$work/results.csv"
: >"$results"
run_bench() { # label port
  for P in $PIPELINES; do
    redis-benchmark -p "$2" -c "$CLIENTS" -r "$KEYSPACE" -n "$REQUESTS" -P "$P" -t "$TESTS" --csv 2>/dev/null |
      tail -n +2 | tr -d '"' | awk -F, -v l="$1" -v P="$P" '{print l "," $1 "," P "," $2 "," $5 "," $7}' >>"$results"
  done
}
# fill writes the keyspace (not recorded), so that a run of GETs alone
# reads existing keys as the runs after SET do.
fill() { # port
  redis-benchmark -p "$1" -c "$CLIENTS" -r "$KEYSPACE" -n "$REQUESTS" -P 16 -t set >/dev/null 2>&1
}
# run_ttl: a TTL-heavy write (every SET carries EX), the expiry index's
# worst case: every write sets or moves a deadline.
run_ttl() { # label port
  for P in $PIPELINES; do
    redis-benchmark -p "$2" -c "$CLIENTS" -r "$KEYSPACE" -n "$REQUESTS" -P "$P" --csv \
      SET "key:__rand_int__" xxx EX 3600 2>/dev/null |
      tail -n +2 | tr -d '"' | awk -F, -v l="$1" -v P="$P" '{print l ",SETEX," P "," $2 "," $5 "," $7}' >>"$results"
  done
}

# Each cluster is measured right after a bare redis-server runs the same
# tests (label bare@<cluster>), and its ratios are to that bare run, a few
# minutes away rather than up to ten (this shared machine's speed drifts).
B=$BASE_PORT
for _ in $(seq 1 "$RUNS"); do
  start_bare $B; run_bench "bare@redraft-1-medium" $B; stop_all
  start_cluster $((B + 10)) 1 medium; run_bench "redraft-1-medium" $((B + 10)); stop_all
  start_bare $B; run_bench "bare@redraft-3-medium" $B; run_ttl "bare@redraft-3-medium" $B; stop_all
  start_cluster $((B + 20)) 3 medium; run_bench "redraft-3-medium" $((B + 20)); run_ttl "redraft-3-medium" $((B + 20)); stop_all
  start_bare $B; fill $B; TESTS=get run_bench "bare@redraft-3-high" $B; stop_all
  TESTS=get start_cluster $((B + 30)) 3 high; fill $((B + 30)); TESTS=get run_bench "redraft-3-high" $((B + 30)); stop_all
  # The other durable log store, for comparison (the default is wal).
  start_bare $B; TESTS=set run_bench "bare@redraft-3-bolt" $B; stop_all
  EXTRA_FLAGS="$EXTRA_FLAGS -backend bolt" start_cluster $((B + 40)) 3 medium
  TESTS=set run_bench "redraft-3-bolt" $((B + 40)); stop_all
done
memory="$work/memory.txt"
: >"$memory"
if [ "$MEMORY" = 1 ]; then
  BASE_PORT=$((BASE_PORT + 60)) ./bench/memory.sh >"$memory"
fi

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(redis-server --version | awk '{print $3}' | tr -d 'v='), $(go version | awk '{print $3}')"
echo "redis-benchmark -c $CLIENTS -r $KEYSPACE -n $REQUESTS; durability high (fsync before acknowledging); best of $RUNS runs"
echo
# best.csv: per (target, test, -P) the run with the most rps, and the
# lowest p99 of all runs.
awk -F, '
  { key = $1 "," $2 "," $3
    if (!(key in rps)) order[++n] = key
    if ($4 > rps[key]) { rps[key] = $4; p50[key] = $5 }
    if (!(key in p99) || $6 < p99[key]) p99[key] = $6 }
  END { for (i = 1; i <= n; i++) { k = order[i]; print k "," rps[k] "," p50[k] "," p99[k] } }' "$results" >"$work/best.csv"
awk -F, '
  { if ($1 ~ /^bare@/) bare[substr($1, 6) "," $2 "," $3] = $4; else rows[++n] = $0 }
  END {
    printf "| %-18s | %-5s | %3s | %10s | %8s | %8s | %10s | %8s |\n", "target", "test", "-P", "rps", "p50 ms", "p99 ms", "bare rps", "ratio"
    printf "|%s|%s|%s|%s|%s|%s|%s|%s|\n", "--------------------", "-------", "-----", "------------", "----------", "----------", "------------", "----------"
    for (i = 1; i <= n; i++) {
      split(rows[i], f, ",")
      b = bare[f[1] "," f[2] "," f[3]]
      ratio = (b > 0) ? sprintf("%.3f", f[4] / b) : "-"
      printf "| %-18s | %-5s | %3s | %10.0f | %8.3f | %8.3f | %10.0f | %8s |\n", f[1], f[2], f[3], f[4], f[5], f[6], b, ratio
    }
  }' "$work/best.csv"
echo
echo "Targets (issue 14): 3 nodes, -durability high, -c $CLIENTS, ratios to the bare redis-server measured just before each cluster"
echo
cat "$memory" >>"$work/best.csv" # memory.sh lines start with "|" and are skipped below
awk -F, '
  NF >= 6 && $1 !~ /^\|/ { v[$1 "," $2 "," $3] = $4; p99[$1 "," $2 "," $3] = $6 }
  /^\| SET k:N v EX 3600/ { split($0, m, "|"); mem["ttl"] = m[7] + 0 }
  /^\| SET k:N v  /       { split($0, m, "|"); mem["plain"] = m[7] + 0 }
  function ratio(t, test, P) { return (v["bare@" t "," test "," P] > 0) ? v[t "," test "," P] / v["bare@" t "," test "," P] : -1 }
  function row(name, bare, got, shown, target, met) {
    printf "| %-34s | %10s | %10s | %7s | %8s | %-4s |\n", name, bare, got, shown, target, met ? "yes" : "no"
  }
  function rrow(name, t, test, P, target,   r) {
    r = ratio(t, test, P)
    row(name, sprintf("%.0f", v["bare@" t "," test "," P]), sprintf("%.0f", v[t "," test "," P]), sprintf("%.3f", r), ">= " target, r >= target)
  }
  END {
    printf "| %-34s | %10s | %10s | %7s | %8s | %-4s |\n", "workload", "bare", "redraft", "ratio", "target", "met"
    printf "|%s|%s|%s|%s|%s|%s|\n", "------------------------------------", "------------", "------------", "---------", "----------", "------"
    rrow("SET -P1", "redraft-3-medium", "SET", 1, 0.40)
    rrow("GET -P1 (medium)", "redraft-3-medium", "GET", 1, 0.65)
    rrow("SET -P16", "redraft-3-medium", "SET", 16, 0.25)
    rrow("GET -P16 (medium)", "redraft-3-medium", "GET", 16, 0.55)
    rrow("GET -P16 (high)", "redraft-3-high", "GET", 16, 0.50)
    p = p99["redraft-3-medium,SET,1"]
    row("SET p99 at -P1 (ms)", sprintf("%.3f", p99["bare@redraft-3-medium,SET,1"]), sprintf("%.3f", p), "-", "<= 3", p <= 3)
    rrow("1-node SET -P1", "redraft-1-medium", "SET", 1, 0.60)
    s = v["redraft-3-medium,SETEX,16"]; b = v["redraft-3-medium,SET,16"]
    d = (b > 0) ? s / b - 1 : -1
    row("SET k v EX 3600 -P16 vs plain SET", sprintf("%.0f", b), sprintf("%.0f", s), sprintf("%+.0f%%", 100 * d), ">= -10%", d >= -0.10)
    if ("ttl" in mem) {
      row("memory/child, 1M keys with a TTL", "-", "-", sprintf("%.2f", mem["ttl"]), "<= 0.50", mem["ttl"] <= 0.50)
      row("memory/child, 1M plain keys", "-", "-", sprintf("%.2f", mem["plain"]), "<= 0.25", mem["plain"] <= 0.25)
    }
  }' "$work/best.csv"
if [ -s "$memory" ]; then
  echo
  cat "$memory"
fi
