#!/usr/bin/env bash
# Go client tests (tests/go, docs/go-clients.md): franz-go (kgo, kadm), the current Sarama
# and Sarama 1.38.1, each scenario against the reference Apache Kafka 4.4
# (scripts/kafka-ref.sh) and against Strom in one `go test` run per module.
#
#   scripts/test-go.sh                 every module
#   scripts/test-go.sh -v -run Kadm    extra arguments go to each `go test`
#
# Environment: STROM_BIN (default target/release/strom, which this script does not
# build), STROM_OLD_VERSIONS=0 (skip old Sarama's Strom side), STROM_REQUIRE_KAFKA_REF=1
# (a missing go, java or mvn is a failure instead of a skip), STROM_TEST_LOG (Strom's log
# filter). Modules come from the Go module proxy into the default module cache; go.sum
# is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

missing=()
for tool in go java mvn; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  msg="test-go.sh: skipped, ${missing[*]} not found (the Go tests need go, and java and mvn for the reference Kafka)"
  if [ "${STROM_REQUIRE_KAFKA_REF:-}" = 1 ]; then
    echo "$msg; STROM_REQUIRE_KAFKA_REF=1 makes that a failure" >&2
    exit 1
  fi
  echo "$msg"
  exit 0
fi

export STROM_BIN="${STROM_BIN:-$root/target/release/strom}"
case "$STROM_BIN" in /*) ;; *) STROM_BIN="$root/$STROM_BIN" ;; esac
if [ ! -x "$STROM_BIN" ]; then
  echo "test-go.sh: $STROM_BIN is missing: run \`cargo build --release -p strom\` or set STROM_BIN" >&2
  exit 1
fi

# One module at a time: each starts its own Kafka and Strom, and the machine has few cores.
failed=()
for module in tests/go tests/go/sarama-old; do
  echo "== $module"
  if ! (cd "$module" && go test -count=1 -timeout 10m ./... "$@"); then
    failed+=("$module")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "test-go.sh: failed: ${failed[*]}" >&2
  exit 1
fi
