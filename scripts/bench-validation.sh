#!/usr/bin/env bash
# A/B acks=1 throughput of two strom brokers with `strom bench` (1 KiB messages, batches
# up to 1 MiB, linger 5 ms), uncompressed and with lz4 and zstd batches: what checking
# every record of every produced batch costs (docs/adr/0002-record-validation.md).
#
#   BASE_BIN=/path/to/old/strom NEW_BIN=target/release/strom scripts/bench-validation.sh
#   RUNS=5 DURATION=15s CODECS="none zstd" ACKS=all ...   (ACKS: 1 by default)
#
# The same client (NEW_BIN's `strom bench`) drives both brokers, so only the broker
# differs. Runs alternate between the brokers (A B A B ...) so that the noise of a shared
# machine hits both alike; prints each run and the medians in MB/s of payload.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
: "${BASE_BIN:?set BASE_BIN to the strom binary to compare against}"
NEW_BIN=${NEW_BIN:-$ROOT/target/release/strom}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CODECS=${CODECS:-none lz4 zstd}
mkdir -p "$ROOT/target"
WORK=$(mktemp -d "$ROOT/target/bench-validation.XXXXXX")
source "$ROOT/scripts/lib/bench.sh"
trap 'stop_nodes; rm -rf "$WORK"' EXIT

run_one() {  # $1 = broker binary, $2 = codec; prints MB/s
  local dir
  dir=$WORK/data-$RANDOM
  STROM=$1 start_nodes 1 "$dir"
  "$NEW_BIN" bench --bootstrap "$BOOT" --message-size 1024 --acks "${ACKS:-1}" --compression "$2" \
    --duration "$DURATION" --warmup "$WARMUP" --output json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["produce"]["mb_per_sec"])'
  stop_nodes
  rm -rf "$dir"
}

m() { printf '%s\n' "$@" | median; }
r0() { printf '%.0f ' "$@" | sed 's/ $//'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a/b}'; }
echo "| codec | base MB/s (median of $RUNS) | new MB/s | new/base | each run, base / new |"
echo "|---|---|---|---|---|"
for codec in $CODECS; do
  declare -a B=() N=()
  for run in $(seq "$RUNS"); do
    B+=("$(run_one "$BASE_BIN" "$codec")")
    N+=("$(run_one "$NEW_BIN" "$codec")")
    echo "$codec run $run: base ${B[-1]} new ${N[-1]} MB/s" >&2
  done
  b=$(m "${B[@]}")
  n=$(m "${N[@]}")
  echo "| $codec | $(r0 "$b") | $(r0 "$n") | $(ratio "$n" "$b") | $(r0 "${B[@]}") / $(r0 "${N[@]}") |"
done
