#!/usr/bin/env bash
# The test command: every crate's unit and integration tests, then the real-client
# suite (kcat and confluent-kafka against a real `strom serve`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
scripts/test-clients.sh
