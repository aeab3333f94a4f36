"""Apache Kafka 4.4's own command-line tools (scripts/kafka-ref.sh's cache) against the
reference Kafka and against Strom, in one run: each test holds both brokers to the output
and exit codes Kafka's tools show against Kafka (docs/kafka-ref.md).

Where Strom answers differently, the assertion stays Kafka's: that test is a strict xfail
for the Strom side only (`on_both(strom_xfail=...)`), whose reason names the difference;
when Strom is fixed the XPASS fails the run and the marker goes. Each tool run is a JVM
start (~1.5-2 s here), so set-up that is not the tool under test (creating topics,
producing with exact partitions and timestamps) goes through confluent-kafka instead.
"""

from __future__ import annotations

import functools
import json
import re
import time
import uuid

from confluent_kafka import TopicPartition

from conftest import REPO
from kafka_ref import bootstrap, kafka_broker, on_both, run_tool, strom_broker  # noqa: F401 (fixtures)
from kafka_util import (
    TIMEOUT_S,
    admin,
    assert_delivered,
    create_topic,
    make_producer,
    produce_all,
    wait_until,
)

# Error lines of kafka-topics: the message, then the same through the tool's logger.
TOPICS_ERROR = "Error while executing topic command : "


def unique(name: str) -> str:
    # No '.' in the names: kafka-topics warns on stdout about '.' and '_' colliding.
    return f"tools-{name}-{uuid.uuid4().hex[:8]}"


def topics(bootstrap: str, *args: str):
    return run_tool("kafka-topics", "--bootstrap-server", bootstrap, *args)


def configs(bootstrap: str, *args: str):
    return run_tool("kafka-configs", "--bootstrap-server", bootstrap, *args)


def groups(bootstrap: str, *args: str):
    return run_tool("kafka-consumer-groups", "--bootstrap-server", bootstrap, *args)


def get_offsets(bootstrap: str, topic: str, time_spec: str) -> list[str]:
    return run_tool(
        "kafka-get-offsets", "--bootstrap-server", bootstrap, "--topic", topic, "--time", time_spec
    ).lines()


def topic_names(bootstrap: str) -> set[str]:
    return set(admin(bootstrap).list_topics(timeout=TIMEOUT_S).topics)


@functools.cache
def api_versions(bootstrap: str) -> str:
    """kafka-broker-api-versions' answer, once per broker (it does not change)."""
    return run_tool("kafka-broker-api-versions", "--bootstrap-server", bootstrap).ok()


# --- kafka-topics -------------------------------------------------------------------------


def test_topics_create_with_configs_list_and_describe(bootstrap):
    topic = unique("create")
    created = topics(
        bootstrap,
        "--create",
        "--topic",
        topic,
        "--partitions",
        "3",
        "--config",
        "retention.ms=123456789",
        "--config",
        "max.message.bytes=200000",
    )
    assert created.ok() == f"Created topic {topic}.\n"
    assert topic in topics(bootstrap, "--list").lines()
    listed = topics(bootstrap, "--list", "--exclude-internal").lines()
    assert topic in listed
    assert not [t for t in listed if t.startswith("__")], listed

    described = topics(bootstrap, "--describe", "--topic", topic).lines()
    header = described[0].split("\t")
    assert header[0] == f"Topic: {topic}"
    assert re.fullmatch(r"TopicId: [A-Za-z0-9_-]{22}", header[1]), header
    assert header[2:4] == ["PartitionCount: 3", "ReplicationFactor: 1"]
    assert header[4].startswith("Configs: ")
    config = set(header[4].removeprefix("Configs: ").split(","))
    assert {"retention.ms=123456789", "max.message.bytes=200000"} <= config, header
    assert len(described) == 4, described
    for p, line in enumerate(described[1:]):
        fields = line.strip().split("\t")
        assert fields[:5] == [
            f"Topic: {topic}",
            f"Partition: {p}",
            "Leader: 1",
            "Replicas: 1",
            "Isr: 1",
        ], line


def test_topics_describe_shows_the_eligible_leader_replicas(bootstrap):
    topic = unique("elr")
    create_topic(bootstrap, topic, partitions=2)
    described = topics(bootstrap, "--describe", "--topic", topic).lines()
    assert [line.split("\t")[-2:] for line in described[1:]] == [["Elr: ", "LastKnownElr: "]] * 2


