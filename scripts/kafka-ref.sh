#!/usr/bin/env bash
# Apache Kafka 4.x beside Strom: a reference broker (one combined broker+controller, KRaft),
# a three-node reference cluster, and Kafka's own command-line tools, assembled from Maven
# Central into a cache directory. Nothing of Kafka is kept in this repository. Described in
# docs/kafka-ref.md.
#
#   scripts/kafka-ref.sh start     assemble (first time), format, start; prints 127.0.0.1:PORT last
#   scripts/kafka-ref.sh stop      SIGTERM, then SIGKILL after KAFKA_REF_STOP_TIMEOUT (30 s)
#   scripts/kafka-ref.sh status    "running ... 127.0.0.1:PORT" (exit 0) or "not running" (exit 1)
#   scripts/kafka-ref.sh cluster-start|cluster-stop|cluster-status
#                                  the same for three nodes (replication factor 3, min ISR 2),
#                                  in KAFKA_REF_DIR/cluster; the bootstrap list is printed last
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
# (more Maven arguments, e.g. -Dmaven.repo.local=DIR), KAFKA_REF_PROPS (more broker settings,
# space-separated key=value, written into every node's server.properties at a fresh start,
# e.g. 'log.flush.interval.messages=1').
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

# A node's directory holds its server.properties, data/, kafka.log and kafka.pid. The
# single broker's is $DIR itself; the cluster's nodes are $DIR/cluster/node-N. The
# bootstrap list is in <home>/bootstrap: $DIR/bootstrap or $DIR/cluster/bootstrap.
home() { if [ "$1" = 1 ]; then echo "$DIR"; else echo "$DIR/cluster"; fi; }
node_dir() { if [ "$1" = 1 ]; then echo "$DIR"; else echo "$DIR/cluster/node-$2"; fi; }

node_alive() { [ -f "$1/kafka.pid" ] && kill -0 "$(cat "$1/kafka.pid")" 2>/dev/null; }

address() { cat "$(home "$1")/bootstrap"; }

# Succeeds when the broker on port $1 answers ApiVersions v0 without error and its
# Metadata v1 lists at least $2 brokers (registered and unfenced) and a controller.
probe() {
  python3 - "$1" "$2" <<'EOF' 2>/dev/null
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
s.settimeout(2)
def call(api, version, corr, body=b""):
    cid = b"kafka-ref"
    req = struct.pack(">hhih", api, version, corr, len(cid)) + cid + body
    s.sendall(struct.pack(">i", len(req)) + req)
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit(1)
        buf += chunk
    if struct.unpack(">i", buf[4:8])[0] != corr:
        sys.exit(1)
    return buf[8:]
if struct.unpack(">h", call(18, 0, 1)[:2])[0] != 0:
    sys.exit(1)
r = call(3, 1, 2, struct.pack(">i", -1))  # Metadata v1, all topics
pos, brokers = 4, struct.unpack(">i", r[:4])[0]
for _ in range(brokers):
    pos += 4
    pos += 2 + struct.unpack(">h", r[pos:pos + 2])[0]  # host
    pos += 4
    rack = struct.unpack(">h", r[pos:pos + 2])[0]
    pos += 2 + max(rack, 0)
controller = struct.unpack(">i", r[pos:pos + 4])[0]
sys.exit(0 if brokers >= int(sys.argv[2]) and controller >= 0 else 1)
EOF
}

# $1 = node dir, $2 = node id, $3 = Kafka port, $4 = controller port, $5 = the voters,
# $6 = the number of nodes (the replication settings follow from it).
write_config() {
  local nd=$1 id=$2 port=$3 cport=$4 voters=$5 nodes=$6 rf isr
  if [ "$nodes" = 1 ]; then rf=1 isr=1; else rf=3 isr=2; fi
  mkdir -p "$nd"
  cat >"$nd/server.properties" <<EOF
# Written by scripts/kafka-ref.sh: combined broker+controller (KRaft), loopback only.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$nd/data

# Like Strom's test broker: topics are auto-created, with 4 partitions.
auto.create.topics.enable=true
num.partitions=4

# Every broker holds a replica ($nodes nodes); internal topics too (Kafka's default of 3
# would fail on one broker). Writes with acks=all need min.insync.replicas of them.
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr

# A group's first rebalance starts at once instead of after 3 s.
group.initial.rebalance.delay.ms=0
EOF
  if [ -n "${KAFKA_REF_PROPS:-}" ]; then
    { echo; echo "# KAFKA_REF_PROPS"; tr ' ' '\n' <<<"$KAFKA_REF_PROPS" | sed '/^$/d'; } >>"$nd/server.properties"
  fi
  cat >"$nd/log4j2.properties" <<'EOF'
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
}

