#!/usr/bin/env bash
# bench/ab.sh BIN... : two or more redraft binaries against each other, in
# one run: a bare redis-server first, then for each binary in the order
# given a new NODES-node cluster under redis-benchmark. Give a pair twice
# (old new old new) to see the run-to-run noise. Prints rps and p99 ms.
#
#   TESTS=set,get,setex PIPES="1 16" NODES=3 CONS=medium bench/ab.sh old new old new
#
# setex is "SET key:<rand> xxx EX 3600". EXTRA adds flags to every node,
# FIRST_EXTRA to the first (the leader) only.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${N:-100000}; C=${C:-50}; TESTS=${TESTS:-get}; PIPES=${PIPES:-"1 16"}; NODES=${NODES:-3}; CONS=${CONS:-medium}
work=$(mktemp -d /tmp/redraft-ab.XXXXXX); port=${PORT:-18100}
trap 'rm -rf "$work"' EXIT
bench() { # port label
  for P in $PIPES; do for t in ${TESTS//,/ }; do
    if [ "$t" = setex ]; then what="SET key:__rand_int__ xxx EX 3600"; else what="-t $t"; fi
    # shellcheck disable=SC2086
    r=$(redis-benchmark -p "$1" -c "$C" -r 100000 -n "$N" -P "$P" --csv $what 2>/dev/null | tail -1 | tr -d '"' | awk -F, '{print $2, $7}')
    echo "$2 $t -P$P rps/p99: $r"
  done; done
}
redis-server --port "$port" --save "" --appendonly no --daemonize no --dir "$work" --logfile "$work/bare.log" & bp=$!
wait_ping "$port"; bench "$port" bare; kill -9 "$bp"; wait "$bp" 2>/dev/null
for bin in "$@"; do
  port=$((port + 10)); pids=()
  # shellcheck disable=SC2086
  "$bin" -p "$port" -dir "$work/$port" --consistency "$CONS" -loglevel warning ${EXTRA:-} ${FIRST_EXTRA:-} 2>"$work/$port.log" & pids+=($!)
  wait_leader "$port" || { tail -n 20 "$work/$port.log" >&2; exit 1; }
  for i in $(seq 1 $((NODES - 1))); do
    # shellcheck disable=SC2086
    "$bin" -p $((port + i)) -dir "$work/$((port + i))" -join "$port" --consistency "$CONS" -loglevel warning ${EXTRA:-} 2>/dev/null & pids+=($!)
  done
  [ "$NODES" -gt 1 ] && wait_members "$port" "$NODES"
  bench "$port" "$(basename "$bin")"
  { kill -9 "${pids[@]}"; wait; } 2>/dev/null
done