def test_topics_alter_partitions_and_delete(bootstrap):
    topic = unique("alter")
    create_topic(bootstrap, topic, partitions=2)
    assert topics(bootstrap, "--alter", "--topic", topic, "--partitions", "5").ok() == ""
    described = topics(bootstrap, "--describe", "--topic", topic).lines()
    assert "\tPartitionCount: 5\t" in described[0]
    assert [line.strip().split("\t")[1] for line in described[1:]] == [
        f"Partition: {p}" for p in range(5)
    ]

    shrink = topics(bootstrap, "--alter", "--topic", topic, "--partitions", "3")
    assert shrink.rc == 1
    assert shrink.stdout.startswith(TOPICS_ERROR), shrink.stdout
    assert "InvalidPartitionsException" in shrink.stderr
    again = topics(bootstrap, "--create", "--topic", topic, "--partitions", "1")
    assert again.rc == 1
    assert again.stdout.startswith(TOPICS_ERROR), again.stdout
    assert "TopicExistsException" in again.stderr

    assert topics(bootstrap, "--delete", "--topic", topic).ok() == ""
    wait_until(lambda: topic not in topic_names(bootstrap), TIMEOUT_S, what="the topic gone")
    gone = topics(bootstrap, "--delete", "--topic", topic)
    assert gone.rc == 1
    assert gone.stdout == f"{TOPICS_ERROR}Topic '{topic}' does not exist as expected\n"


def test_topics_errors_carry_kafkas_messages(bootstrap):
    topic = unique("errors")
    create_topic(bootstrap, topic, partitions=5)
    shrink = topics(bootstrap, "--alter", "--topic", topic, "--partitions", "3")
    assert shrink.stdout == (
        f"{TOPICS_ERROR}The topic {topic} currently has 5 partition(s); 3 would not be an increase.\n"
    )
    again = topics(bootstrap, "--create", "--topic", topic, "--partitions", "1")
    assert again.stdout == f"{TOPICS_ERROR}Topic '{topic}' already exists.\n"


# --- kafka-configs ------------------------------------------------------------------------


def test_configs_alter_and_describe_topic_configs(bootstrap):
    topic = unique("configs")
    create_topic(bootstrap, topic, config={"retention.ms": "86400000", "max.message.bytes": "200000"})
    altered = configs(
        bootstrap,
        "--alter",
        "--entity-type",
        "topics",
        "--entity-name",
        topic,
        "--add-config",
        "retention.ms=3600000,segment.bytes=1048576",
        "--delete-config",
        "max.message.bytes",
    )
    assert altered.ok() == f"Completed updating config for topic {topic}.\n"
    described = configs(
        bootstrap, "--describe", "--entity-type", "topics", "--entity-name", topic
    ).lines()
    assert described[0] == f"Dynamic configs for topic {topic} are:"
    assert [line.split(" sensitive=")[0].strip() for line in described[1:]] == [
        "retention.ms=3600000",
        "segment.bytes=1048576",
    ]
    assert described[1].startswith(
        "  retention.ms=3600000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=3600000"
    )

    unknown = configs(
        bootstrap,
        "--alter",
        "--entity-type",
        "topics",
        "--entity-name",
        topic,
        "--add-config",
        "no.such.config=1",
    )
    assert unknown.rc == 1
    assert "InvalidConfigurationException" in unknown.stderr, unknown.stderr


def test_configs_describe_all_topic_configs_shows_kafkas_defaults(bootstrap):
    topic = unique("defaults")
    create_topic(bootstrap, topic, config={"retention.ms": "86400000", "segment.bytes": "1048576"})
    described = configs(
        bootstrap, "--describe", "--all", "--entity-type", "topics", "--entity-name", topic
    ).lines()
    assert described[0] == f"All configs for topic {topic} are:"
    expected = [
        "cleanup.policy=delete sensitive=false synonyms={DEFAULT_CONFIG:log.cleanup.policy=delete}",
        "max.message.bytes=1048588 sensitive=false synonyms={DEFAULT_CONFIG:message.max.bytes=1048588}",
        "message.timestamp.after.max.ms=3600000 sensitive=false "
        "synonyms={DEFAULT_CONFIG:log.message.timestamp.after.max.ms=3600000}",
        "retention.ms=86400000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=86400000}",
        "segment.bytes=1048576 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:segment.bytes=1048576, "
        "DEFAULT_CONFIG:log.segment.bytes=1073741824}",
    ]
    lines = [line.strip() for line in described[1:]]
    assert [e for e in expected if e not in lines] == []
    names = {line.split("=")[0] for line in lines}
    assert {"min.insync.replicas", "unclean.leader.election.enable", "delete.retention.ms"} <= names


