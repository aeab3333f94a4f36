#!/usr/bin/env bash
# Apache Kafka 4.x beside Strom: a reference broker (one combined broker+controller, KRaft)
# and Kafka's own command-line tools, assembled from Maven Central into a cache directory.
# Nothing of Kafka is kept in this repository. Described in docs/kafka-ref.md.
#
#   scripts/kafka-ref.sh start     assemble (first time), format, start; prints 127.0.0.1:PORT last
#   scripts/kafka-ref.sh stop      SIGTERM, then SIGKILL after KAFKA_REF_STOP_TIMEOUT (30 s)
#   scripts/kafka-ref.sh status    "running ... 127.0.0.1:PORT" (exit 0) or "not running" (exit 1)
#   scripts/kafka-ref.sh tool NAME ARGS...   a Kafka tool against any broker, e.g.
#       scripts/kafka-ref.sh tool kafka-topics --bootstrap-server 127.0.0.1:9092 --list
#   scripts/kafka-ref.sh tool      lists the tool names
#   scripts/kafka-ref.sh classpath the cached jars as a java -cp argument
#   scripts/kafka-ref.sh kafka-path writes <cache>/bin/NAME.sh for every tool and prints <cache>:
#       a KAFKA_PATH for suites that run "$KAFKA_PATH/bin/kafka-topics.sh ..." (librdkafka's)
#   scripts/kafka-ref.sh assemble  only fill the cache
#
# Environment: KAFKA_REF_VERSION (4.4.0), KAFKA_REF_CACHE (~/.cache/strom/kafka-ref/VERSION),
# KAFKA_REF_DIR (target/kafka-ref: config, data, log, pid), KAFKA_REF_PORT (Kafka listener;
# default a free port), KAFKA_REF_KEEP=1 (start on the data of the last run instead of a
# freshly formatted cluster), KAFKA_REF_TIMEOUT (60 s to come up), KAFKA_REF_JAVA (java),
# KAFKA_REF_HEAP_OPTS (-Xms128m -Xmx512m), KAFKA_REF_TOOL_OPTS (-Xmx256m), KAFKA_REF_MVN_ARGS
# (more Maven arguments, e.g. -Dmaven.repo.local=DIR).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=${KAFKA_REF_VERSION:-4.4.0}
CACHE=${KAFKA_REF_CACHE:-$HOME/.cache/strom/kafka-ref/$VERSION}
DIR=${KAFKA_REF_DIR:-$ROOT/target/kafka-ref}
JAVA=${KAFKA_REF_JAVA:-java}
LOG4J_VERSION=2.25.5 # what Kafka 4.4 itself ships
SLF4J_VERSION=2.0.17

die() { echo "kafka-ref: $*" >&2; exit 1; }

