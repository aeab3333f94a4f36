#!/usr/bin/env bash
# Replication cost: librdkafka's rdkafka_performance producing 1 KiB messages with
# acks=all to a single node (replication factor 1) and to a three-node loopback cluster
# (replication factor 3), alternating in the same session, medians of RUNS runs.
# Prints committed throughput and produce latency p50/p99 (per-message delivery
# latency measured by rdkafka_performance -l) and the cluster's ratios to the single
# node. Usage: scripts/bench-cluster.sh   (COUNT=100000 RUNS=3 PARTITIONS=1)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
COUNT=${COUNT:-100000}
RUNS=${RUNS:-3}
PARTITIONS=${PARTITIONS:-1}
SIZE=1024
WORK=$(mktemp -d "$ROOT/target/bench-cluster.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

SRC=$(BUILD_ONLY=1 scripts/librdkafka-tests.sh)
PERF=$SRC/examples/rdkafka_performance
if [ ! -x "$PERF" ]; then
  make -C "$SRC/examples" rdkafka_performance >"$WORK/perf-build.log" 2>&1 || { tail -20 "$WORK/perf-build.log"; exit 1; }
fi
cargo build --release --quiet -p strom
STROM=$ROOT/target/release/strom

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 did not open" >&2; exit 1; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
perf_mbps() {
  awk -F'|' '
    /MB\/s/ && !col { for (i = 1; i <= NF; i++) if ($i ~ /MB\/s/) col = i; n = NF; next }
    col && NF == n && $2 ~ /[0-9]/ { v = $col }
    END { gsub(/ /, "", v); print (v == "" ? "0" : v) }'
}
percentile() {  # $1 = file of microseconds, $2 = percentile; prints milliseconds
  sort -g "$1" | awk -v p="$2" '{a[NR]=$1} END {i=int(NR*p/100); if (i<1) i=1; printf "%.2f", a[i]/1000}'
}

# Starts nodes: $1 = how many, $2 = data dir; sets BOOT.
start_nodes() {
  local n=$1 dir=$2 peers="" i
  declare -ga KPORTS=() PPORTS=()
  for i in $(seq "$n"); do KPORTS+=("$(free_port)"); PPORTS+=("$(free_port)"); done
  if [ "$n" -gt 1 ]; then
    for i in $(seq "$n"); do peers+="${peers:+,}$i=127.0.0.1:${PPORTS[$((i-1))]}"; done
  fi
  BOOT=""
  for i in $(seq "$n"); do
    local extra=()
    [ -n "$peers" ] && extra=(--peers "$peers")
    "$STROM" serve --node-id "$i" --listen "127.0.0.1:${KPORTS[$((i-1))]}" --data-dir "$dir/node-$i" \
      --metrics-listen '' "${extra[@]}" >"$dir/node-$i.log" 2>&1 &
    PIDS+=($!)
    BOOT+="${BOOT:+,}127.0.0.1:${KPORTS[$((i-1))]}"
  done
  for i in $(seq "$n"); do wait_port "${KPORTS[$((i-1))]}"; done
}
stop_nodes() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }

# One measured run: $1 = nodes, $2 = replication factor. Prints "MB/s p50 p99".
run() {
  local nodes=$1 rf=$2 dir
  dir=$(mktemp -d "$WORK/run.XXXX")
  start_nodes "$nodes" "$dir"
  "$STROM" topic create bench --partitions "$PARTITIONS" --replication-factor "$rf" --bootstrap "$BOOT" >/dev/null
  local mbps
  mbps=$("$PERF" -P -t bench -s "$SIZE" -c "$COUNT" -b "$BOOT" -X acks=all \
    -X linger.ms=5 -X batch.size=1048576 -l -A "$dir/lat" -u 2>&1 | perf_mbps)
  echo "$mbps $(percentile "$dir/lat" 50) $(percentile "$dir/lat" 99)"
  stop_nodes
  rm -rf "$dir"
}

declare -a ST SP50 SP99 CT CP50 CP99
for r in $(seq "$RUNS"); do
  read -r t p50 p99 < <(run 1 1); ST+=("$t"); SP50+=("$p50"); SP99+=("$p99")
  read -r t p50 p99 < <(run 3 3); CT+=("$t"); CP50+=("$p50"); CP99+=("$p99")
  echo "run $r: single ${ST[-1]} MB/s p50 ${SP50[-1]} ms p99 ${SP99[-1]} ms;" \
    "3 nodes RF 3 ${CT[-1]} MB/s p50 ${CP50[-1]} ms p99 ${CP99[-1]} ms" >&2
done
m() { printf '%s\n' "$@" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b == 0 ? 0 : a/b)}'; }
st=$(m "${ST[@]}"); sp50=$(m "${SP50[@]}"); sp99=$(m "${SP99[@]}")
ct=$(m "${CT[@]}"); cp50=$(m "${CP50[@]}"); cp99=$(m "${CP99[@]}")
cat <<TABLE

rdkafka_performance -P, acks=all, 1 KiB, $COUNT messages, $PARTITIONS partition(s), medians of $RUNS runs
| setup                      | committed MB/s | latency p50 ms | latency p99 ms |
|----------------------------|----------------|----------------|----------------|
| 1 node, replication 1      | $st | $sp50 | $sp99 |
| 3 nodes, replication 3     | $ct | $cp50 | $cp99 |
| ratio 3 nodes / 1 node     | $(ratio "$ct" "$st") | $(ratio "$cp50" "$sp50") | $(ratio "$cp99" "$sp99") |
TABLE
