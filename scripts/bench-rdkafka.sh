#!/usr/bin/env bash
# Produce and consume throughput of a single-node Strom measured with librdkafka's own
# load generator, rdkafka_performance (1 KiB messages), reported as ratios to this
# machine's raw disk and loopback baselines measured in the same run.
#
#   scripts/bench-rdkafka.sh              # 200k messages per run, 3 runs, medians
#   COUNT=1000000 RUNS=5 scripts/bench-rdkafka.sh
#   STROM_BIN=/path/to/strom scripts/bench-rdkafka.sh   # measure that binary, build nothing
#
# The broker is built into (and scratch files go under) $CARGO_TARGET_DIR, default target/.
#
# Machines here are shared and noisy: compare the ratios, not the absolute figures.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
COUNT=${COUNT:-200000}
RUNS=${RUNS:-3}
SIZE=1024
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$TARGET"
WORK=$(mktemp -d "$TARGET/bench-rdkafka.XXXXXX")
trap 'kill "${BROKER:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

SRC=$(BUILD_ONLY=1 scripts/librdkafka-tests.sh)
PERF=$SRC/examples/rdkafka_performance
if [ ! -x "$PERF" ]; then
  make -C "$SRC/examples" rdkafka_performance >"$WORK/perf-build.log" 2>&1 || { tail -20 "$WORK/perf-build.log"; exit 1; }
fi
if [ -z "${STROM_BIN:-}" ]; then
  cargo build --release --quiet -p strom
  STROM_BIN=$TARGET/release/strom
fi

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.1f", b/1048576/s}'; }

# --- baselines -----------------------------------------------------------------------
BYTES=$((COUNT * SIZE))
MIB=$((BYTES / 1048576))
raw_write() {  # buffered write of the same volume, then one fdatasync
  local s=$(date +%s.%N)
  dd if=/dev/zero of="$WORK/raw" bs=1M count="$MIB" conv=fdatasync status=none
  local e=$(date +%s.%N); rm -f "$WORK/raw"
  mbps "$BYTES" "$(echo "$e - $s" | bc -l)"
}
raw_dsync() {  # write + fdatasync per 1 MiB
  local s=$(date +%s.%N)
  dd if=/dev/zero of="$WORK/raw" bs=1M count="$MIB" oflag=dsync status=none
  local e=$(date +%s.%N); rm -f "$WORK/raw"
  mbps "$BYTES" "$(echo "$e - $s" | bc -l)"
}
loopback() {  # one TCP stream over 127.0.0.1, 1 MiB writes
  python3 - "$BYTES" <<'PY'
import socket, sys, threading, time
total = int(sys.argv[1]); srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
def sink():
    c, _ = srv.accept(); n = 0
    while n < total:
        b = c.recv(1 << 20)
        if not b: break
        n += len(b)
t = threading.Thread(target=sink); t.start()
s = socket.create_connection(srv.getsockname()); buf = b"\0" * (1 << 20); sent = 0; t0 = time.time()
while sent < total:
    s.sendall(buf); sent += len(buf)
t.join(); print("%.1f" % (sent / 1048576 / (time.time() - t0)))
PY
}

# --- Strom ----------------------------------------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Metrics are recorded as always; the endpoint gets no fixed port that another broker may hold.
"$STROM_BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" --default-partitions 1 \
  --metrics-listen '' >"$WORK/strom.log" 2>&1 &
BROKER=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

# With -u rdkafka_performance prints a table whose header names a "MB/s" column; the
# last row with as many columns as the header is the final tally.
perf_mbps() {
  awk -F'|' '
    /MB\/s/ && !col { for (i = 1; i <= NF; i++) if ($i ~ /MB\/s/) col = i; n = NF; next }
    col && NF == n && $2 ~ /[0-9]/ { v = $col }
    END { gsub(/ /, "", v); print (v == "" ? "0" : v) }'
}
produce() {  # $1 = acks, $2 = topic
  "$PERF" -P -t "$2" -p 0 -s "$SIZE" -c "$COUNT" -b "127.0.0.1:$PORT" -X "acks=$1" \
    -X linger.ms=5 -X batch.size=1048576 -u 2>&1 | perf_mbps
}
consume() {  # $1 = topic
  "$PERF" -C -t "$1" -p 0 -o beginning -c "$COUNT" -b "127.0.0.1:$PORT" -u 2>&1 | perf_mbps
}

declare -a W D L P1 PA C
for run in $(seq "$RUNS"); do
  W+=("$(raw_write)"); D+=("$(raw_dsync)"); L+=("$(loopback)")
  P1+=("$(produce 1 "acks1-$run")")
  PA+=("$(produce all "acksall-$run")")
  C+=("$(consume "acks1-$run")")
  echo "run $run: raw write ${W[-1]} MB/s, write+fdatasync/MiB ${D[-1]} MB/s, loopback ${L[-1]} MB/s," \
    "produce acks=1 ${P1[-1]} MB/s, acks=all ${PA[-1]} MB/s, consume ${C[-1]} MB/s" >&2
done
m() { printf '%s\n' "$@" | median; }
w=$(m "${W[@]}"); d=$(m "${D[@]}"); l=$(m "${L[@]}"); p1=$(m "${P1[@]}"); pa=$(m "${PA[@]}"); c=$(m "${C[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
cat <<TABLE

rdkafka_performance, 1 KiB messages, $COUNT per run, medians of $RUNS runs
| measure                         | MB/s  | ratio to baseline                          |
|---------------------------------|-------|--------------------------------------------|
| raw buffered write + 1 fsync    | $w |                                            |
| raw write + fdatasync per 1 MiB | $d |                                            |
| loopback TCP, one stream        | $l |                                            |
| produce acks=1                  | $p1 | $(ratio "$p1" "$w") of raw buffered write |
| produce acks=all (group commit) | $pa | $(ratio "$pa" "$d") of raw write+fdatasync/MiB |
| consume from the start          | $c | $(ratio "$c" "$l") of loopback             |
TABLE
