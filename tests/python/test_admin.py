"""confluent-kafka AdminClient against Strom: create (with configs, validate_only), describe
and alter configs (incremental and legacy), create partitions, delete and list topics, and
the errors a real Kafka broker gives for bad requests."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from kafka_util import (
    TIMEOUT_S,
    admin,
    assert_delivered,
    consume,
    make_producer,
    produce_all,
    result,
    wait_for_first_leaders,
    watermarks,
)


def describe(a, topic: str) -> dict:
    res = ConfigResource(ResourceType.TOPIC, topic)
    return result(a.describe_configs([res], request_timeout=TIMEOUT_S)[res])


def error_of(future) -> KafkaError:
    with pytest.raises(KafkaException) as exc:
        result(future)
    return exc.value.args[0]


def partitions_of(a, topic: str) -> int:
    md = a.list_topics(topic=topic, timeout=TIMEOUT_S)
    t = md.topics[topic]
    assert t.error is None, t.error
    return len(t.partitions)


def test_create_topic_with_configs_and_describe(broker, topic):
    a = admin(broker.bootstrap)
    configs = {"retention.ms": "3600000", "segment.bytes": "1048576", "max.message.bytes": "200000"}
    fs = a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1, config=configs)])
    assert result(fs[topic]) is None
    assert partitions_of(a, topic) == 3
    assert topic in a.list_topics(timeout=TIMEOUT_S).topics

    entries = describe(a, topic)
    for name, value in configs.items():
        e = entries[name]
        assert e.value == value
        assert e.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, (name, e.source)
        assert not e.is_default
    # Defaults are included and marked as such.
    for name in ("retention.bytes", "segment.ms", "cleanup.policy"):
        assert name in entries, sorted(entries)
        assert entries[name].source == ConfigSource.DEFAULT_CONFIG.value
        assert entries[name].is_default
    assert entries["cleanup.policy"].value == "delete"
    assert entries["retention.bytes"].value == "-1"


def test_create_topic_validate_only_creates_nothing(broker, topic):
    a = admin(broker.bootstrap)
    fs = a.create_topics([NewTopic(topic, 2, 1, config={"retention.ms": "1000"})], validate_only=True)
    assert result(fs[topic]) is None
    assert topic not in a.list_topics(timeout=TIMEOUT_S).topics
    # validate_only still validates.
    fs = a.create_topics([NewTopic(topic, 2, 1, config={"no.such.config": "1"})], validate_only=True)
    assert error_of(fs[topic]).code() == KafkaError.INVALID_CONFIG
    # And the real thing works afterwards.
    assert result(a.create_topics([NewTopic(topic, 2, 1)])[topic]) is None
    assert partitions_of(a, topic) == 2


def test_create_topic_errors(broker, topic):
    a = admin(broker.bootstrap)
    assert result(a.create_topics([NewTopic(topic, 1, 1)])[topic]) is None

    err = error_of(a.create_topics([NewTopic(topic, 1, 1)])[topic])
    assert err.code() == KafkaError.TOPIC_ALREADY_EXISTS

    bad = "bad name/with slash"
    err = error_of(a.create_topics([NewTopic(bad, 1, 1)])[bad])
    assert err.code() == KafkaError.TOPIC_EXCEPTION  # INVALID_TOPIC_EXCEPTION (17)

    err = error_of(a.create_topics([NewTopic(topic + "-rf3", 1, 3)])[topic + "-rf3"])
    assert err.code() == KafkaError.INVALID_REPLICATION_FACTOR

    name = topic + "-cfg"
    err = error_of(a.create_topics([NewTopic(name, 1, 1, config={"no.such.config": "x"})])[name])
    assert err.code() == KafkaError.INVALID_CONFIG
    err = error_of(a.create_topics([NewTopic(name, 1, 1, config={"retention.ms": "soon"})])[name])
    assert err.code() == KafkaError.INVALID_CONFIG

    err = error_of(a.create_topics([NewTopic(name, 0, 1)])[name])
    assert err.code() == KafkaError.INVALID_PARTITIONS

    # None of the failed requests left a topic behind.
    topics = a.list_topics(timeout=TIMEOUT_S).topics
    assert not {bad, topic + "-rf3", name} & set(topics)


def test_incremental_alter_configs(broker, topic):
    a = admin(broker.bootstrap)
    result(a.create_topics([NewTopic(topic, 1, 1, config={"retention.ms": "100000"})])[topic])

    res = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("segment.bytes", "2000000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ],
    )
    assert result(a.incremental_alter_configs([res])[res]) is None
    entries = describe(a, topic)
    assert entries["segment.bytes"].value == "2000000"
    assert entries["segment.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert entries["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert entries["retention.ms"].value == "604800000"

    bad = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("no.such.config", "1", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    assert error_of(a.incremental_alter_configs([bad])[bad]).code() == KafkaError.INVALID_CONFIG
    # The failed change changed nothing.
    assert describe(a, topic)["segment.bytes"].value == "2000000"

    missing = ConfigResource(
        ResourceType.TOPIC,
        topic + "-missing",
        incremental_configs=[
            ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    err = error_of(a.incremental_alter_configs([missing])[missing])
    assert err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_legacy_alter_configs_replaces_the_set(broker, topic):
    a = admin(broker.bootstrap)
    result(a.create_topics([NewTopic(topic, 1, 1, config={"retention.ms": "100000"})])[topic])
    res = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.bytes": "5000000"})
    with pytest.warns(DeprecationWarning):
        fs = a.alter_configs([res])
    assert result(fs[res]) is None
    entries = describe(a, topic)
    assert entries["retention.bytes"].value == "5000000"
    assert entries["retention.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    # AlterConfigs (unlike the incremental kind) replaces the whole set of overrides.
    assert entries["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value

    bad = ConfigResource(ResourceType.TOPIC, topic, set_config={"segment.bytes": "-5"})
    with pytest.warns(DeprecationWarning):
        fs = a.alter_configs([bad])
    assert error_of(fs[bad]).code() == KafkaError.INVALID_CONFIG
    assert describe(a, topic)["retention.bytes"].value == "5000000"


def test_max_message_bytes_config_is_enforced_after_alter(broker, topic):
    a = admin(broker.bootstrap)
    result(a.create_topics([NewTopic(topic, 1, 1)])[topic])
    p = make_producer(broker.bootstrap)
    assert_delivered(produce_all(p, topic, [{"value": b"x" * 20000}]))
    res = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("max.message.bytes", "5000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    result(a.incremental_alter_configs([res])[res])
    reports = produce_all(p, topic, [{"value": b"y" * 20000}])
    assert reports[0].error is not None
    assert reports[0].error.code() == KafkaError.MSG_SIZE_TOO_LARGE


def test_create_partitions(broker, topic):
    a = admin(broker.bootstrap)
    result(a.create_topics([NewTopic(topic, 1, 1)])[topic])
    assert result(a.create_partitions([NewPartitions(topic, 4)])[topic]) is None
    assert partitions_of(a, topic) == 4

    # Every new partition takes writes.
    p = make_producer(broker.bootstrap)
    reports = produce_all(p, topic, [{"value": f"p{i}".encode(), "partition": i} for i in range(4)])
    assert_delivered(reports)
    for i in range(4):
        assert [g.value for g in consume(broker.bootstrap, topic, i, count=1)] == [f"p{i}".encode()]

    err = error_of(a.create_partitions([NewPartitions(topic, 2)])[topic])
    assert err.code() == KafkaError.INVALID_PARTITIONS
    err = error_of(a.create_partitions([NewPartitions(topic + "-missing", 2)])[topic + "-missing"])
    assert err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert result(a.create_partitions([NewPartitions(topic, 6)], validate_only=True)[topic]) is None
    assert partitions_of(a, topic) == 4


def test_delete_topics_and_list(broker, topic):
    a = admin(broker.bootstrap)
    names = [f"{topic}-{i}" for i in range(3)]
    fs = a.create_topics([NewTopic(n, 2, 1) for n in names])
    for n in names:
        result(fs[n])
    p = make_producer(broker.bootstrap)
    assert_delivered(produce_all(p, names[0], [{"value": b"old", "partition": 0}] * 10))
    listed = a.list_topics(timeout=TIMEOUT_S).topics
    assert set(names) <= set(listed)

    fs = a.delete_topics(names[:2], operation_timeout=10)
    for n in names[:2]:
        assert result(fs[n]) is None
    listed = a.list_topics(timeout=TIMEOUT_S).topics
    assert names[2] in listed
    assert not set(names[:2]) & set(listed)

    err = error_of(a.delete_topics([names[0]])[names[0]])
    assert err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART

    # A topic created again under the same name starts empty, at (0, 0) (the old log held
    # 10 messages), with no message to consume; its first record is at offset 0.
    result(a.create_topics([NewTopic(names[0], 1, 1)])[names[0]])
    wait_for_first_leaders(broker.bootstrap, names[0], 1)
    assert watermarks(broker.bootstrap, names[0]) == (0, 0)
    assert consume(broker.bootstrap, names[0], 0) == []
    reports = produce_all(make_producer(broker.bootstrap), names[0], [{"value": b"new", "partition": 0}])
    assert_delivered(reports)
    assert reports[0].offset == 0


def test_describe_broker_configs_are_read_only(broker):
    a = admin(broker.bootstrap)
    res = ConfigResource(ResourceType.BROKER, "1")
    entries = result(a.describe_configs([res], request_timeout=TIMEOUT_S)[res])
    # Strom's own settings, and Kafka's names for those Kafka has.
    assert entries["listen"].value == broker.bootstrap
    assert entries["default_partitions"].value == "1"
    assert entries["listeners"].value == f"PLAINTEXT://{broker.bootstrap}"
    assert entries["num.partitions"].value == "1"
    assert entries["num.partitions"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert entries["log.retention.ms"].value == "604800000"
    assert entries["log.retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert entries["min.insync.replicas"].value == "1"
    assert all(e.value is not None for e in entries.values()), entries
    assert all(e.is_read_only for e in entries.values())
    change = ConfigResource(
        ResourceType.BROKER,
        "1",
        incremental_configs=[
            ConfigEntry("default_partitions", "3", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    assert error_of(a.incremental_alter_configs([change])[change]).code() == KafkaError.INVALID_REQUEST
