#!/usr/bin/env bash
# Strom next to Apache Kafka 4.4 (issue 15): the same clients against both brokers in the
# same run, one node and three nodes with replication factor 3. Kafka is measured twice:
# at its defaults (no fsync per write) and with log.flush.interval.messages=1 (an fsync
# per append, durable like Strom). The ratios Strom/Kafka go into docs/perf.md.
#
#   scripts/bench-kafka.sh                         # 3 rounds, about 20 minutes each
#   RUNS=1 DURATION=2s WARMUP=1s COUNT=20000 LAT_RATE=2000 NO_DOC=1 scripts/bench-kafka.sh   # smoke
#   NO_CLUSTER=1 TARGETS="strom kafka" scripts/bench-kafka.sh
#
# Clients (1 KiB messages, batches up to 1 MiB, linger 5 ms): strom bench, librdkafka's
# rdkafka_performance, Kafka's kafka-producer-perf-test and kafka-consumer-perf-test (via
# scripts/kafka-ref.sh tool). Each round runs every broker in turn (the order rotates
# from round to round), one at a time, on a fresh data directory, so a slow phase of the
# shared machine hits all of them alike; ratios are taken within a round and the report
# quotes their median. Broker CPU comes from /proc/PID/stat (all nodes summed).
# Results: target/bench-kafka/<time>/ (results.jsonl, report.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
COUNT=${COUNT:-500000}
LAT_RATE=${LAT_RATE:-50000}
LATENCY_LINGER_MS=${LATENCY_LINGER_MS:-1}
TARGET_WARMUP=${TARGET_WARMUP:-5s}
TARGETS=${TARGETS:-strom kafka kafka_flush}
OUT=${OUT:-$ROOT/target/bench-kafka/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT" "$ROOT/target"
WORK=$(mktemp -d "$ROOT/target/bench-kafka-work.XXXXXX")
source "$ROOT/scripts/lib/bench.sh"
KREF=$ROOT/scripts/kafka-ref.sh
export KAFKA_REF_DIR=$WORK/kafka

# Whatever happens, no broker outlives the run.
cleanup() {
  stop_nodes
  KAFKA_REF_STOP_TIMEOUT=10 "$KREF" stop >/dev/null 2>&1 || true
  KAFKA_REF_STOP_TIMEOUT=10 "$KREF" cluster-stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${STROM_BIN:-}" ]; then cargo build --release --quiet -p strom; fi
ensure_rdkafka_performance
"$KREF" assemble >/dev/null
RESULTS=$OUT/results.jsonl
printf '{"config": {"runs": %s, "duration": "%s", "warmup": "%s", "count": %s, "lat_rate": %s, "latency_linger_ms": %s}}\n' \
  "$RUNS" "$DURATION" "$WARMUP" "$COUNT" "$LAT_RATE" "$LATENCY_LINGER_MS" >"$RESULTS"
echo "results: $OUT" >&2

seconds() { python3 -c 'import re,sys; m=re.fullmatch(r"([\d.]+)(ms|s|m)?", sys.argv[1]); print(float(m[1]) * {"ms": 0.001, "m": 60}.get(m[2], 1))' "$1"; }
LAT_COUNT=$(python3 -c "print(int($LAT_RATE * $(seconds "$DURATION")))")

# Starts target $1 (strom, kafka, kafka_flush) with $2 nodes; sets BOOT and BROKERS (pids).
start_target() {
  local target=$1 n=$2 i
  case "$target" in
    strom)
      start_nodes "$n" "$WORK/strom" --group-initial-rebalance-delay-ms 0
      BROKERS=("${PIDS[@]}")
      ;;
    kafka | kafka_flush)
      # Deleted topics go at once (Kafka keeps them 60 s): the throughput runs write GBs.
      local props="log.segment.delete.delay.ms=0"
      [ "$target" = kafka_flush ] && props+=" log.flush.interval.messages=1"
      if [ "$n" = 1 ]; then
        BOOT=$(KAFKA_REF_PROPS=$props "$KREF" start 2>/dev/null | tail -1)
        BROKERS=("$(cat "$KAFKA_REF_DIR/kafka.pid")")
      else
        BOOT=$(KAFKA_REF_PROPS=$props "$KREF" cluster-start 2>/dev/null | tail -1)
        BROKERS=()
        for i in 1 2 3; do BROKERS+=("$(cat "$KAFKA_REF_DIR/cluster/node-$i/kafka.pid")"); done
      fi
      ;;
  esac
}

