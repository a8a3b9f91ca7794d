# Helpers shared by the bench scripts: poll a node (every 50 ms, up to
# 20 s) until it answers, leads, or sees the cluster complete; build the
# tools a script runs.

wait_ping() { # port
  for _ in $(seq 1 400); do
    [ "$(redis-cli -p "$1" PING 2>/dev/null)" = "PONG" ] && return 0
    sleep 0.05
  done
  echo "port $1 never answered" >&2; return 1
}
wait_leader() { # port
  for _ in $(seq 1 400); do
    [ "$(redis-cli -p "$1" RAFTSTATE 2>/dev/null)" = "Leader" ] && return 0
    sleep 0.05
  done
  echo "no leader on $1" >&2; return 1
}
wait_members() { # port n
  local n
  for _ in $(seq 1 400); do
    n=$(redis-cli -p "$1" RAFTPEERS 2>/dev/null | grep -c '^127.0.0.1' || true)
    [ "$n" -ge $(( $2 * 2 )) ] && return 0
    sleep 0.05
  done
  echo "cluster on $1 did not reach $2 members" >&2; return 1
}

# build_tools DIR: sets BIN (redraft: $REDRAFT_BIN, or built into DIR) and
# PROBE (bench/opsprobe, built into DIR).
build_tools() {
  BIN=${REDRAFT_BIN:-}
  if [ -z "$BIN" ]; then
    BIN="$1/redraft"
    go build -o "$BIN" .
  fi
  PROBE="$1/opsprobe"
  go build -o "$PROBE" ./bench/opsprobe
}
