#!/usr/bin/env python3
"""Long-poll fetch cost: broker CPU while many consumers wait on idle partitions and
another partition takes writes. A/B of two strom binaries in one run.

    scripts/bench-longpoll.py OLD_BIN NEW_BIN            # 3 rounds of 15 s
    ROUNDS=5 DURATION=20 scripts/bench-longpoll.py OLD_BIN NEW_BIN

Workload (each round, each binary, fresh data directory):
- topic `idle` with IDLE_PARTITIONS (1000) partitions, topic `hot` with 1 partition;
- CONSUMERS (100) connections, each long-polling Fetch v4 (max_wait 500 ms, min_bytes 1)
  on its own IDLE_PARTITIONS / CONSUMERS idle partitions, over and over;
- one producer connection appending 1 record per Produce (acks=1) to `hot` as fast as
  answers come, for DURATION seconds.
Reported: broker CPU seconds (utime + stime from /proc) per 1,000 produce requests
while the consumers wait, and produce requests per second. A broker that wakes every
waiting fetch on every commit anywhere spends CPU in proportion to consumers x commits;
one that wakes only the fetches waiting on the changed partition spends none on them.
The report quotes, per metric, the median over rounds of B/A within a round.
"""

import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
import kafka_wire as kw  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = float(os.environ.get("DURATION", "15"))
IDLE_PARTITIONS = int(os.environ.get("IDLE_PARTITIONS", "1000"))
CONSUMERS = int(os.environ.get("CONSUMERS", "100"))
PORT = int(os.environ.get("PORT", "29392"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the whole line (12, 13 after the name).
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def fetch_body(topic: str, partitions: list[int], max_wait_ms: int) -> bytes:
    body = struct.pack(">iiiib", -1, max_wait_ms, 1, 1 << 20, 0)
    body += struct.pack(">i", 1) + kw.string(topic) + struct.pack(">i", len(partitions))
    for p in partitions:
        body += struct.pack(">iqi", p, 0, 1 << 20)
    return body


def wait_port(port: int, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"broker on {port} did not start")


def run_once(binary: str, workdir: str) -> dict:
    data = tempfile.mkdtemp(dir=workdir)
    bootstrap = f"127.0.0.1:{PORT}"
    log = open(os.path.join(workdir, "broker.log"), "ab")
    proc = subprocess.Popen(
        [binary, "serve", "--listen", bootstrap, "--metrics-listen", "", "--data-dir", data],
        stdout=log,
        stderr=log,
    )
    try:
        wait_port(PORT)
        for topic, n in (("idle", IDLE_PARTITIONS), ("hot", 1)):
            subprocess.run(
                [binary, "topic", "create", topic, "-p", str(n), "-b", bootstrap],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        stop = threading.Event()
        per = max(1, IDLE_PARTITIONS // CONSUMERS)

        def consumer(i: int):
            parts = list(range(i * per, min(IDLE_PARTITIONS, (i + 1) * per)))
            with kw.Conn(bootstrap, timeout=30) as c:
                body = fetch_body("idle", parts, 500)
                while not stop.is_set():
                    c.call(1, 4, body)

        threads = [threading.Thread(target=consumer, args=(i,), daemon=True) for i in range(CONSUMERS)]
        for t in threads:
            t.start()
        time.sleep(2)  # every consumer is waiting
        record = kw.record_batch([(None, b"x" * 100)])
        produced = 0
        with kw.Conn(bootstrap, timeout=30) as p:
            body = kw.produce_v3_body("hot", 0, record, acks=1)
            p.call(0, 3, body)
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            while time.monotonic() - t0 < DURATION:
                p.call(0, 3, body)
                produced += 1
            cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
        stop.set()
        for t in threads:
            t.join(timeout=5)
        return {
            "cpu_per_1000": (cpu1 - cpu0) / produced * 1000,
            "produce_per_s": produced / (t1 - t0),
            "cpu_share": (cpu1 - cpu0) / (t1 - t0),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        sys.exit(2)
    work = tempfile.mkdtemp(prefix="bench-longpoll-")
    bins = {}
    for side, src in (("a", sys.argv[1]), ("b", sys.argv[2])):
        bins[side] = os.path.join(work, f"strom-{side}")
        shutil.copy(src, bins[side])
    ratios: dict[str, list[float]] = {}
    try:
        for r in range(ROUNDS):
            order = ("a", "b") if r % 2 == 0 else ("b", "a")
            got = {side: run_once(bins[side], work) for side in order}
            for side in ("a", "b"):
                m = got[side]
                print(
                    f"round {r + 1} {side}: {m['cpu_per_1000']:.3f} CPU s per 1000 produces, "
                    f"{m['produce_per_s']:.0f} produces/s, broker at {m['cpu_share'] * 100:.0f}% of a core",
                    flush=True,
                )
            for k in got["a"]:
                ratios.setdefault(k, []).append(got["b"][k] / got["a"][k])
        print(f"median B/A over {ROUNDS} rounds ({CONSUMERS} consumers on {IDLE_PARTITIONS} idle partitions):")
        for k, v in ratios.items():
            print(f"  {k}: {statistics.median(v):.3f}  (rounds: {', '.join(f'{x:.3f}' for x in v)})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
