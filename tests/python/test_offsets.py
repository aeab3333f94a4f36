"""Offsets against Strom: ListOffsets by timestamp (Consumer.offsets_for_times and
AdminClient.list_offsets), earliest/latest watermarks, DeleteRecords, and the leader-change
control batch a new partition starts with (docs/adr/0001-raft-offsets.md): clients skip it,
so the expected offsets here come from delivery reports, not from 0."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import OffsetSpec

import kafka_wire

from kafka_util import (
    NEW_PARTITION_WATERMARKS,
    TIMEOUT_S,
    admin,
    assert_contiguous,
    assert_delivered,
    client_conf,
    consume,
    create_topic,
    make_consumer,
    make_producer,
    next_offset,
    offsets_by_partition,
    produce_all,
    result,
    wait_until,
    watermarks,
)

STEP_MS = 1000


def produce_timed(
    broker, topic, n: int, per_batch: int, compression: str = "none"
) -> tuple[int, list[int]]:
    """n messages with timestamps t0, t0+1s, ...; `per_batch` per produce request (flushed
    in between). Returns t0 and the offsets of the n messages (from the delivery reports:
    the contiguous run from the partition's end before producing)."""
    start = next_offset(broker.bootstrap, topic, 0)
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
    assert_contiguous(offsets, start)
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
        assert {b.compression for b in c.fetch_data_batches(topic, 0)} == {4}, "not zstd batches"
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

    # The log starts at 0 (the first leader's control batch); it ends after the last message.
    assert list_offsets(OffsetSpec.earliest()).offset == NEW_PARTITION_WATERMARKS[0]
    assert list_offsets(OffsetSpec.latest()).offset == offsets[-1] + 1
    r = list_offsets(OffsetSpec.for_timestamp(t0 + 3 * STEP_MS))
    assert (r.offset, r.timestamp) == (offsets[3], t0 + 3 * STEP_MS)
    r = list_offsets(OffsetSpec.max_timestamp())
    assert (r.offset, r.timestamp) == (offsets[n - 1], t0 + (n - 1) * STEP_MS)


def test_max_timestamp_inside_a_batch(broker, topic):
    """MAX_TIMESTAMP names the record holding the largest timestamp, which need not be the
    batch's last record."""
    create_topic(broker.bootstrap, topic)
    t0 = int(time.time() * 1000) - 60_000
    p = make_producer(broker.bootstrap, linger_ms=200)
    stamps = [t0, t0 + 5000, t0 + 2000, t0 + 5000, t0 + 1000]
    reports = produce_all(p, topic, [{"value": b"v", "timestamp": ts} for ts in stamps])
    assert_delivered(reports)
    offsets = [r.offset for r in reports]
    assert_contiguous(offsets)
    with kafka_wire.Conn(broker.bootstrap) as c:
        assert len(c.fetch_data_batches(topic, 0)) == 1, "expected one batch"
    a = admin(broker.bootstrap)
    tp = TopicPartition(topic, 0)
    # The first of the two records with the largest timestamp (the batch's second).
    r = result(a.list_offsets({tp: OffsetSpec.max_timestamp()}, request_timeout=TIMEOUT_S)[tp])
    assert (r.offset, r.timestamp) == (offsets[1], t0 + 5000)
    r = result(a.list_offsets({tp: OffsetSpec.for_timestamp(t0 + 1500)}, request_timeout=TIMEOUT_S)[tp])
    assert (r.offset, r.timestamp) == (offsets[1], t0 + 5000)


def test_watermarks(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=2)
    # Empty but for the first leader's control batch.
    before = [watermarks(broker.bootstrap, topic, part) for part in (0, 1)]
    assert before == [NEW_PARTITION_WATERMARKS] * 2
    p = make_producer(broker.bootstrap)
    reports = produce_all(p, topic, [{"value": b"x", "partition": 0}] * 50)
    reports += produce_all(p, topic, [{"value": b"y", "partition": 1}] * 7)
    assert_delivered(reports)
    offsets = offsets_by_partition(reports)
    assert_contiguous(offsets[0], before[0][1])
    assert_contiguous(offsets[1], before[1][1])
    # The log start stays; the end moves past exactly the messages produced.
    assert watermarks(broker.bootstrap, topic, 0) == (before[0][0], before[0][1] + 50)
    assert watermarks(broker.bootstrap, topic, 1) == (before[1][0], before[1][1] + 7)
    assert watermarks(broker.bootstrap, topic, 0)[1] == offsets[0][-1] + 1
    assert watermarks(broker.bootstrap, topic, 1)[1] == offsets[1][-1] + 1


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
    o = offsets[0]  # o[i] holds m{i}
    assert_contiguous(o)
    end = o[-1] + 1
    other = watermarks(broker.bootstrap, topic, 1)
    assert other == (0, offsets[1][-1] + 1)
    a = admin(broker.bootstrap)

    # The cut falls inside the fifth batch (m20..m24).
    tp = TopicPartition(topic, 0, o[22])
    deleted = result(a.delete_records([tp], operation_timeout=10)[tp])
    assert deleted.low_watermark == o[22]
    assert watermarks(broker.bootstrap, topic, 0) == (o[22], end)
    # The other partition is untouched.
    assert watermarks(broker.bootstrap, topic, 1) == other

    got = consume(broker.bootstrap, topic, 0)
    assert [g.offset for g in got] == o[22:]
    assert [g.value for g in got] == [f"m{i}".encode() for i in range(22, 50)]

    # Reading below the log start is out of range: the consumer resets (earliest) ...
    got = consume(broker.bootstrap, topic, 0, start=o[5], auto_offset_reset="earliest")
    assert got[0].offset == o[22]
    # ... or reports it (auto.offset.reset=error).
    with pytest.raises(KafkaException) as exc:
        consume(broker.bootstrap, topic, 0, start=o[5], count=1, timeout=15)
    assert exc.value.args[0].code() == KafkaError._AUTO_OFFSET_RESET

    # Deleting below the current start changes nothing; beyond the end is refused.
    tp = TopicPartition(topic, 0, o[10])
    assert result(a.delete_records([tp])[tp]).low_watermark == o[22]
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


LEADER_CHANGE_KEY = b"\x00\x00\x00\x02"  # control record key: version 0, type 2


@pytest.mark.strom_args("--group-initial-rebalance-delay-ms", "200")
def test_new_partition_starts_with_a_leader_change_control_batch(broker, topic):
    """docs/adr/0001-raft-offsets.md: a new partition's first entry is its first leader's
    Raft entry, stored as a one-record LEADER_CHANGE control batch at offset 0. Clients skip
    it: confluent-kafka and kcat see only the real messages, and a group that read and
    committed everything has no lag (its committed offset is the high watermark)."""
    create_topic(broker.bootstrap, topic)
    assert watermarks(broker.bootstrap, topic, 0) == NEW_PARTITION_WATERMARKS
    with kafka_wire.Conn(broker.bootstrap) as c:
        (control,) = c.fetch_all_batches(topic, 0)
    assert control.is_control, f"attributes {control.attributes:#x}"
    assert (control.base_offset, control.count, control.last_offset_delta) == (0, 1, 0)
    assert control.compression == 0 and control.crc_ok
    assert control.producer_id == -1
    ((offset, key, value),) = control.records()
    assert (offset, key) == (0, LEADER_CHANGE_KEY)

    p = make_producer(broker.bootstrap)
    messages = [{"key": f"k{i}".encode(), "value": f"v{i}".encode()} for i in range(20)]
    reports = produce_all(p, topic, messages)
    assert_delivered(reports)
    offsets = [r.offset for r in reports]
    assert_contiguous(offsets, NEW_PARTITION_WATERMARKS[1])
    high = offsets[-1] + 1
    assert watermarks(broker.bootstrap, topic, 0) == (0, high)
    with kafka_wire.Conn(broker.bootstrap) as c:
        batches = c.fetch_all_batches(topic, 0)
    assert batches[0].is_control and not any(b.is_control for b in batches[1:])

    # confluent-kafka from the beginning: the real messages only.
    got = consume(broker.bootstrap, topic, 0)
    assert [(g.offset, g.key, g.value) for g in got] == [
        (o, m["key"], m["value"]) for o, m in zip(offsets, messages)
    ]

    # kcat (librdkafka 2.0.2) too.
    kcat = shutil.which("kcat")
    assert kcat, "kcat is not installed: apt-get install -y kcat"
    proc = subprocess.run(
        [kcat, "-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
         "-f", "%o %k %s\\n"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"{o} {m['key'].decode()} {m['value'].decode()}" for o, m in zip(offsets, messages)
    ]

    # A group reads everything and commits: its committed offset is the high watermark.
    group = Consumer(client_conf(
        broker.bootstrap,
        **{"group.id": "g-lag", "auto.offset.reset": "earliest", "enable.auto.commit": False,
           "session.timeout.ms": 6000, "fetch.wait.max.ms": 100},
    ))
    seen = []
    try:
        group.subscribe([topic])

        def read_all():
            msg = group.poll(0.2)
            if msg is not None and not msg.error():
                seen.append(msg.offset())
            return len(seen) >= len(messages)

        wait_until(read_all, TIMEOUT_S, interval=0, what="the group to read every message")
        group.commit(asynchronous=False)
        (tp,) = group.committed([TopicPartition(topic, 0)], timeout=10)
    finally:
        group.close()
    assert seen == offsets
    lo, hi = watermarks(broker.bootstrap, topic, 0)
    assert tp.offset == hi == high, f"committed {tp.offset}, high watermark {hi}: lag {hi - tp.offset}"
