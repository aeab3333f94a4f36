"""`strom bench` against a real `strom serve`: every acknowledged message is counted once,
consumers read back exactly what was produced, latencies are measured per message, a rate
limit holds, failures are reported with Kafka's error name, and `strom bench baseline`
measures the machine. Messages written by the bench are read back with kcat as a
third-party check."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from conftest import STROM_BIN
from test_cli import assert_one_line_error, strom

KCAT = shutil.which("kcat")


def bench(broker, *args: str, check: bool = True):
    proc = strom(broker, "bench", *args, "--output", "json", check=check, timeout=120)
    return json.loads(proc.stdout) if check else proc


def assert_latency(lat: dict, count: int):
    assert lat["count"] == count
    assert 0 < lat["p50"] <= lat["p99"] <= lat["p99_9"] <= lat["max"]
    assert lat["mean"] > 0


def test_produced_messages_are_all_acknowledged_and_consumed_once(broker, topic):
    r = bench(broker, "--topic", topic, "--partitions", "3", "--count", "20000", "--consumers", "2",
              "--batch-size", "16KiB", "--linger-ms", "2")
    p, c = r["produce"], r["consume"]
    assert (p["messages"], p["failed"], p["bytes"]) == (20000, 0, 20000 * 1024)
    assert_latency(p["latency_ms"], 20000)
    assert p["msgs_per_sec"] > 0 and p["mb_per_sec"] > 0
    assert (c["messages"], c["bytes"]) == (20000, 20000 * 1024)
    # Every message carried its send time; none was counted twice.
    assert_latency(c["end_to_end_latency_ms"], 20000)
    assert r["workload"]["partitions"] == 3

    # Replay from the beginning with no producers: exactly what was written.
    replay = bench(broker, "--topic", topic, "--producers", "0", "--consumers", "2")
    assert (replay["consume"]["messages"], replay["consume"]["bytes"]) == (20000, 20000 * 1024)
    # Messages from an earlier run carry no end-to-end latency.
    assert replay["consume"]["end_to_end_latency_ms"]["count"] == 0

    # A third-party consumer sees the same number of records.
    if KCAT:
        out = subprocess.run([KCAT, "-b", broker.bootstrap, "-C", "-t", topic, "-e", "-q", "-f", "%o\n"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        assert len(out.split()) == 20000


@pytest.mark.parametrize("partitioner", ["sticky", "round-robin"])
def test_both_partitioners_reach_every_partition(broker, topic, partitioner):
    r = bench(broker, "--topic", topic, "--partitions", "4", "--count", "8000", "--partitioner", partitioner,
              "--batch-size", "8KiB", "--acks", "1")
    assert (r["produce"]["messages"], r["produce"]["failed"]) == (8000, 0)
    assert r["workload"]["partitioner"] == partitioner

    def filled():
        d = strom(broker, "topic", "describe", topic, "--output", "json")
        return [p["latest_offset"] - p["earliest_offset"] for p in json.loads(d.stdout)["partitions"]]

    # Every partition got a share, and together they hold exactly the 8000 records. acks=1
    # is answered before the high watermark (what `latest_offset` reports) has moved, as in
    # Kafka: wait for it.
    deadline = time.monotonic() + 15
    while sum(filled()) < 8000 and time.monotonic() < deadline:
        time.sleep(0.2)
    counts = filled()
    assert sum(counts) == 8000 and all(n > 500 for n in counts), counts


@pytest.mark.parametrize("codec", ["zstd", "lz4"])
def test_compressed_workloads_round_trip(broker, topic, codec):
    r = bench(broker, "--topic", topic, "--count", "5000", "--consumers", "1", "--compression", codec,
              "--acks", "1", "--message-size", "200")
    assert (r["produce"]["messages"], r["produce"]["failed"]) == (5000, 0)
    assert r["consume"]["messages"] == 5000
    assert r["consume"]["bytes"] == 5000 * 200


def test_a_rate_limit_holds_and_latency_counts_from_the_due_time(broker, topic):
    r = bench(broker, "--topic", topic, "--rate", "2000", "--duration", "3s", "--linger-ms", "1")
    n = r["produce"]["messages"]
    assert 5400 <= n <= 6100, n
    # Unloaded, each message waits about its linger, far below the run's length.
    assert r["produce"]["latency_ms"]["p50"] < 500


def test_warm_up_is_left_out(broker, topic):
    r = bench(broker, "--topic", topic, "--rate", "1000", "--duration", "2s", "--warmup", "1s")
    n = r["produce"]["messages"]
    assert 1700 <= n <= 2200, n
    assert r["produce"]["latency_ms"]["count"] == n


def test_failures_are_counted_with_the_brokers_reason(broker, topic):
    strom(broker, "topic", "create", topic, "--config", "max.message.bytes=10000")
    proc = bench(broker, "--topic", topic, "--count", "50", "--message-size", "20000", check=False)
    assert proc.returncode == 1
    r = json.loads(proc.stdout)
    assert r["produce"]["messages"] == 0 and r["produce"]["failed"] == 50
    assert r["produce"]["errors"] == {"MESSAGE_TOO_LARGE": 50}
    assert_one_line_error(proc, contains="every message failed")


def test_bad_flags_are_refused(broker, topic):
    assert_one_line_error(strom(broker, "bench", "--rate", "0", check=False), contains="--rate")
    proc = strom(broker, "bench", "--message-size", "lots", check=False)
    assert proc.returncode == 2 and "size" in proc.stderr
    assert_one_line_error(strom(broker, "bench", "--producers", "0", check=False), contains="nothing to do")
    assert_one_line_error(strom(broker, "bench", "--partitioner", "random", check=False), contains="--partitioner")


def test_baseline_measures_the_machine(tmp_path):
    proc = subprocess.run([str(STROM_BIN), "bench", "baseline", "--dir", str(tmp_path), "--size", "16MiB",
                           "--output", "json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    b = json.loads(proc.stdout)
    for key in ("buffered_write_mb_s", "write_fdatasync_per_mib_mb_s", "loopback_tcp_mb_s", "loopback_sendfile_mb_s"):
        assert b[key] > 0, key
    assert list(tmp_path.iterdir()) == []  # the scratch file is removed
