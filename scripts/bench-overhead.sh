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
SRC=$(BUILD_ONLY=1 scripts/librdkafka-tests.sh)
PERF=$SRC/examples/rdkafka_performance
[ -x "$PERF" ] || make -C "$SRC/examples" rdkafka_performance >/dev/null
WORK=$(mktemp -d)
BROKER=
trap 'if [ -n "$BROKER" ]; then kill "$BROKER" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT

# The last row of rdkafka_performance's -u table that has a number in its messages per
# second column ("dr_m/s" when producing, "m/s" when consuming).
msgs_per_s() {
  awk -F'|' '
    /m\/s/ && !col { for (i = 1; i <= NF; i++) if ($i ~ /m\/s/) col = i; n = NF; next }
    col && NF == n && $2 ~ /[0-9]/ { v = $col }
    END { gsub(/ /, "", v); print (v == "" ? "0" : v) }'
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

run_one() {  # $1 = binary, $2 = label
  local port data
  port=$(free_port)
  data=$WORK/data-$2-$RANDOM
  local extra=()
  if "$1" serve --help | grep -q -- --metrics-listen; then
    # Metrics are recorded either way; the endpoint just needs a port of its own.
    extra=(--metrics-listen "127.0.0.1:$(free_port)")
  fi
  "$1" serve --listen "127.0.0.1:$port" --data-dir "$data" "${extra[@]}" >"$WORK/$2.log" 2>&1 &
  BROKER=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  local p c
  p=$("$PERF" -P -t bench -p 0 -s "$SIZE" -c "$COUNT" -b "127.0.0.1:$port" -a 1 \
    -X linger.ms=0 -u 2>&1 | msgs_per_s)
  c=$("$PERF" -C -t bench -p 0 -o beginning -c "$COUNT" -b "127.0.0.1:$port" -u 2>&1 | msgs_per_s)
  kill "$BROKER"; wait "$BROKER" 2>/dev/null || true; BROKER=
  rm -rf "$data"
  echo "$p $c"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
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
