"""Bad input over raw sockets: garbage, truncated frames, oversized length prefixes and
unknown API keys close only the offending connection; corrupted or oversized batches get
Kafka's error codes and leave the log intact. The broker keeps serving everyone else."""

from __future__ import annotations

import random
import socket
import struct

import pytest
from confluent_kafka import KafkaError

import kafka_wire
from kafka_util import assert_delivered, consume, create_topic, make_producer, produce_all

CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
UNSUPPORTED_VERSION = 35


def still_serving(broker, topic: str, established: kafka_wire.Conn | None = None) -> None:
    """Another client can produce and consume; an already open connection still works."""
    if established is not None:
        error, apis = established.api_versions(0)
        assert error == 0 and 0 in apis
    p = make_producer(broker.bootstrap)
    values = [f"ok-{i}".encode() for i in range(10)]
    before = consume(broker.bootstrap, topic, 0)
    assert_delivered(produce_all(p, topic, [{"value": v} for v in values]))
    after = consume(broker.bootstrap, topic, 0)
    assert [g.value for g in after] == [g.value for g in before] + values
    assert broker.running()


def expect_closed(broker, payload: bytes, half_close: bool = False) -> None:
    with kafka_wire.Conn(broker.bootstrap) as c:
        c.send_raw(payload)
        if half_close:
            c.sock.shutdown(socket.SHUT_WR)
        assert c.wait_closed(10), f"connection still open after sending {payload[:40]!r}"


BAD_FRAMES = {
    # length 40, then 40 bytes of 0xff: api key -1, version -1
    "garbage": struct.pack(">i", 40) + b"\xff" * 40,
    # a valid header for an api key nobody has
    "unknown_api_key": kafka_wire.request_frame(9999, 0, 1, b""),
    "negative_api_key": kafka_wire.request_frame(-5, 0, 1, b""),
    # Metadata v1 claiming three topics but carrying one
    "truncated_body": kafka_wire.request_frame(3, 1, 1, struct.pack(">i", 3) + kafka_wire.string("a")),
    # Produce v3 whose records field claims more bytes than the frame has
    "truncated_records": kafka_wire.request_frame(
        0, 3, 1, kafka_wire.produce_v3_body("x", 0, b"")[:-4] + struct.pack(">i", 5000) + b"\x00" * 10
    ),
    # a header cut inside the client id
    "truncated_header": struct.pack(">i", 10) + struct.pack(">hhih", 3, 1, 1, 50),
    # a version of Metadata nobody serves
    "unsupported_version": kafka_wire.request_frame(3, 99, 1, b""),
    "oversized_length": struct.pack(">i", 0x7FFFFFFF) + b"\x00" * 16,
    "negative_length": struct.pack(">i", -1) + b"\x00" * 16,
}


@pytest.mark.parametrize("name", list(BAD_FRAMES))
def test_bad_frame_closes_only_that_connection(broker, topic, name):
    create_topic(broker.bootstrap, topic)
    with kafka_wire.Conn(broker.bootstrap) as other:
        other.api_versions(0)
        expect_closed(broker, BAD_FRAMES[name])
        still_serving(broker, topic, other)


def test_frame_cut_short_by_the_client(broker, topic):
    """The length prefix promises 100 bytes; the client sends 10 and half-closes."""
    create_topic(broker.bootstrap, topic)
    with kafka_wire.Conn(broker.bootstrap) as other:
        expect_closed(broker, struct.pack(">i", 100) + b"\x00\x03\x00\x01" + b"\x00" * 6, half_close=True)
        still_serving(broker, topic, other)


def test_random_garbage_never_hurts_the_broker(broker, topic):
    create_topic(broker.bootstrap, topic)
    rng = random.Random(1234)
    for _ in range(40):
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
        frame = struct.pack(">i", len(body)) + body
        with kafka_wire.Conn(broker.bootstrap) as c:
            c.send_raw(frame)
            c.sock.shutdown(socket.SHUT_WR)
            # Whatever it makes of it (usually nothing valid), the broker ends the exchange.
            assert c.wait_closed(10)
    still_serving(broker, topic)


def test_api_versions_of_an_unknown_version_answers_v0_with_the_list(broker):
    with kafka_wire.Conn(broker.bootstrap) as c:
        c.send_raw(kafka_wire.request_frame(18, 99, 7, b"\x00" * 8))
        corr, body = c.recv_frame()
        assert corr == 7
        r = kafka_wire.Reader(body)
        assert r.take("h") == UNSUPPORTED_VERSION
        apis = {}
        for _ in range(r.take("i")):
            key, lo, hi = r.take("hhh")
            apis[key] = (lo, hi)
        assert apis[18][0] == 0 and apis[18][1] >= 3
        assert 0 in apis and 1 in apis
        # The connection stays usable: the client retries at a version both know.
        error, _ = c.api_versions(0)
        assert error == 0


