"""confluent-kafka (modern librdkafka) Producer and assign()-Consumer against Strom: keys,
headers, every compression codec, every acks level, idempotence, ordering, partitioning."""

from __future__ import annotations

import logging
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

import kafka_wire
from kafka_util import (
    assert_contiguous,
    assert_delivered,
    consume,
    create_topic,
    make_consumer,
    make_producer,
    produce_all,
    watermarks,
)

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}



def test_keys_headers_and_values_round_trip(broker, topic):
    p = make_producer(broker.bootstrap)
    messages = [
        {
            "key": f"key-{i}".encode(),
            "value": f"value-{i}".encode() * (i % 7 + 1),
            "headers": [("h1", f"one-{i}".encode()), ("h2", b"\x00\xff binary"), ("h1", b"dup")],
        }
        for i in range(200)
    ]
    messages.append({"key": None, "value": b"no key"})
    messages.append({"key": b"no value", "value": None})
    messages.append({"key": b"empty", "value": b""})
    reports = produce_all(p, topic, messages)
    assert_delivered(reports)
    # The auto-created partition's first record is at offset 0, and one producer's
    # records to one partition take consecutive offsets in the order sent.
    assert_contiguous([r.offset for r in reports], 0)
    assert watermarks(broker.bootstrap, topic, 0) == (0, len(messages))

    got = consume(broker.bootstrap, topic, 0, count=len(messages))
    assert len(got) == len(messages)
    for m, g in zip(messages, got):
        assert g.key == m["key"]
        assert g.value == m["value"]
        assert (g.headers or []) == m.get("headers", [])
    assert [g.offset for g in got] == [r.offset for r in reports]


@pytest.mark.parametrize(
    "codec",
    CODECS,
)
def test_compression_codec_passes_through(broker, topic, codec):
    p = make_producer(broker.bootstrap, compression_type=codec, linger_ms=50, batch_num_messages=100)
    # Compressible, but distinct values, so a mix-up between records would show.
    messages = [
        {"key": f"k{i % 5}".encode(), "value": (f"record {i:05d} " + "abcdefgh" * 40).encode()}
        for i in range(500)
    ]
    assert_delivered(produce_all(p, topic, messages))

    got = consume(broker.bootstrap, topic, 0, count=len(messages))
    assert [g.value for g in got] == [m["value"] for m in messages]
    assert [g.key for g in got] == [m["key"] for m in messages]

    # The broker stores the batches exactly as the client compressed them, from offset 0.
    with kafka_wire.Conn(broker.bootstrap) as c:
        batches = c.fetch_all_batches(topic, 0)
    assert batches, "no batches fetched"
    assert {b.compression for b in batches} == {CODECS[codec]}
    assert all(b.crc_ok for b in batches)
    assert sum(b.count for b in batches) == len(messages)
    assert batches[0].base_offset == 0
    if codec != "none":
        stored = sum(len(b.raw) for b in batches)
        raw = sum(len(m["value"]) for m in messages)
        assert stored < raw / 3, f"{codec}: {stored} bytes stored for {raw} bytes of values"


@pytest.mark.parametrize("acks", [0, 1, -1], ids=["acks0", "acks1", "acks_all"])
def test_acks_levels(broker, topic, acks):
    create_topic(broker.bootstrap, topic, partitions=1)
    p = make_producer(broker.bootstrap, acks=acks, linger_ms=2)
    messages = [{"value": f"m{i}".encode()} for i in range(300)]
    reports = produce_all(p, topic, messages)
    assert_delivered(reports)
    if acks != 0:
        # Offsets are known only when the broker answers.
        assert_contiguous([r.offset for r in reports], 0)
    got = consume(broker.bootstrap, topic, 0, count=len(messages))
    assert [g.value for g in got] == [m["value"] for m in messages]
    assert_contiguous([g.offset for g in got], 0)
    assert watermarks(broker.bootstrap, topic, 0) == (0, len(messages))


def test_idempotent_producer(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=2)
    p = make_producer(broker.bootstrap, enable_idempotence=True, linger_ms=1)
    messages = [{"value": f"m{i}".encode(), "partition": i % 2} for i in range(1000)]
    reports = produce_all(p, topic, messages)
    assert_delivered(reports)
    for part in (0, 1):
        want = [m["value"] for m in messages if m["partition"] == part]
        got = consume(broker.bootstrap, topic, part, count=len(want))
        assert [g.value for g in got] == want
        assert_contiguous([g.offset for g in got], 0)
        assert [g.offset for g in got] == [r.offset for r in reports if r.partition == part]
        # Every batch in the log is the producer's.
        with kafka_wire.Conn(broker.bootstrap) as c:
            batches = c.fetch_all_batches(topic, part)
        pids = {b.producer_id for b in batches}
        assert len(pids) == 1 and min(pids) >= 0, f"producer ids in batches: {pids}"
        # Sequences are contiguous per partition, starting at 0.
        seq = 0
        for b in batches:
            assert b.base_sequence == seq
            seq += b.count


def test_ordering_within_a_partition(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=1)
    # Several in-flight requests and many small batches, flushed in rounds.
    p = make_producer(
        broker.bootstrap, linger_ms=0, batch_num_messages=7, max_in_flight_requests_per_connection=5
    )
    n = 0
    reports = []
    for _round in range(5):
        msgs = [{"value": str(n + i).encode()} for i in range(400)]
        reports += produce_all(p, topic, msgs)
        assert_delivered(reports)
        n += len(msgs)
    got = consume(broker.bootstrap, topic, 0, count=n)
    assert [int(g.value) for g in got] == list(range(n))
    assert_contiguous([g.offset for g in got], 0)
    assert [g.offset for g in got] == [r.offset for r in reports]


