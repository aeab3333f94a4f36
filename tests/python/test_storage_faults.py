"""Storage faults under a real broker and a real client: an fsync that fails (injected
with STROM_FAULTS) and a disk that fills up (a real, small tmpfs). Producers at acks=1
and acks=all must get KAFKA_STORAGE_ERROR promptly for what could not be made durable,
never an acknowledgement for it; the partition must come back by itself; and after a
SIGKILL and restart every acknowledged record must be there, exactly once."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from confluent_kafka import KafkaError

from conftest import STROM_BIN, StromBroker
from kafka_util import (
    TIMEOUT_S,
    consume,
    create_topic,
    make_producer,
    wait_until,
)


def produce_one(producer, topic: str, value: bytes) -> tuple[KafkaError | None, int, float]:
    """Produces one record and waits for its report: (error, offset, seconds taken)."""
    out = {}

    def cb(err, msg):
        out["r"] = (err, msg.offset())

    started = time.monotonic()
    producer.produce(topic, value=value, partition=0, on_delivery=cb)
    producer.flush(TIMEOUT_S)
    err, offset = out["r"]
    return err, offset, time.monotonic() - started


def metric(broker: StromBroker, name: str) -> float:
    _, _, body = broker.http_get("/metrics")
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"metric {name} missing")


def start_broker(tmp_path, data_dir, env=None) -> StromBroker:
    if not STROM_BIN.exists():
        pytest.fail(f"{STROM_BIN} is missing: run `cargo build --release -p strom`")
    b = StromBroker(
        data_dir, tmp_path / "strom.stderr", ["--default-partitions", "1"], env=env
    )
    b.start()
    return b


def check_acknowledged_survive(broker: StromBroker, topic: str, acked: dict[int, bytes]) -> None:
    """SIGKILL, restart, and read everything back: every acknowledged record is at its
    offset, and no value appears twice."""
    broker.kill()
    broker.env.pop("STROM_FAULTS", None)
    broker.start()
    got = consume(broker.bootstrap, topic, 0)
    by_offset = {g.offset: g.value for g in got}
    for offset, value in acked.items():
        assert by_offset.get(offset) == value, f"acknowledged record at {offset} lost or changed"
    values = [g.value for g in got]
    assert len(values) == len(set(values)), "a record was stored twice"


@pytest.mark.parametrize("acks", ["all", "1"])
def test_a_failed_fsync_is_never_acknowledged_and_the_partition_recovers(tmp_path, acks):
    topic = f"fsyncfail{acks}"
    # The 16th fsync of this partition's files fails once; the next would succeed, which
    # is exactly when a broker that retries fsync would acknowledge lost data.
    env = {"STROM_FAULTS": f"sync:EIO:path={topic}-0:skip=15:times=1"}
    broker = start_broker(tmp_path, tmp_path / "data", env)
    try:
        create_topic(broker.bootstrap, topic, 1)
        producer = make_producer(broker.bootstrap, acks=acks, retries=0, linger_ms=0)
        acked: dict[int, bytes] = {}
        failures = []
        for i in range(60):
            value = f"record-{i}".encode()
            err, offset, took = produce_one(producer, topic, value)
            if err is None:
                acked[offset] = value
            else:
                failures.append((i, err, took))
                if len(failures) > 20:
                    break
                time.sleep(0.2)
        assert failures, "the injected fsync failure was never reported to the producer"
        first = failures[0]
        assert first[1].code() == KafkaError.KAFKA_STORAGE_ERROR, failures
        assert first[2] < 10, f"the storage error took {first[2]:.1f}s (a timeout, not an answer)"
        # It came back by itself: records after the failure were acknowledged.
        assert max(i for i in range(60) if f"record-{i}".encode() in acked.values()) > first[0]
        assert metric(broker, "strom_storage_errors_total") >= 1
        assert metric(broker, "strom_offline_partitions") == 0
        assert "fsync failed" in broker.log_text()
        check_acknowledged_survive(broker, topic, acked)
    finally:
        broker.stop()


@pytest.fixture
def small_disk(tmp_path):
    """A real 48 MiB tmpfs for the data directory (needs root; skipped elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_answers_storage_errors_and_recovers_when_space_returns(tmp_path, small_disk):
    topic = "fulldisk"
    broker = start_broker(tmp_path, small_disk / "data")
    try:
        create_topic(broker.bootstrap, topic, 1)
        # Leave about 6 MiB free.
        free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
        filler = small_disk / "filler"
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, free - 6 * 1024 * 1024))
        producer = make_producer(broker.bootstrap, acks="all", retries=0, linger_ms=0)
        acked: dict[int, bytes] = {}
        first_error = None
        for i in range(400):
            value = f"{i:06d}".encode() + os.urandom(64 * 1024)
            err, offset, took = produce_one(producer, topic, value)
            if err is None:
                acked[offset] = value
            else:
                first_error = (err, took)
                break
        assert first_error is not None, "the disk never filled up"
        assert first_error[0].code() == KafkaError.KAFKA_STORAGE_ERROR, first_error
        assert first_error[1] < 10, f"the full disk took {first_error[1]:.1f}s to be reported"
        # Still full: still refused, promptly.
        err, _, took = produce_one(producer, topic, b"x" * 65536)
        assert err is not None and took < 10

        filler.unlink()

        def accepted():
            err, offset, _ = produce_one(producer, topic, b"after-space-returned")
            if err is None:
                acked[offset] = b"after-space-returned"
                return True
            time.sleep(0.3)
            return False

        wait_until(accepted, 30, what="the partition to recover once space returned")
        check_acknowledged_survive(broker, topic, acked)
    finally:
        broker.stop()


