#!/usr/bin/env bash
# bench/cpu.sh BIN : where the CPU goes. For each workload, a bare
# redis-server and then a new NODES-node redraft cluster run the same
# redis-benchmark; the CPU time every process used during the run
# (/proc/PID/stat before and after, the benchmark's from /usr/bin/time) is
# divided by the requests served. Prints µs of CPU per request for the
# benchmark client, redraft's leader, its followers and the children, the
# sum, and how many of the machine's cores the run kept busy (sum / wall
# time): a run near "nproc" cores is bound by CPU, one well below it waits
# on something else (fsync, round trips).
#
#   TESTS=set,get,setex PIPES="1 16" NODES=3 CONS=medium bench/cpu.sh ./redraft
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bin=${1:-./redraft}
N=${N:-100000}; C=${C:-50}; TESTS=${TESTS:-set,get}; PIPES=${PIPES:-"1 16"}; NODES=${NODES:-3}; CONS=${CONS:-medium}
work=$(mktemp -d /tmp/redraft-cpu.XXXXXX); port=${PORT:-18300}; hz=$(getconf CLK_TCK)
pids=()
trap '{ kill -9 "${pids[@]}"; wait; } 2>/dev/null; rm -rf "$work"' EXIT

ticks() { # pid: user+system clock ticks so far
  awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}
child_of() { # pid: its redis-server child
  pgrep -P "$1" redis-server | head -1
}
# measure PORT LABEL PID... : one line per workload, the PIDs as columns
measure() {
  local p=$1 label=$2; shift 2
  for P in $PIPES; do for t in ${TESTS//,/ }; do
    if [ "$t" = setex ]; then what="SET key:__rand_int__ xxx EX 3600"; else what="-t $t"; fi
    local before=() after=() pid i out rps wall bu
    for pid in "$@"; do before+=("$(ticks "$pid")"); done
    # shellcheck disable=SC2086
    out=$(/usr/bin/time -f 'TIME %U %S %e' redis-benchmark -p "$p" -c "$C" -r 100000 -n "$N" -P "$P" --csv $what 2>&1)
    for pid in "$@"; do after+=("$(ticks "$pid")"); done
    rps=$(echo "$out" | grep -v '^TIME' | tail -1 | tr -d '"' | cut -d, -f2)
    read -r _ bu bs wall <<<"$(echo "$out" | grep '^TIME')"
    local line sum
    sum=$(echo "($bu + $bs) * 1000000 / $N" | bc -l)
    line=$(printf '%-8s %-6s -P%-3s %9.0f rps | bench %6.1f' "$label" "$t" "$P" "$rps" "$sum")
    for i in "${!before[@]}"; do
      local us
      us=$(echo "(${after[$i]} - ${before[$i]}) * 1000000 / $hz / $N" | bc -l)
      sum=$(echo "$sum + $us" | bc -l)
      line+=$(printf ' %6.1f' "$us")
    done
    printf '%s | sum %6.1f us/req, %4.2f cores\n' "$line" "$sum" "$(echo "$sum * $N / 1000000 / $wall" | bc -l)"
  done; done
}

echo "CPU µs per request: bench, then bare: server | redraft: leader, leader's child, followers and their children"
redis-server --port "$port" --save "" --appendonly no --daemonize no --dir "$work" --logfile "$work/bare.log" & bp=$!
pids+=("$bp"); wait_ping "$port"
measure "$port" bare "$bp"
kill -9 "$bp"; wait "$bp" 2>/dev/null

port=$((port + 10)); cols=()
"$bin" -p "$port" -dir "$work/$port" --consistency "$CONS" -loglevel warning ${EXTRA:-} 2>"$work/$port.log" & pids+=($!)
leader=$!
wait_leader "$port" || { tail -n 20 "$work/$port.log" >&2; exit 1; }
cols+=("$leader" "$(child_of "$leader")")
for i in $(seq 1 $((NODES - 1))); do
  # shellcheck disable=SC2086
  "$bin" -p $((port + i)) -dir "$work/$((port + i))" -join "$port" --consistency "$CONS" -loglevel warning ${EXTRA:-} 2>/dev/null & pids+=($!)
  f=$!
  [ "$NODES" -gt 1 ] && wait_members "$port" $((i + 1))
  cols+=("$f" "$(child_of "$f")")
done
measure "$port" redraft "${cols[@]}"
