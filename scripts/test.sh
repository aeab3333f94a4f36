#!/usr/bin/env bash
# The test command: every crate's unit and integration tests, then the real-client
# suites against a real `strom serve`: kcat and confluent-kafka (with the differential
# tests against the reference Apache Kafka), Kafka's Java client, and the Go clients
# (franz-go, Sarama), and the transaction history checker on a 3-node cluster under
# faults (crashes and network isolation). The Java and Go suites skip, saying why, where
# Java, Maven or Go are missing, unless STROM_REQUIRE_KAFKA_REF=1 (as in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
scripts/test-clients.sh
# The binary test-clients.sh built, wherever CARGO_TARGET_DIR puts it.
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
export STROM_BIN="${STROM_BIN:-$target_dir/release/strom}"
# Transactions under faults (issue 16): a three-node Strom, consume-transform-produce
# workers killed and fenced, broker nodes SIGKILLed and isolated from their peers (one
# at a time), the history checked (docs/transactions-testing.md has the long form).
.venv/bin/python tests/txn/run.py --strom cluster --broker-nemesis --partition-nemesis \
  --duration 60 --records 1000 --workers 3
scripts/test-java.sh
scripts/test-go.sh