def test_a_disk_that_fails_now_and_then_never_loses_an_acknowledged_record(tmp_path):
    """Issue 12's bar: with writes failing (ENOSPC) and fsyncs failing (EIO) every so
    often, producers at acks=1 and acks=all (idempotent) keep going; after a SIGKILL and a
    restart on a healthy disk every acknowledged record is there, and the idempotent
    producer's exactly once."""
    topic = "flakydisk"
    env = {"STROM_FAULTS": f"sync:EIO:path={topic}-:skip=20:every=17;write:ENOSPC:path={topic}-:skip=20:every=29"}
    broker = start_broker(tmp_path, tmp_path / "data", env)
    try:
        create_topic(broker.bootstrap, topic, 2)
        results: dict[str, dict[bytes, tuple]] = {"1": {}, "all": {}}
        producers = {
            "1": make_producer(broker.bootstrap, acks="1", linger_ms=1, message_timeout_ms=60000),
            "all": make_producer(broker.bootstrap, acks="all", linger_ms=1, enable_idempotence=True,
                                 message_timeout_ms=60000),
        }

        def on_delivery(acks):
            def cb(err, msg):
                results[acks][msg.value()] = (err, msg.partition(), msg.offset())
            return cb

        n = 1500
        for i in range(n):
            for acks, p in producers.items():
                value = f"{acks}-{i:05d}".encode()
                p.produce(topic, value=value, partition=i % 2, on_delivery=on_delivery(acks))
                p.poll(0)
            if i % 50 == 0:
                for p in producers.values():
                    p.flush(60)
        for p in producers.values():
            assert p.flush(90) == 0
        acked = {v: r for res in results.values() for v, r in res.items() if r[0] is None}
        errors = [r[0] for res in results.values() for r in res.values() if r[0] is not None]
        assert len(acked) > n, f"too little got through: {len(acked)} acked, errors {errors[:3]}"
        assert metric(broker, "strom_storage_errors_total") >= 3, "the faults did not fire"
        assert all(e.code() == KafkaError.KAFKA_STORAGE_ERROR or e.retriable() or
                   e.code() == KafkaError._MSG_TIMED_OUT for e in errors), errors[:5]

        broker.kill()
        broker.env.pop("STROM_FAULTS")
        broker.start()
        stored: dict[bytes, list[tuple[int, int]]] = {}
        for part in (0, 1):
            for g in consume(broker.bootstrap, topic, part):
                stored.setdefault(g.value, []).append((part, g.offset))
        lost = [v for v, r in acked.items() if (r[1], r[2]) not in stored.get(v, [])]
        assert not lost, f"{len(lost)} acknowledged records lost or moved, e.g. {lost[:3]}"
        dup = [v for v, where in stored.items() if v.startswith(b"all-") and len(where) > 1]
        assert not dup, f"the idempotent producer's records stored twice: {dup[:3]}"
        assert "panicked" not in broker.log_text()
    finally:
        broker.stop()


