"""The same client scenarios against Apache Kafka 4.x and against Strom, in one run: every
expectation here is first shown to be Kafka's (the reference broker of
scripts/kafka-ref.sh, docs/kafka-ref.md) before Strom is held to it. A scenario that
passes on Kafka and fails on Strom is a Strom bug, or a difference to document in
docs/compatibility.md and name in the test.

Both brokers run with the defaults that matter alike: auto-created topics get 4
partitions, a group's first rebalance is not delayed. The fixtures, shared with
test_kafka_tools.py, are in kafka_ref.py, which says what the reference broker needs.
"""

from __future__ import annotations

import struct
import subprocess
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

import kafka_wire as wire
from kafka_ref import SCRIPT, bootstrap, kafka_broker, strom_broker  # noqa: F401 (fixtures)
from kafka_util import (
    TIMEOUT_S,
    admin,
    assert_contiguous,
    assert_delivered,
    client_conf,
    consume,
    make_producer,
    offsets_by_partition,
    produce_all,
    result,
    wait_until,
    watermarks,
)


def unique(name: str) -> str:
    return f"diff.{name}.{uuid.uuid4().hex[:8]}"


def test_an_auto_created_topic_has_the_default_partitions_and_keys_keep_their_partition(
    bootstrap,
):
    topic = unique("auto")
    p = make_producer(bootstrap, linger_ms=0)
    msgs = [{"key": f"k{i % 5}".encode(), "value": f"v{i}".encode()} for i in range(50)]
    reports = produce_all(p, topic, msgs)
    assert_delivered(reports)
    md = admin(bootstrap).list_topics(topic, timeout=TIMEOUT_S)
    assert len(md.topics[topic].partitions) == 4
    by_key: dict[bytes, set[int]] = {}
    for r in reports:
        by_key.setdefault(r.key, set()).add(r.partition)
    assert all(len(parts) == 1 for parts in by_key.values()), by_key
    for partition, offsets in offsets_by_partition(reports).items():
        assert_contiguous(offsets, 0)
        got = consume(bootstrap, topic, partition)
        assert [g.offset for g in got] == sorted(offsets)
        sent = [r.value for r in reports if r.partition == partition]
        assert [g.value for g in got] == sent


def test_a_group_commits_and_reads_back_its_offsets(bootstrap):
    topic = unique("group")
    group = unique("g")
    a = admin(bootstrap)
    result(a.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic])
    p = make_producer(bootstrap, linger_ms=0)
    assert_delivered(
        produce_all(p, topic, [{"value": f"m{i}".encode(), "partition": i % 2} for i in range(10)])
    )
    c = Consumer(
        client_conf(
            bootstrap,
            **{
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 10000,
            },
        )
    )
    try:
        c.subscribe([topic])
        got = []
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < 10 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m)
        assert len(got) == 10
        c.commit(asynchronous=False)
        committed = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
        assert sorted((tp.partition, tp.offset) for tp in committed) == [(0, 5), (1, 5)]
    finally:
        c.close()
    assert watermarks(bootstrap, topic, 0) == (0, 5)


def test_delete_records_moves_the_start_and_refuses_beyond_the_end(bootstrap):
    topic = unique("delete")
    a = admin(bootstrap)
    result(a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic])
    p = make_producer(bootstrap, linger_ms=0)
    assert_delivered(produce_all(p, topic, [{"value": b"x", "partition": 0}] * 8))
    tp = TopicPartition(topic, 0, 3)
    assert result(a.delete_records([tp])[tp]).low_watermark == 3
    assert watermarks(bootstrap, topic, 0) == (3, 8)
    with pytest.raises(KafkaException) as exc:
        tp = TopicPartition(topic, 0, 9)
        result(a.delete_records([tp])[tp])
    assert exc.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE
    got = consume(bootstrap, topic, 0, start=OFFSET_BEGINNING, auto_offset_reset="earliest")
    assert [g.offset for g in got] == list(range(3, 8))


def test_creating_an_existing_topic_is_refused(bootstrap):
    topic = unique("twice")
    a = admin(bootstrap)
    result(a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic])
    with pytest.raises(KafkaException) as exc:
        result(a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic])
    assert exc.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS


