#!/usr/bin/env bash
# make bench (memory part): what one redraft node holds in memory beside its
# child for 1M keys, with and without a TTL, loaded with redis-cli --pipe
# and measured after a RAFTSNAPSHOT. RSS is each process's resident set
# (VmRSS); "ratio" is redraft's RSS over its child's.
#
#   KEYS=1000000 ./bench/memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${KEYS:-1000000}
BASE_PORT=${BASE_PORT:-17500}
EXTRA_FLAGS=${EXTRA_FLAGS:-}
work=$(mktemp -d /tmp/redraft-mem.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

[ -x ./redraft ] || go build -o redraft .
# shellcheck source=bench/lib.sh
. bench/lib.sh

rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
child_of() { pgrep -P "$1" redis-server | head -1; }

# load prints KEYS SET commands (with "EX 3600" when $1 is ttl) into --pipe.
load() { # port ttl|plain
  awk -v n="$KEYS" -v ttl="$2" 'BEGIN {
    for (i = 0; i < n; i++) {
      v = "v" i
      if (ttl == "ttl") printf "*5\r\n$3\r\nSET\r\n$%d\r\nk:%d\r\n$%d\r\n%s\r\n$2\r\nEX\r\n$4\r\n3600\r\n", length("k:" i), i, length(v), v
      else printf "*3\r\n$3\r\nSET\r\n$%d\r\nk:%d\r\n$%d\r\n%s\r\n", length("k:" i), i, length(v), v
    }
  }' | redis-cli -p "$1" --pipe >/dev/null
}

measure() { # label ttl|plain port
  local port=$3
  ./redraft -p "$port" -dir "$work/n$port" -loglevel warning $EXTRA_FLAGS 2>"$work/n$port.log" &
  local pid=$!
  pids+=("$pid")
  wait_leader "$port"
  local base child
  child=$(child_of "$pid")
  base=$(rss_kb "$pid")
  load "$port" "$2"
  redis-cli -p "$port" RAFTSNAPSHOT >/dev/null
  # Let the snapshot's buffers go and the heap settle: poll RSS until it
  # stops falling (at most 10 s).
  local prev=0 cur
  for _ in $(seq 1 20); do
    cur=$(rss_kb "$pid")
    [ "$cur" = "$prev" ] && break
    prev=$cur
    sleep 0.5
  done
  local keys
  keys=$(redis-cli -p "$port" DBSIZE)
  local self_kb child_kb
  self_kb=$(rss_kb "$pid")
  child_kb=$(rss_kb "$child")
  awk -v name="$1" -v keys="$keys" -v base="$base" -v self="$self_kb" -v child="$child_kb" 'BEGIN {
    printf "| %-22s | %9s | %12.1f | %12.1f | %12.1f | %6.2f |\n", name, keys, base / 1024, self / 1024, child / 1024, self / child
  }'
  kill -9 "$pid" "$child" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

echo "1 node, $KEYS keys written with redis-cli --pipe, then RAFTSNAPSHOT"
echo
printf "| %-22s | %9s | %12s | %12s | %12s | %6s |\n" "keys" "DBSIZE" "redraft 0 MB" "redraft MB" "child MB" "ratio"
printf "|%s|%s|%s|%s|%s|%s|\n" "------------------------" "-----------" "--------------" "--------------" "--------------" "--------"
measure "SET k:N v EX 3600" ttl "$BASE_PORT"
measure "SET k:N v" plain $((BASE_PORT + 1))