def test_group_commits_survive_a_failing_offsets_partition(tmp_path):
    """Six fsyncs of __consumer_offsets fail: the coordinator's partition goes offline and
    recovers each time, commits are retried by the client, and the last one is what the
    group reads back."""
    env = {"STROM_FAULTS": "sync:EIO:path=__consumer_offsets-0:skip=3:every=2:times=6"}
    if not STROM_BIN.exists():
        pytest.fail(f"{STROM_BIN} is missing")
    broker = StromBroker(
        tmp_path / "data",
        tmp_path / "strom.stderr",
        ["--default-partitions", "1", "--offsets-topic-partitions", "1"],
        env=env,
    )
    broker.start()
    try:
        create_topic(broker.bootstrap, "grouped", 1)
        from confluent_kafka import TopicPartition

        from kafka_util import make_consumer

        for i in range(20):
            c = make_consumer(broker.bootstrap, group_id="g", enable_auto_commit=False)
            c.commit(offsets=[TopicPartition("grouped", 0, i + 1)], asynchronous=False)
            c.close()
        c = make_consumer(broker.bootstrap, group_id="g")
        (tp,) = c.committed([TopicPartition("grouped", 0)], timeout=TIMEOUT_S)
        c.close()
        assert tp.offset == 20
        assert metric(broker, "strom_storage_errors_total") >= 1
        assert broker.log_text().count("injected storage fault") == 6
        assert "replica recovered after a storage error" in broker.log_text()
    finally:
        assert broker.stop() == 0


def test_the_metadata_log_recovers_from_a_failed_fsync(tmp_path):
    """A failed fsync of the metadata group's raft-state in the middle of topic creation:
    the group stops, is recovered (its committed commands replayed) and every topic is
    created; a restart keeps them all."""
    env = {"STROM_FAULTS": "sync:EIO:path=__cluster_metadata-0:skip=4:times=1"}
    broker = start_broker(tmp_path, tmp_path / "data", env)
    try:
        names = [f"meta{i}" for i in range(6)]
        for t in names:
            create_topic(broker.bootstrap, t, 1)
        assert "replica recovered after a storage error group=0" in broker.log_text()
        producer = make_producer(broker.bootstrap)
        err, offset, _ = produce_one(producer, names[-1], b"after")
        assert err is None
        broker.env.pop("STROM_FAULTS")
        broker.restart()
        from kafka_util import admin

        listed = admin(broker.bootstrap).list_topics(timeout=TIMEOUT_S).topics
        assert all(t in listed for t in names), sorted(listed)
        assert [g.value for g in consume(broker.bootstrap, names[-1], 0)] == [b"after"]
    finally:
        assert broker.stop() == 0


def test_a_failed_interval_flush_takes_the_partition_offline_and_it_recovers(tmp_path):
    """`flush = interval:<ms>`: nobody waits for the flush, so its failure must still be
    reported, take the partition offline and be recovered, even with no further writes."""
    topic = "intervalflush"
    # The first fsync of the segment fails: the one covering the record produced below
    # (a new partition's log is empty, so there is nothing to flush before it).
    env = {"STROM_FAULTS": f"sync:EIO:path={topic}-0/00000000000000000000.log:times=1"}
    if not STROM_BIN.exists():
        pytest.fail(f"{STROM_BIN} is missing")
    broker = StromBroker(
        tmp_path / "data",
        tmp_path / "strom.stderr",
        ["--default-partitions", "1", "--flush", "interval:50"],
        env=env,
    )
    broker.start()
    try:
        create_topic(broker.bootstrap, topic, 1)
        time.sleep(0.5)  # several flush intervals: none found anything to flush
        assert "injected storage fault" not in broker.log_text()
        producer = make_producer(broker.bootstrap, acks="1", retries=0, linger_ms=0)
        err, _, _ = produce_one(producer, topic, b"written, flushed later")
        assert err is None  # acks=1 under an interval policy: answered once written
        wait_until(
            lambda: "replica recovered after a storage error" in broker.log_text(),
            10,
            what="the partition to be recovered after its background flush failed",
        )
        assert "background flush failed" in broker.log_text()
        assert metric(broker, "strom_storage_errors_total") == 1
        assert metric(broker, "strom_offline_partitions") == 0
        err, _, _ = produce_one(producer, topic, b"after recovery")
        assert err is None
    finally:
        assert broker.stop() == 0
