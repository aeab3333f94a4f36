#!/usr/bin/env bash
# A three-node Strom cluster on this machine: Kafka listeners on 127.0.0.1:9092, 9093
# and 9094, Raft peers on 19092-19094, data in ./cluster-data/node-N, logs in
# ./cluster-data/node-N.log.
#
#   scripts/cluster.sh start     build (release) and start the three nodes
#   scripts/cluster.sh stop      stop them (SIGTERM: a clean shutdown)
#   scripts/cluster.sh status    which nodes run, and the cluster as node 1 sees it
#   scripts/cluster.sh kill N    SIGKILL node N (fault testing)
#   scripts/cluster.sh restart N start node N again
#
# STROM_BIN=path uses a prebuilt binary; CLUSTER_DIR=dir moves the data.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${CLUSTER_DIR:-./cluster-data}
PEERS="1=127.0.0.1:19092,2=127.0.0.1:19093,3=127.0.0.1:19094"

bin() {
  if [ -n "${STROM_BIN:-}" ]; then
    echo "$STROM_BIN"
  else
    echo "${CARGO_TARGET_DIR:-target}/release/strom"
  fi
}

start_node() {
  local n=$1
  local port=$((9091 + n)) peer=$((19091 + n))
  if pid_alive "$n"; then
    echo "node $n already runs (pid $(cat "$DIR/node-$n.pid"))"
    return
  fi
  mkdir -p "$DIR/node-$n"
  nohup "$(bin)" serve \
    --node-id "$n" \
    --listen "127.0.0.1:$port" \
    --peer-listen "127.0.0.1:$peer" \
    --peers "$PEERS" \
    --data-dir "$DIR/node-$n" \
    --metrics-listen "127.0.0.1:$((9643 + n))" \
    >>"$DIR/node-$n.log" 2>&1 &
  echo $! >"$DIR/node-$n.pid"
  echo "node $n: kafka 127.0.0.1:$port, peers 127.0.0.1:$peer, pid $!"
}

pid_alive() {
  [ -f "$DIR/node-$1.pid" ] && kill -0 "$(cat "$DIR/node-$1.pid")" 2>/dev/null
}

case "${1:-}" in
  start)
    if [ -z "${STROM_BIN:-}" ]; then
      cargo build --release -p strom
    fi
    mkdir -p "$DIR"
    for n in 1 2 3; do start_node "$n"; done
    echo "bootstrap servers: 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"
    ;;
  stop)
    for n in 1 2 3; do
      if pid_alive "$n"; then
        kill -TERM "$(cat "$DIR/node-$n.pid")"
      fi
    done
    for n in 1 2 3; do
      while pid_alive "$n"; do sleep 0.1; done
      rm -f "$DIR/node-$n.pid"
    done
    echo "stopped"
    ;;
  kill)
    n=${2:?node id}
    if pid_alive "$n"; then
      kill -KILL "$(cat "$DIR/node-$n.pid")"
      echo "node $n killed"
    fi
    ;;
  restart)
    start_node "${2:?node id}"
    ;;
  status)
    for n in 1 2 3; do
      if pid_alive "$n"; then echo "node $n: running (pid $(cat "$DIR/node-$n.pid"))"; else echo "node $n: down"; fi
    done
    if command -v kcat >/dev/null 2>&1; then
      kcat -b 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094 -L -m 3 2>/dev/null | head -40 || true
    fi
    ;;
  *)
    sed -n '2,12p' "$0"
    exit 2
    ;;
esac
