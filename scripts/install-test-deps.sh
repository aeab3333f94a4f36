#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain. Idempotent; run by
# .ci/run on a fresh machine, and safe to run by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
