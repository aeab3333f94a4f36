# Shell helpers shared by the benchmark scripts (sourced, not run): ports, brokers,
# the clients (strom bench, librdkafka's rdkafka_performance and its output), CPU time.
#
# Expects ROOT (the repository) and WORK (a scratch directory) to be set.

STROM=${STROM_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/strom}
PIDS=()

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done
  echo "port $1 did not open" >&2
  return 1
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Builds librdkafka's rdkafka_performance (from the cached librdkafka source the test
# suite uses) when missing; sets PERF.
ensure_rdkafka_performance() {
  local src
  src=$(BUILD_ONLY=1 "$ROOT/scripts/librdkafka-tests.sh")
  PERF=$src/examples/rdkafka_performance
  if [ ! -x "$PERF" ]; then
    make -C "$src/examples" rdkafka_performance >"$WORK/perf-build.log" 2>&1 || { tail -20 "$WORK/perf-build.log"; return 1; }
  fi
}

# The last row of rdkafka_performance's -u table: the value of the first column whose
# header matches $1 ("dr_MB/s" producing, "MB/s" consuming, "m/s" for messages).
perf_column() {
  awk -F'|' -v want="$1" '
    !col { for (i = 1; i <= NF; i++) { h = $i; gsub(/ /, "", h); if (h ~ want) { col = i; n = NF; break } } ; if (col) next }
    col && NF == n && $2 ~ /[0-9]/ { v = $col }
    END { gsub(/ /, "", v); print (v == "" ? "0" : v) }'
}

# strom bench against BOOT with the standard message size; prints its JSON.
sbench() { "$STROM" bench --bootstrap "$BOOT" --message-size 1024 --output json "$@"; }

# rdkafka_performance against BOOT, 1 KiB; $1 = mode (-P/-C), then its flags; prints MB/s.
rdk() {
  local mode=$1 col=dr_MB/s
  shift
  [ "$mode" = -C ] && col='^MB/s'
  "$PERF" "$mode" -s 1024 -b "$BOOT" -u "$@" 2>&1 | perf_column "$col"
}

drop_topic() { "$STROM" topic delete "$1" --bootstrap "$BOOT" >/dev/null 2>&1 || true; }

# CPU seconds (user + system) the processes $@ have used so far, summed; from
# /proc/PID/stat fields 14 and 15, in clock ticks. A process gone counts 0.
cpu_seconds() {
  local p ticks=0 f
  for p in "$@"; do
    f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    # After "pid (comm) " (comm may hold ") ") the fields are numbered from 3 on: utime
    # (14) is the 12th, stime (15) the 13th.
    ticks=$((ticks + $(awk '{print $12 + $13}' <<<"${f##*) }")))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f\n", t / hz }'
}

# Starts $1 nodes with data under $2 (a cluster when $1 > 1); extra `serve` flags
# follow. Sets BOOT to the bootstrap list and KPORTS to the Kafka ports.
start_nodes() {
  local n=$1 dir=$2 peers="" i
  shift 2
  declare -ga KPORTS=() PPORTS=()
  for i in $(seq "$n"); do KPORTS+=("$(free_port)"); PPORTS+=("$(free_port)"); done
  if [ "$n" -gt 1 ]; then
    for i in $(seq "$n"); do peers+="${peers:+,}$i=127.0.0.1:${PPORTS[$((i-1))]}"; done
  fi
  BOOT=""
  for i in $(seq "$n"); do
    local extra=()
    [ -n "$peers" ] && extra=(--peers "$peers" --peer-listen "127.0.0.1:${PPORTS[$((i-1))]}")
    mkdir -p "$dir"
    "$STROM" serve --node-id "$i" --listen "127.0.0.1:${KPORTS[$((i-1))]}" --data-dir "$dir/node-$i" \
      --metrics-listen '' "${extra[@]}" "$@" >"$dir/node-$i.log" 2>&1 &
    PIDS+=($!)
    BOOT+="${BOOT:+,}127.0.0.1:${KPORTS[$((i-1))]}"
  done
  for i in $(seq "$n"); do wait_port "${KPORTS[$((i-1))]}"; done
}

stop_nodes() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
}
