#!/usr/bin/env bash
# make bench: bare redis-server vs redraft (1 node; 3 nodes at medium and
# high consistency; 3 nodes on the bolt log store) under redis-benchmark,
# plus a TTL-heavy write (SET ... EX), one table with rps, p50, p99 and the
# ratio to bare Redis measured in the same run.
#
#   REQUESTS=200000 CLIENTS=50 ./bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-100000}
CLIENTS=${CLIENTS:-50}
KEYSPACE=${KEYSPACE:-100000}
BASE_PORT=${BASE_PORT:-17400}
TESTS=${TESTS:-set,get}
PIPELINES=${PIPELINES:-1 16}
EXTRA_FLAGS=${EXTRA_FLAGS:-}
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
  wait_leader "$p"
  for i in $(seq 1 $((n - 1))); do
    ./redraft -p $((p + i)) -dir "$work/n$((p + i))" -join "$p" --consistency "$c" -loglevel warning $EXTRA_FLAGS 2>"$work/n$((p + i)).log" &
    pids+=($!)
  done
  wait_members "$p" "$n"
}
stop_all() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}

results="$work/results.csv"
: >"$results"
run_bench() { # label port
  for P in $PIPELINES; do
    redis-benchmark -p "$2" -c "$CLIENTS" -r "$KEYSPACE" -n "$REQUESTS" -P "$P" -t "$TESTS" --csv 2>/dev/null |
      tail -n +2 | tr -d '"' | awk -F, -v l="$1" -v P="$P" '{print l "," $1 "," P "," $2 "," $5 "," $7}' >>"$results"
  done
}
# run_ttl: a TTL-heavy write (every SET carries EX), the determinism
# mechanism's worst case: each write's deadline is read back into the index.
run_ttl() { # label port
  for P in $PIPELINES; do
    redis-benchmark -p "$2" -c "$CLIENTS" -r "$KEYSPACE" -n "$REQUESTS" -P "$P" --csv \
      SET "key:__rand_int__" xxx EX 3600 2>/dev/null |
      tail -n +2 | tr -d '"' | awk -F, -v l="$1" -v P="$P" '{print l ",SETEX," P "," $2 "," $5 "," $7}' >>"$results"
  done
}

start_bare "$BASE_PORT"; run_bench bare "$BASE_PORT"; run_ttl bare "$BASE_PORT"; stop_all
start_cluster $((BASE_PORT + 10)) 1 medium; run_bench "redraft-1-medium" $((BASE_PORT + 10)); stop_all
start_cluster $((BASE_PORT + 20)) 3 medium; run_bench "redraft-3-medium" $((BASE_PORT + 20)); run_ttl "redraft-3-medium" $((BASE_PORT + 20)); stop_all
TESTS=get start_cluster $((BASE_PORT + 30)) 3 high; TESTS=get run_bench "redraft-3-high" $((BASE_PORT + 30)); stop_all
# The other durable log store, for comparison (the default is wal).
EXTRA_FLAGS="$EXTRA_FLAGS -backend bolt" start_cluster $((BASE_PORT + 40)) 3 medium
TESTS=set run_bench "redraft-3-bolt" $((BASE_PORT + 40)); stop_all

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(redis-server --version | awk '{print $3}' | tr -d 'v='), $(go version | awk '{print $3}')"
echo "redis-benchmark -c $CLIENTS -r $KEYSPACE -n $REQUESTS; durability high (fsync before acknowledging)"
echo
awk -F, '
  { key = $2 "," $3; if ($1 == "bare") bare[key] = $4; rows[NR] = $0 }
  END {
    printf "| %-18s | %-4s | %3s | %10s | %8s | %8s | %8s |\n", "target", "test", "-P", "rps", "p50 ms", "p99 ms", "ratio"
    printf "|%s|%s|%s|%s|%s|%s|%s|\n", "--------------------", "------", "-----", "------------", "----------", "----------", "----------"
    for (i = 1; i <= NR; i++) {
      split(rows[i], f, ",")
      key = f[2] "," f[3]
      ratio = (bare[key] > 0) ? sprintf("%.3f", f[4] / bare[key]) : "-"
      printf "| %-18s | %-4s | %3s | %10.0f | %8.3f | %8.3f | %8s |\n", f[1], f[2], f[3], f[4], f[5], f[6], ratio
    }
  }' "$results"
