"""Every record of a produced batch is checked like Kafka's LogValidator: valid-CRC
batches with malformed records get INVALID_RECORD (and nothing is appended, so kcat reads
on past them), a huge claimed record count is refused without the broker's memory growing,
the header's maxTimestamp is recomputed from the records (so offsets-for-times and
retention see real timestamps), and message.timestamp.type=LogAppendTime and the
timestamp bounds work with real clients."""

from __future__ import annotations

import struct
import subprocess
import time
import zlib

import pytest
from confluent_kafka import KafkaError, TopicPartition

import kafka_wire
from kafka_util import assert_delivered, consume, create_topic, make_consumer, make_producer, produce_all

INVALID_TIMESTAMP = 32
UNSUPPORTED_COMPRESSION_TYPE = 76
INVALID_RECORD = 87
V = kafka_wire.varint


def batch(records: bytes, count: int, first_ts: int, max_ts: int, attributes: int = 0) -> bytes:
    """A RecordBatch v2 with a valid CRC around `records` (encoded by the caller)."""
    after_crc = struct.pack(">hiqqqhii", attributes, count - 1, first_ts, max_ts, -1, -1, -1, count) + records
    return struct.pack(">qiibI", 0, 4 + 1 + 4 + len(after_crc), 0, 2, kafka_wire.crc32c(after_crc)) + after_crc


def record(offset_delta: int, value: bytes, ts_delta: int = 0) -> bytes:
    body = b"\x00" + V(ts_delta) + V(offset_delta) + V(-1) + V(len(value)) + value + V(0)
    return V(len(body)) + body


def raw_record(body: bytes) -> bytes:
    return V(len(body)) + body


NOW = int(time.time() * 1000)
GOOD = record(0, b"a") + record(1, b"b")
BAD_BATCHES = {
    # a record length of 2^62 (a 9-byte varint)
    "length_2_pow_62": batch(V(1 << 62) + b"\x00" * 16, 1, NOW, NOW),
    # a key length far beyond the record
    "impossible_key_length": batch(raw_record(b"\x00" + V(0) + V(0) + V(1 << 20) + b"kkkk" + V(0)), 1, NOW, NOW),
    # an 11-byte varlong timestamp delta
    "eleven_byte_varint": batch(raw_record(b"\x00" + b"\xff" * 10 + b"\x01" + V(0) + V(-1) + V(-1) + V(0)), 1, NOW, NOW),
    "garbage_after_last_record": batch(GOOD + b"garbage", 2, NOW, NOW),
    "count_larger_than_records": batch(GOOD, 3, NOW, NOW),
    "offset_delta_gap": batch(record(0, b"a") + record(2, b"b"), 2, NOW, NOW),
    "negative_header_count": batch(raw_record(b"\x00" + V(0) + V(0) + V(-1) + V(-1) + V(-3)), 1, NOW, NOW),
}


@pytest.mark.parametrize("name", list(BAD_BATCHES))
def test_valid_crc_batch_with_a_bad_record_is_invalid_record(broker, topic, name):
    create_topic(broker.bootstrap, topic)
    with kafka_wire.Conn(broker.bootstrap) as c:
        res = c.produce(topic, 0, BAD_BATCHES[name])
        assert res.error_code == INVALID_RECORD, res
        # The refused batch took no offset: the good record is the partition's first, at 0.
        res = c.produce(topic, 0, kafka_wire.record_batch([(b"k", b"after")]))
        assert (res.error_code, res.base_offset) == (0, 0)
    # Nothing of the bad batch was stored: kcat reads through to the good record.
    assert kcat_values(broker, topic) == [b"after"]


@pytest.mark.parametrize("codec", [5, 6, 7])
def test_unassigned_codecs_are_unsupported(broker, topic, codec):
    create_topic(broker.bootstrap, topic)
    with kafka_wire.Conn(broker.bootstrap) as c:
        res = c.produce(topic, 0, batch(GOOD, 2, NOW, NOW, attributes=codec))
        assert res.error_code == UNSUPPORTED_COMPRESSION_TYPE, res


def test_compressed_batch_with_a_bad_record_is_invalid_record(broker, topic):
    create_topic(broker.bootstrap, topic)

    def gzip(data: bytes) -> bytes:
        z = zlib.compressobj(wbits=31)
        return z.compress(data) + z.flush()

    with kafka_wire.Conn(broker.bootstrap) as c:
        res = c.produce(topic, 0, batch(gzip(GOOD + b"junk"), 2, NOW, NOW, attributes=1))
        assert res.error_code == INVALID_RECORD, res
        res = c.produce(topic, 0, batch(gzip(GOOD), 2, NOW, NOW, attributes=1))
        assert res.error_code == 0, res
    assert kcat_values(broker, topic) == [b"a", b"b"]


