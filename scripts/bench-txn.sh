#!/usr/bin/env bash
# What transactions cost (issue 16): on one node, transactional produce against idempotent
# produce with the same client settings, and read_committed fetch against read_uncommitted
# fetch of the same log, on Strom and (optionally) on Apache Kafka 4.4, in the same run,
# so that Strom's ratios can be set beside Kafka's own.
#
#   scripts/bench-txn.sh                          # 3 rounds, Strom and Kafka, ~15 minutes
#   TARGETS=strom scripts/bench-txn.sh            # Strom only (no JVM broker)
#   SMOKE=1 scripts/bench-txn.sh                  # CI smoke: 1 round, tiny sizes, Strom only, < 2 min
#
# Produce (scripts/bench_txn_produce.py: confluent-kafka, i.e. librdkafka, because it can
# put exactly PER_TXN records in each transaction, where kafka-producer-perf-test only cuts
# transactions by time): one producer, one partition, acks=all, linger 5 ms, batches up to
# 1 MB, for DURATION (6) seconds each, record sizes SIZES (100 1000), after an unmeasured
# TARGET_WARMUP (4 s) of both kinds of produce on every freshly started broker:
#   idem        idempotent, as fast as the client goes
#   idem_flush  idempotent, flush() after every PER_TXN records (the batches and the
#               synchronous wait of a transaction, without its requests and markers)
#   txn         transactions of PER_TXN (100) records, committed one after the other
# Fetch (kafka-consumer-perf-test, its fetch rate without the group join): a topic filled by
# FILL_PRODUCERS transactional producers at once (interleaved transactions of PER_TXN
# records, FILL_RECORDS in all, the i-th count for the i-th size), all committed; and the
# same with every ABORT_EVERY-th transaction aborted (its records written, then aborted).
# Each read from the start with isolation.level=read_uncommitted and read_committed; the
# rate counts the data records of the log traversed (aborted ones included) per second.
#
# Each round runs every target in turn (order rotated per round), each on a fresh data
# directory under /tmp, and within a target the modes in an order rotated per round, with
# a `sync` before every measurement (the page cache in the same state for both sides).
# Ratios are taken within a round; the report quotes their median and every round's. On
# Strom the broker's own request histograms (/metrics) are read around every produce
# measurement: which request a transaction waits on. Results: target/bench-txn/<time>/
# (results.jsonl, one line per measurement; results.json, the medians and ratios;
# report.md). Unless NO_DOC=1 (implied by SMOKE), the report replaces the generated part
# of the "Transactions" section of docs/perf.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ -n "${SMOKE:-}" ]; then
  : "${RUNS:=1}" "${DURATION:=1}" "${TARGET_WARMUP:=1}" "${FILL_RECORDS:=4000 2000}" "${FILL_PRODUCERS:=2}" \
    "${TARGETS:=strom}" "${NO_DOC:=1}"
fi
RUNS=${RUNS:-3}
DURATION=${DURATION:-6}
TARGET_WARMUP=${TARGET_WARMUP:-4}
SIZES=${SIZES:-100 1000}
FILL_RECORDS=${FILL_RECORDS:-400000 200000}
FILL_PRODUCERS=${FILL_PRODUCERS:-8}
PER_TXN=${PER_TXN:-100}
ABORT_EVERY=${ABORT_EVERY:-10}
TARGETS=${TARGETS:-strom kafka}
PY=${BENCH_PYTHON:-$ROOT/.venv/bin/python}
OUT=${OUT:-$ROOT/target/bench-txn/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/bench-txn.XXXXXX)
source "$ROOT/scripts/lib/bench.sh"
KREF=$ROOT/scripts/kafka-ref.sh
export KAFKA_REF_DIR=$WORK/kafka
CLIENT_PIDS=()

cleanup() {
  local p
  for p in "${CLIENT_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_nodes
  KAFKA_REF_STOP_TIMEOUT=10 "$KREF" stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$PY" -c 'import confluent_kafka' 2>/dev/null || {
  echo "$PY has no confluent_kafka: run scripts/test-clients.sh once (it makes .venv), or set BENCH_PYTHON" >&2
  exit 1
}
if [ -z "${STROM_BIN:-}" ]; then cargo build --release --quiet -p strom; fi
[[ " $TARGETS " == *" kafka "* ]] && "$KREF" assemble >/dev/null
read -ra SIZE_LIST <<<"$SIZES"
read -ra FILL_LIST <<<"$FILL_RECORDS"
[ "${#SIZE_LIST[@]}" = "${#FILL_LIST[@]}" ] || { echo "FILL_RECORDS needs one count per size in SIZES" >&2; exit 1; }
RESULTS=$OUT/results.jsonl
printf '{"config": {"runs": %s, "duration_s": %s, "sizes": [%s], "fill_records": [%s], "fill_producers": %s, "per_txn": %s, "abort_every": %s, "targets": "%s"}}\n' \
  "$RUNS" "$DURATION" "$(tr ' ' , <<<"${SIZE_LIST[*]}")" "$(tr ' ' , <<<"${FILL_LIST[*]}")" "$FILL_PRODUCERS" \
  "$PER_TXN" "$ABORT_EVERY" "$TARGETS" >"$RESULTS"