def test_configs_describe_broker(bootstrap):
    described = configs(bootstrap, "--describe", "--entity-type", "brokers", "--entity-name", "1")
    assert described.ok() == "Dynamic configs for broker 1 are:\n"


@functools.cache
def broker_configs_all(bootstrap: str) -> dict[str, str]:
    """`kafka-configs --describe --all` of broker 1: name -> value, once per broker."""
    described = configs(
        bootstrap, "--describe", "--all", "--entity-type", "brokers", "--entity-name", "1"
    ).lines()
    assert described[0] == "All configs for broker 1 are:"
    return dict(line.strip().split(" sensitive=")[0].split("=", 1) for line in described[1:])


def test_configs_describe_all_broker_configs_has_kafkas_names(bootstrap):
    values = broker_configs_all(bootstrap)
    assert values["num.partitions"] == "4"
    assert values["auto.create.topics.enable"] == "true"
    assert values["message.max.bytes"] == "1048588"


def test_configs_describe_all_broker_configs_has_kafkas_names_and_strom_its_own(bootstrap, kafka_broker):
    """A documented difference (docs/compatibility.md, "Configs"): beside Kafka's names,
    Strom lists each of its own settings (`default_partitions`, `flush`, ...), which have
    no dots; Kafka lists only dotted names."""
    own = sorted(name for name in broker_configs_all(bootstrap) if "_" in name)
    if bootstrap == kafka_broker:
        assert own == []
        return
    documented = re.findall(r"^\| `([a-z_]+)` \|", (REPO / "docs" / "configuration.md").read_text(), re.M)
    assert own and set(own) <= set(documented), set(own) - set(documented)


# --- console producer and consumer --------------------------------------------------------


def test_console_producer_with_keys_and_consumer_with_a_group(bootstrap):
    topic = unique("console")
    group = unique("console-g")
    create_topic(bootstrap, topic, partitions=3)
    produced = run_tool(
        "kafka-console-producer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--reader-property",
        "parse.key=true",
        "--reader-property",
        "key.separator=:",
        stdin="k1:v1\nk2:v2\nk1:v3\nk3:v4\n",
    )
    assert produced.ok() == ""
    consumed = run_tool(
        "kafka-console-consumer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--group",
        group,
        "--from-beginning",
        "--max-messages",
        "4",
        "--formatter-property",
        "print.key=true",
        "--formatter-property",
        "print.offset=true",
        "--formatter-property",
        "print.partition=true",
        "--formatter-property",
        "key.separator=|",
    )
    # The Java client's default partitioner (murmur2 of the key) places the keys alike on
    # both brokers; partitions arrive in any order, each in offset order.
    assert sorted(consumed.lines()) == [
        "Partition:0|Offset:0|k2|v2",
        "Partition:1|Offset:0|k3|v4",
        "Partition:2|Offset:0|k1|v1",
        "Partition:2|Offset:1|k1|v3",
    ]
    assert "Processed a total of 4 messages" in consumed.stderr
    # The group committed what it read when the consumer closed.
    described = groups(bootstrap, "--describe", "--group", group).lines()
    rows = sorted(line.split()[:6] for line in described if line.startswith(group))
    assert rows == [
        [group, topic, "0", "1", "1", "0"],
        [group, topic, "1", "1", "1", "0"],
        [group, topic, "2", "2", "2", "0"],
    ]


# --- kafka-consumer-groups ----------------------------------------------------------------


def lag_rows(bootstrap: str, group: str) -> list[list[str]]:
    """GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG of `--describe`."""
    described = groups(bootstrap, "--describe", "--group", group)
    lines = described.lines()
    header = next(line for line in lines if line.startswith("GROUP"))
    assert header.split() == [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]
    assert f"Consumer group '{group}' has no active members." in described.stderr
    return sorted(line.split() for line in lines if line.startswith(group))


