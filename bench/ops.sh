#!/usr/bin/env bash
# Operational figures for issue 5, one measurement at a time:
#   1. leader RSS, Raft log size on disk and last_log_index -
#      last_snapshot_index during a DURATION-second SET load (3 nodes,
#      default flags: wal, fsync before acknowledging);
#   2. write stall while RAFTSNAPSHOT runs on a leader holding 1M keys of
#      100 bytes (one SET at a time, each timed);
#   3. time for a new 4th node to catch up (RAFTDIGEST equal to the
#      leader's) from that snapshot;
#   4. proxy RSS for 10,000 idle client connections to one node.
#
#   DURATION=300 ./bench/ops.sh        (REDRAFT_BIN=path to skip the build)
#
# Env: DURATION (300), SAMPLE (10 s), KEYS (1000000), VALUE (100),
# IDLE_CONNS (10000), BASE_PORT (17600; uses BASE_PORT..BASE_PORT+29),
# INSTALL_BACKEND (auto: wal, and again with bolt if the new node replayed
# the log instead of installing the snapshot; or wal / bolt).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-300}
SAMPLE=${SAMPLE:-10}
KEYS=${KEYS:-1000000}
VALUE=${VALUE:-100}
IDLE_CONNS=${IDLE_CONNS:-10000}
BASE_PORT=${BASE_PORT:-17600}
INSTALL_BACKEND=${INSTALL_BACKEND:-auto}

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d /tmp/redraft-ops.XXXXXX)
pids=()
# Every process the script started (directly, or a redraft's redis-server
# and its BGSAVE/snapshot helpers) is killed by PID.
descendants() { # pid
  local c
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    echo "$c"
    descendants "$c"
  done
}
kill_tracked() {
  local p all=()
  for p in "${pids[@]}"; do
    all+=("$p" $(descendants "$p"))
  done
  for p in "${all[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
cleanup() {
  kill_tracked
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v redis-benchmark >/dev/null || { echo "redis-benchmark not found (apt-get install redis-tools)"; exit 1; }
. bench/lib.sh # cwd is the repository root
build_tools "$work"

log() { echo "[$(date +%T)] $*" >&2; }
cli() { redis-cli -p "$@" 2>/dev/null; }
rstat() { # port key -> value from RAFTSTATS
  cli "$1" RAFTSTATS | awk -v k="$2" 'NR % 2 == 1 { key = $0; next } key == k { print; exit }'
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' /proc/"$1"/status 2>/dev/null || echo 0; }
child_of() { cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | head -1; } # the redis-server
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
declare -A node_pid
start_node() { # port extra-flags...
  local p=$1; shift
  "$BIN" -p "$p" -dir "$work/n$p" -loglevel warning "$@" 2>>"$work/n$p.log" &
  pids+=($!)
  node_pid[$p]=$!
}
start_cluster() { # first_port n flags...
  local p=$1 n=$2; shift 2
  start_node "$p" "$@"
  wait_leader "$p"
  for i in $(seq 1 $((n - 1))); do
    start_node $((p + i)) -join "$p" "$@"
  done
  wait_members "$p" "$n"
  for i in $(seq 1 $((n - 1))); do wait_ping $((p + i)); done
}
wait_caught_up() { # leader_port follower_ports...
  local l=$1; shift
  for _ in $(seq 1 1200); do
    local want ok=1
    want=$(rstat "$l" applied_index)
    for f in "$@"; do [ "$(rstat "$f" applied_index)" = "$want" ] || ok=0; done
    [ "$ok" = 1 ] && return 0
    sleep 0.1
  done
  echo "followers did not catch up" >&2; return 1
}
alive() { kill -0 "$1" 2>/dev/null && echo yes || echo "NO (exited)"; }
kv() { sed -n "s/^$2=//p" "$1" | head -1; } # file key

results="$work/results.txt"
: >"$results"
row() { printf '| %-58s | %s |\n' "$1" "$2" >>"$results"; }
notes="$work/notes.txt"
: >"$notes"

# --- 1. RSS and log size under a steady write load ---------------------------
p1=$BASE_PORT
log "part 1: 3 nodes, default flags, SET -c 50 -P 1 for ${DURATION}s"
pprof=127.0.0.1:$((BASE_PORT + 90)) # leader only (--metrics-addr): Go heap and goroutine counts for the series
start_node "$p1" --metrics-addr "$pprof"
wait_leader "$p1"
start_node $((p1 + 1)) -join "$p1"
start_node $((p1 + 2)) -join "$p1"
wait_members "$p1" 3
lpid=${node_pid[$p1]}
series="$work/series.txt"
printf '%6s %9s %9s %9s %7s %9s %10s %10s %9s %9s\n' "t_s" "rss_MB" "heap_MB" "child_MB" "gorout" "wal_MB" "last_log" "last_snap" "gap" "applied" >"$series"
sample() { # t
  local last snap
  last=$(rstat "$p1" last_log_index); snap=$(rstat "$p1" last_snapshot_index)
  local heap gor
  heap=$(curl -s "http://$pprof/debug/pprof/heap?debug=1" | awk '/^# HeapInuse = / { printf "%.1f", $4 / 1048576 }')
  gor=$(curl -s "http://$pprof/debug/pprof/goroutine?debug=1" | awk 'NR == 1 { print $NF }')
  printf '%6s %9s %9s %9s %7s %9s %10s %10s %9s %9s\n' "$1" "$(mb "$(rss_kb "$lpid")")" "${heap:-?}" \
    "$(mb "$(rss_kb "$(child_of "$lpid")")")" "${gor:-?}" \
    "$(mb "$(du -sk "$work/n$p1/wal" | awk '{print $1}')")" \
    "$last" "$snap" $(( ${last:-0} - ${snap:-0} )) "$(rstat "$p1" applied_index)" >>"$series"
}
rss_idle=$(rss_kb "$lpid")
redis-benchmark -p "$p1" -t set -c 50 -r 100000 -n 2000000000 -P 1 -q >"$work/p1-bench.out" 2>&1 &
bench_pid=$!
pids+=("$bench_pid")
t0=$(date +%s)
for (( t = 0; t <= DURATION; t += SAMPLE )); do
  while [ $(( $(date +%s) - t0 )) -lt "$t" ]; do sleep 0.2; done
  sample "$t"
done
kill "$bench_pid" 2>/dev/null || true
wait "$bench_pid" 2>/dev/null || true
bench_line=$(tr '\r' '\n' <"$work/p1-bench.out" | grep 'overall' | tail -1)
rps=$(sed -n 's/.*rps=[0-9.]* (overall: \([0-9.]*\)).*/\1/p' <<<"$bench_line")
avg=$(sed -n 's/.*avg_msec=[0-9.]* (overall: \([0-9.]*\)).*/\1/p' <<<"$bench_line")
state_end=$(cli "$p1" RAFTSTATE)
n_nodes_alive=0
for p in "$p1" $((p1 + 1)) $((p1 + 2)); do kill -0 "${node_pid[$p]}" 2>/dev/null && n_nodes_alive=$((n_nodes_alive + 1)); done
snaps=$(awk 'NR > 1 { print $8 }' "$series" | sort -un | grep -cv '^0$' || true)
read -r rss_first rss_last rss_max <<<"$(awk 'NR > 1 { if (NR == 2) f = $2; l = $2; if ($2 > m) m = $2 } END { print f, l, m }' "$series")"
read -r wal_max gap_max <<<"$(awk 'NR > 1 { if ($6 > w) w = $6; if ($9 > g) g = $9 } END { print w, g }' "$series")"
read -r wal_last gap_last <<<"$(awk 'END { print $6, $9 }' "$series")"
row "1. SET load: ${DURATION}s, 3 nodes, -c 50 -P 1 -r 100000" "${rps:-?} rps overall, avg ${avg:-?} ms"
row "   leader redraft RSS idle before load" "$(mb "$rss_idle") MB"
row "   leader redraft RSS first / last / max sample" "$rss_first / $rss_last / $rss_max MB"
row "   leader RSS from t=60s on: min / max" "$(awk 'NR > 1 && $1 >= 60 { if (m == "" || $2 < m) m = $2; if ($2 > x) x = $2 } END { print (m == "" ? "-" : m) " / " (x == "" ? "-" : x) " MB" }' "$series")"
row "   wal dir on disk: max / last sample" "$wal_max / $wal_last MB"
row "   last_log_index - last_snapshot_index: max / last" "$gap_max / $gap_last (distinct snapshot indexes seen: $snaps)"
row "   leader still leader at end / nodes alive" "$state_end / $n_nodes_alive of 3"
kill_tracked

# --- 2 and 3. Snapshot stall with KEYS keys, then install on a new node -------
snapshot_and_install() { # backend base_port
  local be=$1 p=$2 pfx="(${1})"
  local flags=(-trailing-logs 1000 -snapshot-threshold 100000 -backend "$be")
  log "part 2 ($be): 3 nodes ${flags[*]}; loading $KEYS keys of $VALUE bytes"
  start_cluster "$p" 3 "${flags[@]}"
  "$PROBE" load -addr "127.0.0.1:$p" -n "$KEYS" -d "$VALUE" >"$work/load-$be.txt"
  local dbsize
  dbsize=$(cli "$p" DBSIZE)
  wait_caught_up "$p" $((p + 1)) $((p + 2))
  local lpid=${node_pid[$p]}
  row "2. load $KEYS keys x ${VALUE} B $pfx" "$(kv "$work/load-$be.txt" load_seconds) s ($(kv "$work/load-$be.txt" load_rate) keys/s, errors $(kv "$work/load-$be.txt" load_errors)), DBSIZE $dbsize"
  row "   leader redraft / redis-server RSS after load" "$(mb "$(rss_kb "$lpid")") / $(mb "$(rss_kb "$(child_of "$lpid")")") MB"
  row "   log before snapshot: last_log_index / last_snapshot_index" "$(rstat "$p" last_log_index) / $(rstat "$p" last_snapshot_index)"
  log "part 2 ($be): write probe (1 SET at a time, every 5 ms) around RAFTSNAPSHOT"
  "$PROBE" stall -addr "127.0.0.1:$p" -before 20s -after 10s -interval 5ms >"$work/stall-$be.txt"
  local f="$work/stall-$be.txt"
  row "   RAFTSNAPSHOT duration $pfx" "$(kv "$f" snapshot_seconds) s $(kv "$f" snapshot_error)"
  row "   SET latency before snapshot: p50 / p99 / max" "$(kv "$f" before_p50_ms) / $(kv "$f" before_p99_ms) / $(kv "$f" before_max_ms) ms ($(kv "$f" before_writes) writes)"
  row "   SET latency during snapshot: p50 / p99 / max" "$(kv "$f" during_p50_ms) / $(kv "$f" during_p99_ms) / $(kv "$f" during_max_ms) ms ($(kv "$f" during_writes) writes, $(kv "$f" during_over_100ms) > 100 ms, errors $(kv "$f" during_errors))"
  row "   SET latency after snapshot: p50 / p99 / max" "$(kv "$f" after_p50_ms) / $(kv "$f" after_p99_ms) / $(kv "$f" after_max_ms) ms"
  row "   slowest writes (latency@start relative to snapshot)" "$(kv "$f" slowest)"
  row "   snapshot on disk (leader) / log after: last_log / last_snap" "$(mb "$(du -sk "$work/n$p/snapshots" | awk '{print $1}')") MB / $(rstat "$p" last_log_index) / $(rstat "$p" last_snapshot_index)"

  log "part 3 ($be): 4th node joins"
  local np=$((p + 3)) t_start t_join="" t_snap="" t_applied="" t_digest="" t_dreq="" now ls la applied ld nd
  t_start=$(date +%s.%N)
  start_node "$np" -join "$p" "${flags[@]}"
  local deadline=$(( $(date +%s) + 300 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    now=$(date +%s.%N)
    if [ -z "$t_join" ] && [ "$(cli "$p" RAFTPEERS | grep -c "^127.0.0.1:$np\$" || true)" -ge 1 ]; then t_join=$now; fi
    ls=$(rstat "$np" last_snapshot_index); applied=$(rstat "$np" applied_index); la=$(rstat "$p" applied_index)
    if [ -z "$t_snap" ] && [ "${ls:-0}" -gt 0 ] 2>/dev/null; then t_snap=$now; fi
    if [ -z "$t_applied" ] && [ -n "$applied" ] && [ "$applied" = "$la" ]; then t_applied=$now; fi
    if [ -n "$t_applied" ] && [ "$applied" = "$la" ]; then
      # Both digests at once: each scans every key and holds that node's
      # apply lock while it runs.
      t_dreq=$(date +%s.%N)
      cli "$p" RAFTDIGEST >"$work/digest-l" & local da=$!
      cli "$np" RAFTDIGEST >"$work/digest-n" & local dn=$!
      wait "$da" "$dn" || true
      ld=$(tr '\n' ' ' <"$work/digest-l"); nd=$(tr '\n' ' ' <"$work/digest-n")
      if [ -n "$ld" ] && [ "$ld" = "$nd" ]; then t_digest=$(date +%s.%N); break; fi
    fi
    sleep 0.1
  done
  since() { # t [text when unset]
    if [ -n "$1" ]; then awk -v a="$t_start" -v b="$1" 'BEGIN { printf "%.1f s", b - a }'
    elif [ -n "$t_digest" ]; then echo "${2:-no}"
    else echo "not within 300 s"; fi
  }
  installed=no
  [ -n "$t_snap" ] && installed=yes
  row "3. new node $pfx: start -> member (RAFTPEERS on leader)" "$(since "$t_join")"
  row "   start -> snapshot installed (last_snapshot_index > 0)" "$(since "$t_snap" "no: caught up by replaying the log")"
  row "   start -> applied_index = leader's" "$(since "$t_applied")"
  row "   start -> RAFTDIGEST equal: requested / answered" "$(since "$t_dreq") / $(since "$t_digest") (both digests run at once; [index digest] = ${ld:-?})"
  row "   new node redraft / redis-server RSS" "$(mb "$(rss_kb "${node_pid[$np]}")") / $(mb "$(rss_kb "$(child_of "${node_pid[$np]}")")") MB; nodes alive: $(for q in $p $((p+1)) $((p+2)) $np; do alive "${node_pid[$q]}"; done | grep -c yes) of 4"
  INSTALLED=$installed
  kill_tracked
}
case "$INSTALL_BACKEND" in
  auto)
    snapshot_and_install wal $((BASE_PORT + 10))
    if [ "$INSTALLED" != yes ]; then
      echo "- wal: the new node caught up without installing a snapshot (the leader still had the log, raft-wal compacts whole segments lazily); parts 2-3 repeated with -backend bolt." >>"$notes"
      snapshot_and_install bolt $((BASE_PORT + 20))
    fi ;;
  *) snapshot_and_install "$INSTALL_BACKEND" $((BASE_PORT + 10)) ;;
esac

# --- 4. Idle connections --------------------------------------------------------
p4=$((BASE_PORT + 25))
log "part 4: $IDLE_CONNS idle connections to a 1-node cluster"
start_cluster "$p4" 1
sleep 2
"$PROBE" idle -addr "127.0.0.1:$p4" -n "$IDLE_CONNS" -pid "${node_pid[$p4]}" >"$work/idle.txt" || true
f="$work/idle.txt"
row "4. $IDLE_CONNS idle conns (PING once each), 1 node: opened / failed" "$(kv "$f" idle_opened) / $(kv "$f" idle_failed) in $(kv "$f" idle_open_seconds) s $(kv "$f" idle_first_error)"
row "   redraft RSS before / with conns open / after close" "$(mb "$(kv "$f" idle_rss_before_kb)") / $(mb "$(kv "$f" idle_rss_open_kb)") / $(mb "$(kv "$f" idle_rss_closed_kb)") MB"
row "   cost per 10k idle conns" "$(kv "$f" idle_mb_per_10k) MB ($(kv "$f" idle_kb_per_conn) KB each); serves a new client meanwhile: $(kv "$f" idle_still_serves)"
kill_tracked

# --- Report ---------------------------------------------------------------------
echo "redraft ops figures (issue 5) — $(date -u +%FT%TZ)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, redis $(redis-server --version | awk '{print $3}' | tr -d 'v='), $(go version | awk '{print $3}'), commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo '+dirty')"
echo "DURATION=$DURATION SAMPLE=$SAMPLE KEYS=$KEYS VALUE=$VALUE IDLE_CONNS=$IDLE_CONNS; parts 2-3 flags: -trailing-logs 1000 -snapshot-threshold 100000"
echo
printf '| %-58s | %s |\n' "measurement" "result"
printf '|%s|%s|\n' "------------------------------------------------------------" "--------"
cat "$results"
if [ -s "$notes" ]; then echo; cat "$notes"; fi
echo
echo "Part 1 series (leader, every ${SAMPLE}s; rss = redraft process, child = its redis-server, gap = last_log - last_snap):"
cat "$series"
for be in wal bolt; do
  [ -f "$work/stall-$be.txt" ] || continue
  echo
  echo "Part 2 raw ($be):"
  cat "$work/load-$be.txt" "$work/stall-$be.txt" | sed 's/^/  /'
done
echo
echo "Part 4 raw:"
sed 's/^/  /' "$work/idle.txt"
logs=$(cat "$work"/n*.log 2>/dev/null || true)
# "failed to get log ... log not found" is how hashicorp/raft notices a
# follower needs a snapshot; it is expected in part 3.
errs=$(grep -i 'level=error\|panic' <<<"$logs" | grep -vc 'failed to get log' || true)
echo
echo "node logs (warning and above): $(wc -l <<<"$logs") lines; $errs error/panic lines besides $(grep -c 'failed to get log' <<<"$logs" || true) expected 'failed to get log' (snapshot needed)"
grep -i 'level=error\|panic' <<<"$logs" | grep -v 'failed to get log' | head -5 || true
