#!/usr/bin/env bash
# make budget: the measurements behind docs/DESIGN.md's "Where a request's
# time goes". Where the CPU goes (bench/cpu.sh, 3 nodes and 1 node) and
# where a write's time goes (bench/writepath.sh) with the log written as
# -durability high says, with the leader's fsync taken out (the most that
# writing the leader's log in parallel with replication could gain), and
# with no fsync at all (what is left when the disk costs nothing).
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:-./redraft}
echo "## CPU, 3 nodes"; TESTS=set,get,setex bench/cpu.sh "$bin" 2>&1 | grep -v Killed
echo; echo "## CPU, 1 node"; NODES=1 TESTS=set,setex bench/cpu.sh "$bin" 2>&1 | grep -v Killed
echo; echo "## A write's time, 3 nodes, -durability high"; bench/writepath.sh "$bin" 2>&1 | grep -v Killed
echo; echo "## ... the leader at -durability low"; FIRST_EXTRA="-durability low" bench/writepath.sh "$bin" 2>&1 | grep -v Killed
echo; echo "## ... every node at -durability low"; EXTRA="-durability low" bench/writepath.sh "$bin" 2>&1 | grep -v Killed
echo; echo "## ... -P16"; P=16 N=400000 bench/writepath.sh "$bin" 2>&1 | grep -v Killed
echo; echo "## A write's time, 1 node, -durability high"; NODES=1 bench/writepath.sh "$bin" 2>&1 | grep -v Killed
echo; echo "## ... -durability low"; NODES=1 EXTRA="-durability low" bench/writepath.sh "$bin" 2>&1 | grep -v Killed
