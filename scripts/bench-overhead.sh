#!/usr/bin/env bash
# A/B throughput of two strom binaries with librdkafka's rdkafka_performance, for
# measuring what a change to the request path costs (e.g. the metrics). Small messages
# and no linger, so the broker handles many small requests and per-request costs show.
#
#   BASE_BIN=/path/to/old/strom NEW_BIN=target/release/strom scripts/bench-overhead.sh
#   COUNT=500000 RUNS=5 SIZE=100 ...
#
# Runs alternate between the binaries (A B A B ...) so that the noise of a shared machine
# hits both alike; prints each run and the medians in messages per second.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
: "${BASE_BIN:?set BASE_BIN to the strom binary to compare against}"
NEW_BIN=${NEW_BIN:-$ROOT/target/release/strom}
COUNT=${COUNT:-300000}
RUNS=${RUNS:-5}
SIZE=${SIZE:-100}
WORK=$(mktemp -d)
source "$ROOT/scripts/lib/bench.sh"
trap 'stop_nodes; rm -rf "$WORK"' EXIT
ensure_rdkafka_performance

run_one() {  # $1 = binary, $2 = label; prints "produce consume" in msgs/s
  local p c
  STROM=$1 start_nodes 1 "$WORK/data-$2-$RANDOM"
  p=$("$PERF" -P -t bench -p 0 -s "$SIZE" -c "$COUNT" -b "$BOOT" -a 1 -X linger.ms=0 -u 2>&1 | perf_column 'dr_m/s')
  c=$("$PERF" -C -t bench -p 0 -o beginning -c "$COUNT" -b "$BOOT" -u 2>&1 | perf_column '^m/s')
  stop_nodes
  echo "$p $c"
}

declare -a BP BC NP NC
for run in $(seq "$RUNS"); do
  read -r p c < <(run_one "$BASE_BIN" base); BP+=("$p"); BC+=("$c")
  read -r p c < <(run_one "$NEW_BIN" new); NP+=("$p"); NC+=("$c")
  echo "run $run: base produce ${BP[-1]} consume ${BC[-1]} | new produce ${NP[-1]} consume ${NC[-1]} msgs/s" >&2
done
m() { printf '%s\n' "$@" | median; }
bp=$(m "${BP[@]}"); bc=$(m "${BC[@]}"); np=$(m "${NP[@]}"); nc=$(m "${NC[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a/b}'; }
cat <<TABLE

rdkafka_performance, $SIZE-byte messages, $COUNT per run, medians of $RUNS alternating runs
| measure (msgs/s)        | base | new | new/base |
|-------------------------|------|-----|----------|
| produce acks=1, linger 0 | $bp | $np | $(ratio "$np" "$bp") |
| consume from the start   | $bc | $nc | $(ratio "$nc" "$bc") |
TABLE
