"""Helpers over confluent-kafka for the tests: producing with delivery reports, consuming a
partition by assign() (group tests are in test_groups.py), admin calls with timeouts.

Offsets are Kafka's (docs/adr/0005-kafka-offsets.md): a new partition is empty at
watermarks (0, 0), its first record is at offset 0, N records end at offset N, and leader
changes (broker restarts, failovers) take no offset. Tests assert these numbers directly."""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

TIMEOUT_S = 30.0

# confluent-kafka's own keys (Python callbacks); everything else is a librdkafka
# property, given here with "_" for ".".
PYTHON_KEYS = {"error_cb", "stats_cb", "throttle_cb", "logger", "on_delivery", "oauth_cb"}


def props(conf: dict) -> dict:
    return {(k if k in PYTHON_KEYS else k.replace("_", ".")): v for k, v in conf.items()}


def client_conf(bootstrap: str, **extra) -> dict:
    conf = {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000}
    conf.update(props(extra))
    return conf


@dataclass
class Delivery:
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    error: KafkaError | None


def make_producer(bootstrap: str, **conf) -> Producer:
    base = {"linger.ms": 5, "message.timeout.ms": 30000}
    base.update(props(conf))
    return Producer(client_conf(bootstrap, **base))


def produce_all(
    producer: Producer,
    topic: str,
    messages: list[dict],
    timeout: float = TIMEOUT_S,
) -> list[Delivery]:
    """Produces `messages` (dicts of produce() kwargs: value, key, headers, partition,
    timestamp) and waits for every delivery report; returns them in the order sent."""
    reports: list[Delivery | None] = [None] * len(messages)

    def on_delivery(i):
        def cb(err, msg):
            reports[i] = Delivery(msg.key(), msg.value(), msg.partition(), msg.offset(), err)

        return cb

    for i, m in enumerate(messages):
        while True:
            try:
                producer.produce(topic, on_delivery=on_delivery(i), **m)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(timeout)
    assert remaining == 0, f"{remaining} messages still undelivered after {timeout}s"
    missing = [i for i, r in enumerate(reports) if r is None]
    assert not missing, f"no delivery report for messages {missing[:10]}"
    return reports  # type: ignore[return-value]


def assert_delivered(reports: list[Delivery]) -> None:
    errors = [(i, r.error) for i, r in enumerate(reports) if r.error is not None]
    assert not errors, f"{len(errors)} delivery errors, first: {errors[:3]}"


@dataclass
class Consumed:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list | None
    timestamp: int


def make_consumer(bootstrap: str, **conf) -> Consumer:
    base = {
        # confluent-kafka insists on a group id even for assign(); it is never joined.
        "group.id": "strom-tests-assign-only",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
        "fetch.wait.max.ms": 100,
    }
    base.update(props(conf))
    return Consumer(client_conf(bootstrap, **base))


def consume(
    bootstrap: str,
    topic: str,
    partitions: list[int] | int = 0,
    start: int = OFFSET_BEGINNING,
    count: int | None = None,
    timeout: float = TIMEOUT_S,
    **conf,
) -> list[Consumed]:
    """Reads the given partitions from `start` by assign(), until `count` messages arrived
    or (without a count) until every partition reached its end. Raises on consumer
    errors other than partition EOF."""
    if isinstance(partitions, int):
        partitions = [partitions]
    c = make_consumer(bootstrap, **conf)
    try:
        c.assign([TopicPartition(topic, p, start) for p in partitions])
        out: list[Consumed] = []
        at_eof: set[int] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if count is not None and len(out) >= count:
                break
            if count is None and at_eof >= set(partitions):
                break
            msg = c.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_eof.add(msg.partition())
                    continue
                raise KafkaException(msg.error())
            at_eof.discard(msg.partition())
            out.append(
                Consumed(
                    msg.partition(),
                    msg.offset(),
                    msg.key(),
                    msg.value(),
                    msg.headers(),
                    msg.timestamp()[1],
                )
            )
        else:
            raise AssertionError(
                f"consume timed out after {timeout}s with {len(out)} messages"
                + (f" of {count}" if count is not None else f"; EOF on {sorted(at_eof)}")
            )
        return out
    finally:
        c.close()


def admin(bootstrap: str) -> AdminClient:
    return AdminClient(client_conf(bootstrap))


def result(future, timeout: float = TIMEOUT_S):
    return future.result(timeout=timeout)


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict | None = None):
    """Creates the topic and waits for its partitions' first leaders (see below)."""
    a = admin(bootstrap)
    fs = a.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=10,
        request_timeout=TIMEOUT_S,
    )
    result(fs[name])
    wait_for_first_leaders(bootstrap, name, partitions)


def wait_for_first_leaders(bootstrap: str, topic: str, partitions: int) -> None:
    """Waits until every partition of a just-created topic has its first leader, which then
    answers ListOffsets with the empty partition's watermarks (0, 0): CreateTopics may
    answer a moment before, while the partition's leader is still being elected (its
    ListOffsets fails with NOT_LEADER_OR_FOLLOWER)."""

    def ready(p: int) -> bool:
        try:
            return watermarks(bootstrap, topic, p) == (0, 0)
        except KafkaException:
            return False

    for p in range(partitions):
        wait_until(lambda: ready(p), 10, what=f"{topic}-{p}'s first leader")


def watermarks(bootstrap: str, topic: str, partition: int = 0) -> tuple[int, int]:
    """(low, high) straight from the broker (ListOffsets), not cached."""
    c = make_consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
    finally:
        c.close()


def offsets_by_partition(reports: list[Delivery]) -> dict[int, list[int]]:
    """The delivered offsets per partition, in the order the messages were sent."""
    out: dict[int, list[int]] = {}
    for r in reports:
        assert r.error is None, r.error
        out.setdefault(r.partition, []).append(r.offset)
    return out


def assert_contiguous(offsets: list[int], start: int) -> None:
    """`offsets` are exactly start, start + 1, ..., as the offsets of the records one
    producer sends to one partition are (Kafka's offsets are dense)."""
    assert offsets, "no offsets"
    assert offsets == list(range(start, start + len(offsets))), (
        f"offsets are not the contiguous run from {start}: {offsets[:5]}...{offsets[-5:]}"
    )


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Polls `predicate` until it returns a truthy value; returns it, or fails after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
