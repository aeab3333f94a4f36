#!/usr/bin/env bash
# The test command: every crate's unit and integration tests, then the real-client
# suites against a real `strom serve`: kcat and confluent-kafka (with the differential
# tests against the reference Apache Kafka), Kafka's Java client, and the Go clients
# (franz-go, Sarama). The Java and Go suites skip, saying why, where Java, Maven or Go
# are missing, unless STROM_REQUIRE_KAFKA_REF=1 (as in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
scripts/test-clients.sh
# The binary test-clients.sh built, wherever CARGO_TARGET_DIR puts it.
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
export STROM_BIN="${STROM_BIN:-$target_dir/release/strom}"
scripts/test-java.sh
scripts/test-go.sh
