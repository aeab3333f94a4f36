"""The brokers a run targets, and how the nemesis kills and restarts their nodes.

`Target` is what run.py needs of a broker: a bootstrap address, topic creation, a stop, and
optionally `nodes`, a `BrokerNodes`: the small interface the broker nemesis drives
(ids, running, kill with SIGKILL, restart on the same data and ports), and `network`, a
`partition.NetworkFaults` for the partition nemesis (only a Strom cluster started with
peer proxies has one). Implementations of `BrokerNodes`:

- `KafkaRefNodes`: the reference Kafka cluster of scripts/kafka-ref.sh (`cluster-start`);
  a node's java process is found from its pid file KAFKA_REF_DIR/cluster/node-N/kafka.pid.
  Its command line is read from /proc before the kill and run again for the restart, with
  the new pid written back to the pid file, so that `cluster-stop` stops it as its own.
- `StromNodes`: a three-node Strom cluster of tests/python/cluster_util.py (`Cluster`).

Targets: `ExistingTarget` (a running broker, no node nemesis), `KafkaRefTarget` (starts and
stops scripts/kafka-ref.sh's single broker or cluster in a KAFKA_REF_DIR of the run's
own), `StromTarget` (one `strom serve`, or a Cluster, as the Python tests start them; with
`proxies`, the Cluster's peer proxies, which the partition nemesis needs).
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from partition import NetworkFaults, StromNetwork

REPO = Path(__file__).resolve().parents[2]
KAFKA_REF = REPO / "scripts" / "kafka-ref.sh"


def api_versions_ok(port: int, timeout: float = 2.0) -> bool:
    """One ApiVersions v0 request to 127.0.0.1:port, answered without error."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            cid = b"strom-txn"
            body = struct.pack(">hhih", 18, 0, 1, len(cid)) + cid
            s.sendall(struct.pack(">i", len(body)) + body)
            buf = b""
            while len(buf) < 10:
                chunk = s.recv(4096)
                if not chunk:
                    return False
                buf += chunk
            _size, corr, err = struct.unpack(">iih", buf[:10])
            return corr == 1 and err == 0
    except OSError:
        return False


class BrokerNodes:
    """The nodes of a cluster, for the broker nemesis."""

    def ids(self) -> list[int]:
        raise NotImplementedError

    def running(self, i: int) -> bool:
        raise NotImplementedError

    def kill(self, i: int) -> None:
        """SIGKILL node i (a crash: no shutdown code runs)."""
        raise NotImplementedError

    def restart(self, i: int, timeout: float = 90.0) -> None:
        """Starts node i again on its data and ports; returns once it answers."""
        raise NotImplementedError


class KafkaRefNodes(BrokerNodes):
    def __init__(self, ref_dir: Path):
        self.cluster = Path(ref_dir) / "cluster"
        self.cmdlines: dict[int, list[str]] = {}

    def _dir(self, i: int) -> Path:
        return self.cluster / f"node-{i}"

    def _pid(self, i: int) -> int | None:
        try:
            return int((self._dir(i) / "kafka.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _port(self, i: int) -> int:
        for line in (self._dir(i) / "server.properties").read_text().splitlines():
            if line.startswith("advertised.listeners="):
                return int(line.rsplit(":", 1)[1])
        raise RuntimeError(f"no advertised.listeners in node {i}'s server.properties")

    def ids(self) -> list[int]:
        return sorted(int(d.name.split("-")[1]) for d in self.cluster.glob("node-*"))

    def running(self, i: int) -> bool:
        pid = self._pid(i)
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # A zombie child (a node this process restarted, killed, not yet reaped) is dead.
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
        except (FileNotFoundError, IndexError):
            return False

    def kill(self, i: int) -> None:
        pid = self._pid(i)
        assert pid is not None and self.running(i), f"kafka node {i} is not running"
        self.cmdlines[i] = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self.running(i):
            if time.monotonic() > deadline:
                raise RuntimeError(f"kafka node {i} (pid {pid}) survived SIGKILL")
            time.sleep(0.05)
        with open(self._dir(i) / "kafka.log", "ab") as log:
            log.write(f"==== {time.strftime('%H:%M:%S')} strom-txn nemesis: SIGKILL pid {pid}\n".encode())

    def restart(self, i: int, timeout: float = 90.0) -> None:
        cmd = self.cmdlines.get(i)
        assert cmd, f"kafka node {i} was not killed by this nemesis: no command line to restart"
        log = self._dir(i) / "kafka.log"
        with open(log, "ab") as f:
            f.write(f"==== {time.strftime('%H:%M:%S')} strom-txn nemesis: restart\n".encode())
        # In the background of a shell that exits at once, as scripts/kafka-ref.sh starts
        # it: the JVM is not this process's child, so it is reaped when it exits (a child
        # left unreaped would look alive to cluster-stop's `kill -0` forever).
        out = subprocess.run(
            ["bash", "-c", 'log=$1; shift; nohup "$@" >>"$log" 2>&1 </dev/null & echo $!', "_", str(log), *cmd],
            capture_output=True, text=True, timeout=30, start_new_session=True,
        )
        pid = int(out.stdout.strip())
        (self._dir(i) / "kafka.pid").write_text(f"{pid}\n")
        port = self._port(i)
        deadline = time.monotonic() + timeout
        while not api_versions_ok(port):
            if not self.running(i):
                raise RuntimeError(f"kafka node {i} exited on restart (see {log})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"kafka node {i} did not answer within {timeout}s of its restart")
            time.sleep(0.2)


class StromNodes(BrokerNodes):
    def __init__(self, cluster):
        self.c = cluster

    def ids(self) -> list[int]:
        return self.c.ids

    def running(self, i: int) -> bool:
        return self.c[i].running()

    def kill(self, i: int) -> None:
        self.c.kill(i)

    def restart(self, i: int, timeout: float = 90.0) -> None:
        self.c.start(i, timeout)


class Target:
    name = "?"
    bootstrap = ""
    nodes: BrokerNodes | None = None
    network: NetworkFaults | None = None
    replication = -1  # the broker's default

    def start(self) -> None:
        pass

    def stop(self) -> list[str]:
        """Stops what start() started; returns problems."""
        return []

    def create_topic(self, topic: str, partitions: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            a = AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 10000})
            fs = a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=self.replication)],
                                 operation_timeout=20, request_timeout=30)
            try:
                fs[topic].result(timeout=40)
                break
            except KafkaException as e:
                err = e.args[0]
                if err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    break
                if time.monotonic() > deadline or not err.retriable():
                    raise
                time.sleep(0.5)
        # Every partition with a leader.
        while True:
            md = AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(topic, timeout=10)
            t = md.topics.get(topic)
            if t is not None and t.error is None and len(t.partitions) == partitions and all(
                p.leader >= 0 and p.error is None for p in t.partitions.values()
            ):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{topic}: partitions without a leader after {timeout}s")
            time.sleep(0.3)


