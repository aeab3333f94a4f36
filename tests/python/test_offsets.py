"""Offsets against Strom: ListOffsets by timestamp (Consumer.offsets_for_times and
AdminClient.list_offsets), earliest/latest watermarks, DeleteRecords, and Kafka's numbering
itself (docs/adr/0005-kafka-offsets.md): a new partition's first record is at offset 0, N
records end at N, and no control batch takes an offset, so the expected offsets here are
plain numbers."""

from __future__ import annotations

import json
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
    TIMEOUT_S,
    admin,
    assert_contiguous,
    assert_delivered,
    client_conf,
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
from test_cli import strom

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


@pytest.mark.strom_args("--group-initial-rebalance-delay-ms", "200")
def test_new_partition_numbers_records_from_zero(broker, topic):
    """docs/adr/0005-kafka-offsets.md: offsets are Kafka's. A new partition is empty at
    (0, 0); its 20 records are at offsets 0..19, as the delivery reports, the stored
    batches (no control batch anywhere), confluent-kafka, kcat, offsets_for_times, the
    group's committed offset and its lag (confluent-kafka and `strom group describe`)
    all say."""
    create_topic(broker.bootstrap, topic)
    assert watermarks(broker.bootstrap, topic, 0) == (0, 0)

    n = 20
    t0 = int(time.time() * 1000) - 3_600_000
    p = make_producer(broker.bootstrap)
    messages = [
        {"key": f"k{i}".encode(), "value": f"v{i}".encode(), "timestamp": t0 + i * STEP_MS}
        for i in range(n)
    ]
    reports = produce_all(p, topic, messages)
    assert_delivered(reports)
    assert [r.offset for r in reports] == list(range(n))
    assert watermarks(broker.bootstrap, topic, 0) == (0, n)

    # As stored: the producer's batches from base offset 0, covering 0..19, and nothing else.
    with kafka_wire.Conn(broker.bootstrap) as c:
        batches = c.fetch_all_batches(topic, 0)
    assert batches and batches[0].base_offset == 0, [b.base_offset for b in batches]
    assert not [b for b in batches if b.is_control], "a control batch in the partition log"
    assert all(b.crc_ok for b in batches)
    records = [r for b in batches for r in b.records()]
    assert records == [(i, m["key"], m["value"]) for i, m in enumerate(messages)]

    # confluent-kafka from the beginning: offsets 0..19.
    got = consume(broker.bootstrap, topic, 0)
    assert [(g.offset, g.key, g.value) for g in got] == [
        (i, m["key"], m["value"]) for i, m in enumerate(messages)
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
    assert proc.stdout.splitlines() == [f"{i} k{i} v{i}" for i in range(n)]

    # The exact timestamp of record k finds offset k.
    assert offsets_for_times(broker, topic, [t0 + k * STEP_MS for k in range(n)]) == list(range(n))

    # A group reads everything and commits: its committed offset is the count of records
    # read, which is the high watermark (lag 0).
    group_id = f"g-{topic}"
    group = Consumer(client_conf(
        broker.bootstrap,
        **{"group.id": group_id, "auto.offset.reset": "earliest", "enable.auto.commit": False,
           "session.timeout.ms": 6000, "fetch.wait.max.ms": 100},
    ))
    seen = []
    try:
        group.subscribe([topic])

        def read_all():
            msg = group.poll(0.2)
            if msg is not None and not msg.error():
                seen.append(msg.offset())
            return len(seen) >= n

        wait_until(read_all, TIMEOUT_S, interval=0, what="the group to read every message")
        group.commit(asynchronous=False)
        (tp,) = group.committed([TopicPartition(topic, 0)], timeout=10)
    finally:
        group.close()
    assert seen == list(range(n))
    assert tp.offset == n, f"committed {tp.offset} after reading {n} records"
    assert watermarks(broker.bootstrap, topic, 0) == (0, n)
    assert group_lag(broker, group_id, topic) == (n, n, 0)

    # Back to the earliest offset, 0 (the group is empty now): all 20 records are lag.
    c = Consumer(client_conf(broker.bootstrap, **{"group.id": group_id, "enable.auto.commit": False}))
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
        (tp,) = c.committed([TopicPartition(topic, 0)], timeout=10)
    finally:
        c.close()
    assert tp.offset == 0
    assert group_lag(broker, group_id, topic) == (0, n, n)


def group_lag(broker, group: str, topic: str) -> tuple[int, int, int]:
    """(committed offset, end offset, lag) of partition 0 as `strom group describe` prints
    them, checked against its JSON output and its total."""
    text = strom(broker, "group", "describe", group).stdout
    rows = [line.split() for line in text.splitlines() if line.startswith(topic + " ")]
    assert len(rows) == 1, text
    _, partition, committed, end, lag = rows[0][:5]
    assert partition == "0", text
    out = (int(committed), int(end), int(lag))
    assert f"total lag: {out[2]}" in text, text
    d = json.loads(strom(broker, "group", "describe", group, "--output", "json").stdout)
    assert [(o["topic"], o["partition"], o["committed_offset"], o["end_offset"], o["lag"])
            for o in d["offsets"]] == [(topic, 0, *out)], d
    assert d["total_lag"] == out[2]
    return out
