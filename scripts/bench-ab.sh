#!/usr/bin/env bash
# A/B of two strom server binaries in one run, e.g. before and after a change to the
# log or replication path: produce throughput and ack latency of one producer on one
# partition, on a single node and on a three-node cluster (replication factor 3), with
# acks=1 and acks=all, 100-byte and 1 KiB messages.
#
#   scripts/bench-ab.sh OLD_BIN NEW_BIN                  # 3 rounds of 10 s runs
#   RUNS=5 DURATION=15s NO_CLUSTER=1 scripts/bench-ab.sh OLD_BIN NEW_BIN
#   RUNS=5 ONLY_CLUSTER=1 ALTERNATE=1 scripts/bench-ab.sh OLD_BIN NEW_BIN   # 3 nodes only
#   ACKS_LIST=all SIZES=1024 ... scripts/bench-ab.sh OLD_BIN NEW_BIN       # one workload
#
# A shared machine speeds up and slows down by more than most changes gain, so every
# round runs each workload on A and right after on B (ALTERNATE=1: B first in even
# rounds), and the report quotes the median over rounds of the ratio B/A within a
# round. Every run starts fresh nodes on an empty data directory, removed afterwards,
# so both sides meet the same disk state. The client is always NEW_BIN's `strom bench`
# (it speaks only the Kafka protocol): only the server differs. Both binaries are
# copied first, so a rebuild during the run changes nothing. Ports: from 29092 up,
# away from the defaults and from the kernel's ephemeral range that tests draw from.
# Results: target/bench-ab/<time>/ (results.jsonl, report.md, node logs of failures).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 OLD_BIN NEW_BIN" >&2; exit 2; }
OLD_SRC=$(realpath "$1"); NEW_SRC=$(realpath "$2")
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
OUT=${OUT:-$ROOT/target/bench-ab/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT" "$ROOT/target"
WORK=$(mktemp -d "$ROOT/target/bench-ab-work.XXXXXX")
source "$ROOT/scripts/lib/bench.sh"
trap 'stop_nodes; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

cp "$OLD_SRC" "$WORK/strom-a"; cp "$NEW_SRC" "$WORK/strom-b"
CLIENT=$WORK/strom-b
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
printf '{"a": "%s", "a_sha256": "%s", "b": "%s", "b_sha256": "%s", "runs": %s, "duration": "%s", "warmup": "%s"}\n' \
  "$OLD_SRC" "$(sha256sum <"$WORK/strom-a" | cut -c1-16)" "$NEW_SRC" "$(sha256sum <"$WORK/strom-b" | cut -c1-16)" \
  "$RUNS" "$DURATION" "$WARMUP" >"$OUT/meta.json"
echo "results: $OUT" >&2

# Replaces lib/bench.sh's: the next free port from 29092 up. start_nodes calls it in
# a subshell, hence the counter in a file; no port is used twice in a run, so none
# is met in TIME_WAIT.
echo 29092 >"$WORK/next-port"
free_port() {
  local p
  p=$(cat "$WORK/next-port")
  until python3 -c 'import socket,sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' "$p" 2>/dev/null; do
    p=$((p + 1))
  done
  echo $((p + 1)) >"$WORK/next-port"
  echo "$p"
}

# One run: $1 = round, $2 = side (A/B), $3 = nodes, $4 = acks, $5 = message size.
run_one() {
  local r=$1 side=$2 nodes=$3 acks=$4 size=$5 name j ok=true
  local dir=$WORK/run-$r-$side
  name=$([ "$nodes" = 1 ] && echo single || echo cluster).acks_$acks.${size}B
  STROM=$WORK/strom-$(tr AB ab <<<"$side")
  echo "round $r/$RUNS: $name $side" >&2
  if start_nodes "$nodes" "$dir" && j=$("$CLIENT" bench --bootstrap "$BOOT" --topic ab --partitions 1 \
      --replication-factor "$nodes" --acks "$acks" --message-size "$size" --duration "$DURATION" \
      --warmup "$WARMUP" --output json 2>"$dir/bench.err") && [ -n "$j" ]; then :; else ok=false; j=null; fi
  stop_nodes
  if [ "$ok" = false ]; then
    echo "  FAILED: $name $side round $r (logs in $OUT/failed-$r-$side-$name)" >&2
    mkdir -p "$OUT/failed-$r-$side-$name"; cp "$dir"/*.log "$dir/bench.err" "$OUT/failed-$r-$side-$name/" 2>/dev/null || true
  fi
  printf '{"round": %s, "workload": "%s", "side": "%s", "ok": %s, "data": %s}\n' "$r" "$name" "$side" "$ok" "$j" >>"$RESULTS"
  rm -rf "$dir"
}

NODES=(1); [ -z "${NO_CLUSTER:-}" ] && NODES+=(3)
[ -n "${ONLY_CLUSTER:-}" ] && NODES=(3)
for r in $(seq "$RUNS"); do
  order=(A B); [ -n "${ALTERNATE:-}" ] && [ $((r % 2)) = 0 ] && order=(B A)
  for n in "${NODES[@]}"; do for acks in ${ACKS_LIST:-1 all}; do for size in ${SIZES:-100 1024}; do
    for side in "${order[@]}"; do run_one "$r" "$side" "$n" "$acks" "$size"; done
  done; done; done
done

python3 - "$RESULTS" "$OUT/meta.json" >"$OUT/report.md" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
meta = json.load(open(sys.argv[2]))
res, order = {}, []
for x in rows:
    if x["workload"] not in order: order.append(x["workload"])
    if x["ok"]: res[(x["workload"], x["round"], x["side"])] = x["data"]["produce"]
med = lambda v: statistics.median(v) if v else float("nan")
rounds = sorted({x["round"] for x in rows})
print(f"A = {meta['a']} ({meta['a_sha256']}), B = {meta['b']} ({meta['b_sha256']})  ")
print(f"{meta['runs']} rounds of {meta['duration']} (+{meta['warmup']} warm-up); "
      "absolute values: median over rounds; B/A: median of the per-round ratios\n")
print("| workload | A MB/s | B MB/s | A msg/s | B msg/s | **B/A thr** | per-round B/A | A p50 ms | B p50 ms | B/A p50 | A p99 ms | B p99 ms | B/A p99 | failed runs |")
print("|---|" + "---:|" * 13)
for w in order:
    g = lambda s, f: [f(res[(w, r, s)]) for r in rounds if (w, r, s) in res]
    both = [r for r in rounds if (w, r, "A") in res and (w, r, "B") in res]
    ratio = lambda f: [f(res[(w, r, "B")]) / f(res[(w, r, "A")]) for r in both if f(res[(w, r, "A")])]
    mb, ms = (lambda p: p["mb_per_sec"]), (lambda p: p["msgs_per_sec"])
    p50, p99 = (lambda p: p["latency_ms"]["p50"]), (lambda p: p["latency_ms"]["p99"])
    bad = sum(1 for x in rows if x["workload"] == w and (not x["ok"] or x["data"]["produce"]["failed"]))
    print(f"| {w} | {med(g('A', mb)):.1f} | {med(g('B', mb)):.1f} | {med(g('A', ms)):,.0f} | {med(g('B', ms)):,.0f} "
          f"| **{med(ratio(ms)):.3f}** | {' '.join(f'{v:.2f}' for v in ratio(ms))} "
          f"| {med(g('A', p50)):.2f} | {med(g('B', p50)):.2f} | {med(ratio(p50)):.2f} "
          f"| {med(g('A', p99)):.2f} | {med(g('B', p99)):.2f} | {med(ratio(p99)):.2f} | {bad} |")
EOF
cat "$OUT/report.md"