stop_target() {
  case "$1" in
    strom) stop_nodes; rm -rf "$WORK/strom" ;;
    *) if [ "$2" = 1 ]; then "$KREF" stop >/dev/null; else "$KREF" cluster-stop >/dev/null; fi; rm -rf "$KAFKA_REF_DIR" ;;
  esac
}

# The clients. Each prints one line "MB/s MB-moved p99-ms" (p99 "null" when the client
# has none); MB = 10^6 bytes of message payload, as each client counts it.

# strom bench (JSON on stdin); MB moved counts what was produced, the warm-up included
# (at the measured rate), and what was consumed.
sbench_line() {
  python3 -c '
import json, sys
d = json.load(sys.stdin); p, c, w = d["produce"], d["consume"], d["workload"]
produced = p["bytes"] * (p["seconds"] + w["warmup_s"]) / p["seconds"] if p["seconds"] else 0
rate = p["mb_per_sec"] if w["producers"] else c["mb_per_sec"]
p99 = p["latency_ms"]["p99"] if p["latency_ms"]["count"] else None
print(rate, (produced + c["bytes"]) / 1e6, "null" if p99 is None else p99)'
}

# rdkafka_performance moves COUNT messages; its MB/s as it prints it.
rdk_line() { echo "$1 $(python3 -c "print($COUNT * 1024 / 1e6)") null"; }

# kafka-producer-perf-test's summary: "N records sent, X records/sec (Y MB/sec), ...,
# P ms 99th, ...".
jprod() {
  "$KREF" tool kafka-producer-perf-test --bootstrap-server "$BOOT" --record-size 1024 "$@" 2>/dev/null |
    python3 -c '
import re, sys
line = [l for l in sys.stdin if "99th" in l][-1]
n, rate = re.search(r"(\d+) records sent, ([\d.]+) records/sec", line).groups()
print(float(rate) * 1024 / 1e6, int(n) * 1024 / 1e6, re.search(r"([\d.]+) ms 99th", line)[1])'
}

# kafka-consumer-perf-test's CSV line; the fetch rate (without the group join).
jcons() {
  "$KREF" tool kafka-consumer-perf-test --bootstrap-server "$BOOT" "$@" 2>/dev/null |
    python3 -c '
import sys
row = [l.split(",") for l in sys.stdin if l.strip() and l[0].isdigit()][-1]
print(float(row[9]) * 1024 / 1e6, int(row[4]) * 1024 / 1e6, "null")'
}

# Runs one measurement with the broker CPU read around it and appends it to the results:
# $1 round, $2 topology (single/cluster), $3 target, $4 measurement, then the command.
measure() {
  local r=$1 topo=$2 target=$3 name=$4 c0 c1 line
  shift 4
  c0=$(cpu_seconds "${BROKERS[@]}")
  line=$("$@") || line=""
  c1=$(cpu_seconds "${BROKERS[@]}")
  read -r mbs mb p99 <<<"$line"
  if [ -z "${mbs:-}" ] || [ "$mbs" = 0 ]; then
    echo "$topo/$target: $name of round $r failed" >&2
    exit 1
  fi
  printf '{"round": %s, "topo": "%s", "target": "%s", "name": "%s", "mb_s": %s, "mb": %s, "p99_ms": %s, "cpu_s": %s}\n' \
    "$r" "$topo" "$target" "$name" "$mbs" "$mb" "$p99" "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" >>"$RESULTS"
  echo "  $topo $target $name: $mbs MB/s, p99 $p99 ms, $(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }') CPU s" >&2
}

