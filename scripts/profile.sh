#!/usr/bin/env bash
# A flamegraph of a Strom broker under a `strom bench` workload: starts a single node
# (or CLUSTER=1: three nodes, profiling node 1), runs the workload, records the
# broker with `perf record` (software cpu-clock events and DWARF call stacks, so it
# works in VMs without hardware counters) and renders an SVG with inferno.
#
#   scripts/profile.sh                               # acks=all, 1 partition, 10 s
#   scripts/profile.sh --acks 1 --partitions 100     # any `strom bench` flags
#   CLUSTER=1 scripts/profile.sh --replication-factor 3
#
# Output: target/profile/<time>/{perf.data,stacks.folded,flamegraph.svg,bench.json,top.txt}.
# Needs perf (apt: linux-perf) and inferno (installed with cargo when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/target/profile/$(date -u +%Y%m%d-%H%M%S)}
WORK=$(mktemp -d "$ROOT/target/profile-work.XXXXXX")
mkdir -p "$OUT"
source "$ROOT/scripts/lib/bench.sh"
trap 'stop_nodes; rm -rf "$WORK"' EXIT

command -v perf >/dev/null || { echo "perf is not installed (apt install linux-perf)" >&2; exit 1; }
if ! command -v inferno-flamegraph >/dev/null; then
  cargo install inferno --locked --quiet
fi
if [ -z "${STROM_BIN:-}" ]; then cargo build --release --quiet -p strom; fi

NODES=1
[ -n "${CLUSTER:-}" ] && NODES=3
start_nodes "$NODES" "$WORK/data"
"$STROM" bench --bootstrap "$BOOT" --topic profile --duration 1s >/dev/null  # create, warm up
perf record -e cpu-clock -F 499 --call-graph dwarf,8192 -o "$OUT/perf.data" -p "${PIDS[0]}" \
  2>"$OUT/perf-record.log" &
RECORDER=$!
sleep 0.5
"$STROM" bench --bootstrap "$BOOT" --topic profile --duration 10s --output json "$@" >"$OUT/bench.json"
kill -INT "$RECORDER"
wait "$RECORDER" || true
perf report -i "$OUT/perf.data" --no-children --stdio --percent-limit 0.5 2>/dev/null \
  | grep -E '^ +[0-9.]+%' >"$OUT/top.txt" || true
perf script -i "$OUT/perf.data" 2>/dev/null | inferno-collapse-perf >"$OUT/stacks.folded"
inferno-flamegraph --title "strom serve: strom bench $*" <"$OUT/stacks.folded" >"$OUT/flamegraph.svg"
echo "flamegraph: $OUT/flamegraph.svg" >&2
head -25 "$OUT/top.txt"
