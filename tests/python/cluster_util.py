"""A three-node Strom cluster for tests: real `strom serve` processes on free ports, one
data dir and one log file per node, and optionally a fault-injecting TCP proxy in front of
every node's Raft peer port.

Peer traffic (crates/strom-raft/src/transport.rs) flows one way per connection: the
dialling node sends an 18-byte hello (b"STRMPEER", u16 version, u64 big-endian sender id)
and then frames; the accepting node never writes back. A node binds `--peer-listen`
(its real peer port) while the others dial the address in `--peers`; with proxies that
address is the proxy's, so the proxy of node B sees every connection A -> B, learns A from
the hello, and can drop the pair (A, B): existing connections are cut, and new ones are accepted but
everything sent on them is thrown away, so every message A sends B is lost until the pair
is healed (then those connections are closed and A redials through the proxy).

Leaders come from Metadata (confluent_kafka AdminClient) asked of one chosen node: a node
answers with its own Raft view of the partition, which is what a client gets from it.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parents[2]
TARGET_DIR = REPO / os.environ.get("CARGO_TARGET_DIR", "target")
STROM_BIN = Path(os.environ.get("STROM_BIN", TARGET_DIR / "release" / "strom"))

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
PEER_MAGIC = b"STRMPEER"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    """Polls `predicate` until it returns something truthy (returned), or fails after
    `timeout` seconds naming `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def api_versions_ok(addr: tuple[str, int], timeout: float = 2.0) -> bool:
    """One ApiVersions v0 request; True if answered with error 0."""
    try:
        with socket.create_connection(addr, timeout=timeout) as s:
            client = b"strom-cluster-test"
            body = struct.pack(">hhih", 18, 0, 7, len(client)) + client
            s.sendall(struct.pack(">i", len(body)) + body)
            buf = b""
            while len(buf) < 10:
                chunk = s.recv(4096)
                if not chunk:
                    return False
                buf += chunk
            _size, corr, err = struct.unpack(">iih", buf[:10])
            return corr == 7 and err == 0
    except OSError:
        return False


# ---------------------------------------------------------------------------------------
# Fault-injecting peer proxy


class _Link:
    def __init__(self, sender: int, a: socket.socket, b: socket.socket):
        self.sender = sender
        self.a = a
        self.b = b
        self.closed = False

    def close(self):
        if self.closed:
            return
        self.closed = True
        for s in (self.a, self.b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass


class PeerProxy:
    """A threaded TCP proxy in front of one node's Raft peer port."""

    def __init__(self, node_id: int, upstream_port: int):
        self.node_id = node_id
        self.upstream_port = upstream_port
        self.blocked: set[int] = set()  # senders whose traffic to this node is dropped
        self.lock = threading.Lock()
        self.links: list[_Link] = []
        self.swallowed: dict[int, int] = {}
        self.forwarded: dict[int, int] = {}
        self.closed = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept_loop, name=f"proxy-{node_id}", daemon=True).start()

    def _accept_loop(self):
        while not self.closed:
            try:
                a, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(a,), daemon=True).start()

    @staticmethod
    def _recv_exact(s: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _handle(self, a: socket.socket):
        try:
            a.settimeout(5.0)
            hello = self._recv_exact(a, 18)
        except OSError:
            hello = None
        if hello is None or hello[:8] != PEER_MAGIC:
            a.close()
            return
        sender = int.from_bytes(hello[10:18], "big")
        with self.lock:
            if self.closed:
                a.close()
                return
            if sender in self.blocked:
                self.swallowed[sender] = self.swallowed.get(sender, 0) + 1
                blocked = True
            else:
                blocked = False
        if blocked:
            self._sink(a, sender, None)
            return
        try:
            b = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2.0)
            b.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            b.sendall(hello)
        except OSError:
            # The node is down: swallow what comes for a second, then close (the dialler
            # redials), rather than have it redial at once in a tight loop.
            self._sink(a, sender, time.monotonic() + 1.0)
            return
        a.settimeout(None)
        b.settimeout(None)
        a.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(sender, a, b)
        with self.lock:
            if sender in self.blocked or self.closed:
                link.close()
                return
            self.links.append(link)
        threading.Thread(target=self._pump, args=(link, a, b, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(link, b, a, False), daemon=True).start()

    def _pump(self, link: _Link, src: socket.socket, dst: socket.socket, count: bool):
        try:
            while True:
                data = src.recv(65536)
                if not data or link.closed:
                    break
                dst.sendall(data)
                if count:
                    self.forwarded[link.sender] = self.forwarded.get(link.sender, 0) + len(data)
        except OSError:
            pass
        finally:
            link.close()
            with self.lock:
                if link in self.links:
                    self.links.remove(link)

    def _sink(self, a: socket.socket, sender: int, until: float | None):
        """Reads and discards what `sender` sends on `a` (the connection stays up, its
        messages vanish) until the pair is unblocked, `until` passes, or it closes."""
        a.settimeout(0.2)
        try:
            while not self.closed:
                if until is not None and time.monotonic() > until:
                    break
                if until is None and sender not in self.blocked:
                    break  # healed: close, so the dialler reconnects through the proxy
                try:
                    if not a.recv(65536):
                        break
                except socket.timeout:
                    continue
        except OSError:
            pass
        finally:
            try:
                a.close()
            except OSError:
                pass

    def block(self, sender: int):
        """Drops everything `sender` sends this node, from now until unblock(): its open
        connections are cut, and new ones accepted but their bytes thrown away."""
        with self.lock:
            self.blocked.add(sender)
            victims = [l for l in self.links if l.sender == sender]
        for l in victims:
            l.close()

    def unblock(self, sender: int):
        with self.lock:
            self.blocked.discard(sender)

    def close(self):
        with self.lock:
            self.closed = True
            links = list(self.links)
        try:
            self.sock.close()
        except OSError:
            pass
        for l in links:
            l.close()


# ---------------------------------------------------------------------------------------
# Nodes


class Node:
    def __init__(self, node_id: int, base: Path):
        self.id = node_id
        self.port = free_port()
        self.peer_port = free_port()
        self.data_dir = base / f"node-{node_id}"
        self.log_path = base / f"node-{node_id}.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.args: list[str] = []
        # Extra environment for this node (e.g. STROM_FAULTS).
        self.env: dict[str, str] = {}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _log(self, line: str):
        with open(self.log_path, "ab") as log:
            log.write(f"==== {time.strftime('%H:%M:%S')} {line}\n".encode())

    def spawn(self, log_filter: str):
        assert not self.running(), f"node {self.id} already runs"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("STROM_")}
        env.setdefault("RUST_BACKTRACE", "1")
        env["NO_COLOR"] = "1"
        env["STROM_LOG"] = log_filter
        env.update(self.env)
        cmd = [str(STROM_BIN), "serve", *self.args]
        self.starts += 1
        # The lead may be rebuilding the binary: wait for it briefly.
        deadline = time.monotonic() + 60
        while True:
            try:
                self._log(f"start #{self.starts}: {' '.join(cmd)}")
                with open(self.log_path, "ab") as log:
                    self.proc = subprocess.Popen(
                        cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
                    )
                return
            except OSError as e:  # missing, or "text file busy" while being written
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cannot start {STROM_BIN}: {e}")
                time.sleep(1.0)

    def wait_ready(self, timeout: float = START_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError(f"node {self.id} exited with {rc} while starting:\n{self.log_tail(60)}")
            if api_versions_ok(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise RuntimeError(f"node {self.id} did not answer within {timeout}s:\n{self.log_tail(60)}")

    def kill(self):
        assert self.running(), f"node {self.id} is not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT_S)
        self._log("killed with SIGKILL")

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code (a hang is killed and reported)."""
        if not self.running():
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._log("did not stop after SIGTERM: killed")
            raise AssertionError(f"node {self.id} did not stop within {STOP_TIMEOUT_S}s of SIGTERM")
        self._log(f"stopped with SIGTERM: exit {rc}")
        return rc

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 200) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def partition_log(self, topic: str, partition: int) -> bytes:
        """The node's log of the partition: its segment files' bytes in name order."""
        d = self.data_dir / f"{topic}-{partition}"
        out = []
        for f in sorted(d.glob("*.log")):
            try:
                out.append(f.read_bytes())
            except FileNotFoundError:  # a segment removed meanwhile
                pass
        return b"".join(out)


class Cluster:
    """Three strom nodes (ids 1..3) on free ports; `proxies=True` puts a PeerProxy in front
    of every node's peer port (block/isolate/heal)."""

    def __init__(self, base: Path, proxies: bool = False, args: list[str] | None = None,
                 log_filter: str | None = None, size: int = 3):
        self.base = base
        self.log_filter = log_filter or os.environ.get("STROM_TEST_LOG", "info,strom_broker=debug")
        self.nodes: dict[int, Node] = {i: Node(i, base) for i in range(1, size + 1)}
        self.proxies: dict[int, PeerProxy] = {}
        if proxies:
            for i, n in self.nodes.items():
                self.proxies[i] = PeerProxy(i, n.peer_port)
        peers = ",".join(
            f"{i}=127.0.0.1:{self.proxies[i].port if proxies else n.peer_port}"
            for i, n in self.nodes.items()
        )
        for i, n in self.nodes.items():
            n.args = [
                "--node-id", str(i),
                "--listen", n.bootstrap,
                "--peer-listen", f"127.0.0.1:{n.peer_port}",
                "--peers", peers,
                "--data-dir", str(n.data_dir),
                "--metrics-listen", "",
                *(args or []),
            ]

    # -- processes ------------------------------------------------------------------------

    def __getitem__(self, i: int) -> Node:
        return self.nodes[i]

    @property
    def ids(self) -> list[int]:
        return sorted(self.nodes)

    def running_ids(self) -> list[int]:
        return [i for i in self.ids if self.nodes[i].running()]

    def bootstrap(self, ids=None) -> str:
        ids = self.ids if ids is None else ids
        return ",".join(self.nodes[i].bootstrap for i in ids)

    def start_all(self, timeout: float = START_TIMEOUT_S):
        for n in self.nodes.values():
            n.spawn(self.log_filter)
        for n in self.nodes.values():
            n.wait_ready(timeout)
        self.wait_formed(timeout)

    def start(self, i: int, timeout: float = START_TIMEOUT_S):
        self.nodes[i].spawn(self.log_filter)
        self.nodes[i].wait_ready(timeout)

    def kill(self, i: int):
        self.nodes[i].kill()

    def kill_all(self):
        """SIGKILL all running nodes at (nearly) the same moment."""
        live = [n for n in self.nodes.values() if n.running()]
        for n in live:
            n.proc.send_signal(signal.SIGKILL)
        for n in live:
            n.proc.wait(timeout=STOP_TIMEOUT_S)
            n._log("killed with SIGKILL (whole cluster)")

    def stop(self, i: int) -> int:
        return self.nodes[i].stop()

    def restart_all(self, timeout: float = START_TIMEOUT_S):
        """Starts every node that is not running (all at once) and waits until the cluster
        has formed again."""
        down = [n for n in self.nodes.values() if not n.running()]
        for n in down:
            n.spawn(self.log_filter)
        for n in down:
            n.wait_ready(timeout)
        self.wait_formed(timeout)

    def shutdown(self) -> list[str]:
        """SIGTERM to every node in parallel; returns problems (bad exits, panics)."""
        problems = []
        with ThreadPoolExecutor(len(self.nodes)) as ex:
            futs = {i: ex.submit(n.stop) for i, n in self.nodes.items()}
            for i, f in futs.items():
                try:
                    rc = f.result()
                    if rc not in (0, -9):
                        problems.append(f"node {i} exited with {rc} after SIGTERM")
                except AssertionError as e:
                    problems.append(str(e))
        for p in self.proxies.values():
            p.close()
        for i, n in self.nodes.items():
            if "panicked" in n.log_text():
                problems.append(f"node {i} panicked (see {n.log_path})")
        return problems

    def report(self, lines: int = 150) -> str:
        out = []
        for i, n in self.nodes.items():
            out.append(f"----- node {i} ({n.log_path}), last {lines} lines -----")
            out.append(n.log_tail(lines))
        for i, p in self.proxies.items():
            out.append(f"proxy {i}: blocked {sorted(p.blocked)} swallowed connections {p.swallowed} forwarded {p.forwarded}")
        return "\n".join(out)

    # -- faults (needs proxies) -------------------------------------------------------------

    def block(self, sender: int, receiver: int):
        """Drops all Raft traffic from `sender` to `receiver`."""
        assert self.proxies, "the cluster runs without proxies"
        self.proxies[receiver].block(sender)

    def isolate(self, i: int):
        """Cuts node `i` off from every other node, both directions."""
        for j in self.ids:
            if j != i:
                self.block(i, j)
                self.block(j, i)
        self.nodes[i]._log("isolated: every peer link to and from this node cut (proxies)")

    def heal(self):
        healed = False
        for p in self.proxies.values():
            for s in list(p.blocked):
                p.unblock(s)
                healed = True
        if healed:
            for n in self.nodes.values():
                n._log("healed: every peer link restored (proxies)")

    # -- metadata ---------------------------------------------------------------------------

    def admin(self, ids=None) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap(ids), "socket.timeout.ms": 10000})

    def metadata(self, via: int, topic: str | None = None, timeout: float = 5.0):
        """Metadata as node `via` answers it (an AdminClient bootstrapped at it alone)."""
        a = self.admin([via])
        return a.list_topics(topic, timeout=timeout)

    def leader_of(self, topic: str, partition: int, via: int | None = None) -> int:
        """The partition's leader as node `via` (default: the first running node) reports
        it; -1 if it knows none or cannot answer."""
        via = via if via is not None else self.running_ids()[0]
        try:
            md = self.metadata(via, topic)
        except KafkaException:
            return -1
        t = md.topics.get(topic)
        if t is None or t.error is not None or partition not in t.partitions:
            return -1
        p = t.partitions[partition]
        return p.leader if p.error is None else -1

    def agreed_leader(self, topic: str, partition: int, ids=None) -> int | None:
        """The leader every node in `ids` (default: the running ones) reports, or None."""
        ids = self.running_ids() if ids is None else ids
        leaders = {self.leader_of(topic, partition, via=i) for i in ids}
        if len(leaders) == 1:
            (l,) = leaders
            if l >= 0:
                return l
        return None

    def wait_formed(self, timeout: float = START_TIMEOUT_S):
        """Every running node lists every node as a broker."""

        def formed():
            for i in self.running_ids():
                try:
                    md = self.metadata(i, None)
                except KafkaException:
                    return False
                if sorted(md.brokers) != self.ids:
                    return False
            return True

        wait_until(formed, timeout, "every node to list all brokers", interval=0.2)

    def create_topic(self, topic: str, partitions: int, rf: int = 3, timeout: float = 30.0,
                     config: dict | None = None):
        """Creates the topic (retrying while the controller is being elected) and waits until
        every partition has a leader every running node agrees on."""
        deadline = time.monotonic() + timeout
        while True:
            a = self.admin()  # keep the handle alive until the result arrives
            fs = a.create_topics(
                [NewTopic(topic, num_partitions=partitions, replication_factor=rf, config=config or {})],
                operation_timeout=10, request_timeout=15,
            )
            try:
                fs[topic].result(timeout=20)
                break
            except KafkaException as e:
                err = e.args[0]
                if err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    break
                if time.monotonic() > deadline or not err.retriable():
                    raise
                time.sleep(0.3)
        self.wait_leaders(topic, partitions, max(1.0, deadline - time.monotonic()))

    def wait_leaders(self, topic: str, partitions: int, timeout: float = 30.0) -> dict[int, int]:
        """Waits until every running node reports the same leader for every partition;
        returns {partition: leader}."""

        def agreed():
            out = {}
            for p in range(partitions):
                l = self.agreed_leader(topic, p)
                if l is None:
                    return None
                out[p] = l
            return out

        return wait_until(agreed, timeout, f"agreed leaders of {topic}", interval=0.2)

    # -- logs -------------------------------------------------------------------------------

    def views(self, topic: str, partitions: int = 1) -> dict:
        """{node: [leader of each partition as that node reports it]} for failure messages."""
        return {i: [self.leader_of(topic, p, via=i) for p in range(partitions)] for i in self.running_ids()}

    def logs_identical(self, topic: str, partition: int, ids=None) -> bool:
        ids = self.ids if ids is None else ids
        logs = [self.nodes[i].partition_log(topic, partition) for i in ids]
        return bool(logs[0]) and all(l == logs[0] for l in logs[1:])

    def log_sizes(self, topic: str, partition: int) -> dict[int, int]:
        return {i: len(n.partition_log(topic, partition)) for i, n in self.nodes.items()}

    def wait_logs_identical(self, topic: str, partitions, timeout: float = 60.0, ids=None):
        """Polls until the given nodes' logs of each partition are equal byte for byte."""
        if isinstance(partitions, int):
            partitions = [partitions]
        for p in partitions:
            wait_until(
                lambda: self.logs_identical(topic, p, ids), timeout,
                f"byte-identical logs of {topic}-{p} (sizes {self.log_sizes(topic, p)})",
                interval=0.25,
            )


# ---------------------------------------------------------------------------------------
# Client helpers


def value_of(i: int, pad: int = 0) -> bytes:
    """Message number i's value: b"m" and 8 digits, then `pad` filler bytes."""
    return b"m%08d" % i + b"." * pad


def number_of(value: bytes) -> int:
    return int(value[1:9])


def produce_numbered(bootstrap: str, topic: str, numbers, partitions: int = 1,
                     timeout: float = 60.0, pad: int = 0, **conf) -> dict[int, tuple]:
    """Produces value_of(i) for every i in `numbers` to partition i % partitions (acks=all
    unless `conf` says otherwise); waits for every delivery report and returns
    {i: (error, partition, offset)}."""
    from confluent_kafka import Producer

    cfg = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": int(timeout * 1000),
        "socket.timeout.ms": 10000,
    }
    cfg.update({k.replace("_", "."): v for k, v in conf.items()})
    p = Producer(cfg)
    reports: dict[int, tuple] = {}

    def cb(err, msg):
        reports[number_of(msg.value())] = (err, msg.partition(), msg.offset())

    numbers = list(numbers)
    for i in numbers:
        while True:
            try:
                p.produce(topic, value=value_of(i, pad), partition=i % partitions, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(timeout + 10)
    assert left == 0, f"{left} messages still undelivered after {timeout + 10}s"
    missing = [i for i in numbers if i not in reports]
    assert not missing, f"no delivery report for {len(missing)} messages, first {missing[:5]}"
    return reports


def assert_all_acked(reports: dict[int, tuple]):
    errors = [(i, r[0]) for i, r in sorted(reports.items()) if r[0] is not None]
    assert not errors, f"{len(errors)} of {len(reports)} messages not acknowledged, first: {errors[:3]}"


def assert_exactly_once_in_order(consumed: dict[int, list[tuple[int, bytes]]],
                                 reports: dict[int, tuple], what: str = ""):
    """Every acknowledged message is in its partition exactly once, at the offset its delivery
    report gave, and the partition holds them in production order with nothing else, at
    offsets 0, 1, 2, ... (Kafka's offsets: dense from 0, leader changes take none; the
    partitions checked never had records removed)."""
    for p, got in consumed.items():
        expected = sorted((r[2], i) for i, r in reports.items() if r[0] is None and r[1] == p)
        got_numbers = [number_of(v) for _, v in got]
        counts: dict[int, int] = {}
        for n in got_numbers:
            counts[n] = counts.get(n, 0) + 1
        dupes = sorted(n for n, k in counts.items() if k > 1)
        want = [i for _, i in expected]
        missing = sorted(set(want) - set(counts))
        extra = sorted(set(counts) - set(want))
        assert not dupes and not missing and not extra, (
            f"{what}partition {p}: {len(got)} consumed, {len(want)} acknowledged; "
            f"{len(dupes)} duplicated (first {dupes[:5]}), {len(missing)} missing (first {missing[:5]}), "
            f"{len(extra)} unacknowledged extra (first {extra[:5]})"
        )
        assert got_numbers == want, f"{what}partition {p}: messages out of production order"
        bad = [(i, off, g) for (off, i), (g, _) in zip(expected, got) if off != g]
        assert not bad, (
            f"{what}partition {p}: {len(bad)} messages not at their acknowledged offsets, "
            f"first (number, acked offset, consumed offset): {bad[:3]}"
        )
        offsets = [off for off, _ in got]
        gaps = [(a, b) for a, b in zip([-1] + offsets, offsets) if b != a + 1]
        assert not gaps, (
            f"{what}partition {p}: offsets are not 0..{len(got) - 1}: {len(gaps)} jumps, first "
            f"(from, to): {gaps[:3]}"
        )


def consume_values(bootstrap: str, topic: str, partitions: list[int], timeout: float = 60.0,
                   expect: int | None = None) -> dict[int, list[tuple[int, bytes]]]:
    """Reads every partition from the beginning with a fresh assign()-ed consumer until each
    reached its end (and, with `expect`, at least that many messages arrived); returns
    (offset, value) per partition in log order."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"verify-{os.urandom(4).hex()}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
        "fetch.wait.max.ms": 100,
        "socket.timeout.ms": 10000,
    })
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        out: dict[int, list[tuple[int, bytes]]] = {p: [] for p in partitions}
        eof: set[int] = set()
        deadline = time.monotonic() + timeout
        while True:
            total = sum(len(v) for v in out.values())
            if eof >= set(partitions) and (expect is None or total >= expect):
                return out
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"consume timed out after {timeout}s: {total} messages"
                    f"{'' if expect is None else f' of {expect}'}, EOF on {sorted(eof)}"
                )
            msgs = c.consume(1000, 0.2)
            for m in msgs:
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                        continue
                    raise KafkaException(m.error())
                eof.discard(m.partition())
                out[m.partition()].append((m.offset(), m.value()))
    finally:
        c.close()
