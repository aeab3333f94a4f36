#!/usr/bin/env bash
# Issue 7's performance budget in one run: this machine's raw baselines, then the
# standard workloads (1 KiB messages) against a single Strom node and a three-node
# cluster, with `strom bench` and with librdkafka's rdkafka_performance; every result
# is kept as JSON and the ratios to the baselines go into docs/perf.md.
#
#   scripts/bench-compare.sh                 # 3 rounds, about 4 minutes each
#   RUNS=5 DURATION=15s scripts/bench-compare.sh
#   NO_CLUSTER=1 PARTITIONS_MANY=1000 scripts/bench-compare.sh
#   NO_DOC=1 scripts/bench-compare.sh        # leave docs/perf.md alone
#
# Each round measures everything once, in the same order, so slow and fast phases of a
# shared machine hit every measurement alike; ratios are taken within a round and the
# report quotes their median over the rounds. Results: target/bench-compare/<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
BASELINE_SIZE=${BASELINE_SIZE:-1GiB}
RDK_COUNT=${RDK_COUNT:-500000}
PARTITIONS_FEW=${PARTITIONS_FEW:-10}
PARTITIONS_MANY=${PARTITIONS_MANY:-10000}
SPREAD_ACKS=${SPREAD_ACKS:-1}
LATENCY_LINGER_MS=${LATENCY_LINGER_MS:-1}
OUT=${OUT:-$ROOT/target/bench-compare/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT" "$ROOT/target"
WORK=$(mktemp -d "$ROOT/target/bench-compare-work.XXXXXX")
source "$ROOT/scripts/lib/bench.sh"
trap 'stop_nodes; rm -rf "$WORK"' EXIT

if [ -z "${STROM_BIN:-}" ]; then cargo build --release --quiet -p strom; fi
ensure_rdkafka_performance
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
echo "results: $OUT" >&2

# Appends one result line: $1 = round, $2 = name, $3 = JSON value.
record() {
  if [ -z "$3" ] || [ "$3" = 0 ]; then echo "measurement $2 of round $1 failed" >&2; exit 1; fi
  printf '{"round": %s, "name": "%s", "data": %s}\n' "$1" "$2" "$3" >>"$RESULTS"
}

# Half of a peak run's message rate, from its JSON on stdin.
half_rate() { python3 -c 'import json,sys; print(max(1.0, json.load(sys.stdin)["produce"]["msgs_per_sec"] / 2))'; }

single_node() {
  local r=$1 j
  start_nodes 1 "$WORK/single-$r"
  j=$(sbench --topic all-$r --acks all --duration "$DURATION" --warmup "$WARMUP"); record "$r" single.acks_all "$j"
  # The consumer replays what acks=all wrote, from the page cache.
  record "$r" single.replay "$(sbench --topic all-$r --producers 0 --consumers 1)"
  record "$r" single.latency_half_peak "$(sbench --topic lat-$r --acks all --linger-ms "$LATENCY_LINGER_MS" \
    --rate "$(half_rate <<<"$j")" --duration "$DURATION" --warmup "$WARMUP" --consumers 1)"
  drop_topic all-$r; drop_topic lat-$r
  record "$r" single.acks_1 "$(sbench --topic one-$r --acks 1 --duration "$DURATION" --warmup "$WARMUP")"
  drop_topic one-$r
  # librdkafka's own load generator on the same node.
  "$STROM" topic create rdk-$r --partitions 1 --bootstrap "$BOOT" >/dev/null
  record "$r" single.rdkafka_acks_all "$(rdk -P -t rdk-$r -p 0 -c "$RDK_COUNT" -X acks=all -X linger.ms=5 -X batch.size=1048576)"
  record "$r" single.rdkafka_replay "$(rdk -C -t rdk-$r -p 0 -o beginning -c "$RDK_COUNT")"
  drop_topic rdk-$r
  "$STROM" topic create rdk1-$r --partitions 1 --bootstrap "$BOOT" >/dev/null
  record "$r" single.rdkafka_acks_1 "$(rdk -P -t rdk1-$r -p 0 -c "$RDK_COUNT" -X acks=1 -X linger.ms=5 -X batch.size=1048576)"
  drop_topic rdk1-$r
  # The same load spread over few and over many partitions: with Kafka's default
  # (sticky) partitioner, and with every message to the next partition in turn.
  for n in "$PARTITIONS_FEW" "$PARTITIONS_MANY"; do
    record "$r" "single.spread_$n" "$(sbench --topic spread$n-$r --partitions "$n" --acks "$SPREAD_ACKS" \
      --duration "$DURATION" --warmup "$WARMUP")"
    record "$r" "single.rrspread_$n" "$(sbench --topic spread$n-$r --acks "$SPREAD_ACKS" \
      --partitioner round-robin --duration "$DURATION" --warmup "$WARMUP")"
    drop_topic spread$n-$r
  done
  stop_nodes
  rm -rf "$WORK/single-$r"
}

cluster() {
  local r=$1 j
  start_nodes 3 "$WORK/cluster-$r"
  j=$(sbench --topic all-$r --replication-factor 3 --acks all --duration "$DURATION" --warmup "$WARMUP")
  record "$r" cluster.acks_all "$j"
  record "$r" cluster.latency_half_peak "$(sbench --topic lat-$r --replication-factor 3 --acks all \
    --linger-ms "$LATENCY_LINGER_MS" --rate "$(half_rate <<<"$j")" --duration "$DURATION" --warmup "$WARMUP" --consumers 1)"
  drop_topic all-$r; drop_topic lat-$r
  "$STROM" topic create rdk-$r --partitions 1 --replication-factor 3 --bootstrap "$BOOT" >/dev/null
  record "$r" cluster.rdkafka_acks_all "$(rdk -P -t rdk-$r -p 0 -c "$RDK_COUNT" -X acks=all -X linger.ms=5 -X batch.size=1048576)"
  stop_nodes
  rm -rf "$WORK/cluster-$r"
}

for r in $(seq "$RUNS"); do
  echo "round $r/$RUNS: baselines" >&2
  record "$r" baseline "$("$STROM" bench baseline --dir "$WORK" --size "$BASELINE_SIZE" --output json)"
  echo "round $r/$RUNS: single node" >&2
  single_node "$r"
  if [ -z "${NO_CLUSTER:-}" ]; then
    echo "round $r/$RUNS: three nodes" >&2
    cluster "$r"
  fi
done

python3 "$ROOT/scripts/bench_report.py" "$RESULTS" >"$OUT/report.md"
cat "$OUT/report.md"
if [ -z "${NO_DOC:-}" ]; then
  python3 "$ROOT/scripts/bench_report.py" "$RESULTS" --into "$ROOT/docs/perf.md"
  echo "docs/perf.md updated" >&2
fi
