#!/usr/bin/env bash
# Runs strom-log's benches (append, cached read, index lookup, recovery) N times and
# prints each strom/raw ratio per run and the median over the runs.
#
# Usage: scripts/bench-log.sh [runs] [extra cargo bench args...]
#   runs defaults to 1; on a noisy machine use 3 or 5 and quote the medians.
# Environment: CARGO_TARGET_DIR (default: <repo>/target-bench); STROM_BENCH_DIR (scratch
# files, default $CARGO_TARGET_DIR/bench-scratch; must be on the disk being measured, not
# a tmpfs); STROM_RECOVERY_BYTES / STROM_RECOVERY_RUNS (see benches/log_recovery.rs).
#
# A ratio is raw time / strom time for the same bytes in the same run, i.e. Strom's
# throughput as a fraction of the raw baseline's: 1.0 means no overhead.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-1}"
shift || true
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target-bench}"
out="$CARGO_TARGET_DIR/bench-log/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"

cd "$repo"
for i in $(seq 1 "$runs"); do
    echo "=== run $i of $runs (log: $out/run-$i.txt)"
    cargo bench -p strom-log "$@" 2>&1 | tee "$out/run-$i.txt"
    python3 - "$CARGO_TARGET_DIR/criterion" "$out/run-$i.txt" "$out/ratios-$i.json" <<'EOF'
import json, os, re, sys

crit, log, dest = sys.argv[1:4]

def median_ns(group, func):
    path = os.path.join(crit, group, func, "new", "estimates.json")
    if not os.path.exists(path):
        return None
    return json.load(open(path))["median"]["point_estimate"]

def bytes_of(group, func):
    path = os.path.join(crit, group, func, "new", "benchmark.json")
    return json.load(open(path)).get("throughput", {}).get("Bytes")

# (row name, group, strom function, raw function, target or None)
pairs = []
for size in ["16KiB", "64KiB", "1MiB"]:
    g = f"append_{size}"
    pairs += [
        (f"append {size}, no fsync", g, "strom_append_no_fsync", "raw_write", 0.7),
        (f"append {size}, group commit per MiB", g, "strom_append_group_commit_per_MiB",
         "raw_write_fdatasync_per_MiB", 0.7),
        (f"append {size}, group commit vs fsync on a helper thread", g,
         "strom_append_group_commit_per_MiB", "raw_write_fdatasync_other_thread_per_MiB",
         None),
        (f"append {size}, flush() per MiB", g, "strom_append_flush_per_MiB",
         "raw_write_fdatasync_per_MiB", None),
    ]
for size in ["16KiB", "64KiB", "1MiB"]:
    pairs.append((f"cached read, {size} fetches", f"read_cached_{size}", "strom_read",
                  "raw_pread", 0.7))
for func in ["strom_read_random_offset", "strom_read_random_offset_one_segment",
             "strom_offset_for_timestamp"]:
    pairs.append((f"index lookup: {func}", "index_lookup", func,
                  "raw_in_memory_index_pread_header", None))

rows = {}
for name, group, strom, raw, target in pairs:
    s, r = median_ns(group, strom), median_ns(group, raw)
    if s is None or r is None:
        continue
    b = bytes_of(group, raw)
    rows[name] = {
        "ratio": r / s,
        "target": target,
        "strom_ns": s,
        "raw_ns": r,
        "raw_GBps": b / r if b else None,
        "strom_GBps": b / s if b else None,
    }

text = open(log, errors="replace").read()
m = re.search(r"strom_recover_open\s+([\d.]+) ms.*\n.*ratio raw_read/strom = ([\d.]+)", text)
if m:
    rows["recovery of 1 GiB segment (open vs raw read)"] = {
        "ratio": float(m.group(2)), "target": None,
        "strom_ns": float(m.group(1)) * 1e6, "raw_ns": None,
        "raw_GBps": None, "strom_GBps": None,
    }
json.dump(rows, open(dest, "w"), indent=1)
EOF
done

python3 - "$out" "$runs" <<'EOF'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
per_run = [json.load(open(f"{out}/ratios-{i}.json")) for i in range(1, runs + 1)]
names = list(per_run[0])
print()
print(f"strom/raw ratios (raw time / strom time), {runs} run(s); median, then each run")
print(f"{'case':<58} {'target':>6} {'median':>7}  runs")
for n in names:
    vals = [r[n]["ratio"] for r in per_run if n in r]
    t = per_run[0][n]["target"]
    med = statistics.median(vals)
    flag = "" if t is None else ("  ok" if med >= t else "  MISSED")
    tgt = "-" if t is None else f">={t}"
    print(f"{n:<58} {tgt:>6} {med:>7.2f}  " + " ".join(f"{v:.2f}" for v in vals) + flag)
    for key in ("raw_GBps", "strom_GBps"):
        gb = [r[n][key] for r in per_run if n in r and r[n][key]]
        if gb:
            per_run[0][n].setdefault("medians", {})[key] = statistics.median(gb)
summary = {n: {"ratio_median": statistics.median([r[n]["ratio"] for r in per_run if n in r]),
               "ratios": [r[n]["ratio"] for r in per_run if n in r],
               "target": per_run[0][n]["target"],
               **per_run[0][n].get("medians", {})} for n in names}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=1)
EOF

echo
echo "Results:"
echo "  criterion reports (latest run): $CARGO_TARGET_DIR/criterion/"
echo "  logs, per-run ratios and summary.json: $out/"
