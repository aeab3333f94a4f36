#!/usr/bin/env bash
# The test command: every crate's unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"