def test_keys_pick_partitions_consistently(broker, topic):
    partitions = 6
    create_topic(broker.bootstrap, topic, partitions=partitions)
    keys = [f"user-{i}".encode() for i in range(40)]

    def round_(producer, tag):
        msgs = [{"key": k, "value": f"{tag}:{k.decode()}:{j}".encode()} for j in range(3) for k in keys]
        reports = produce_all(producer, topic, msgs)
        assert_delivered(reports)
        return {r.key: r.partition for r in reports}, reports

    first, reports_a = round_(make_producer(broker.bootstrap), "a")
    second, reports_b = round_(make_producer(broker.bootstrap), "b")
    # Each key always lands on the same partition, across producer instances too.
    for reports in (reports_a, reports_b):
        for r in reports:
            assert r.partition == first[r.key]
    assert first == second
    assert len(set(first.values())) > 1, "all keys landed on one partition"

    got = consume(broker.bootstrap, topic, list(range(partitions)))
    assert len(got) == 2 * 3 * len(keys)
    seen: dict[bytes, set[int]] = {}
    for g in got:
        seen.setdefault(g.key, set()).add(g.partition)
    assert seen == {k: {first[k]} for k in keys}
    # Per key, the values arrive in the order sent.
    for k in keys:
        vals = [g.value.decode() for g in got if g.key == k]
        assert vals == [f"{t}:{k.decode()}:{j}" for t in "ab" for j in range(3)]


def test_assign_consumer_keeps_its_connection(broker, topic):
    """confluent-kafka requires a group.id, and librdkafka then looks up the group
    coordinator (FindCoordinator) even for an assign()-only consumer. The broker must
    answer that, not drop the connection: a drop fails whatever else is in flight on it
    (fetches, offset lookups)."""
    create_topic(broker.bootstrap, topic)
    logs = []

    class Collect(logging.Handler):
        def emit(self, record):
            logs.append(record.getMessage())

    logger = logging.getLogger(f"rdkafka.{topic}")
    logger.addHandler(Collect())
    logger.propagate = False
    c = make_consumer(broker.bootstrap, logger=logger)
    p = make_producer(broker.bootstrap, linger_ms=0)
    got = []
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        # Long enough for several coordinator queries (librdkafka retries about once a
        # second); a message every 100 ms keeps fetches in flight.
        end = time.monotonic() + 3.5
        i = 0
        while time.monotonic() < end:
            p.produce(topic, value=str(i).encode())
            p.poll(0)
            i += 1
            msg = c.poll(0.1)
            if msg is not None and not msg.error():
                got.append(int(msg.value()))
        assert p.flush(10) == 0
        deadline = time.monotonic() + 10
        while len(got) < i and time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is not None and not msg.error():
                got.append(int(msg.value()))
    finally:
        c.close()
    assert got == list(range(i))
    disconnects = [m for m in logs if "Disconnected" in m or "connection closed" in m]
    assert not disconnects, disconnects[:3]


def test_message_larger_than_the_fetch_limits_is_still_delivered(broker, topic):
    """Fetch returns at least one whole batch even when it exceeds the client's limits."""
    create_topic(broker.bootstrap, topic, config={"max.message.bytes": "5000000"})
    p = make_producer(broker.bootstrap, message_max_bytes=5_000_000)
    big = bytes(range(256)) * (3_000_000 // 256)
    msgs = [{"value": b"before"}, {"value": big}, {"value": b"after"}]
    for m in msgs:  # one batch each
        assert_delivered(produce_all(p, topic, [m]))
    got = consume(
        broker.bootstrap,
        topic,
        0,
        count=3,
        fetch_max_bytes=1_000_000,
        max_partition_fetch_bytes=500_000,
        receive_message_max_bytes=10_000_000,
    )
    assert [g.value for g in got] == [m["value"] for m in msgs]


def test_long_poll_wakes_up_on_new_data(broker, topic):
    """A consumer waiting at the end (long fetch wait) gets a new message promptly, not
    when its fetch wait runs out."""
    create_topic(broker.bootstrap, topic)
    c = make_consumer(broker.bootstrap, fetch_wait_max_ms=5000)
    p = make_producer(broker.bootstrap, linger_ms=0)
    try:
        assert_delivered(produce_all(p, topic, [{"value": b"primer"}]))
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        # Once the primer arrived, the consumer's next fetch waits at the end.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is not None and not msg.error():
                assert msg.value() == b"primer"
                break
        else:
            pytest.fail("primer message not consumed")
        time.sleep(0.3)  # let the next long-poll fetch reach the broker and park
        latencies = []
        for i in range(3):
            sent = time.monotonic()
            assert_delivered(produce_all(p, topic, [{"value": f"wake-{i}".encode()}]))
            deadline = sent + 10
            while time.monotonic() < deadline:
                msg = c.poll(0.05)
                if msg is not None and not msg.error():
                    assert msg.value() == f"wake-{i}".encode()
                    latencies.append(time.monotonic() - sent)
                    break
            else:
                pytest.fail(f"message {i} not delivered within 10s")
    finally:
        c.close()
    assert max(latencies) < 2.0, f"delivery latencies {latencies} (fetch wait is 5 s)"
