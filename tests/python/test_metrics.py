"""The metrics and health endpoints against real clients: confluent-kafka produces and a
group consumes and commits, then /metrics is scraped, parsed strictly (prom_text) and
checked against what the clients did. Also: the request span's fields in JSON logs."""

from __future__ import annotations

import gc
import json
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

import kafka_wire
import prom_text
from kafka_util import (
    TIMEOUT_S,
    assert_contiguous,
    assert_delivered,
    client_conf,
    create_topic,
    make_producer,
    produce_all,
    wait_until,
)

pytestmark = pytest.mark.strom_args("--group-initial-rebalance-delay-ms", "200")


def scrape(broker) -> dict[str, prom_text.Family]:
    status, content_type, body = broker.http_get("/metrics")
    assert status == 200, body
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    return prom_text.parse(body)


def requests(fams, api: str, error: str = "NONE") -> float:
    return prom_text.value(fams, "strom_requests_total", api=api, error=error) or 0


def group_consumer(broker, group: str) -> Consumer:
    return Consumer(
        client_conf(
            broker.bootstrap,
            **{
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "session.timeout.ms": 6000,
                "fetch.wait.max.ms": 100,
            },
        )
    )


def consume_n(c: Consumer, n: int) -> list:
    got = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        assert not m.error(), m.error()
        got.append(m)
    assert len(got) == n, f"consumed {len(got)} of {n}"
    return got


def test_health_endpoints(broker):
    assert broker.http_get("/healthz")[0] == 200
    status, _, body = broker.http_get("/readyz")
    assert (status, body) == (200, "ready\n")
    assert broker.http_get("/nope")[0] == 404


def test_metrics_follow_produce_consume_and_commit(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=1)
    before = scrape(broker)
    assert "strom_requests_total" in before
    assert before["strom_request_duration_seconds"].type == "histogram"

    values = [f"message-{i:04d}".encode() * 8 for i in range(50)]
    producer = make_producer(broker.bootstrap, acks="all")
    reports = produce_all(producer, topic, [{"value": v, "partition": 0} for v in values])
    assert_delivered(reports)
    produced_bytes = sum(len(v) for v in values)
    # The messages are at offsets 0..49: the log ends at 50.
    assert_contiguous([r.offset for r in reports], 0)
    end = 50

    group = f"g-metrics-{topic[-6:]}"
    c = group_consumer(broker, group)
    try:
        c.subscribe([topic])
        msgs = consume_n(c, 50)
        c.commit(message=msgs[-1], asynchronous=False)

        fams = scrape(broker)
        # A client is connected right now.
        assert prom_text.value(fams, "strom_connections_open") > 0
        assert prom_text.value(fams, "strom_connections_accepted_total") >= 2
        for api in ("Produce", "Fetch", "Metadata", "ApiVersions", "JoinGroup", "OffsetCommit"):
            assert requests(fams, api) > requests(before, api), api
        produce_count = prom_text.value(fams, "strom_request_duration_seconds_count", api="Produce")
        assert produce_count >= 1
        bytes_in = prom_text.value(fams, "strom_topic_bytes_in_total", topic=topic)
        assert bytes_in >= produced_bytes
        bytes_out = prom_text.value(fams, "strom_topic_bytes_out_total", topic=topic)
        assert bytes_out >= produced_bytes
        part = {"topic": topic, "partition": "0"}
        assert prom_text.value(fams, "strom_partition_log_end_offset", **part) == end
        assert prom_text.value(fams, "strom_partition_high_watermark", **part) == end
        assert prom_text.value(fams, "strom_partition_log_start_offset", **part) == 0
        lag = {"group": group, **part}
        assert prom_text.value(fams, "strom_consumer_group_committed_offset", **lag) == end
        assert prom_text.value(fams, "strom_consumer_group_lag", **lag) == 0
        delivered = prom_text.value(
            fams, "strom_consumer_group_delivery_latency_seconds_count", group=group
        )
        assert delivered == 1, "one commit that moved the group forward"
        assert prom_text.value(fams, "strom_log_fsync_duration_seconds_count") >= 1

        # More records, not consumed: the lag is exactly their number.
        assert_delivered(produce_all(producer, topic, [{"value": b"x", "partition": 0}] * 7))
        fams = scrape(broker)
        assert prom_text.value(fams, "strom_consumer_group_lag", **lag) == 7
        assert prom_text.value(fams, "strom_partition_log_end_offset", **part) == end + 7

        # Consuming and committing them brings it back to zero.
        c.commit(message=consume_n(c, 7)[-1], asynchronous=False)
        fams = scrape(broker)
        assert prom_text.value(fams, "strom_consumer_group_lag", **lag) == 0
        assert (
            prom_text.value(fams, "strom_consumer_group_delivery_latency_seconds_count", group=group)
            == 2
        )
    finally:
        c.close()
    # Every client closed: the gauge comes back down.
    del producer
    gc.collect()
    wait_until(
        lambda: prom_text.value(scrape(broker), "strom_connections_open") == 0,
        timeout=15,
        what="connections to close",
    )


def test_errors_are_counted_by_code(broker, topic):
    """A Produce to a partition that does not exist is counted under its error code."""
    create_topic(broker.bootstrap, topic, partitions=1)

    before = scrape(broker)
    with kafka_wire.Conn(broker.bootstrap) as conn:
        res = conn.produce(topic, 5, kafka_wire.record_batch([(None, b"v")]))
    assert res.error_code == 3  # UNKNOWN_TOPIC_OR_PARTITION
    fams = scrape(broker)
    assert (
        requests(fams, "Produce", "UNKNOWN_TOPIC_OR_PARTITION")
        == requests(before, "Produce", "UNKNOWN_TOPIC_OR_PARTITION") + 1
    )


@pytest.mark.strom_args("--log-format", "json")
@pytest.mark.strom_log("info,strom_broker=debug")
def test_json_request_logs_carry_the_request_fields(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=1)
    producer = make_producer(broker.bootstrap, client_id="metrics-span-test", acks="all")
    assert_delivered(produce_all(producer, topic, [{"value": b"hello", "partition": 0}]))

    def produce_answered():
        for line in broker.log_text().splitlines():
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            span = event.get("span", {})
            if event["fields"].get("message") == "answered" and span.get("api") == "Produce":
                return event
        return None

    event = wait_until(produce_answered, timeout=10, what="a Produce 'answered' line")
    span = event["span"]
    assert span["name"] == "request"
    assert span["client_id"] == "metrics-span-test"
    assert isinstance(span["api_version"], int) and span["api_version"] >= 3
    assert isinstance(span["correlation_id"], int)
    assert span["peer"].startswith("127.0.0.1:")
    assert event["fields"]["error"] == "NONE"
    assert event["level"] == "DEBUG"