def good_batch(n: int, tag: str) -> bytes:
    return kafka_wire.record_batch([(f"k{i}".encode(), f"{tag}-{i}".encode()) for i in range(n)])


def read_back(conn: kafka_wire.Conn, topic: str) -> list[tuple[int, bytes, bytes]]:
    """(offset, key, value) of every record in the partition, batch by batch as stored."""
    out = []
    for b in conn.fetch_all_batches(topic, 0):
        assert b.crc_ok and not b.is_control
        out.extend(b.records())
    return out


def test_corrupted_batch_crc_is_refused_and_the_log_is_intact(broker, topic):
    create_topic(broker.bootstrap, topic)
    with kafka_wire.Conn(broker.bootstrap) as c:
        # The new partition's first record is at offset 0.
        res = c.produce(topic, 0, good_batch(3, "first"))
        assert (res.error_code, res.base_offset) == (0, 0)

        for position in (70, 30, 17):  # inside a record, in the header, in the CRC itself
            bad = bytearray(good_batch(4, "bad"))
            bad[position] ^= 0x40
            res = c.produce(topic, 0, bytes(bad))
            assert res.error_code == CORRUPT_MESSAGE, (position, res)

        # A batch cut short inside its records.
        res = c.produce(topic, 0, good_batch(4, "cut")[:-5])
        assert res.error_code == CORRUPT_MESSAGE, res

        # The connection is still fine, and the log holds only the good batches.
        # The refused batches took no offsets: the good ones are 0..4.
        res = c.produce(topic, 0, good_batch(2, "second"))
        assert (res.error_code, res.base_offset) == (0, 3)
        want = [(i, f"k{i}".encode(), f"first-{i}".encode()) for i in range(3)] + [
            (3 + i, f"k{i}".encode(), f"second-{i}".encode()) for i in range(2)
        ]
        assert read_back(c, topic) == want
        assert c.fetch(topic, 0, 0).high_watermark == 5

    # A corrupted batch with acks=0 gets no answer: the broker closes the connection.
    bad = bytearray(good_batch(2, "silent"))
    bad[-3] ^= 0x01
    expect_closed(
        broker, kafka_wire.request_frame(0, 3, 9, kafka_wire.produce_v3_body(topic, 0, bytes(bad), acks=0))
    )

    # And on disk: the log reads the same after a restart (whose leader change takes no
    # offset: the end is still 5).
    broker.restart()
    with kafka_wire.Conn(broker.bootstrap) as c:
        assert read_back(c, topic) == want
        assert c.fetch(topic, 0, 0).high_watermark == 5
    got = consume(broker.bootstrap, topic, 0)
    assert [g.value for g in got] == [w[2] for w in want]


def test_produce_to_an_unknown_partition(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=2)
    with kafka_wire.Conn(broker.bootstrap) as c:
        assert c.produce(topic, 2, good_batch(1, "x")).error_code == UNKNOWN_TOPIC_OR_PARTITION
        assert c.produce(topic, -1, good_batch(1, "x")).error_code == UNKNOWN_TOPIC_OR_PARTITION
        assert c.produce(topic + ".none", 0, good_batch(1, "x")).error_code == UNKNOWN_TOPIC_OR_PARTITION
        assert c.produce(topic, 1, good_batch(1, "x")).error_code == 0


def test_record_larger_than_max_message_bytes(broker, topic):
    create_topic(broker.bootstrap, topic, config={"max.message.bytes": "10000"})
    p = make_producer(broker.bootstrap)
    # One produce request each: the broker refuses whole batches.
    assert_delivered(produce_all(p, topic, [{"value": b"small-1"}]))
    (big,) = produce_all(p, topic, [{"value": b"L" * 50_000}])
    assert big.error is not None
    assert big.error.code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert_delivered(produce_all(p, topic, [{"value": b"small-2"}]))
    with kafka_wire.Conn(broker.bootstrap) as c:
        res = c.produce(topic, 0, kafka_wire.record_batch([(None, b"R" * 20_000)]))
        assert res.error_code == MESSAGE_TOO_LARGE
        res = c.produce(topic, 0, kafka_wire.record_batch([(None, b"r" * 9_000)]))
        assert res.error_code == 0
    got = consume(broker.bootstrap, topic, 0)
    values = [g.value for g in got]
    assert b"L" * 50_000 not in values and b"R" * 20_000 not in values
    assert values == [b"small-1", b"small-2", b"r" * 9_000]
