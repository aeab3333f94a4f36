"""Durability across restarts: topics, configs, data and the log start survive a clean
SIGTERM restart; a broker SIGKILLed while an idempotent acks=all producer keeps producing
loses no acknowledged message and writes none twice; a data directory of the format before
Kafka's offsets is refused at start.

Each start elects the single node leader of every partition again; leader changes take no
offset (docs/adr/0005-kafka-offsets.md), so a restart leaves every partition's offsets as
they were and writing continues at the old end."""

from __future__ import annotations

import os
import struct
import subprocess
import threading
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition
from confluent_kafka.admin import ConfigResource, ConfigSource, NewPartitions, NewTopic, ResourceType

import kafka_wire
import prom_text
from kafka_util import (
    TIMEOUT_S,
    admin,
    assert_contiguous,
    assert_delivered,
    consume,
    create_topic,
    make_consumer,
    make_producer,
    offsets_by_partition,
    produce_all,
    result,
    wait_until,
    watermarks,
)


def describe(bootstrap, topic):
    a = admin(bootstrap)
    res = ConfigResource(ResourceType.TOPIC, topic)
    return {
        name: (e.value, e.source)
        for name, e in result(a.describe_configs([res], request_timeout=TIMEOUT_S)[res]).items()
    }


def test_clean_restart_keeps_topics_configs_and_data(broker, topic):
    a = admin(broker.bootstrap)
    configs = {"retention.ms": "987654321", "segment.bytes": "262144", "max.message.bytes": "300000"}
    result(a.create_topics([NewTopic(topic, 3, 1, config=configs)])[topic])
    auto = topic + ".auto"  # auto-created by the producer's Metadata request

    # Batches must stay below the topic's max.message.bytes (librdkafka does not split).
    p = make_producer(broker.bootstrap, linger_ms=5, batch_size=100_000)
    # ~1.5 MB per partition with 256 KiB segments: several segments each.
    msgs = [
        {"key": f"k{i}".encode(), "value": f"{i:06d}".encode() + bytes(range(256)) * 8, "partition": i % 3}
        for i in range(6000)
    ]
    reports = produce_all(p, topic, msgs)
    assert_delivered(reports)
    offsets = offsets_by_partition(reports)
    for part in range(3):
        assert len(offsets[part]) == 2000
        assert_contiguous(offsets[part], 0)
    zmsgs = [{"value": f"z{i}".encode() * 50} for i in range(500)]
    pz = make_producer(broker.bootstrap, compression_type="zstd")
    assert_delivered(produce_all(pz, auto, zmsgs))
    # The log start moves to partition 0's 124th message.
    cut = 123
    tp = TopicPartition(topic, 0, cut)
    assert result(a.delete_records([tp])[tp]).low_watermark == cut

    # A grown topic and a deleted one: both changes must survive too.
    grown, gone = topic + ".grown", topic + ".gone"
    for name in (grown, gone):
        result(a.create_topics([NewTopic(name, 1, 1)])[name])
    assert_delivered(produce_all(p, gone, [{"value": b"doomed", "partition": 0}]))
    result(a.create_partitions([NewPartitions(grown, 5)])[grown])
    result(a.delete_topics([gone])[gone])

    before_configs = describe(broker.bootstrap, topic)
    before_marks = {p_: watermarks(broker.bootstrap, topic, p_) for p_ in range(3)}
    assert before_marks == {0: (cut, 2000), 1: (0, 2000), 2: (0, 2000)}
    segments = list((broker.data_dir / f"{topic}-1").glob("*.log"))
    assert len(segments) > 2, f"expected several segments, found {segments}"

    broker.restart()

    md = admin(broker.bootstrap).list_topics(timeout=TIMEOUT_S)
    assert len(md.topics[topic].partitions) == 3
    assert len(md.topics[auto].partitions) == 1
    assert len(md.topics[grown].partitions) == 5
    assert gone not in md.topics
    assert not list(broker.data_dir.glob(f"{gone}-*")), "the deleted topic's log is back"
    after_configs = describe(broker.bootstrap, topic)
    assert after_configs == before_configs
    for name, value in configs.items():
        assert after_configs[name] == (value, ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    # The log starts and ends are kept: the new leader takes no offset.
    after_marks = {p_: watermarks(broker.bootstrap, topic, p_) for p_ in range(3)}
    assert after_marks == before_marks

    for part in range(3):
        want = [m for m in msgs if m["partition"] == part]
        got = consume(broker.bootstrap, topic, part)
        if part == 0:
            want = want[123:]
        assert [(g.key, g.value) for g in got] == [(m["key"], m["value"]) for m in want]
        assert [g.offset for g in got] == list(range(2000 - len(want), 2000))
    got = consume(broker.bootstrap, auto, 0)
    assert [g.value for g in got] == [m["value"] for m in zmsgs]
    assert [g.offset for g in got] == list(range(len(zmsgs)))

    # Writing continues at the old end, and the topic's max.message.bytes still applies.
    p2 = make_producer(broker.bootstrap)
    reports = produce_all(p2, topic, [{"value": b"after restart", "partition": 1}])
    assert_delivered(reports)
    assert reports[0].offset == 2000
    reports = produce_all(p2, topic, [{"value": b"x" * 400_000, "partition": 1}])
    assert reports[0].error is not None and reports[0].error.code() == KafkaError.MSG_SIZE_TOO_LARGE


def test_acks_all_survives_sigkill_right_after_ack(broker, topic):
    create_topic(broker.bootstrap, topic)
    p = make_producer(broker.bootstrap, acks="all", linger_ms=1)
    msgs = [{"value": f"{i}".encode()} for i in range(2000)]
    reports = produce_all(p, topic, msgs)
    assert_delivered(reports)
    broker.kill()
    broker.start()
    got = consume(broker.bootstrap, topic, 0)
    assert [g.value for g in got] == [m["value"] for m in msgs]
    assert [g.offset for g in got] == [r.offset for r in reports] == list(range(2000))
    assert watermarks(broker.bootstrap, topic, 0) == (0, 2000)


class NumberedProducer(threading.Thread):
    """Produces 0, 1, 2, ... to partition 0 with an idempotent acks=all producer, paced,
    until stopped; records which numbers were acknowledged and at which offset."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(daemon=True)
        self.topic = topic
        self.lock = threading.Lock()
        self.acked: dict[int, int] = {}  # number -> offset
        self.failed: list[tuple[int, KafkaError]] = []
        self.errors: list[KafkaError] = []
        self.sent = 0
        self.stopping = threading.Event()
        self.producer = make_producer(
            bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            message_timeout_ms=120000,
            request_timeout_ms=5000,
            reconnect_backoff_ms=50,
            reconnect_backoff_max_ms=500,
            error_cb=self.on_error,
        )

    def on_error(self, err):
        with self.lock:
            self.errors.append(err)

    def on_delivery(self, err, msg):
        n = int(msg.value())
        with self.lock:
            if err is None:
                self.acked[n] = msg.offset()
            else:
                self.failed.append((n, err))

    def run(self):
        while not self.stopping.is_set():
            for _ in range(20):
                try:
                    self.producer.produce(
                        self.topic, value=str(self.sent).encode(), partition=0, on_delivery=self.on_delivery
                    )
                    self.sent += 1
                except BufferError:
                    break
            self.producer.poll(0.005)  # paces to a few thousand messages a second

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)

    def fatal_errors(self):
        with self.lock:
            return [e for e in self.errors if e.fatal()]


def test_sigkill_during_idempotent_acks_all_production(broker, topic):
    create_topic(broker.bootstrap, topic)
    prod = NumberedProducer(broker.bootstrap, topic)
    prod.start()
    try:
        for cycle in range(3):
            target = prod.acked_count() + 3000
            wait_until(lambda: prod.acked_count() >= target, 60, what=f"3000 more acks (cycle {cycle})")
            sent_at_kill = prod.sent
            broker.kill()
            # Keep producing into the outage; the producer buffers and retries.
            wait_until(lambda: prod.sent >= sent_at_kill + 500, 30, what="producing during the outage")
            acked_at_restart = prod.acked_count()
            broker.start()
            wait_until(
                lambda: prod.acked_count() >= acked_at_restart + 3000, 60, what="acks after the restart"
            )
            assert not prod.fatal_errors(), prod.fatal_errors()
    finally:
        prod.stopping.set()
        prod.join(10)
    assert prod.producer.flush(60) == 0, "messages still undelivered"

    with prod.lock:
        acked = dict(prod.acked)
        failed = list(prod.failed)
    assert not prod.fatal_errors(), prod.fatal_errors()
    assert not failed, f"{len(failed)} deliveries failed, first {failed[:3]}"
    assert len(acked) == prod.sent

    got = consume(broker.bootstrap, topic, 0, timeout=60)
    numbers = [int(g.value) for g in got]
    offsets = {int(g.value): g.offset for g in got}
    dupes = len(numbers) - len(set(numbers))
    assert dupes == 0, f"{dupes} numbers were written twice"
    out_of_order = [(a, b) for a, b in zip(numbers, numbers[1:]) if b <= a]
    assert not out_of_order, f"out of order: {out_of_order[:5]}"
    missing = sorted(set(acked) - set(numbers))
    assert not missing, f"{len(missing)} acknowledged numbers are missing: {missing[:10]}"
    # Each acknowledged message is where its delivery report said it is.
    wrong = [(n, o, offsets[n]) for n, o in acked.items() if offsets[n] != o]
    assert not wrong, f"delivery report offsets differ from the log: {wrong[:5]}"
    # Offsets are dense from 0 across the restarts (leader changes take none), and every
    # number was written once, in order: number n is at offset n, and the log ends at the
    # count sent.
    assert numbers == list(range(prod.sent)), "numbers missing, repeated or out of order"
    assert [g.offset for g in got] == list(range(prod.sent)), "the log has holes"
    with kafka_wire.Conn(broker.bootstrap) as c:
        batches = c.fetch_all_batches(topic, 0)
        end = c.fetch(topic, 0, 0).high_watermark
    assert end == prod.sent
    assert not [b.base_offset for b in batches if b.is_control], "control batches in the log"
    covered = [o for b in batches for o in range(b.base_offset, b.base_offset + b.last_offset_delta + 1)]
    assert covered == list(range(end)), "the batches have holes or overlaps"


def test_sigterm_is_prompt_with_parked_long_polls_and_producers(broker, topic):
    """Clean shutdown does not wait for long-polling fetches (30 s here) to run out."""
    create_topic(broker.bootstrap, topic)
    p = make_producer(broker.bootstrap)
    assert_delivered(produce_all(p, topic, [{"value": b"one"}]))
    consumers = [make_consumer(broker.bootstrap, fetch_wait_max_ms=30000) for _ in range(3)]
    try:
        for c in consumers:
            c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
            wait_until(lambda c=c: (m := c.poll(0.2)) is not None and not m.error(), 15, what="first message")
        time.sleep(0.3)  # their next fetches are now parked at the end of the log
        started = time.monotonic()
        rc = broker.stop()
        took = time.monotonic() - started
    finally:
        for c in consumers:
            c.close()
    assert rc == 0
    assert took < 5, f"shutdown took {took:.1f}s"
    broker.start()
    assert [g.value for g in consume(broker.bootstrap, topic, 0)] == [b"one"]


def test_a_data_directory_of_the_old_offset_format_is_refused_at_start(broker, topic, tmp_path):
    """A partition directory written before offsets were Kafka's (raft-state format 1,
    docs/adr/0001-raft-offsets.md) must not be misread as format 2 (ADR 0005): the broker
    refuses to start, exiting at once with an error that names the directory, and leaves
    its data as it was."""
    create_topic(broker.bootstrap, topic)
    values = [f"old-{i}".encode() for i in range(5)]
    assert_delivered(produce_all(make_producer(broker.bootstrap), topic, [{"value": v} for v in values]))
    assert broker.stop() == 0

    part_dir = broker.data_dir / f"{topic}-0"
    state_path = part_dir / "raft-state"
    original = state_path.read_bytes()
    # Two slots of equal size, each: b"STRMRAFT", a big-endian u16 format version, ...
    slot = len(original) // 2
    assert len(original) == 2 * slot and slot >= 512, len(original)
    old = bytearray(original)
    for at in (0, slot):
        assert old[at : at + 8] == b"STRMRAFT", f"slot at {at}: {bytes(old[at:at + 10])!r}"
        assert struct.unpack_from(">H", old, at + 8) == (2,), "not the current format, 2"
        struct.pack_into(">H", old, at + 8, 1)
    state_path.write_bytes(bytes(old))

    def data_files() -> dict[str, bytes]:
        return {f.name: f.read_bytes() for f in part_dir.iterdir() if f.name == "raft-state" or f.suffix == ".log"}

    before = data_files()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STROM_")}
    env.update({"NO_COLOR": "1", "STROM_LOG": broker.log_filter})
    stderr_path = tmp_path / "refused.stderr"
    started = time.monotonic()
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(broker.command(), stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env)
    try:
        rc = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = None
    took = time.monotonic() - started
    stderr = stderr_path.read_text(errors="replace")
    shown = "\n".join(line for line in stderr.splitlines() if "older Strom" in line or "serving" in line)
    assert rc is not None, f"still running {took:.0f}s after starting on an old-format directory:\n{shown}"
    assert rc != 0, f"exited with 0 on an old-format directory:\n{shown}"
    assert str(part_dir) in stderr, stderr[-3000:]
    assert "older Strom" in stderr, stderr[-3000:]
    assert "panicked" not in stderr, stderr[-3000:]
    # Its data was neither rewritten nor converted.
    assert data_files() == before, "the refused directory's raft-state or segments changed"

    # With its format-2 state back, the same directory serves the records as before.
    state_path.write_bytes(original)
    broker.start()
    got = consume(broker.bootstrap, topic, 0)
    assert [(g.offset, g.value) for g in got] == list(enumerate(values))


def fsyncs(broker) -> float:
    status, _, body = broker.http_get("/metrics")
    assert status == 200
    return prom_text.value(prom_text.parse(body), "strom_log_fsync_duration_seconds_count") or 0


def produce_acks1(broker, topic: str, total: int, record: int = 32 << 10, pause_every: int = 0) -> None:
    """`total` bytes to partition 0 in batches of one `record`-byte record, acks=1; with
    `pause_every`, a pause longer than the storage engine's 100 ms flush tick after
    every `pause_every` bytes."""
    with kafka_wire.Conn(broker.bootstrap) as c:
        for i in range(total // record):
            batch = kafka_wire.record_batch([(None, bytes([i % 256]) * record)])
            resp = kafka_wire.parse_produce_v3(
                c.call(0, 3, kafka_wire.produce_v3_body(topic, 0, batch, acks=1))
            )
            assert resp[0].error_code == 0, resp
            if pause_every and (i + 1) * record % pause_every == 0:
                time.sleep(0.3)


@pytest.mark.strom_args("--flush", "bytes:262144")
def test_flush_by_size_fsyncs_every_n_bytes_of_appends(broker, topic):
    """`flush = bytes:<n>`: produced data is fsynced once n bytes are unflushed (by the
    storage engine's background tick, every 100 ms), not per append and not never."""
    create_topic(broker.bootstrap, topic, partitions=1)
    time.sleep(0.5)
    before = fsyncs(broker)
    # 256 KiB, then a pause the tick sees it in, 12 times: one fsync each.
    produce_acks1(broker, topic, 12 * (256 << 10), pause_every=256 << 10)
    wait_until(lambda: fsyncs(broker) - before >= 12, timeout=10, what="fsyncs by size")
    # Per append would be 96 (one per 32 KiB batch).
    assert fsyncs(broker) - before <= 24
    # Without pauses the tick fsyncs what has gathered: fewer fsyncs than appends.
    before = fsyncs(broker)
    produce_acks1(broker, topic, 4 << 20)
    wait_until(lambda: fsyncs(broker) - before >= 1, timeout=10, what="a flush by size")
    assert fsyncs(broker) - before <= 40


@pytest.mark.strom_args("--flush", "bytes:1073741824")
def test_flush_by_size_waits_for_the_size(broker, topic):
    """The counterpart: below the size nothing is fsynced, however many appends."""
    create_topic(broker.bootstrap, topic, partitions=1)
    time.sleep(0.5)
    before = fsyncs(broker)
    produce_acks1(broker, topic, 4 << 20)
    time.sleep(1.0)
    assert fsyncs(broker) - before <= 2
