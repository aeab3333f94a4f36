#!/usr/bin/env bash
# Real-client integration tests: builds the release strom binary and runs tests/python
# (pytest + confluent-kafka + kcat) against it. Extra arguments go to pytest.
# Works on a fresh Debian machine as root: installs kcat and python3-venv when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "test-clients.sh: missing $*; install it (apt-get install -y $*) or run as root" >&2
    exit 1
  fi
  apt-get update || exit 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" || exit 1
}

if ! command -v kcat >/dev/null 2>&1; then
  apt_install kcat
fi
if ! command -v python3 >/dev/null 2>&1; then
  apt_install python3 python3-venv
fi

# (Re)create the venv when it is missing or broken (e.g. its python moved).
if ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
  rm -rf .venv
  if ! python3 -m venv .venv; then
    # Debian's python3 has no ensurepip without python3-venv.
    rm -rf .venv
    apt_install python3-venv
    python3 -m venv .venv
  fi
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

cargo build --release -p strom
# The tests run the binary just built, wherever CARGO_TARGET_DIR puts it.
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
export STROM_BIN="${STROM_BIN:-$target_dir/release/strom}"
# No __pycache__ litter in tests/python.
export PYTHONDONTWRITEBYTECODE=1
exec .venv/bin/python -m pytest tests/python -q "$@"
