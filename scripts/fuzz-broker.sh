#!/usr/bin/env bash
# Broker-level fuzzing for a bounded time (docs/fuzzing.md): builds `strom` and
# `strom-tcpfuzz`, replays crates/strom-tcpfuzz/regressions/*.seq against a fresh
# `strom serve`, then sends mutated request sequences for SECONDS (default 60).
# Exits non-zero on any finding; finding files land in target/tcpfuzz/findings/.
#
#   scripts/fuzz-broker.sh [SECONDS] [extra strom-tcpfuzz run flags...]
#   PROFILE=debug scripts/fuzz-broker.sh 30      # against the debug build
#   SEED=0x1234 scripts/fuzz-broker.sh 60        # repeat a run (its seed is printed first)
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-60}"
shift || true
profile="${PROFILE:-release}"
case "$profile" in
  release) cargo build --release --locked -p strom -p strom-tcpfuzz; dir=target/release ;;
  debug) cargo build --locked -p strom -p strom-tcpfuzz; dir=target/debug ;;
  *) echo "PROFILE must be release or debug" >&2; exit 2 ;;
esac
seed=()
[ -n "${SEED:-}" ] && seed=(--seed "$SEED")
exec "$dir/strom-tcpfuzz" run --strom "$dir/strom" --seconds "$duration" \
  --regressions crates/strom-tcpfuzz/regressions "${seed[@]}" "$@"
