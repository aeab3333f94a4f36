"""Offsets against Strom: ListOffsets by timestamp (Consumer.offsets_for_times and
AdminClient.list_offsets), earliest/latest watermarks and DeleteRecords. Offsets are
Kafka's (docs/adr/0005-kafka-offsets.md): a new partition's first record is at offset 0 and
N records end at N, so the expected offsets here are plain numbers."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import OffsetSpec

import kafka_wire

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
    watermarks,
)

STEP_MS = 1000


def produce_timed(
    broker, topic, n: int, per_batch: int, compression: str = "none"
) -> tuple[int, list[int]]:
    """n messages with timestamps t0, t0+1s, ... to a new partition; `per_batch` per produce
    request (flushed in between). Returns t0 and the offsets of the n messages from the
    delivery reports: message i is at offset i."""
    offsets: list[int] = []
    t0 = int(time.time() * 1000) - 3_600_000
    p = make_producer(
        broker.bootstrap, linger_ms=100, batch_num_messages=per_batch, compression_type=compression
    )
    for first in range(0, n, per_batch):
        msgs = [
            # Compressible values: librdkafka sends a batch uncompressed when compression
            # does not make it smaller.
            {"value": f"m{i} ".encode() + b"z" * 200, "timestamp": t0 + i * STEP_MS}
            for i in range(first, min(n, first + per_batch))
        ]
        reports = produce_all(p, topic, msgs)
        assert_delivered(reports)
        offsets += [r.offset for r in reports]
    assert_contiguous(offsets, 0)
    return t0, offsets


def offsets_for_times(broker, topic, timestamps: list[int]) -> list[int]:
    """One lookup per timestamp (a ListOffsets request names each partition once)."""
    c = make_consumer(broker.bootstrap)
    out = []
    try:
        for ts in timestamps:
            (tp,) = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=TIMEOUT_S)
            assert tp.error is None, tp.error
            out.append(tp.offset)
    finally:
        c.close()
    return out


def expected_offsets(t0: int, offsets: list[int], timestamps: list[int]) -> list[int]:
    """Kafka's answer: the first offset whose timestamp is >= the target, else -1 (end).
    Message i (timestamp t0 + i s) is at offsets[i]."""
    out = []
    for ts in timestamps:
        hits = [o for i, o in enumerate(offsets) if t0 + i * STEP_MS >= ts]
        out.append(hits[0] if hits else OFFSET_END)
    return out


def probe_times(t0: int, n: int) -> list[int]:
    return [t0 - 10_000, t0, t0 + 1, t0 + 5 * STEP_MS, t0 + 5 * STEP_MS + 500, t0 + 17 * STEP_MS - 1,
            t0 + (n - 1) * STEP_MS, t0 + n * STEP_MS]


@pytest.mark.parametrize("per_batch", [1, 4, 24], ids=["batch1", "batch4", "batch24"])
def test_offsets_for_times(broker, topic, per_batch):
    create_topic(broker.bootstrap, topic)
    n = 24
    t0, offsets = produce_timed(broker, topic, n, per_batch)
    times = probe_times(t0, n)
    assert offsets_for_times(broker, topic, times) == expected_offsets(t0, offsets, times)


def test_offsets_for_times_compressed_batches(broker, topic):
    """The broker looks inside compressed batches (ADR 0002) for the first record at or
    after the target, as Kafka does."""
    create_topic(broker.bootstrap, topic)
    n = 24
    t0, offsets = produce_timed(broker, topic, n, 8, compression="zstd")
    with kafka_wire.Conn(broker.bootstrap) as c:
        assert {b.compression for b in c.fetch_all_batches(topic, 0)} == {4}, "not zstd batches"
    times = probe_times(t0, n)
    assert offsets_for_times(broker, topic, times) == expected_offsets(t0, offsets, times)


def test_admin_list_offsets(broker, topic):
    create_topic(broker.bootstrap, topic)
    n = 12
    t0, offsets = produce_timed(broker, topic, n, 1)
    a = admin(broker.bootstrap)
    tp = TopicPartition(topic, 0)

    def list_offsets(spec):
        return result(a.list_offsets({tp: spec}, request_timeout=TIMEOUT_S)[tp])

    # The log starts at the first message, 0; it ends after the last, at n.
    assert list_offsets(OffsetSpec.earliest()).offset == 0
    assert list_offsets(OffsetSpec.latest()).offset == n
    r = list_offsets(OffsetSpec.for_timestamp(t0 + 3 * STEP_MS))
    assert (r.offset, r.timestamp) == (3, t0 + 3 * STEP_MS)
    r = list_offsets(OffsetSpec.max_timestamp())
    assert (r.offset, r.timestamp) == (n - 1, t0 + (n - 1) * STEP_MS)


def test_max_timestamp_inside_a_batch(broker, topic):
    """MAX_TIMESTAMP names the record holding the largest timestamp, which need not be the
    batch's last record."""
    create_topic(broker.bootstrap, topic)
    t0 = int(time.time() * 1000) - 60_000
    p = make_producer(broker.bootstrap, linger_ms=200)
    stamps = [t0, t0 + 5000, t0 + 2000, t0 + 5000, t0 + 1000]
    reports = produce_all(p, topic, [{"value": b"v", "timestamp": ts} for ts in stamps])
    assert_delivered(reports)
    assert [r.offset for r in reports] == [0, 1, 2, 3, 4]
    with kafka_wire.Conn(broker.bootstrap) as c:
        assert len(c.fetch_all_batches(topic, 0)) == 1, "expected one batch"
    a = admin(broker.bootstrap)
    tp = TopicPartition(topic, 0)
    # The first of the two records with the largest timestamp (the batch's second).
    r = result(a.list_offsets({tp: OffsetSpec.max_timestamp()}, request_timeout=TIMEOUT_S)[tp])
    assert (r.offset, r.timestamp) == (1, t0 + 5000)
    r = result(a.list_offsets({tp: OffsetSpec.for_timestamp(t0 + 1500)}, request_timeout=TIMEOUT_S)[tp])
    assert (r.offset, r.timestamp) == (1, t0 + 5000)


