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

import subprocess
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

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