# Formats node dir $1 for cluster id $2 (in the background: the caller waits).
format() {
  "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$CACHE/tools-log4j2.properties" -cp "$CACHE/lib/*" \
    kafka.tools.StorageTool format --config "$1/server.properties" --cluster-id "$2" \
    >"$1/format.log" 2>&1 || { cat "$1/format.log" >&2; return 1; }
}

launch() {
  local nd=$1
  # shellcheck disable=SC2086
  nohup "$JAVA" ${KAFKA_REF_HEAP_OPTS:--Xms128m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$nd/log4j2.properties" \
    -Dkafka.logs.dir="$nd" -cp "$CACHE/lib/*" kafka.Kafka "$nd/server.properties" \
    >>"$nd/kafka.log" 2>&1 </dev/null &
  echo $! >"$nd/kafka.pid"
}

# Starts $1 nodes (1: the reference broker; 3: the cluster), each a combined
# broker+controller, all voters of one static KRaft quorum; prints the bootstrap list last.
up() {
  local n=$1 h i nd nds=() reuse=1
  assemble
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  h=$(home "$n")
  for i in $(seq "$n"); do nds+=("$(node_dir "$n" "$i")"); done
  for nd in "${nds[@]}"; do
    if node_alive "$nd"; then
      echo "already running (pid $(cat "$nd/kafka.pid"))" >&2
      address "$n"
      return
    fi
    [ -f "$nd/data/meta.properties" ] && [ -f "$nd/server.properties" ] || reuse=0
  done
  if [ "${KAFKA_REF_KEEP:-}" = 1 ] && [ "$reuse" = 1 ] && [ -f "$h/bootstrap" ]; then
    echo "kafka-ref: reusing the data and ports of the last run in $h" >&2
  else
    local ports=() p voters="" cluster boot="" pids=()
    [ "$n" = 1 ] && [ -n "${KAFKA_REF_PORT:-}" ] && ports+=("$KAFKA_REF_PORT")
    while [ "${#ports[@]}" -lt $((2 * n)) ]; do
      p=$(free_port)
      [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
    done
    # ports: the Kafka listeners of nodes 1..n, then their controller listeners.
    for i in $(seq "$n"); do voters+="${voters:+,}$i@127.0.0.1:${ports[$((n + i - 1))]}"; done
    # As Kafka's own Uuid.randomUuid: never starting with '-', which the tool would take
    # for an option.
    cluster=$(python3 -c '
import base64, uuid
while (c := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
    pass
print(c)')
    for i in $(seq "$n"); do
      nd=${nds[$((i - 1))]}
      rm -rf "$nd/data"
      write_config "$nd" "$i" "${ports[$((i - 1))]}" "${ports[$((n + i - 1))]}" "$voters" "$n"
      boot+="${boot:+,}127.0.0.1:${ports[$((i - 1))]}"
      format "$nd" "$cluster" &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || die "formatting the storage failed"; done
    echo "$boot" >"$h/bootstrap"
  fi
  # A listener already there (another broker) would answer the readiness probe for us.
  for nd in "${nds[@]}"; do
    for p in $(sed -n 's/^listeners=//p' "$nd/server.properties" | grep -o '127.0.0.1:[0-9]*' | cut -d: -f2); do
      port_free "$p" || die "port $p on 127.0.0.1 is in use"
    done
  done
  for nd in "${nds[@]}"; do launch "$nd"; done
  local deadline=$((SECONDS + ${KAFKA_REF_TIMEOUT:-60} * n)) ready
  while :; do
    ready=0
    for nd in "${nds[@]}"; do
      if ! node_alive "$nd"; then
        tail -40 "$nd/kafka.log" >&2
        rm -f "$nd/kafka.pid"
        down "$n" >&2
        die "Kafka exited while starting (log: $nd/kafka.log)"
      fi
      probe "$(sed -n 's/^advertised.listeners=PLAINTEXT:\/\/127.0.0.1://p' "$nd/server.properties")" "$n" &&
        ready=$((ready + 1))
    done
    [ "$ready" = "$n" ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
      for nd in "${nds[@]}"; do echo "== $nd/kafka.log" >&2; tail -20 "$nd/kafka.log" >&2; done
      down "$n" >&2
      die "Kafka did not answer on $(address "$n") within $((${KAFKA_REF_TIMEOUT:-60} * n)) s"
    fi
    sleep 0.2
  done
  local pids_now=""
  for nd in "${nds[@]}"; do pids_now+="${pids_now:+ }$(cat "$nd/kafka.pid")"; done
  echo "Apache Kafka $VERSION running ($n node(s), pid $pids_now, logs ${nds[0]}/kafka.log ...)" >&2
  address "$n"
}

# SIGTERM to every node at once (Kafka's clean shutdown), SIGKILL to those still alive
# after KAFKA_REF_STOP_TIMEOUT (30 s).
down() {
  local n=$1 nd i pids=() p alive
  for i in $(seq "$n"); do
    nd=$(node_dir "$n" "$i")
    if node_alive "$nd"; then
      pids+=("$(cat "$nd/kafka.pid")")
      kill -TERM "${pids[-1]}"
    fi
  done
  for ((i = 0; i < ${KAFKA_REF_STOP_TIMEOUT:-30} * 10; i++)); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      echo "kafka-ref: pid $p did not exit after SIGTERM, sending SIGKILL" >&2
      kill -KILL "$p" 2>/dev/null || true
      while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
    fi
  done
  for i in $(seq "$n"); do rm -f "$(node_dir "$n" "$i")/kafka.pid"; done
  echo "stopped"
}

state() {
  local n=$1 i nd up=0
  for i in $(seq "$n"); do
    nd=$(node_dir "$n" "$i")
    if node_alive "$nd"; then
      up=$((up + 1))
      [ "$n" = 1 ] || echo "node $i: running (pid $(cat "$nd/kafka.pid"))"
    else
      [ "$n" = 1 ] || echo "node $i: down"
    fi
  done
  if [ "$up" = "$n" ]; then
    echo "running ($([ "$n" = 1 ] && echo "pid $(cat "$DIR/kafka.pid"), ")Apache Kafka $VERSION)"
    address "$n"
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
# As in Kafka's own scripts, a CLASSPATH from the environment comes first (librdkafka's
# java/run-class.sh puts its compiled test clients there), and libs/ holds the jars
# (librdkafka's java/Makefile compiles against $KAFKA_PATH/libs/kafka-clients-*.jar).
kafka_path() {
  assemble
  local name class
  mkdir -p "$CACHE/bin"
  ln -sfn lib "$CACHE/libs"
  for name in $(echo "$TOOLS" | grep -o 'kafka-[a-z0-9-]*'); do
    class=$(tool_class "$name") || class= # kafka-run-class: the class is the first argument
    {
      echo '#!/bin/sh'
      echo "# Written by scripts/kafka-ref.sh kafka-path: Kafka's bin/$name.sh over the cached jars."
      echo "exec \"$JAVA\" \${KAFKA_REF_TOOL_OPTS:--Xmx256m} -Djava.awt.headless=true \\"
      echo "  -Dlog4j2.configurationFile=\"$CACHE/tools-log4j2.properties\" -cp \"\${CLASSPATH:+\$CLASSPATH:}$CACHE/lib/*\" $class \"\$@\""
    } >"$CACHE/bin/$name.sh.tmp"
    chmod +x "$CACHE/bin/$name.sh.tmp"
    mv "$CACHE/bin/$name.sh.tmp" "$CACHE/bin/$name.sh"
  done
  echo "$CACHE"
}

case "${1:-}" in
  start) up 1 ;;
  stop) down 1 ;;
  status) state 1 ;;
  cluster-start) up 3 ;;
  cluster-stop) down 3 ;;
  cluster-status) state 3 ;;
  tool) shift; tool "$@" ;;
  classpath) assemble; echo "$CACHE/lib/*" ;;
  kafka-path) kafka_path ;;
  assemble) assemble; echo "$CACHE" ;;
  *)
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { print }' "$0"
    exit 2
    ;;
esac