def reset(bootstrap: str, group: str, target: str, *how: str) -> list[list[str]]:
    """`--reset-offsets ... --execute`: the GROUP TOPIC PARTITION NEW-OFFSET rows."""
    out = groups(bootstrap, "--group", group, "--reset-offsets", *how, "--topic", target, "--execute")
    lines = out.lines()
    assert lines[1].split() == ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], lines
    return sorted(line.split() for line in lines[2:])


def test_consumer_groups_list_describe_reset_and_delete(bootstrap):
    topic = unique("groups")
    group = unique("g")
    create_topic(bootstrap, topic, partitions=2)
    p = make_producer(bootstrap, linger_ms=0)
    assert_delivered(
        produce_all(p, topic, [{"value": b"x", "partition": 0}] * 5 + [{"value": b"y", "partition": 1}] * 3)
    )

    # A group that does not exist yet gets its offsets by the reset.
    assert reset(bootstrap, group, topic, "--to-earliest") == [
        [group, topic, "0", "0"],
        [group, topic, "1", "0"],
    ]
    assert group in groups(bootstrap, "--list").lines()
    dash = ["-", "-", "-"]
    assert lag_rows(bootstrap, group) == [
        [group, topic, "0", "0", "5", "5", *dash],
        [group, topic, "1", "0", "3", "3", *dash],
    ]
    assert reset(bootstrap, group, f"{topic}:0", "--to-offset", "2") == [[group, topic, "0", "2"]]
    assert reset(bootstrap, group, topic, "--shift-by", "1") == [
        [group, topic, "0", "3"],
        [group, topic, "1", "1"],
    ]
    assert lag_rows(bootstrap, group) == [
        [group, topic, "0", "3", "5", "2", *dash],
        [group, topic, "1", "1", "3", "2", *dash],
    ]
    state = groups(bootstrap, "--describe", "--group", group, "--state").lines()
    row = next(line for line in state if line.startswith(group)).split()
    assert row[1] == bootstrap and row[-3:] == ["-", "Empty", "0"], row

    deleted = groups(bootstrap, "--delete", "--group", group)
    assert deleted.ok() == f"Deletion of requested consumer groups ('{group}') was successful.\n"
    assert group not in groups(bootstrap, "--list").lines()


def test_consumer_groups_list_shows_the_group_type(bootstrap):
    topic = unique("type")
    group = unique("g")
    create_topic(bootstrap, topic)
    reset(bootstrap, group, topic, "--to-earliest")
    listed = groups(bootstrap, "--list", "--type").lines()
    assert listed[0].split() == ["GROUP", "TYPE"]
    assert [group, "Classic"] in [line.split() for line in listed[1:]]


def test_consumer_groups_describe_of_an_unknown_group(bootstrap):
    group = unique("nosuch")
    described = groups(bootstrap, "--describe", "--group", group)
    # Kafka's tool exits 0 here too; what tells is the message.
    assert described.rc == 0
    assert (
        "Error: Executing consumer group command failed due to org.apache.kafka.common.errors."
        f"GroupIdNotFoundException: Group {group} not found." in described.stdout
    ), described.stdout


# --- kafka-get-offsets and kafka-delete-records --------------------------------------------


def test_get_offsets_by_time_and_delete_records(bootstrap, tmp_path):
    topic = unique("offsets")
    create_topic(bootstrap, topic)
    base = int(time.time() * 1000) - 60_000
    p = make_producer(bootstrap, linger_ms=0)
    # Timestamps base, base+1000, ... at offsets 0..3; the last one is the largest.
    assert_delivered(
        produce_all(
            p, topic, [{"value": b"v", "partition": 0, "timestamp": base + 1000 * i} for i in range(4)]
        )
    )
    assert get_offsets(bootstrap, topic, "latest") == [f"{topic}:0:4"]
    assert get_offsets(bootstrap, topic, "-2") == [f"{topic}:0:0"]
    # The first offset whose timestamp is at or after the one asked for.
    assert get_offsets(bootstrap, topic, str(base + 1500)) == [f"{topic}:0:2"]
    assert get_offsets(bootstrap, topic, "max-timestamp") == [f"{topic}:0:3"]
    # No record that late: the partition is left out.
    assert get_offsets(bootstrap, topic, str(base + 10_000)) == []

    offsets = tmp_path / "offsets.json"
    offsets.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "offset": 2}]}))
    deleted = run_tool(
        "kafka-delete-records", "--bootstrap-server", bootstrap, "--offset-json-file", str(offsets)
    ).lines()
    assert deleted == [
        "Executing records delete operation",
        "Records delete operation completed:",
        f"partition: {topic}-0\tlow_watermark: 2",
    ]
    assert get_offsets(bootstrap, topic, "earliest") == [f"{topic}:0:2"]

    offsets.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "offset": 99}]}))
    beyond = run_tool(
        "kafka-delete-records", "--bootstrap-server", bootstrap, "--offset-json-file", str(offsets)
    ).lines()
    assert beyond[-1] == (
        f"partition: {topic}-0\terror: org.apache.kafka.common.errors.OffsetOutOfRangeException: "
        "The requested offset is not within the range of offsets maintained by the server."
    )


