#!/usr/bin/env bash
# The Java client suite (tests/java, kafka-clients 4.4.0): every case against the reference
# Apache Kafka of scripts/kafka-ref.sh and against Strom, in one Maven run. Builds no Rust:
# the broker is $STROM_BIN (default target/release/strom). Described in docs/java-client.md.
#
#   scripts/test-java.sh                     the whole suite
#   scripts/test-java.sh -Dtest=AdminTest    more Maven arguments, e.g. one class
#
# Environment: STROM_BIN; STROM_MAVEN_REPO (the local Maven repository, default ~/.m2/repository,
# kept between runs so that later runs need no downloads); STROM_REQUIRE_KAFKA_REF=1 makes a
# missing java or mvn a failure instead of a skip.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

missing=()
for tool in java mvn python3; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  msg="the Java client suite needs ${missing[*]} (apt-get install -y openjdk-17-jdk-headless maven)"
  if [ "${STROM_REQUIRE_KAFKA_REF:-}" = 1 ]; then
    echo "test-java: $msg" >&2
    exit 1
  fi
  echo "test-java: skipped: $msg"
  exit 0
fi

STROM_BIN=${STROM_BIN:-$ROOT/target/release/strom}
case "$STROM_BIN" in /*) ;; *) STROM_BIN=$PWD/$STROM_BIN ;; esac
[ -x "$STROM_BIN" ] || { echo "test-java: $STROM_BIN is missing: cargo build --release -p strom, or set STROM_BIN" >&2; exit 1; }
export STROM_BIN

REPO_CACHE=${STROM_MAVEN_REPO:-$HOME/.m2/repository}
cd "$ROOT/tests/java"
exec mvn -q -B -Dmaven.repo.local="$REPO_CACHE" test "$@"