def test_kafkas_topic_tool_creates_and_describes(bootstrap, kafka_broker):
    """Kafka's own kafka-topics (from the reference's cache) against either broker."""
    topic = unique("tool")

    def tool(*args: str) -> str:
        out = subprocess.run(
            [str(SCRIPT), "tool", "kafka-topics", "--bootstrap-server", bootstrap, *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    tool("--create", "--topic", topic, "--partitions", "3")
    wait_until(lambda: topic in tool("--list").split(), timeout=TIMEOUT_S, what="the topic listed")
    described = tool("--describe", "--topic", topic)
    assert described.count(f"Topic: {topic}\tPartition: ") == 3, described


def _leader_epoch(bootstrap: str, topic: str) -> int:
    """Partition 0's leader epoch, from a ListOffsets v4 answer."""
    body = struct.pack(">ibi", -1, 0, 1) + wire.string(topic) + struct.pack(">iiiq", 1, 0, -1, -1)
    with wire.Conn(bootstrap) as conn:
        r = wire.Reader(conn.call(2, 4, body))
    r.take("i")  # throttle
    assert r.take("i") == 1 and r.string() == topic and r.take("i") == 1
    partition, error, _timestamp, _offset, epoch = r.take("ihqqi")
    assert (partition, error) == (0, 0)
    return epoch


def _legacy_calls(
    topic: str, epoch: int, group: str, created: str
) -> list[tuple[str, int, int, bytes]]:
    """One request at each version Kafka 4 removed (KIP-896) and Kafka 3.9 still served:
    (what, api key, version, body), in Kafka 3.9's layouts."""
    s, i16, i32, i64 = wire.string, ">h", ">i", ">q"
    pack = struct.pack
    return [
        # ListOffsets v0: replica, [topic, [partition, timestamp (-1 latest), max offsets]]
        ("ListOffsets v0", 2, 0, pack(">ii", -1, 1) + s(topic) + pack(">iiqi", 1, 0, -1, 1)),
        # OffsetCommit v1: group, generation, member, [topic, [partition, offset, ts, meta]]
        (
            "OffsetCommit v1",
            8,
            1,
            s(group) + pack(i32, -1) + s("") + pack(i32, 1) + s(topic)
            + pack(">iiqq", 1, 0, 3, -1) + s("m"),
        ),
        # OffsetCommit v0: no generation, no timestamp
        (
            "OffsetCommit v0",
            8,
            0,
            s(group) + pack(i32, 1) + s(topic) + pack(">iiq", 1, 0, 4) + s(None),
        ),
        # OffsetFetch v0: group, [topic, [partition]]
        ("OffsetFetch v0", 9, 0, s(group) + pack(i32, 1) + s(topic) + pack(">ii", 1, 0)),
        # OffsetForLeaderEpoch v0: [topic, [partition, leader epoch]]
        ("OffsetForLeaderEpoch v0", 23, 0, pack(i32, 1) + s(topic) + pack(">iii", 1, 0, epoch)),
        # DescribeConfigs v0: [type 2 = topic, name, null keys]
        ("DescribeConfigs v0", 32, 0, pack(i32, 1) + pack(">b", 2) + s(topic) + pack(i32, -1)),
        # CreateTopics v0: [name, partitions, rf, no assignments, no configs], timeout
        (
            "CreateTopics v0",
            19,
            0,
            pack(i32, 1) + s(created) + pack(">ihii", 2, 1, 0, 0) + pack(i32, 10000),
        ),
        # DeleteTopics v0: [name], timeout
        ("DeleteTopics v0", 20, 0, pack(i32, 1) + s(created) + pack(i32, 10000)),
    ]


def _legacy_answers(bootstrap: str, calls) -> dict[str, bytes | None]:
    """Each request on a fresh connection: its response body, or None when the broker
    closed the connection instead of answering."""
    answers: dict[str, bytes | None] = {}
    for what, key, version, body in calls:
        with wire.Conn(bootstrap) as conn:
            try:
                answers[what] = conn.call(key, version, body)
            except (wire.ConnectionClosed, ConnectionResetError):
                answers[what] = None
    return answers


def test_request_versions_kafka_4_removed_are_still_served(bootstrap, kafka_broker):
    """KIP-896: Kafka 4 closes the connection on the old versions Sarama < 1.40 and other
    Kafka 3 era clients send. Strom serves them (docs/compatibility.md); this test shows
    both halves: Kafka refuses every one, Strom answers every one correctly."""
    topic = unique("legacy")
    group = unique("lg")
    created = unique("legacy-created")
    a = admin(bootstrap)
    result(a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic])
    p = make_producer(bootstrap, linger_ms=0)
    assert_delivered(produce_all(p, topic, [{"value": b"x", "partition": 0}] * 5))

    epoch = _leader_epoch(bootstrap, topic)
    answers = _legacy_answers(bootstrap, _legacy_calls(topic, epoch, group, created))
    if bootstrap == kafka_broker:
        assert answers == {what: None for what in answers}, "Kafka 4 answered a removed version"
        return
    assert None not in answers.values(), [w for w, a in answers.items() if a is None]

    r = wire.Reader(answers["ListOffsets v0"])
    assert r.take("i") == 1 and r.string() == topic and r.take("i") == 1
    assert r.take("ihi") == (0, 0, 1) and r.take("q") == 5  # [high watermark]

    for what in ("OffsetCommit v1", "OffsetCommit v0"):
        r = wire.Reader(answers[what])
        assert r.take("i") == 1 and r.string() == topic and r.take("i") == 1
        assert r.take("ih") == (0, 0), what

    # The v0 commit came last: offset 4, null metadata (read back as "").
    r = wire.Reader(answers["OffsetFetch v0"])
    assert r.take("i") == 1 and r.string() == topic and r.take("i") == 1
    assert r.take("iq") == (0, 4)
    assert r.string() in ("", None) and r.take("h") == 0
    c = Consumer(client_conf(bootstrap, **{"group.id": group}))
    try:
        (tp,) = c.committed([TopicPartition(topic, 0)], timeout=10)
        assert tp.offset == 4
    finally:
        c.close()

    r = wire.Reader(answers["OffsetForLeaderEpoch v0"])
    assert r.take("i") == 1 and r.string() == topic and r.take("i") == 1
    assert r.take("hi") == (0, 0) and r.take("q") == 5

    r = wire.Reader(answers["DescribeConfigs v0"])
    r.take("i")  # throttle
    assert r.take("i") == 1
    assert r.take("h") == 0
    r.string()
    assert r.take("b") == 2 and r.string() == topic
    configs = {}
    for _ in range(r.take("i")):
        name, value = r.string(), r.string()
        read_only, is_default, sensitive = r.take("bbb")
        configs[name] = (value, is_default)
    assert "retention.ms" in configs and "cleanup.policy" in configs, sorted(configs)
    assert configs["cleanup.policy"] == ("delete", 1)

    for what in ("CreateTopics v0", "DeleteTopics v0"):
        r = wire.Reader(answers[what])
        assert r.take("i") == 1 and r.string() == created
        assert r.take("h") == 0, what


def test_groups_are_listed_with_their_type_and_filtered_by_it(bootstrap):
    """ListGroups v5 (KIP-848): a group made by a classic consumer is listed as CLASSIC,
    and a filter on another type leaves it out."""
    from confluent_kafka import ConsumerGroupType

    topic = unique("types")
    group = unique("tg")
    a = admin(bootstrap)
    result(a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic])
    c = Consumer(
        client_conf(
            bootstrap,
            **{"group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"},
        )
    )
    try:
        c.subscribe([topic])
        wait_until(lambda: c.poll(0.2) is None and c.assignment(), timeout=TIMEOUT_S, what="assignment")

        def listed(**kw):
            res = a.list_consumer_groups(request_timeout=TIMEOUT_S, **kw).result()
            return {g.group_id: g for g in res.valid}

        everything = listed()
        assert group in everything
        assert everything[group].type == ConsumerGroupType.CLASSIC
        assert group in listed(types={ConsumerGroupType.CLASSIC})
        assert group not in listed(types={ConsumerGroupType.CONSUMER})
    finally:
        c.close()


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_an_idempotent_producer_writes_compressed_batches_that_read_back_exactly(
    bootstrap, compression
):
    """confluent-kafka's idempotent producer (acks=all, 5 in flight) with each codec:
    every record once, at dense offsets from 0, keys, values and headers as sent."""
    topic = unique(f"idem-{compression}")
    a = admin(bootstrap)
    result(a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic])
    p = make_producer(
        bootstrap,
        enable_idempotence=True,
        compression_type=compression,
        linger_ms=10,
    )
    msgs = [
        {
            "key": f"k{i % 7}".encode(),
            "value": (f"value {i} " * 20).encode(),
            "headers": [("n", str(i).encode())],
            "partition": 0,
        }
        for i in range(300)
    ]
    reports = produce_all(p, topic, msgs)
    assert_delivered(reports)
    assert [r.offset for r in reports] == list(range(300))
    got = consume(bootstrap, topic, 0, count=300)
    assert [g.offset for g in got] == list(range(300))
    assert [(g.key, g.value) for g in got] == [(m["key"], m["value"]) for m in msgs]
    assert [g.headers for g in got] == [m["headers"] for m in msgs]
    assert watermarks(bootstrap, topic, 0) == (0, 300)


def _compact_string(s: str) -> bytes:
    raw = s.encode()
    assert len(raw) < 127
    return bytes([len(raw) + 1]) + raw


def test_api_versions_v3_refuses_client_software_names_outside_kafkas_pattern(bootstrap):
    """KIP-511: from ApiVersions v3 the client names its software and version, each
    matching [a-zA-Z0-9](?:[a-zA-Z0-9\\-.]*[a-zA-Z0-9])?; anything else is INVALID_REQUEST
    (42), on Kafka and on Strom alike."""

    def ask(name: str, version: str) -> int:
        # Request header v2 (its empty tagged fields first), then the v3 body and its tags.
        body = b"\x00" + _compact_string(name) + _compact_string(version) + b"\x00"
        with wire.Conn(bootstrap) as c:
            resp = c.call(18, 3, body)
        return struct.unpack(">h", resp[:2])[0]

    assert ask("strom-tests", "1.0") == 0
    assert ask("apache-kafka-java", "4.4.0") == 0
    assert ask("(devel)", "1.0") == 42
    assert ask("tests", "1.0-") == 42
    assert ask("", "1.0") == 42
