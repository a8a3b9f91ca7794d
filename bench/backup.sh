#!/usr/bin/env bash
# A backup/restore round trip with KEYS keys (default 1M): a 3-node
# cluster is loaded with redis-cli --pipe (one key in ten with a TTL),
# a follower is backed up with redis-cli --rdb, the file seeds a new
# cluster with --restore, two nodes join it, and RAFTDIGEST must be the
# same before and after. Prints the time of each step. Then it times
# writes to the original leader (one SET every 5 ms, bench/opsprobe)
# around a RAFTSNAPSHOT and around a RAFTBACKUP on the leader, to show
# that a backup stalls writes no longer than a snapshot.
#
#   bench/backup.sh                  # KEYS=1000000
#   KEYS=100000 BASE_PORT=22100 bench/backup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${KEYS:-1000000}
BASE_PORT=${BASE_PORT:-17700}

work=$(mktemp -d /tmp/redraft-backup.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. bench/lib.sh
build_tools "$work"
start_node() { # name port flags...
  local name=$1 port=$2; shift 2
  "$BIN" -p "$port" -dir "$work/$name" -loglevel warning "$@" 2>>"$work/$name.log" &
  pids+=($!)
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
wait_ready() { # port: the node holds every key (reads at --consistency low)
  for _ in $(seq 1 6000); do
    [ "$(redis-cli -p "$1" DBSIZE 2>/dev/null)" = "$KEYS" ] && return 0
    sleep 0.05
  done
  echo "port $1 never held $KEYS keys" >&2; return 1
}

p1=$BASE_PORT; p2=$((BASE_PORT + 1)); p3=$((BASE_PORT + 2))
r1=$((BASE_PORT + 10)); r2=$((BASE_PORT + 11)); r3=$((BASE_PORT + 12))
start_node a1 $p1 --consistency low --backup-dir "$work"
wait_leader $p1
start_node a2 $p2 -join $p1 --consistency low --backup-dir "$work"
start_node a3 $p3 -join $p1 --consistency low --backup-dir "$work"
wait_members $p1 3

echo "generating $KEYS SET commands" >&2
awk -v n="$KEYS" 'BEGIN {
  for (i = 0; i < n; i++) {
    k = "key:" i; v = "value-" i "-xxxxxxxxxxxxxxxxxxxx"
    if (i % 10 == 0) {
      t = 3600 + i % 1000
      printf "*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$2\r\nEX\r\n$%d\r\n%d\r\n", length(k), k, length(v), v, length(t ""), t
    } else {
      printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
    }
  }
}' > "$work/keys.resp"

t=$(now)
redis-cli -p $p1 --pipe < "$work/keys.resp" | tail -1 >&2
load_time=$(since "$t")
wait_ready $p2
orig=$(redis-cli -p $p2 RAFTDIGEST | tail -1)

t=$(now)
redis-cli -p $p2 --rdb "$work/backup.rdb" 2>&1 | tail -1 >&2
backup_time=$(since "$t")
backup_bytes=$(stat -c %s "$work/backup.rdb")

t=$(now)
start_node b1 $r1 --restore "$work/backup.rdb" --consistency low
wait_leader $r1
wait_ready $r1
restore_time=$(since "$t")

t=$(now)
start_node b2 $r2 -join $r1 --consistency low
start_node b3 $r3 -join $r1 --consistency low
wait_ready $r2
wait_ready $r3
join_time=$(since "$t")
digests=$(for p in $r1 $r2 $r3; do redis-cli -p $p RAFTDIGEST | tail -1; done | sort -u)

# Write stall on the original leader: around a snapshot, then a backup.
kv() { sed -n "s/^$2=//p" "$1"; }
stall_row() { # file what
  printf '| %s | %s s | %s / %s / %s ms (%s writes, %s > 100 ms, %s errors) | %s / %s ms |\n' "$2" \
    "$(kv "$1" snapshot_seconds)" "$(kv "$1" during_p50_ms)" "$(kv "$1" during_p99_ms)" "$(kv "$1" during_max_ms)" \
    "$(kv "$1" during_writes)" "$(kv "$1" during_over_100ms)" "$(kv "$1" during_errors)" \
    "$(kv "$1" before_p99_ms)" "$(kv "$1" before_max_ms)"
}
leader=$(redis-cli -p $p1 RAFTLEADER)
"$PROBE" stall -addr "$leader" -before 3s -after 2s -interval 5ms -cmd RAFTSNAPSHOT >"$work/stall-snapshot.txt"
"$PROBE" stall -addr "$leader" -before 3s -after 2s -interval 5ms -cmd "RAFTBACKUP $work/leader.rdb" >"$work/stall-backup.txt"

cat <<EOF
backup/restore round trip, $KEYS keys, $(nproc) cores, $(redis-server --version | awk '{ print $3 }'), $(go version | awk '{ print $3 }')
| step | time |
|---|---|
| load $KEYS keys into a 3-node cluster (redis-cli --pipe) | $load_time |
| redis-cli --rdb from a follower ($backup_bytes bytes) | $backup_time |
| --restore: start until the new node holds every key | $restore_time |
| two nodes join the restored cluster until they hold every key | $join_time |
digest before: $orig
digest after:  $digests

writes to the leader ($leader), one SET at a time every 5 ms:
| command on the leader | its duration | SET latency while it runs: p50 / p99 / max | before it: p99 / max |
|---|---|---|---|
$(stall_row "$work/stall-snapshot.txt" RAFTSNAPSHOT)
$(stall_row "$work/stall-backup.txt" "RAFTBACKUP ($(stat -c %s "$work/leader.rdb") bytes)")
EOF
[ "$digests" = "$orig" ] || { echo "DIGESTS DIFFER" >&2; exit 1; }