class ExistingTarget(Target):
    def __init__(self, bootstrap: str):
        self.name = f"bootstrap {bootstrap}"
        self.bootstrap = bootstrap


class KafkaRefTarget(Target):
    def __init__(self, mode: str, ref_dir: Path):
        assert mode in ("single", "cluster")
        self.mode = mode
        self.name = f"kafka-ref {mode}"
        self.ref_dir = Path(ref_dir)
        self.env = {**os.environ, "KAFKA_REF_DIR": str(self.ref_dir)}
        self.started = False

    def _script(self, cmd: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run([str(KAFKA_REF), cmd], env=self.env, capture_output=True, text=True, timeout=timeout)

    def start(self) -> None:
        self.ref_dir.mkdir(parents=True, exist_ok=True)
        r = self._script("start" if self.mode == "single" else "cluster-start", 600)
        if r.returncode != 0:
            raise RuntimeError(f"scripts/kafka-ref.sh did not start:\n{r.stdout}\n{r.stderr}")
        self.started = True
        self.bootstrap = r.stdout.strip().splitlines()[-1]
        if self.mode == "cluster":
            self.nodes = KafkaRefNodes(self.ref_dir)

    def stop(self) -> list[str]:
        if not self.started:
            return []
        r = self._script("stop" if self.mode == "single" else "cluster-stop", 300)
        return [] if r.returncode == 0 else [f"kafka-ref stop exited {r.returncode}: {r.stderr}"]


class StromTarget(Target):
    ARGS = ["--group-initial-rebalance-delay-ms", "0"]

    def __init__(self, mode: str, base: Path, proxies: bool = False):
        assert mode in ("single", "cluster")
        assert not proxies or mode == "cluster", "peer proxies need the cluster"
        sys.path.insert(0, str(REPO / "tests" / "python"))
        self.mode = mode
        self.proxies = proxies
        self.name = f"strom {mode}" + (" (peer proxies)" if proxies else "")
        self.base = Path(base)
        self.broker = None
        self.cluster = None

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        if self.mode == "single":
            from conftest import StromBroker

            self.broker = StromBroker(self.base / "data", self.base / "strom.stderr",
                                      ["--default-partitions", "4", *self.ARGS])
            self.broker.start()
            self.bootstrap = self.broker.bootstrap
        else:
            from cluster_util import Cluster

            self.cluster = Cluster(self.base, proxies=self.proxies, args=self.ARGS)
            self.cluster.start_all()
            self.bootstrap = self.cluster.bootstrap()
            self.nodes = StromNodes(self.cluster)
            if self.proxies:
                self.network = StromNetwork(self.cluster)
            self.replication = 3

    def create_topic(self, topic: str, partitions: int, timeout: float = 60.0) -> None:
        if self.cluster is not None:
            self.cluster.create_topic(topic, partitions, rf=3, timeout=timeout)
        else:
            super().create_topic(topic, partitions, timeout)

    def stop(self) -> list[str]:
        if self.broker is not None:
            rc = self.broker.stop()
            return [] if rc == 0 else [f"strom exited {rc} after SIGTERM"]
        if self.cluster is not None:
            return self.cluster.shutdown()
        return []
