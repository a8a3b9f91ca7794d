#!/usr/bin/env bash
# bench/applycost.sh BIN... : for each binary, a one-node cluster under
# pipelined writes (-P16, 50 clients), and the time its apply path spends per
# command, read from /metrics (redraft_apply_duration_seconds_sum over
# redraft_entry_commands_sum), which moves less than rps on a busy machine.
#
#   CMD="SET key:__rand_int__ xxx EX 3600" bench/applycost.sh old new old new
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
CMD=${CMD:-SET key:__rand_int__ xxx EX 3600}
port=${PORT:-18500}
for bin in "$@"; do
  port=$((port + 10)); d=$(mktemp -d /tmp/redraft-applycost.XXXXXX)
  "$bin" -p "$port" -dir "$d/n" --metrics-addr "127.0.0.1:$((port + 1))" -loglevel warning 2>/dev/null & pid=$!
  wait_leader "$port" || exit 1
  m() { curl -s "http://127.0.0.1:$((port + 1))/metrics" | awk -v n="$1" '$1==n {print $2}'; }
  # shellcheck disable=SC2086
  redis-benchmark -p "$port" -c 50 -n 200000 -r 100000 -P 16 --csv $CMD >/dev/null 2>&1 # warm-up
  a0=$(m redraft_apply_duration_seconds_sum); c0=$(m redraft_entry_commands_sum)
  # shellcheck disable=SC2086
  r=$(redis-benchmark -p "$port" -c 50 -n 600000 -r 100000 -P 16 --csv $CMD 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
  a1=$(m redraft_apply_duration_seconds_sum); c1=$(m redraft_entry_commands_sum)
  echo "$(basename "$bin"): apply $(echo "($a1 - $a0) / ($c1 - $c0) * 1000000" | bc -l | cut -c1-5) us/cmd, $r rps"
  { kill -9 "$pid"; wait "$pid"; } 2>/dev/null; rm -rf "$d"
done