sb() { sbench "$@" | sbench_line; }
rd() { rdk_line "$(rdk "$@")"; }
# Creates topic $1 with one partition and $2 replicas and waits until the bootstrap broker
# knows it: `strom topic create` reads the new topic's metadata at once, which Kafka's
# brokers learn from the controller a moment after CreateTopics has answered (on a
# cluster, the create then fails with "unknown topic" although the topic was made).
mk() {
  local i
  "$STROM" topic create "$1" --partitions 1 --replication-factor "$2" --bootstrap "$BOOT" >/dev/null 2>&1 || true
  for i in $(seq 100); do
    "$STROM" topic describe "$1" --bootstrap "$BOOT" >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "topic $1 could not be created on $BOOT" >&2
  return 1
}

# Every workload against the running target; $1 round, $2 topology, $3 target, $4 nodes.
workloads() {
  local r=$1 topo=$2 target=$3 n=$4
  m() { measure "$r" "$topo" "$target" "$@"; }
  local fl=(--duration "$DURATION" --warmup "$WARMUP" --replication-factor "$n")
  # Unmeasured: a fresh JVM compiles its hot paths during its first seconds of load; that
  # should not be charged to Kafka's first measurement (Strom has nothing to warm).
  sbench --topic warm --acks 1 --duration "$TARGET_WARMUP" --replication-factor "$n" >/dev/null; drop_topic warm
  m sb_acks_1 sb --topic sb1 --acks 1 "${fl[@]}"; drop_topic sb1
  m sb_acks_all sb --topic sball --acks all "${fl[@]}"
  m sb_replay sb --topic sball --producers 0 --consumers 1; drop_topic sball
  m sb_latency sb --topic sblat --acks all --linger-ms "$LATENCY_LINGER_MS" --rate "$LAT_RATE" --consumers 1 "${fl[@]}"
  drop_topic sblat
  local rp=(-c "$COUNT" -X linger.ms=5 -X batch.size=1048576)
  mk rdk1 "$n"; m rdk_acks_1 rd -P -t rdk1 -p 0 "${rp[@]}" -X acks=1; drop_topic rdk1
  mk rdkall "$n"; m rdk_acks_all rd -P -t rdkall -p 0 "${rp[@]}" -X acks=all
  m rdk_replay rd -C -t rdkall -p 0 -o beginning -c "$COUNT"; drop_topic rdkall
  local jp=(--num-records "$COUNT" --throughput -1 --command-property linger.ms=5 batch.size=1048576)
  mk jp1 "$n"; m java_acks_1 jprod --topic jp1 "${jp[@]}" acks=1; drop_topic jp1
  mk jpall "$n"; m java_acks_all jprod --topic jpall "${jp[@]}" acks=all
  m java_replay jcons --topic jpall --num-records "$COUNT"; drop_topic jpall
  mk jplat "$n"
  m java_latency jprod --topic jplat --num-records "$LAT_COUNT" --throughput "$LAT_RATE" \
    --command-property acks=all linger.ms="$LATENCY_LINGER_MS" batch.size=1048576
  drop_topic jplat
}

read -ra TLIST <<<"$TARGETS"
for r in $(seq "$RUNS"); do
  # Rotate the order, so that no broker always goes first (on a cold page cache, right
  # after the previous broker's cleanup).
  order=("${TLIST[@]:$(((r - 1) % ${#TLIST[@]}))}" "${TLIST[@]:0:$(((r - 1) % ${#TLIST[@]}))}")
  topos=(single:1)
  [ -z "${NO_CLUSTER:-}" ] && topos+=(cluster:3)
  for tn in "${topos[@]}"; do
    topo=${tn%:*} n=${tn#*:}
    for target in "${order[@]}"; do
      echo "round $r/$RUNS: $topo, $target" >&2
      # Every broker starts with no dirty pages left by the one before: plain Kafka leaves
      # gigabytes unwritten, and the kernel writing them back would slow the next
      # broker's fsyncs (the page cache in the same state for every side).
      sync
      start_target "$target" "$n"
      workloads "$r" "$topo" "$target" "$n"
      stop_target "$target" "$n"
    done
  done
done

python3 "$ROOT/scripts/bench_kafka_report.py" "$RESULTS" >"$OUT/report.md"
cat "$OUT/report.md"
if [ -z "${NO_DOC:-}" ]; then
  python3 "$ROOT/scripts/bench_kafka_report.py" "$RESULTS" --into "$ROOT/docs/perf.md"
  echo "docs/perf.md updated" >&2
fi
