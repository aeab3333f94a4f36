"""Consumer groups with real clients: confluent-kafka consumers sharing partitions and
rebalancing when one leaves or is killed, commits that survive broker restarts and
SIGKILL, independent groups, kcat's balanced consumer (old librdkafka, v0 group APIs) and
the AdminClient's group operations."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, TopicPartition

from kafka_util import (
    TIMEOUT_S,
    admin,
    assert_contiguous,
    assert_delivered,
    client_conf,
    create_topic,
    make_producer,
    offsets_by_partition,
    produce_all,
    result,
    wait_until,
    watermarks,
)

# A short first-rebalance delay keeps every join fast; the session timeout is the shortest
# the broker accepts (its default group_min_session_timeout_ms).
pytestmark = pytest.mark.strom_args("--group-initial-rebalance-delay-ms", "200")

SESSION_MS = 6000


def group_consumer(bootstrap: str, group: str, **extra) -> Consumer:
    conf = client_conf(
        bootstrap,
        **{
            "group.id": group,
            "session.timeout.ms": SESSION_MS,
            "heartbeat.interval.ms": 500,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 200,
            "fetch.wait.max.ms": 100,
        },
    )
    conf.update(extra)
    return Consumer(conf)


class Member:
    """A subscribed consumer with what it was assigned and what it read."""

    def __init__(self, bootstrap: str, group: str, topic: str, **extra):
        self.assigned: set[int] = set()
        self.seen: set[tuple[int, int]] = set()
        self.consumer = group_consumer(bootstrap, group, **extra)
        self.consumer.subscribe(
            [topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )

    def _on_assign(self, consumer, partitions):
        self.assigned |= {p.partition for p in partitions}

    def _on_revoke(self, consumer, partitions):
        self.assigned -= {p.partition for p in partitions}

    def poll(self, timeout: float = 0.05) -> None:
        msg = self.consumer.poll(timeout)
        if msg is None:
            return
        if msg.error():
            assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
            return
        self.seen.add((msg.partition(), msg.offset()))

    def close(self) -> None:
        self.consumer.close()


def poll_until(members: list[Member], predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in members:
            m.poll()
        if predicate():
            return
    state = [(sorted(m.assigned), len(m.seen)) for m in members]
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: {state}")


def produce_per_partition(
    bootstrap: str, topic: str, partitions: int, each: int, tag: str, start: int = 0
) -> set[tuple[int, int]]:
    """`each` messages to every partition, each of which holds `start` records already;
    checks they got offsets start .. start + each - 1 there, and returns those
    (partition, offset) pairs."""
    p = make_producer(bootstrap)
    msgs = [
        {"value": f"{tag}-{part}-{i}".encode(), "partition": part}
        for part in range(partitions)
        for i in range(each)
    ]
    reports = produce_all(p, topic, msgs)
    assert_delivered(reports)
    by_partition = offsets_by_partition(reports)
    assert sorted(by_partition) == list(range(partitions))
    for offsets in by_partition.values():
        assert_contiguous(offsets, start)
    produced = {(r.partition, r.offset) for r in reports}
    assert produced == {(p, start + i) for p in range(partitions) for i in range(each)}
    return produced


def test_three_consumers_share_six_partitions_and_a_leaver_is_covered(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=6)
    first = produce_per_partition(broker.bootstrap, topic, 6, 10, "a")
    members = [Member(broker.bootstrap, "g3", topic) for _ in range(3)]
    try:
        poll_until(
            members,
            lambda: [len(m.assigned) for m in members] == [2, 2, 2]
            and set().union(*(m.seen for m in members)) == first,
            TIMEOUT_S,
            "two partitions each and every message read",
        )
        assert set().union(*(m.assigned for m in members)) == set(range(6))
        # One leaves cleanly: its partitions move to the other two, which read what is
        # produced next on all six.
        members[0].close()
        rest = members[1:]
        second = produce_per_partition(broker.bootstrap, topic, 6, 10, "b", start=10)
        poll_until(
            rest,
            lambda: sorted(len(m.assigned) for m in rest) == [3, 3]
            and first | second <= set().union(*(m.seen for m in members)),
            SESSION_MS / 1000 + 20,
            "the leaver's partitions taken over with nothing skipped",
        )
    finally:
        for m in members[1:]:
            m.close()


CHILD = textwrap.dedent(
    """
    import sys
    from confluent_kafka import Consumer
    c = Consumer({
        "bootstrap.servers": sys.argv[1], "group.id": sys.argv[2],
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })
    def on_assign(consumer, parts):
        print("assigned", len(parts), flush=True)
    c.subscribe([sys.argv[3]], on_assign=on_assign)
    while True:
        c.poll(0.1)
    """
)


def test_killed_consumer_partitions_move_within_the_session_timeout(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=6)
    group = "gkill"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, broker.bootstrap, group, topic],
        stdout=subprocess.PIPE,
        text=True,
    )
    members: list[Member] = []
    try:
        # The child joins first, so it is surely part of the group the others join.
        assert child.stdout.readline().startswith("assigned"), "child never assigned"
        members = [Member(broker.bootstrap, group, topic) for _ in range(2)]
        poll_until(
            members,
            lambda: [len(m.assigned) for m in members] == [2, 2],
            TIMEOUT_S,
            "two partitions each beside the child",
        )
        # The child commits nothing, so the survivors must read every message of its
        # partitions from the start.
        produced = produce_per_partition(broker.bootstrap, topic, 6, 5, "k")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        killed_at = time.monotonic()
        poll_until(
            members,
            lambda: sorted(len(m.assigned) for m in members) == [3, 3],
            SESSION_MS / 1000 + 15,
            "the killed member's partitions reassigned",
        )
        moved_after = time.monotonic() - killed_at
        # Expiry after the session timeout, then one rebalance (bounded by the members'
        # next poll): allow generous slack for a busy machine.
        assert moved_after < SESSION_MS / 1000 + 10, moved_after
        poll_until(
            members,
            lambda: set().union(*(m.seen for m in members)) == produced,
            TIMEOUT_S,
            "every message read by the survivors",
        )
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for m in members:
            m.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    c = group_consumer(bootstrap, group)
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return [tp.offset for tp in tps]
    finally:
        c.close()


def commit(bootstrap: str, group: str, topic: str, offsets: list[int]) -> None:
    c = group_consumer(bootstrap, group, **{"enable.auto.commit": False})
    try:
        c.commit(
            offsets=[TopicPartition(topic, p, o) for p, o in enumerate(offsets)],
            asynchronous=False,
        )
    finally:
        c.close()


def test_commits_survive_clean_restart_and_sigkill(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=3)
    produce_per_partition(broker.bootstrap, topic, 3, 10, "c")
    commit(broker.bootstrap, "gdur", topic, [3, 5, 7])
    assert committed(broker.bootstrap, "gdur", topic, 3) == [3, 5, 7]
    broker.restart()
    assert committed(broker.bootstrap, "gdur", topic, 3) == [3, 5, 7]
    # Acknowledged commits are durable: a crash right after the answer keeps them.
    commit(broker.bootstrap, "gdur", topic, [4, 6, 8])
    broker.kill()
    broker.start()
    assert committed(broker.bootstrap, "gdur", topic, 3) == [4, 6, 8]


def offsets_topic_bytes(broker) -> int:
    """Bytes of the segment files of every `__consumer_offsets` partition in the data dir
    (indexes are left out: they may be preallocated)."""
    return sum(
        f.stat().st_size for d in broker.data_dir.glob("__consumer_offsets-*") for f in d.glob("*.log")
    )


@pytest.mark.strom_args(
    "--group-initial-rebalance-delay-ms",
    "200",
    "--offsets-topic-partitions",
    "1",
    "--offsets-compaction-check-ms",
    "200",
    "--offsets-compaction-min-bytes",
    "16384",
)
def test_offsets_topic_is_compacted_and_replays_the_latest_commits(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=3)
    c = group_consumer(broker.bootstrap, "gcompact", **{"enable.auto.commit": False})
    try:
        # About 100 bytes per committed partition: some 150 KB of history for 3 live keys.
        for i in range(500):
            c.commit(
                offsets=[TopicPartition(topic, p, i * 3 + p) for p in range(3)],
                asynchronous=False,
            )
    finally:
        c.close()
    latest = [499 * 3 + p for p in range(3)]
    # The ticker snapshots the partition and moves its log start past the history.
    low = wait_until(
        lambda: watermarks(broker.bootstrap, "__consumer_offsets", 0)[0],
        TIMEOUT_S,
        what="the log start of __consumer_offsets-0 to advance",
    )
    wait_until(
        lambda: offsets_topic_bytes(broker) < 100_000,
        TIMEOUT_S,
        what="old __consumer_offsets segments to be deleted",
    )
    broker.restart()
    assert committed(broker.bootstrap, "gcompact", topic, 3) == latest
    assert watermarks(broker.bootstrap, "__consumer_offsets", 0)[0] >= low
    a = admin(broker.bootstrap)
    fs = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions("gcompact")])
    got = result(fs["gcompact"])
    assert sorted((tp.partition, tp.offset) for tp in got.topic_partitions) == list(
        enumerate(latest)
    )


def read_all(member: Member, want: set[tuple[int, int]]) -> None:
    poll_until([member], lambda: want <= member.seen, TIMEOUT_S, "every message")


def test_second_group_replays_while_first_keeps_its_position(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=2)
    produced = produce_per_partition(broker.bootstrap, topic, 2, 10, "r")
    # A group that read everything commits the offset after the last record: the count.
    end = [10, 10]
    assert [watermarks(broker.bootstrap, topic, p)[1] for p in (0, 1)] == end
    first = Member(broker.bootstrap, "gfirst", topic)
    try:
        read_all(first, produced)
        first.consumer.commit(asynchronous=False)
    finally:
        first.close()
    assert committed(broker.bootstrap, "gfirst", topic, 2) == end

    second = Member(broker.bootstrap, "gsecond", topic)
    try:
        read_all(second, produced)
        second.consumer.commit(asynchronous=False)
    finally:
        second.close()
    assert committed(broker.bootstrap, "gfirst", topic, 2) == end

    # The first group resumes where it was: only what is new (offsets 10..12).
    new = produce_per_partition(broker.bootstrap, topic, 2, 3, "n", start=10)
    again = Member(broker.bootstrap, "gfirst", topic)
    try:
        read_all(again, new)
        assert again.seen == new
    finally:
        again.close()


KCAT = shutil.which("kcat")


def test_kcat_balanced_consumer(broker, topic):
    if KCAT is None:
        pytest.fail("kcat is not installed: apt-get install -y kcat")
    create_topic(broker.bootstrap, topic, partitions=3)
    produced = produce_per_partition(broker.bootstrap, topic, 3, 4, "kc")
    proc = subprocess.run(
        [
            KCAT, "-b", broker.bootstrap, "-G", "gkcat", topic,
            "-X", "auto.offset.reset=earliest",
            "-X", "session.timeout.ms=6000",
            "-c", "12", "-f", "%p %o\\n", "-q",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    got = {tuple(map(int, line.split())) for line in proc.stdout.splitlines() if line}
    assert got == produced, proc.stdout
    # kcat commits what it read (auto commit, and on close): 4 records per partition.
    assert committed(broker.bootstrap, "gkcat", topic, 3) == [4, 4, 4]


def test_admin_client_group_operations(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=2)
    produced = produce_per_partition(broker.bootstrap, topic, 2, 5, "ad")
    a = admin(broker.bootstrap)
    m = Member(broker.bootstrap, "gadmin", topic)
    try:
        read_all(m, produced)
        m.consumer.commit(asynchronous=False)
        listed = result(a.list_consumer_groups(request_timeout=TIMEOUT_S))
        ids = {g.group_id for g in listed.valid}
        assert "gadmin" in ids, ids
        desc = result(a.describe_consumer_groups(["gadmin"], request_timeout=TIMEOUT_S)["gadmin"])
        assert desc.state.name == "STABLE", desc.state
        assert len(desc.members) == 1
        assigned = {tp.partition for tp in desc.members[0].assignment.topic_partitions}
        assert assigned == {0, 1}
    finally:
        m.close()

    def offsets() -> dict[int, int]:
        fs = a.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions("gadmin")], request_timeout=TIMEOUT_S
        )
        res = result(fs["gadmin"])
        return {tp.partition: tp.offset for tp in res.topic_partitions if tp.topic == topic}

    # Everything read: the committed offsets are the record counts.
    assert offsets() == {0: 5, 1: 5}
    # Reset partition 0 to the beginning, 1 to its third message, at offset 2 (the group
    # is empty now, as Kafka requires).
    fs = a.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions("gadmin", [TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 2)])],
        request_timeout=TIMEOUT_S,
    )
    result(fs["gadmin"])
    assert offsets() == {0: 0, 1: 2}

    fs = a.delete_consumer_groups(["gadmin"], request_timeout=TIMEOUT_S)
    result(fs["gadmin"])
    listed = result(a.list_consumer_groups(request_timeout=TIMEOUT_S))
    assert "gadmin" not in {g.group_id for g in listed.valid}
    assert committed(broker.bootstrap, "gadmin", topic, 2) == [-1001, -1001]


def test_clients_cannot_produce_to_consumer_offsets(broker, topic):
    # The coordinator owns __consumer_offsets; a client's record there could corrupt
    # every group's committed offsets on replay, so Kafka refuses it and so does Strom.
    c = group_consumer(broker.bootstrap, "g-internal")
    c.subscribe([topic])
    c.poll(1.0)  # joining creates the group coordinator state and the internal topic
    c.close()
    p = make_producer(broker.bootstrap, acks="all")
    errors = []
    p.produce("__consumer_offsets", key=b"k", value=b"v", partition=0,
              on_delivery=lambda err, msg: errors.append(err))
    p.flush(TIMEOUT_S)
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() == KafkaError.TOPIC_EXCEPTION, errors[0]
