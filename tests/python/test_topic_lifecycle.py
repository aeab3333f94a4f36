"""Topic and group metadata that must survive deletes and restarts on one node:
deleting a topic that has committed offsets."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import NewTopic

import kafka_wire
from kafka_util import (
    TIMEOUT_S,
    admin,
    assert_delivered,
    client_conf,
    consume,
    create_topic,
    make_producer,
    produce_all,
    result,
    wait_until,
    watermarks,
)


def commit(bootstrap: str, group: str, topic: str, offsets: list[int]) -> None:
    c = Consumer(client_conf(bootstrap, **{"group.id": group, "enable.auto.commit": False}))
    try:
        c.commit(
            offsets=[TopicPartition(topic, p, o) for p, o in enumerate(offsets)],
            asynchronous=False,
        )
    finally:
        c.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    c = Consumer(client_conf(bootstrap, **{"group.id": group}))
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return [tp.offset for tp in tps]
    finally:
        c.close()


def produce_values(bootstrap: str, topic: str, values: list[bytes]) -> list[int]:
    """acks=all to partition 0; the acknowledged offsets."""
    reports = produce_all(make_producer(bootstrap), topic, [{"value": v, "partition": 0} for v in values])
    assert_delivered(reports)
    return [r.offset for r in reports]


def answers(broker) -> bool:
    try:
        with kafka_wire.Conn(broker.bootstrap, timeout=2.0) as c:
            error, apis = c.api_versions(0)
            return error == 0 and bool(apis)
    except (OSError, kafka_wire.ConnectionClosed):
        return False


def test_deleting_a_topic_with_committed_offsets_keeps_the_broker_up(broker, topic):
    """The delete is applied on the storage's group-commit thread, which forgets the
    topic's committed offsets: that aborted the broker ("there is no reactor running")."""
    other = topic + ".kept"
    create_topic(broker.bootstrap, topic, partitions=2)
    create_topic(broker.bootstrap, other, partitions=1)
    produce_values(broker.bootstrap, topic, [b"a", b"b", b"c"])
    commit(broker.bootstrap, "g-del", topic, [2, 1])
    commit(broker.bootstrap, "g-del", other, [1])
    assert committed(broker.bootstrap, "g-del", topic, 2) == [2, 1]

    a = admin(broker.bootstrap)  # alive until the answer came
    fs = a.delete_topics([topic], operation_timeout=10)
    assert result(fs[topic]) is None
    time.sleep(0.5)
    assert broker.running(), f"the broker died:\n{broker.log_tail(40)}"
    assert answers(broker)
    # It keeps committing and producing, and the deleted topic's offsets are gone.
    commit(broker.bootstrap, "g-del", other, [0])
    assert committed(broker.bootstrap, "g-del", other, 1) == [0]
    produce_values(broker.bootstrap, other, [b"after"])
    listed = result(a.list_consumer_group_offsets([ConsumerGroupTopicPartitions("g-del")])["g-del"])
    assert {tp.topic for tp in listed.topic_partitions} == {other}
    # And a restart replays the deletion without trouble.
    broker.restart()
    assert committed(broker.bootstrap, "g-del", other, 1) == [0]
