"""The transaction history test: consume-transform-produce workers under a nemesis, then
the checker (checker.py). Described in docs/transactions-testing.md.

    .venv/bin/python tests/txn/run.py --kafka-ref single --duration 60
    .venv/bin/python tests/txn/run.py --kafka-ref cluster --duration 300 --broker-nemesis
    .venv/bin/python tests/txn/run.py --bootstrap 127.0.0.1:9092 --duration 30
    STROM_BIN=target/release/strom .venv/bin/python tests/txn/run.py --strom cluster --broker-nemesis
    STROM_BIN=target/release/strom .venv/bin/python tests/txn/run.py --strom cluster --partition-nemesis

Phases: start the target (or use --bootstrap); create the input topic (pre-filled with
--records uniquely numbered records) and the output topic; start --readers read_committed
readers and --workers workers (worker.py, each a separate process with its own
transactional.id), paced so that the input lasts --duration seconds; for --duration
seconds the nemesis SIGKILLs workers (restarted at once with the same transactional.id and
the next incarnation, which fences the dead one), pauses some (SIGSTOP, a new incarnation
started beside it, SIGCONT: the zombie must be fenced), with --broker-nemesis against a
cluster SIGKILLs and restarts broker nodes, and with --partition-nemesis (a Strom cluster
behind peer proxies: partition.py) cuts one node off from its Raft peers for a few seconds
at a time; never more than one node down or isolated at once. Then the drain: workers unpaced until the
group's committed offsets reach the end of the input (at most --drain seconds); then
SIGTERM to everything, the final reads (read_committed and read_uncommitted of the output,
the input, the group's committed offsets) into RUN/final.json, and the checker.

Exit codes: 0 no anomaly; 1 anomalies (the report says which); 2 nothing was checked (no
transaction committed); 3 the run itself failed (target did not start, no worker could
initialise transactions, ...). Every process it starts is stopped before it exits (workers
and readers also die with it: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from confluent_kafka import (  # noqa: E402
    OFFSET_BEGINNING,
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec  # noqa: E402

import checker  # noqa: E402
from history import History  # noqa: E402
from nemesis import ExistingTarget, KafkaRefTarget, StromTarget, Target  # noqa: E402
from partition import NodeFaults, partition_nemesis  # noqa: E402

EXIT_RUN_FAILED = 3

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    # PR_SET_PDEATHSIG: SIGKILL this child when the runner dies, however it dies.
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


class RunFailed(Exception):
    pass


class Worker:
    def __init__(self, w: int):
        self.w = w
        self.inc = -1
        self.proc: subprocess.Popen | None = None
        self.history: Path | None = None


class Run:
    def __init__(self, a, target: Target, run_dir: Path):
        self.a = a
        self.target = target
        self.dir = run_dir
        self.hist_dir = run_dir / "history"
        self.hist_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "logs").mkdir(exist_ok=True)
        self.h = History(self.hist_dir / "runner.jsonl", runner=True)
        self.rng = random.Random(a.seed)
        suffix = os.urandom(3).hex()
        self.input = f"txn-in-{suffix}"
        self.output = f"txn-out-{suffix}"
        self.group = f"txn-group-{suffix}"
        self.txn_prefix = f"txn-{suffix}-w"
        self.workers = [Worker(w) for w in range(a.workers)]
        self.readers: list[subprocess.Popen] = []
        self.zombies: list[tuple[Worker, subprocess.Popen, int]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.node_faults = NodeFaults()  # the broker and partition nemeses: one node at a time
        self.rate = 0.0
        self.unlimited = False

    def say(self, msg: str):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    # -- processes ------------------------------------------------------------------------

    def spawn_worker(self, wk: Worker):
        wk.inc += 1
        wk.history = self.hist_dir / f"w{wk.w}.{wk.inc}.jsonl"
        cmd = [
            sys.executable, str(HERE / "worker.py"),
            "--bootstrap", self.target.bootstrap, "--worker", str(wk.w), "--incarnation", str(wk.inc),
            "--input", self.input, "--output", self.output, "--out-partitions", str(self.a.out_partitions),
            "--group", self.group, "--txn-prefix", self.txn_prefix, "--history", str(wk.history),
            "--rate", "0" if self.unlimited else f"{self.rate:.3f}", "--max-batch", str(self.a.max_batch),
            "--abort-prob", str(self.a.abort_prob), "--seed", str(self.rng.randrange(1 << 30)),
            "--txn-timeout-ms", str(self.a.txn_timeout_ms),
        ]
        with open(self.dir / "logs" / f"w{wk.w}.{wk.inc}.log", "ab") as log:
            wk.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                       preexec_fn=_die_with_parent)
        self.h.log("spawn", w=wk.w, inc=wk.inc, pid=wk.proc.pid)

    def spawn_reader(self, r: int):
        cmd = [sys.executable, str(HERE / "reader.py"), "--bootstrap", self.target.bootstrap, "--reader", str(r),
               "--output", self.output, "--out-partitions", str(self.a.out_partitions),
               "--history", str(self.hist_dir / f"reader{r}.jsonl")]
        with open(self.dir / "logs" / f"reader{r}.log", "ab") as log:
            self.readers.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                                 preexec_fn=_die_with_parent))

    def worker_inited(self, wk: Worker) -> bool | None:
        """True once this incarnation's init_transactions returned, False if it failed,
        None while it runs."""
        try:
            for raw in wk.history.read_text().splitlines():
                if '"op":"init"' in raw:
                    return json.loads(raw)["ok"]
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        return None

    def supervise(self):
        """Restarts workers that exited (a fatal error: fenced, or stuck) with the next
        incarnation."""
        with self.lock:
            for wk in self.workers:
                if wk.proc is not None and wk.proc.poll() is not None and not self.stopping.is_set():
                    self.h.log("worker-exit", w=wk.w, inc=wk.inc, rc=wk.proc.returncode)
                    self.say(f"worker {wk.w}.{wk.inc} exited {wk.proc.returncode}: restarting")
                    time.sleep(0.5)
                    self.spawn_worker(wk)
            for z in list(self.zombies):
                wk, proc, inc = z
                if proc.poll() is not None:
                    self.zombies.remove(z)

    def kill_worker(self, wk: Worker):
        with self.lock:
            if wk.proc is None or wk.proc.poll() is not None:
                return
            wk.proc.send_signal(signal.SIGKILL)
            wk.proc.wait()
            self.h.log("nemesis", action="kill-worker", w=wk.w, inc=wk.inc)
            self.say(f"nemesis: SIGKILL worker {wk.w}.{wk.inc}")
            self.spawn_worker(wk)

    def zombie(self, wk: Worker):
        """SIGSTOP the worker, start its next incarnation, let the old one run again once the
        new one has initialised: it must be fenced (exit 3) or at least not commit."""
        with self.lock:
            if wk.proc is None or wk.proc.poll() is not None:
                return
            old, old_inc = wk.proc, wk.inc
            old.send_signal(signal.SIGSTOP)
            self.zombies.append((wk, old, old_inc))
            self.h.log("nemesis", action="pause-worker", w=wk.w, inc=old_inc)
            self.say(f"nemesis: SIGSTOP worker {wk.w}.{old_inc}, starting {wk.w}.{old_inc + 1} beside it")
            self.spawn_worker(wk)
        deadline = time.monotonic() + 30
        while self.worker_inited(wk) is None and time.monotonic() < deadline and wk.proc.poll() is None:
            time.sleep(0.1)
        time.sleep(self.rng.uniform(0.0, 2.0))
        old.send_signal(signal.SIGCONT)
        try:
            rc = old.wait(timeout=self.a.zombie_grace)
        except subprocess.TimeoutExpired:
            old.send_signal(signal.SIGKILL)
            old.wait()
            rc = None
        with self.lock:
            self.zombies = [z for z in self.zombies if z[1] is not old]
        fenced = self.was_fenced(self.hist_dir / f"w{wk.w}.{old_inc}.jsonl")
        self.h.log("zombie", w=wk.w, inc=old_inc, rc=rc, fenced=fenced)
        ended = f"exit {rc}" if rc is not None else f"still running after {self.a.zombie_grace:.0f}s: killed"
        self.say(f"zombie {wk.w}.{old_inc}: {ended}, {'fenced' if fenced else 'no fencing error seen'}")

    @staticmethod
    def was_fenced(history: Path) -> bool:
        """The worker's history shows a fencing error (librdkafka's _FENCED, or the broker's
        PRODUCER_FENCED / INVALID_PRODUCER_EPOCH)."""
        try:
            text = history.read_text(errors="replace")
        except FileNotFoundError:
            return False
        return any(k in text for k in ('"_FENCED"', '"PRODUCER_FENCED"', '"INVALID_PRODUCER_EPOCH"'))

    # -- the phases -----------------------------------------------------------------------

    def prefill(self):
        p = Producer({"bootstrap.servers": self.target.bootstrap, "enable.idempotence": True,
                      "linger.ms": 20, "message.timeout.ms": 120000})
        failed = []

        def cb(err, _msg):
            if err is not None:
                failed.append(err)

        for n in range(self.a.records):
            while True:
                try:
                    p.produce(self.input, value=str(n).encode(), partition=n % self.a.in_partitions, on_delivery=cb)
                    break
                except BufferError:
                    p.poll(0.05)
        if p.flush(150) != 0 or failed:
            raise RunFailed(f"pre-filling the input failed: {failed[:3]}")

    def committed_offsets(self) -> dict[int, int]:
        c = Consumer({"bootstrap.servers": self.target.bootstrap, "group.id": self.group,
                      "enable.auto.commit": False, "isolation.level": "read_committed"})
        try:
            parts = c.committed([TopicPartition(self.input, p) for p in range(self.a.in_partitions)], timeout=15)
            return {tp.partition: tp.offset for tp in parts}
        finally:
            c.close()

    def drained(self) -> bool:
        try:
            co = self.committed_offsets()
        except KafkaException:
            return False
        per = {p: len(range(p, self.a.records, self.a.in_partitions)) for p in range(self.a.in_partitions)}
        return all(co.get(p, -1) >= per[p] for p in per)

    def broker_nemesis(self, end: float):
        nodes = self.target.nodes
        while not self.stopping.is_set() and time.monotonic() < end:
            if self.stopping.wait(self.rng.uniform(*self.a.broker_interval)):
                return
            if not self.node_faults.acquire(self.stopping):
                return
            try:
                i = self.rng.choice(nodes.ids())
                if not all(nodes.running(j) for j in nodes.ids()):
                    continue
                nodes.kill(i)
                self.h.log("nemesis", action="kill-broker", node=i)
                self.say(f"nemesis: SIGKILL broker node {i}")
                self.stopping.wait(self.rng.uniform(*self.a.broker_down))
                nodes.restart(i)
                self.h.log("nemesis", action="restart-broker", node=i)
                self.say(f"nemesis: broker node {i} restarted")
            finally:
                self.node_faults.release()

    def execute(self) -> int:
        a = self.a
        t0 = time.monotonic()
        self.h.log("setup", target=self.target.name, bootstrap=self.target.bootstrap, input=self.input,
                   output=self.output, group=self.group, args=vars(a))
        self.target.create_topic(self.input, a.in_partitions)
        self.target.create_topic(self.output, a.out_partitions)
        self.prefill()
        self.say(f"input {self.input} ({a.in_partitions} partitions) pre-filled with {a.records} records; "
                 f"output {self.output} ({a.out_partitions} partitions)")
        self.rate = a.records / max(1.0, a.duration * 0.9) / a.workers
        for r in range(a.readers):
            self.spawn_reader(r)
        with self.lock:
            for wk in self.workers:
                self.spawn_worker(wk)

        # Workers must be able to initialise transactions at all, or nothing is tested.
        deadline = time.monotonic() + a.init_deadline
        while not any(self.worker_inited(wk) for wk in self.workers):
            if time.monotonic() > deadline:
                errs = []
                for f in sorted(self.hist_dir.glob("w*.jsonl")):
                    for raw in f.read_text().splitlines():
                        if '"op":"init"' in raw:
                            errs.append(f"{f.stem}: {json.loads(raw).get('msg')}")
                logs = sorted((self.dir / "logs").glob("w*.log"), key=lambda f: f.stat().st_mtime)
                tail = logs[-1].read_text(errors="replace").splitlines()[-5:] if logs else []
                raise RunFailed(
                    f"no worker initialised transactions within {a.init_deadline}s "
                    f"(init_transactions: {errs[:3] or 'no answer'}); does {self.target.name} serve transactions?"
                    + ("\nlast worker log lines:\n" + "\n".join(tail) if tail else "")
                )
            self.supervise()
            time.sleep(0.2)
        self.say(f"workers running (rate {self.rate:.1f} records/s each); nemesis for {a.duration}s")

        end = time.monotonic() + a.duration
        threads = []
        if a.broker_nemesis:
            if self.target.nodes is None:
                raise RunFailed(f"--broker-nemesis needs a cluster target, not {self.target.name}")
            threads.append(threading.Thread(target=self._guard, args=(self.broker_nemesis, end), daemon=True))
        if a.partition_nemesis:
            if self.target.network is None:
                raise RunFailed(f"--partition-nemesis needs a cluster behind peer proxies, not {self.target.name}")
            threads.append(threading.Thread(target=self._guard, args=(self.partition_nemesis, end), daemon=True))
        for th in threads:
            th.start()
        next_worker_fault = time.monotonic() + self.rng.uniform(*a.worker_interval)
        while time.monotonic() < end:
            self.supervise()
            if a.worker_nemesis and time.monotonic() >= next_worker_fault:
                wk = self.rng.choice(self.workers)
                if self.rng.random() < a.zombie_ratio:
                    self.zombie(wk)
                else:
                    self.kill_worker(wk)
                next_worker_fault = time.monotonic() + self.rng.uniform(*a.worker_interval)
            if self.nemesis_error:
                raise RunFailed(f"nemesis failed: {self.nemesis_error}")
            time.sleep(0.2)
        self.stopping.set()
        for th in threads:
            th.join(timeout=120)
        self.stopping.clear()
        if self.target.network is not None:
            self.target.network.heal()
        if self.target.nodes is not None:
            for i in self.target.nodes.ids():
                if not self.target.nodes.running(i):
                    self.target.nodes.restart(i)
        if self.nemesis_error:
            raise RunFailed(f"nemesis failed: {self.nemesis_error}")

        # Drain: unpaced until every input offset is committed, or --drain passes.
        self.say("nemesis over: draining")
        self.h.log("drain")
        self.unlimited = True
        with self.lock:
            for wk in self.workers:
                if wk.proc.poll() is None:
                    wk.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + a.drain
        drained = False
        while time.monotonic() < deadline:
            self.supervise()
            if self.drained():
                drained = True
                break
            time.sleep(1.0)
        self.say("drained" if drained else f"not drained within {a.drain}s")
        self.stop_workers()

        self.final_reads(drained)
        self.stop_readers()
        self.h.log("end", seconds=round(time.monotonic() - t0, 1))
        report = checker.check(self.dir)
        (self.dir / "report.json").write_text(json.dumps(report, indent=1))
        print(checker.render(report), flush=True)
        self.say(f"run took {time.monotonic() - t0:.0f}s; history in {self.hist_dir}")
        return checker.exit_code(report)

    nemesis_error: str | None = None

    def _guard(self, fn, *args):
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - reported by the main loop
            self.nemesis_error = f"{fn.__name__}: {type(e).__name__}: {e}"
            traceback.print_exc()

    def partition_nemesis(self, end: float):
        partition_nemesis(self.target.network, self.node_faults, self.rng, self.stopping, end,
                          pause=self.a.partition_interval, hold=self.a.partition_hold,
                          log=lambda action, **f: self.h.log("nemesis", action=action, **f), say=self.say)

    def stop_workers(self):
        self.stopping.set()
        with self.lock:
            procs = [wk.proc for wk in self.workers if wk.proc is not None] + [z[1] for z in self.zombies]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 45
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                self.h.log("worker-killed-at-stop", pid=p.pid)
        for wk in self.workers:
            if wk.proc is not None:
                self.h.log("worker-exit", w=wk.w, inc=wk.inc, rc=wk.proc.returncode, final=True)

    def stop_readers(self):
        for p in self.readers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.readers:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def end_offsets(self, topic: str, partitions: int, level) -> dict[int, int]:
        a = AdminClient({"bootstrap.servers": self.target.bootstrap})
        fs = a.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)},
                            isolation_level=level, request_timeout=15)
        return {tp.partition: f.result().offset for tp, f in fs.items()}

    def read_all(self, topic: str, partitions: int, level: str) -> dict[int, list]:
        c = Consumer({"bootstrap.servers": self.target.bootstrap, "group.id": f"txn-final-{os.urandom(3).hex()}",
                      "isolation.level": level, "enable.auto.commit": False, "enable.partition.eof": True,
                      "fetch.wait.max.ms": 100})
        out: dict[int, list] = {p: [] for p in range(partitions)}
        try:
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
            eof: set[int] = set()
            deadline = time.monotonic() + 120
            while eof != set(out):
                if time.monotonic() > deadline:
                    raise RunFailed(f"final {level} read of {topic} did not reach the end (EOF on {sorted(eof)})")
                for m in c.consume(1000, 0.5):
                    if m.error():
                        if m.error().code() == KafkaError._PARTITION_EOF:
                            eof.add(m.partition())
                            continue
                        raise KafkaException(m.error())
                    eof.discard(m.partition())
                    out[m.partition()].append([m.offset(), m.value().decode(errors="replace")])
        finally:
            c.close()
        return out

    def final_reads(self, drained: bool):
        # No transaction may still be open, or read_committed stops at its first record:
        # wait until the last stable offset reaches the high watermark everywhere.
        deadline = time.monotonic() + self.a.txn_timeout_ms / 1000 + 30
        while True:
            lso = self.end_offsets(self.output, self.a.out_partitions, IsolationLevel.READ_COMMITTED)
            hw = self.end_offsets(self.output, self.a.out_partitions, IsolationLevel.READ_UNCOMMITTED)
            if lso == hw:
                break
            if time.monotonic() > deadline:
                self.h.log("open-transactions-at-end", lso=lso, hw=hw)
                self.say(f"transactions still open at the end: last stable {lso}, high watermark {hw}")
                break
            time.sleep(0.5)
        final = {
            "meta": {"target": self.target.name, "workers": self.a.workers, "records": self.a.records,
                     "duration": self.a.duration, "drained": drained},
            "rc": self.read_all(self.output, self.a.out_partitions, "read_committed"),
            "ru": self.read_all(self.output, self.a.out_partitions, "read_uncommitted"),
            "input": {p: [[o, int(v)] for o, v in recs]
                      for p, recs in self.read_all(self.input, self.a.in_partitions, "read_uncommitted").items()},
            "committed": self.committed_offsets(),
            "input_end": self.end_offsets(self.input, self.a.in_partitions, IsolationLevel.READ_UNCOMMITTED),
            "output_end": {"committed": lso, "uncommitted": hw},
        }
        (self.dir / "final.json").write_text(json.dumps(final))

    def close(self):
        """Every worker, zombie and reader gone (SIGKILL if it still runs)."""
        procs = [wk.proc for wk in self.workers if wk.proc is not None] + [z[1] for z in self.zombies] + self.readers
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.h.close()


def pair(s: str) -> tuple[float, float]:
    lo, hi = s.split(",")
    return float(lo), float(hi)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    t = ap.add_mutually_exclusive_group(required=True)
    t.add_argument("--bootstrap", help="a running broker (no broker nemesis)")
    t.add_argument("--kafka-ref", choices=["single", "cluster"], help="start scripts/kafka-ref.sh's broker or cluster")
    t.add_argument("--strom", choices=["single", "cluster"], help="start strom (STROM_BIN) as tests/python does")
    ap.add_argument("--dir", help="run directory (default: a new /tmp/strom-txn-*)")
    ap.add_argument("--duration", type=float, default=60, help="seconds of nemesis (default 60)")
    ap.add_argument("--drain", type=float, default=90, help="at most this many seconds of drain after it")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--readers", type=int, default=1)
    ap.add_argument("--records", type=int, default=2000, help="input records (default 2000)")
    ap.add_argument("--in-partitions", type=int, default=4)
    ap.add_argument("--out-partitions", type=int, default=3)
    ap.add_argument("--max-batch", type=int, default=10, help="input records per transaction, at most")
    ap.add_argument("--abort-prob", type=float, default=0.1, help="transactions aborted on purpose")
    ap.add_argument("--txn-timeout-ms", type=int, default=20000)
    ap.add_argument("--no-worker-nemesis", dest="worker_nemesis", action="store_false")
    ap.add_argument("--worker-interval", type=pair, default=(4.0, 10.0), help="seconds between worker faults: LO,HI")
    ap.add_argument("--zombie-ratio", type=float, default=0.4, help="worker faults that are pauses (zombies), not kills")
    ap.add_argument("--zombie-grace", type=float, default=10.0, help="seconds a resumed zombie has to get fenced")
    ap.add_argument("--broker-nemesis", action="store_true", help="SIGKILL and restart broker nodes (cluster targets)")
    ap.add_argument("--broker-interval", type=pair, default=(5.0, 15.0), help="seconds between broker kills: LO,HI")
    ap.add_argument("--broker-down", type=pair, default=(2.0, 8.0), help="seconds a killed node stays down: LO,HI")
    ap.add_argument("--partition-nemesis", action="store_true",
                    help="isolate one node at a time from its Raft peers (--strom cluster only: peer proxies)")
    ap.add_argument("--partition-interval", type=pair, default=(4.0, 10.0),
                    help="seconds between a heal and the next isolation: LO,HI")
    ap.add_argument("--partition-hold", type=pair, default=(3.0, 8.0), help="seconds a node stays isolated: LO,HI")
    ap.add_argument("--init-deadline", type=float, default=60, help="seconds for a first worker to init transactions")
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    if a.partition_nemesis and a.strom != "cluster":
        # Kafka's nodes talk to each other on controller and replication listeners that
        # kafka-ref.sh does not put behind proxies: only a Strom cluster can be cut here.
        ap.error("--partition-nemesis needs --strom cluster (the peer proxies of tests/python/cluster_util.py)")
    if a.seed is None:
        a.seed = random.randrange(1 << 30)

    run_dir = Path(a.dir) if a.dir else Path(tempfile.mkdtemp(prefix="strom-txn-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    if a.bootstrap:
        target: Target = ExistingTarget(a.bootstrap)
    elif a.kafka_ref:
        target = KafkaRefTarget(a.kafka_ref, run_dir / "kafka-ref")
    else:
        target = StromTarget(a.strom, run_dir / "strom", proxies=a.partition_nemesis)

    # SIGTERM/SIGINT: stop cleanly (the finally below) rather than die with children around.
    def _term(_sig, _frm):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, _term)
    run = None
    rc = EXIT_RUN_FAILED
    print(f"run directory {run_dir}, seed {a.seed}, target {target.name}", flush=True)
    try:
        target.start()
        run = Run(a, target, run_dir)
        rc = run.execute()
    except RunFailed as e:
        print(f"RUN FAILED: {e}", flush=True)
        (run_dir / "report.json").write_text(json.dumps({"run_failed": str(e)}))
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        print("RUN FAILED: unexpected error (above)", flush=True)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if run is not None:
            run.close()
        problems = target.stop()
        for p in problems:
            print(f"target stop: {p}", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