echo "results: $OUT" >&2

# Starts target $1 on a fresh data directory; sets BOOT, BROKER (pid) and METRICS (Strom's
# /metrics address; empty for Kafka).
start_target() {
  case "$1" in
    strom)
      local kport mport
      kport=$(free_port) mport=$(free_port)
      mkdir -p "$WORK/strom"
      "$STROM" serve --listen "127.0.0.1:$kport" --metrics-listen "127.0.0.1:$mport" --data-dir "$WORK/strom/data" \
        --group-initial-rebalance-delay-ms 0 >"$WORK/strom/node.log" 2>&1 &
      PIDS+=($!)
      BROKER=$!
      BOOT=127.0.0.1:$kport METRICS=127.0.0.1:$mport
      wait_port "$kport"
      wait_port "$mport"
      ;;
    kafka)
      BOOT=$(KAFKA_REF_PROPS="log.segment.delete.delay.ms=0" "$KREF" start 2>/dev/null | tail -1)
      BROKER=$(cat "$KAFKA_REF_DIR/kafka.pid")
      METRICS=""
      ;;
  esac
}

stop_target() {
  case "$1" in
    strom) stop_nodes; rm -rf "$WORK/strom" ;;
    kafka) "$KREF" stop >/dev/null; rm -rf "$KAFKA_REF_DIR" ;;
  esac
}

# Creates topic $1 (one partition, one replica) and waits until the broker lists it.
mk() {
  local i
  "$STROM" topic create "$1" --partitions 1 --replication-factor 1 --bootstrap "$BOOT" >/dev/null 2>&1 || true
  for i in $(seq 100); do
    "$STROM" topic describe "$1" --bootstrap "$BOOT" >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "topic $1 could not be created on $BOOT" >&2
  return 1
}

# Strom's request counts and duration sums per API, as JSON ({} on Kafka).
api_stats() {
  [ -n "$METRICS" ] || { echo '{}'; return; }
  curl -sf "http://$METRICS/metrics" | python3 -c '
import json, re, sys
out = {}
for line in sys.stdin:
    m = re.match(r"strom_request_duration_seconds_(sum|count)\{api=\"(\w+)\"\} (\S+)", line)
    if m:
        out.setdefault(m[2], {})[m[1]] = float(m[3])
print(json.dumps(out))'
}

# Appends one result line: $1 round, $2 target, $3 size, $4 name, $5 the measurement's
# JSON (rec_s and mb_s at least), $6 broker CPU seconds, $7 and $8 the API stats before
# and after.
record() {
  python3 - "$@" >>"$RESULTS" <<'EOF'
import json, sys
r, target, size, name, data, cpu, a0, a1 = sys.argv[1:]
row = {"round": int(r), "target": target, "size": int(size), "name": name, "cpu_s": float(cpu)}
row.update(json.loads(data))
a0, a1 = json.loads(a0), json.loads(a1)
apis = {}
for api, v in a1.items():
    n = v.get("count", 0) - a0.get(api, {}).get("count", 0)
    if n > 0:
        apis[api] = {"count": int(n), "mean_ms": round((v.get("sum", 0) - a0.get(api, {}).get("sum", 0)) / n * 1000, 3)}
if apis:
    row["apis"] = apis
print(json.dumps(row))
EOF
}

# One measurement with the broker CPU and API stats around it: $1 round, $2 target, $3
# size, $4 name, then the command (which prints the measurement's JSON).
measure() {
  local r=$1 target=$2 size=$3 name=$4 c0 c1 a0 a1 line
  shift 4
  sync
  a0=$(api_stats) c0=$(cpu_seconds "$BROKER")
  line=$("$@") || line=""
  c1=$(cpu_seconds "$BROKER") a1=$(api_stats)
  if [ -z "$line" ]; then
    echo "$target: $name ($size B) of round $r failed" >&2
    exit 1
  fi
  record "$r" "$target" "$size" "$name" "$line" "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" "$a0" "$a1"
  echo "  $target ${size}B $name: $(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("{:,.0f} rec/s, {:.1f} MB/s".format(d["rec_s"], d["mb_s"]))' "$line")" >&2
}

produce() { "$PY" "$ROOT/scripts/bench_txn_produce.py" "$BOOT" "$@"; }