# --- perf tests and api versions -----------------------------------------------------------


def test_producer_and_consumer_perf_tests_finish_and_report(bootstrap):
    topic = unique("perf")
    create_topic(bootstrap, topic, partitions=2)
    produced = run_tool(
        "kafka-producer-perf-test",
        "--topic",
        topic,
        "--num-records",
        "2000",
        "--record-size",
        "100",
        "--throughput",
        "-1",
        "--bootstrap-server",
        bootstrap,
        "--command-property",
        "acks=all",
    ).lines()
    assert re.fullmatch(
        r"2000 records sent, [0-9.]+ records/sec \([0-9.]+ MB/sec\), [0-9.]+ ms avg latency, "
        r"[0-9.]+ ms max latency, \d+ ms 50th, \d+ ms 95th, \d+ ms 99th, \d+ ms 99.9th\.",
        produced[-1],
    ), produced
    consumed = run_tool(
        "kafka-consumer-perf-test",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--num-records",
        "2000",
        "--timeout",
        "30000",
    ).lines()
    header = [c.strip() for c in consumed[0].split(",")]
    assert header[:6] == [
        "start.time",
        "end.time",
        "data.consumed.in.MB",
        "MB.sec",
        "data.consumed.in.nMsg",
        "nMsg.sec",
    ]
    row = [c.strip() for c in consumed[1].split(",")]
    assert row[2] == "0.1907" and row[4] == "2000", consumed


# The APIs the tools above use; Strom offers them all.
TOOL_APIS = [
    "Produce(0)",
    "Fetch(1)",
    "ListOffsets(2)",
    "Metadata(3)",
    "OffsetCommit(8)",
    "OffsetFetch(9)",
    "FindCoordinator(10)",
    "JoinGroup(11)",
    "Heartbeat(12)",
    "LeaveGroup(13)",
    "SyncGroup(14)",
    "DescribeGroups(15)",
    "ListGroups(16)",
    "ApiVersions(18)",
    "CreateTopics(19)",
    "DeleteTopics(20)",
    "DeleteRecords(21)",
    "InitProducerId(22)",
    "DescribeConfigs(32)",
    "AlterConfigs(33)",
    "CreatePartitions(37)",
    "DeleteGroups(42)",
    "IncrementalAlterConfigs(44)",
    "OffsetDelete(47)",
    "DescribeCluster(60)",
]


def usable(answer: str) -> dict[str, int | None]:
    """API -> the highest version both sides use, None for UNSUPPORTED."""
    out: dict[str, int | None] = {}
    for line in answer.splitlines()[1:-1]:
        name, _, versions = line.strip().rstrip(",").partition(": ")
        m = re.search(r"\[usable: (\d+)\]", versions)
        out[name] = int(m.group(1)) if m else None
    return out


def test_broker_api_versions_lists_the_apis_the_tools_use(bootstrap):
    answer = api_versions(bootstrap)
    assert answer.startswith(f"{bootstrap} (id: 1 rack: null isFenced: false) -> (\n"), answer[:200]
    assert answer.endswith(")\n")
    apis = usable(answer)
    assert [a for a in TOOL_APIS if apis.get(a) is None] == []


def test_broker_api_versions_offers_list_groups_with_group_types(bootstrap):
    assert usable(api_versions(bootstrap))["ListGroups(16)"] == 5


def test_broker_api_versions_offers_describe_topic_partitions(bootstrap):
    assert usable(api_versions(bootstrap))["DescribeTopicPartitions(75)"] == 0