def test_watermarks(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=2)
    # New partitions are empty: start and end both 0.
    assert [watermarks(broker.bootstrap, topic, part) for part in (0, 1)] == [(0, 0), (0, 0)]
    p = make_producer(broker.bootstrap)
    reports = produce_all(p, topic, [{"value": b"x", "partition": 0}] * 50)
    reports += produce_all(p, topic, [{"value": b"y", "partition": 1}] * 7)
    assert_delivered(reports)
    offsets = offsets_by_partition(reports)
    assert_contiguous(offsets[0], 0)
    assert_contiguous(offsets[1], 0)
    # The log start stays; the end is the number of messages produced.
    assert watermarks(broker.bootstrap, topic, 0) == (0, 50)
    assert watermarks(broker.bootstrap, topic, 1) == (0, 7)


def test_delete_records(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=2)
    p = make_producer(broker.bootstrap, linger_ms=0)
    # Several batches, so the cut falls inside one and between others.
    reports = []
    for chunk in range(10):
        msgs = [{"value": f"m{chunk * 5 + i}".encode(), "partition": 0} for i in range(5)]
        reports += produce_all(p, topic, msgs)
    reports += produce_all(p, topic, [{"value": b"other", "partition": 1}] * 5)
    assert_delivered(reports)
    offsets = offsets_by_partition(reports)
    assert_contiguous(offsets[0], 0)  # m{i} is at offset i
    assert_contiguous(offsets[1], 0)
    end = 50
    assert watermarks(broker.bootstrap, topic, 0) == (0, end)
    assert watermarks(broker.bootstrap, topic, 1) == (0, 5)
    a = admin(broker.bootstrap)

    # The cut falls inside the fifth batch (m20..m24).
    tp = TopicPartition(topic, 0, 22)
    deleted = result(a.delete_records([tp], operation_timeout=10)[tp])
    assert deleted.low_watermark == 22
    assert watermarks(broker.bootstrap, topic, 0) == (22, end)
    # The other partition is untouched.
    assert watermarks(broker.bootstrap, topic, 1) == (0, 5)

    got = consume(broker.bootstrap, topic, 0)
    assert [g.offset for g in got] == list(range(22, end))
    assert [g.value for g in got] == [f"m{i}".encode() for i in range(22, 50)]

    # Reading below the log start is out of range: the consumer resets (earliest) ...
    got = consume(broker.bootstrap, topic, 0, start=5, auto_offset_reset="earliest")
    assert got[0].offset == 22
    # ... or reports it (auto.offset.reset=error).
    with pytest.raises(KafkaException) as exc:
        consume(broker.bootstrap, topic, 0, start=5, count=1, timeout=15)
    assert exc.value.args[0].code() == KafkaError._AUTO_OFFSET_RESET

    # Deleting below the current start changes nothing; beyond the end is refused.
    tp = TopicPartition(topic, 0, 10)
    assert result(a.delete_records([tp])[tp]).low_watermark == 22
    tp = TopicPartition(topic, 0, end + 1)
    with pytest.raises(KafkaException) as exc:
        result(a.delete_records([tp])[tp])
    assert exc.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE

    # OFFSET_END deletes everything; new writes continue at the old end.
    tp = TopicPartition(topic, 0, OFFSET_END)
    assert result(a.delete_records([tp])[tp]).low_watermark == end
    assert watermarks(broker.bootstrap, topic, 0) == (end, end)
    reports = produce_all(p, topic, [{"value": b"after", "partition": 0}])
    assert_delivered(reports)
    assert reports[0].offset == end
    got = consume(broker.bootstrap, topic, 0, start=OFFSET_BEGINNING)
    assert [(g.offset, g.value) for g in got] == [(end, b"after")]