# Fills topic $1 with transactions of $2-byte records, $3 records in all, from
# FILL_PRODUCERS producers at once; more flags for the driver follow. Sets FILL_LOG and
# FILL_COMMITTED: the data records in the log and those of committed transactions.
fill() {
  local topic=$1 size=$2 total=$3 i each
  shift 3
  each=$(((total + FILL_PRODUCERS - 1) / FILL_PRODUCERS))
  CLIENT_PIDS=()
  for i in $(seq "$FILL_PRODUCERS"); do
    produce "$topic" txn "$size" 0 --records "$each" --per-txn "$PER_TXN" "$@" >"$WORK/fill-$i.json" &
    CLIENT_PIDS+=($!)
  done
  for i in "${CLIENT_PIDS[@]}"; do wait "$i" || { echo "fill of $topic failed" >&2; exit 1; }; done
  CLIENT_PIDS=()
  read -r FILL_LOG FILL_COMMITTED < <(cat "$WORK"/fill-*.json | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
print(sum(r["log_records"] for r in rows), sum(r["log_committed"] for r in rows))')
  rm -f "$WORK"/fill-*.json
}

# kafka-consumer-perf-test reading $4 records of topic $1 ($2-byte records, $3 data records
# in its log) with isolation.level $5; prints its JSON: the rate of log records traversed.
consume() {
  local topic=$1 size=$2 log_records=$3 n=$4 iso=$5
  "$KREF" tool kafka-consumer-perf-test --bootstrap-server "$BOOT" --topic "$topic" --num-records "$n" \
    --timeout 30000 --command-property isolation.level="$iso" 2>/dev/null |
    python3 -c '
import json, sys
size, log_records, want = (int(x) for x in sys.argv[1:])
row = [l.split(",") for l in sys.stdin if l.strip() and l[0].isdigit()][-1]
got, fetch_ms = int(row[4]), float(row[7])
if got < want or fetch_ms <= 0:
    sys.exit(f"consumed {got} of {want} records")
s = fetch_ms / 1000
print(json.dumps({"records": got, "log_records": log_records, "seconds": s,
                  "rec_s": round(log_records / s, 1), "mb_s": round(log_records * size / s / 1e6, 3),
                  "consumed_rec_s": round(got / s, 1)}))' "$size" "$log_records" "$n"
}

# Every workload of one round against the running target.
workloads() {
  local r=$1 target=$2 i size fillc filla modes isos mode iso rot
  m() { measure "$r" "$target" "$@"; }
  rot=$(((r - 1) % 3))
  modes=(idem idem_flush txn)
  modes=("${modes[@]:$rot}" "${modes[@]:0:$rot}")
  # Unmeasured: a fresh JVM compiles its hot paths (the transaction coordinator's too)
  # during its first seconds of load; that should not be charged to Kafka's first
  # measurement. Strom goes through the same motions.
  mk warm
  produce warm idem 1000 "$(awk -v w="$TARGET_WARMUP" 'BEGIN { print w / 2 }')" >/dev/null
  produce warm txn 1000 "$(awk -v w="$TARGET_WARMUP" 'BEGIN { print w / 2 }')" >/dev/null
  drop_topic warm
  isos=(read_uncommitted read_committed)
  [ $((r % 2)) = 0 ] && isos=(read_committed read_uncommitted)
  for i in "${!SIZE_LIST[@]}"; do
    size=${SIZE_LIST[$i]}
    for mode in "${modes[@]}"; do
      mk "p-$mode"
      m "$size" "produce_$mode" produce "p-$mode" "$mode" "$size" "$DURATION" --per-txn "$PER_TXN" \
        $([ "$mode" = txn ] && echo --count-retries)
      drop_topic "p-$mode"
    done
    mk fc; mk fa
    fill fc "$size" "${FILL_LIST[$i]}"
    fc_log=$FILL_LOG fc_committed=$FILL_COMMITTED
    fill fa "$size" "${FILL_LIST[$i]}" --abort-every "$ABORT_EVERY"
    fa_log=$FILL_LOG fa_committed=$FILL_COMMITTED
    for iso in "${isos[@]}"; do
      local n_c=$fc_log n_a=$fa_log short=ru
      [ "$iso" = read_committed ] && n_c=$fc_committed n_a=$fa_committed short=rc
      m "$size" "fetch_committed_$short" consume fc "$size" "$fc_log" "$n_c" "$iso"
      m "$size" "fetch_aborts_$short" consume fa "$size" "$fa_log" "$n_a" "$iso"
    done
    drop_topic fc; drop_topic fa
  done
}

read -ra TLIST <<<"$TARGETS"
for r in $(seq "$RUNS"); do
  order=("${TLIST[@]:$(((r - 1) % ${#TLIST[@]}))}" "${TLIST[@]:0:$(((r - 1) % ${#TLIST[@]}))}")
  for target in "${order[@]}"; do
    echo "round $r/$RUNS: $target" >&2
    sync
    start_target "$target"
    workloads "$r" "$target"
    stop_target "$target"
  done
done

python3 "$ROOT/scripts/bench_txn_report.py" "$RESULTS" --json "$OUT/results.json" >"$OUT/report.md"
cat "$OUT/report.md"
if [ -z "${NO_DOC:-}" ]; then
  python3 "$ROOT/scripts/bench_txn_report.py" "$RESULTS" --into "$ROOT/docs/perf.md"
  echo "docs/perf.md updated" >&2
fi