# SO_REUSEADDR as Kafka's listeners: a port only in TIME_WAIT (a restart) counts as free.
port_free() {
  python3 -c 'import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The broker (kafka_2.13: kafka.Kafka, kafka.tools.StorageTool), the tools (kafka-tools:
# org.apache.kafka.tools.*) and a log4j2 binding, copied by Maven into $CACHE/lib. Kafka
# Connect's runtime, which kafka-tools pulls in only for its connect-plugin-path tool, is
# left out (Jetty, Jersey: 30 jars).
assemble() {
  [ -f "$CACHE/.complete" ] && return
  command -v mvn >/dev/null || die "mvn not found (apt-get install -y maven)"
  mkdir -p "$(dirname "$CACHE")"
  local tmp
  tmp=$(mktemp -d "$(dirname "$CACHE")/.assemble.XXXXXX")
  cat >"$tmp/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.strom</groupId>
  <artifactId>kafka-ref</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version></dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$VERSION</version>
      <exclusions><exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion></exclusions>
    </dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>$SLF4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
  echo "kafka-ref: assembling Apache Kafka $VERSION into $CACHE (Maven)" >&2
  # shellcheck disable=SC2086
  if ! mvn -q -B ${KAFKA_REF_MVN_ARGS:-} -f "$tmp/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp/lib" >"$tmp/mvn.log" 2>&1; then
    tail -30 "$tmp/mvn.log" >&2
    rm -rf "$tmp"
    die "Maven could not resolve Kafka $VERSION"
  fi
  # Tools log warnings and errors only, to stderr, like Kafka's tools-log4j2.yaml.
  cat >"$tmp/tools-log4j2.properties" <<'EOF'
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
EOF
  touch "$tmp/.complete"
  rm -rf "$CACHE"
  mv "$tmp" "$CACHE"
}

pid_alive() { [ -f "$DIR/kafka.pid" ] && kill -0 "$(cat "$DIR/kafka.pid")" 2>/dev/null; }

address() { cat "$DIR/bootstrap"; }

# One ApiVersions v0 request; succeeds when the broker answers it without error.
probe() {
  python3 - "$1" <<'EOF' 2>/dev/null
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
s.settimeout(2)
cid = b"kafka-ref"
req = struct.pack(">hhih", 18, 0, 1, len(cid)) + cid
s.sendall(struct.pack(">i", len(req)) + req)
buf = b""
while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
    chunk = s.recv(65536)
    if not chunk:
        sys.exit(1)
    buf += chunk
corr, err = struct.unpack(">ih", buf[4:10])
sys.exit(0 if corr == 1 and err == 0 else 1)
EOF
}

write_config() {
  local port=$1 cport=$2
  cat >"$DIR/server.properties" <<EOF
# Written by scripts/kafka-ref.sh: one combined broker+controller (KRaft), loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$DIR/data

# Like Strom's test broker: topics are auto-created, with 4 partitions.
auto.create.topics.enable=true
num.partitions=4
default.replication.factor=1

# One broker: internal topics with one replica (Kafka's defaults are 3 and would fail).
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# A group's first rebalance starts at once instead of after 3 s.
group.initial.rebalance.delay.ms=0
EOF
  cat >"$DIR/log4j2.properties" <<'EOF'
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
EOF
  echo "127.0.0.1:$port" >"$DIR/bootstrap"
}

start() {
  assemble
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  if pid_alive; then
    echo "already running (pid $(cat "$DIR/kafka.pid"))" >&2
    address
    return
  fi
  if [ "${KAFKA_REF_KEEP:-}" = 1 ] && [ -f "$DIR/data/meta.properties" ] && [ -f "$DIR/server.properties" ]; then
    echo "kafka-ref: reusing the data and ports of the last run in $DIR" >&2
  else
    local port cport cluster
    port=${KAFKA_REF_PORT:-$(free_port)}
    cport=$(free_port)
    while [ "$cport" = "$port" ]; do cport=$(free_port); done
    rm -rf "$DIR/data"
    write_config "$port" "$cport"
    cluster=$(python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')
    "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$CACHE/tools-log4j2.properties" -cp "$CACHE/lib/*" \
      kafka.tools.StorageTool format --config "$DIR/server.properties" --cluster-id "$cluster" \
      >"$DIR/format.log" 2>&1 || { cat "$DIR/format.log" >&2; die "formatting the storage failed"; }
  fi
  local port p
  port=$(address)
  port=${port##*:}
  # A listener already there (another broker) would answer the readiness probe for us.
  for p in "$port" "$(sed -n 's/^controller.quorum.voters=1@127.0.0.1://p' "$DIR/server.properties")"; do
    port_free "$p" || die "port $p on 127.0.0.1 is in use"
  done
  # shellcheck disable=SC2086
  nohup "$JAVA" ${KAFKA_REF_HEAP_OPTS:--Xms128m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$DIR/log4j2.properties" \
    -Dkafka.logs.dir="$DIR" -cp "$CACHE/lib/*" kafka.Kafka "$DIR/server.properties" \
    >>"$DIR/kafka.log" 2>&1 </dev/null &
  echo $! >"$DIR/kafka.pid"
  local deadline=$((SECONDS + ${KAFKA_REF_TIMEOUT:-60}))
  until probe "$port"; do
    if ! pid_alive; then
      tail -40 "$DIR/kafka.log" >&2
      rm -f "$DIR/kafka.pid"
      die "Kafka exited while starting (log: $DIR/kafka.log)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -40 "$DIR/kafka.log" >&2
      stop >&2
      die "Kafka did not answer on $(address) within ${KAFKA_REF_TIMEOUT:-60} s (log: $DIR/kafka.log)"
    fi
    sleep 0.2
  done
  echo "Apache Kafka $VERSION running (pid $(cat "$DIR/kafka.pid"), log $DIR/kafka.log)" >&2
  address
}

stop() {
  if pid_alive; then
    local pid i
    pid=$(cat "$DIR/kafka.pid")
    kill -TERM "$pid"
    for ((i = 0; i < ${KAFKA_REF_STOP_TIMEOUT:-30} * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "kafka-ref: no exit after SIGTERM, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
  fi
  rm -f "$DIR/kafka.pid"
  echo "stopped"
}

status() {
  if pid_alive; then
    echo "running (pid $(cat "$DIR/kafka.pid"), Apache Kafka $VERSION)"
    address
  else
    echo "not running"
    return 1
  fi
}

# Kafka's bin/*.sh names and the classes they run in Kafka 4.x.
tool_class() {
  case "$1" in
    kafka-topics) echo org.apache.kafka.tools.TopicCommand ;;
    kafka-console-producer) echo org.apache.kafka.tools.ConsoleProducer ;;
    kafka-console-consumer) echo org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    kafka-console-share-consumer) echo org.apache.kafka.tools.consumer.ConsoleShareConsumer ;;
    kafka-consumer-groups) echo org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    kafka-share-groups) echo org.apache.kafka.tools.consumer.group.ShareGroupCommand ;;
    kafka-streams-groups) echo org.apache.kafka.tools.streams.StreamsGroupCommand ;;
    kafka-groups) echo org.apache.kafka.tools.GroupsCommand ;;
    kafka-configs) echo org.apache.kafka.tools.ConfigCommand ;;
    kafka-producer-perf-test) echo org.apache.kafka.tools.ProducerPerformance ;;
    kafka-consumer-perf-test) echo org.apache.kafka.tools.ConsumerPerformance ;;
    kafka-share-consumer-perf-test) echo org.apache.kafka.tools.ShareConsumerPerformance ;;
    kafka-e2e-latency) echo org.apache.kafka.tools.EndToEndLatency ;;
    kafka-get-offsets) echo org.apache.kafka.tools.GetOffsetShell ;;
    kafka-delete-records) echo org.apache.kafka.tools.DeleteRecordsCommand ;;
    kafka-broker-api-versions) echo org.apache.kafka.tools.BrokerApiVersionsCommand ;;
    kafka-transactions) echo org.apache.kafka.tools.TransactionsCommand ;;
    kafka-acls) echo org.apache.kafka.tools.AclCommand ;;
    kafka-log-dirs) echo org.apache.kafka.tools.LogDirsCommand ;;
    kafka-leader-election) echo org.apache.kafka.tools.LeaderElectionCommand ;;
    kafka-reassign-partitions) echo org.apache.kafka.tools.reassign.ReassignPartitionsCommand ;;
    kafka-features) echo org.apache.kafka.tools.FeatureCommand ;;
    kafka-metadata-quorum) echo org.apache.kafka.tools.MetadataQuorumCommand ;;
    kafka-cluster) echo org.apache.kafka.tools.ClusterTool ;;
    kafka-client-metrics) echo org.apache.kafka.tools.ClientMetricsCommand ;;
    kafka-delegation-tokens) echo org.apache.kafka.tools.DelegationTokenCommand ;;
    kafka-verifiable-producer) echo org.apache.kafka.tools.VerifiableProducer ;;
    kafka-verifiable-consumer) echo org.apache.kafka.tools.VerifiableConsumer ;;
    kafka-streams-application-reset) echo org.apache.kafka.tools.StreamsResetter ;;
    kafka-dump-log) echo org.apache.kafka.tools.DumpLogSegments ;;
    kafka-storage) echo kafka.tools.StorageTool ;;
    *) return 1 ;;
  esac
}

TOOLS="kafka-topics kafka-console-producer kafka-console-consumer kafka-console-share-consumer
kafka-consumer-groups kafka-share-groups kafka-streams-groups kafka-groups kafka-configs
kafka-producer-perf-test kafka-consumer-perf-test kafka-share-consumer-perf-test kafka-e2e-latency
kafka-get-offsets kafka-delete-records kafka-broker-api-versions kafka-transactions kafka-acls
kafka-log-dirs kafka-leader-election kafka-reassign-partitions kafka-features kafka-metadata-quorum
kafka-cluster kafka-client-metrics kafka-delegation-tokens kafka-verifiable-producer
kafka-verifiable-consumer kafka-streams-application-reset kafka-dump-log kafka-storage
kafka-run-class (then a class name)"

tool() {
  if [ $# -eq 0 ]; then
    echo "$TOOLS"
    return
  fi
  local name=${1%.sh} class
  shift
  if [ "$name" = kafka-run-class ]; then
    class=${1:?kafka-run-class needs a class name}
    shift
  else
    class=$(tool_class "$name") || die "unknown tool $name; known: $(echo "$TOOLS" | tr '\n' ' ')"
  fi
  assemble
  # shellcheck disable=SC2086
  exec "$JAVA" ${KAFKA_REF_TOOL_OPTS:--Xmx256m} -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$CACHE/tools-log4j2.properties" -cp "$CACHE/lib/*" "$class" "$@"
}

# A Kafka distribution's bin/NAME.sh for every tool, over the cached jars, for test suites
# that run "$KAFKA_PATH/bin/kafka-topics.sh ..." (librdkafka's). Written on every call (a
# few small files), so a changed java takes effect; the cache is not in the repository.
kafka_path() {
  assemble
  local name class
  mkdir -p "$CACHE/bin"
  for name in $(echo "$TOOLS" | grep -o 'kafka-[a-z0-9-]*'); do
    class=$(tool_class "$name") || class= # kafka-run-class: the class is the first argument
    {
      echo '#!/bin/sh'
      echo "# Written by scripts/kafka-ref.sh kafka-path: Kafka's bin/$name.sh over the cached jars."
      echo "exec \"$JAVA\" \${KAFKA_REF_TOOL_OPTS:--Xmx256m} -Djava.awt.headless=true \\"
      echo "  -Dlog4j2.configurationFile=\"$CACHE/tools-log4j2.properties\" -cp \"$CACHE/lib/*\" $class \"\$@\""
    } >"$CACHE/bin/$name.sh.tmp"
    chmod +x "$CACHE/bin/$name.sh.tmp"
    mv "$CACHE/bin/$name.sh.tmp" "$CACHE/bin/$name.sh"
  done
  echo "$CACHE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  tool) shift; tool "$@" ;;
  classpath) assemble; echo "$CACHE/lib/*" ;;
  kafka-path) kafka_path ;;
  assemble) assemble; echo "$CACHE" ;;
  *)
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { print }' "$0"
    exit 2
    ;;
esac