def rss_kib(broker) -> int:
    with open(f"/proc/{broker.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_huge_record_count_is_refused_without_memory_growth(broker, topic):
    """Issue 12's 117-byte Produce: a count of 16M (or 2^31 - 1) on one small record made
    Raft allocate ~100 bytes per claimed offset; now the count is checked first."""
    create_topic(broker.bootstrap, topic)
    with kafka_wire.Conn(broker.bootstrap) as c:
        before = rss_kib(broker)
        for count in (16 << 20, 2**31 - 1):
            b = batch(record(0, b"x"), count, NOW, NOW)
            assert len(b) < 80
            res = c.produce(topic, 0, b)
            assert res.error_code == INVALID_RECORD, res
        assert rss_kib(broker) - before < 20_000, "memory grew"
        # No offsets were used up: the next record is the partition's first, at 0.
        res = c.produce(topic, 0, kafka_wire.record_batch([(None, b"next")]))
        assert (res.error_code, res.base_offset) == (0, 0)
    assert broker.running()


def test_max_timestamp_minus_one_is_found_by_offsets_for_times(broker, topic):
    """Sarama 1.22 writes maxTimestamp -1; the broker recomputes it from the records."""
    create_topic(broker.bootstrap, topic)
    t0 = NOW - 60_000
    with kafka_wire.Conn(broker.bootstrap) as c:
        records = record(0, b"a", 0) + record(1, b"b", 1000) + record(2, b"c", 2000)
        assert c.produce(topic, 0, batch(records, 3, t0, -1)).error_code == 0
        # A header that lies the other way (5, "long expired") is corrected too.
        assert c.produce(topic, 0, batch(record(0, b"d", 0), 1, t0 + 5000, 5)).error_code == 0
        stored = c.fetch_all_batches(topic, 0)
        assert [(b.base_offset, b.count) for b in stored] == [(0, 3), (3, 1)]
        assert [b.crc_ok for b in stored] == [True, True]
        assert [b.max_timestamp for b in stored] == [t0 + 2000, t0 + 5000]
    consumer = make_consumer(broker.bootstrap)
    try:
        for ts, want in [(t0, 0), (t0 + 1500, 2), (t0 + 3000, 3)]:
            (got,) = consumer.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert got.offset == want, (ts, got)
    finally:
        consumer.close()


@pytest.mark.strom_args("--retention-check-ms", "200")
def test_retention_uses_the_records_timestamps(broker, topic):
    """A header claiming maxTimestamp 5 no longer gets fresh records deleted at once."""
    create_topic(broker.bootstrap, topic, config={"retention.ms": "60000", "segment.ms": "100"})
    later = [f"later-{i}".encode() for i in range(8)]
    now = int(time.time() * 1000)
    with kafka_wire.Conn(broker.bootstrap) as c:
        assert c.produce(topic, 0, batch(record(0, b"fresh"), 1, now, 5)).error_code == 0
        # Later appends roll segments (segment.ms is short), so retention has closed
        # segments to judge while several of its checks run.
        for value in later:
            time.sleep(0.3)
            assert c.produce(topic, 0, kafka_wire.record_batch([(None, value)])).error_code == 0
    time.sleep(1)
    assert [g.value for g in consume(broker.bootstrap, topic, 0)] == [b"fresh", *later]


def test_log_append_time_topic(broker, topic):
    create_topic(broker.bootstrap, topic, config={"message.timestamp.type": "LogAppendTime"})
    p = make_producer(broker.bootstrap)
    old = int(time.time() * 1000) - 3_600_000
    before = int(time.time() * 1000)
    assert_delivered(produce_all(p, topic, [{"value": b"x", "timestamp": old}, {"value": b"y"}]))
    after = int(time.time() * 1000)
    c = make_consumer(broker.bootstrap)
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 2 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append(m.timestamp())
    finally:
        c.close()
    assert len(got) == 2
    for kind, ts in got:
        assert kind == 2, "TIMESTAMP_LOG_APPEND_TIME"  # confluent_kafka.TIMESTAMP_LOG_APPEND_TIME
        assert before <= ts <= after
    # The Produce answer carries the append time (log_append_time_ms).
    with kafka_wire.Conn(broker.bootstrap) as conn:
        body = conn.call(0, 3, kafka_wire.produce_v3_body(topic, 0, kafka_wire.record_batch([(None, b"z")])))
        r = kafka_wire.Reader(body)
        r.take("i")
        r.string()
        r.take("i")
        _, error, _, append_time = r.take("ihqq")
        assert error == 0 and append_time >= before
        # A producer may not claim LogAppendTime itself (Kafka answers INVALID_TIMESTAMP).
        res = conn.produce(topic, 0, batch(GOOD, 2, NOW, NOW, attributes=0x08))
        assert res.error_code == INVALID_TIMESTAMP
    assert kcat_values(broker, topic) == [b"x", b"y", b"z"]


def test_timestamp_bounds(broker, topic):
    create_topic(
        broker.bootstrap,
        topic,
        config={"message.timestamp.before.max.ms": "60000", "message.timestamp.after.max.ms": "60000"},
    )
    p = make_producer(broker.bootstrap)
    now = int(time.time() * 1000)
    reports = produce_all(
        p,
        topic,
        [{"value": b"old", "timestamp": now - 3_600_000}],
    )
    assert reports[0].error is not None and reports[0].error.code() == KafkaError.INVALID_TIMESTAMP
    reports = produce_all(p, topic, [{"value": b"future", "timestamp": now + 3_600_000}])
    assert reports[0].error is not None and reports[0].error.code() == KafkaError.INVALID_TIMESTAMP
    assert_delivered(produce_all(p, topic, [{"value": b"now", "timestamp": now}]))
    assert kcat_values(broker, topic) == [b"now"]


def kcat_values(broker, topic: str) -> list[bytes]:
    """Every data record's value, as kcat reads them from the beginning to the end."""
    out = subprocess.run(
        ["kcat", "-C", "-b", broker.bootstrap, "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%s\\n"],
        capture_output=True,
        timeout=30,
        check=True,
    )
    return [v for v in out.stdout.split(b"\n") if v]
