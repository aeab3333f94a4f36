"""kcat (Debian's, on librdkafka 2.0.2) reading what a confluent-kafka transactional
producer wrote, with `-X isolation.level=read_committed` and `read_uncommitted`: aborted
records are filtered out of a read_committed fetch (the aborted-transactions list of
Fetch), control records never reach the application, and read_committed offset queries
(ListOffsets with isolation level 1) and end-of-partition stop at the last stable offset
while a transaction is open. An old librdkafka on its own code paths, beside the modern
one that produced."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer, TopicPartition

from kafka_util import client_conf, create_topic, make_consumer, wait_until
from test_kcat import KCAT, kcat, kcat_consume

COMMITTED = "isolation.level=read_committed"
UNCOMMITTED = "isolation.level=read_uncommitted"


@pytest.fixture(autouse=True)
def _kcat_installed():
    # A failure, not a skip, as in test_kcat.py.
    if KCAT is None:
        pytest.fail("kcat is not installed: apt-get install -y kcat (scripts/test-clients.sh does)")


def txn_producer(broker, topic: str) -> Producer:
    conf = {"transactional.id": f"kcat-{topic}", "linger.ms": 5}
    p = Producer(client_conf(broker.bootstrap, **conf))
    p.init_transactions(30)
    return p


def produce_txn(p: Producer, topic: str, values: list[str], end: str | None) -> None:
    """One transaction of `values` to partition 0, then `end`: "commit", "abort", or None
    to leave it open (its records flushed, so they are in the log past the LSO)."""
    p.begin_transaction()
    for v in values:
        p.produce(topic, value=v.encode(), key=v.encode(), partition=0)
    p.flush(30)
    if end == "commit":
        p.commit_transaction(30)
    elif end == "abort":
        p.abort_transaction(30)


def high_watermark(broker, topic: str) -> int:
    """Partition 0's high watermark by a read_uncommitted ListOffsets from confluent-kafka
    (its default, read_committed, would answer the last stable offset)."""
    c = make_consumer(broker.bootstrap, **{"isolation.level": "read_uncommitted"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)[1]
    finally:
        c.close()


def values(rows: list[dict]) -> list[str]:
    return [r["value"] for r in rows]


def offsets(rows: list[dict]) -> list[int]:
    return [r["offset"] for r in rows]


def query_end(broker, topic: str, isolation: str) -> int:
    """The end offset of partition 0 as `kcat -Q` answers it: offsetsForTimes with
    timestamp -1 (latest), which librdkafka sends as ListOffsets with its isolation level."""
    out = kcat(broker, "-Q", "-t", f"{topic}:0:-1", "-X", isolation)
    # One line per partition: "<topic> [<partition>] offset <offset>".
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and " offset " in lines[0], out
    return int(lines[0].rsplit(" ", 1)[1])


def test_kcat_read_committed_skips_the_aborted_transaction(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=1)
    p = txn_producer(broker, topic)
    produce_txn(p, topic, [f"c{i}" for i in range(5)], "commit")  # offsets 0-4, marker 5
    produce_txn(p, topic, [f"a{i}" for i in range(5)], "abort")  # offsets 6-10, marker 11
    produce_txn(p, topic, [f"d{i}" for i in range(5)], "commit")  # offsets 12-16, marker 17
    # EndTxn is answered once the coordinator decided, as Kafka does; the marker follows.
    # (Each earlier marker is in before the next transaction's records: a new transaction
    # waits for the previous one to complete.)
    wait_until(lambda: high_watermark(broker, topic) == 18, 10, what="the last commit marker")

    committed = kcat_consume(broker, topic, "-X", COMMITTED)
    assert values(committed) == [f"c{i}" for i in range(5)] + [f"d{i}" for i in range(5)]
    assert offsets(committed) == [*range(0, 5), *range(12, 17)]
    assert all(r["key"] == r["value"] for r in committed)

    # Both transactions' records, and none of the three markers.
    uncommitted = kcat_consume(broker, topic, "-X", UNCOMMITTED)
    assert values(uncommitted) == (
        [f"c{i}" for i in range(5)] + [f"a{i}" for i in range(5)] + [f"d{i}" for i in range(5)]
    )
    assert offsets(uncommitted) == [*range(0, 5), *range(6, 11), *range(12, 17)]

    # librdkafka's default is read_committed.
    assert kcat_consume(broker, topic) == committed

    # With nothing open the last stable offset is the high watermark.
    assert query_end(broker, topic, COMMITTED) == 18
    assert query_end(broker, topic, UNCOMMITTED) == 18


def test_kcat_read_committed_stops_at_the_open_transaction(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=1)
    p = txn_producer(broker, topic)
    produce_txn(p, topic, [f"c{i}" for i in range(5)], "commit")  # offsets 0-4, marker 5
    produce_txn(p, topic, [f"o{i}" for i in range(3)], None)  # offsets 6-8, still open
    assert high_watermark(broker, topic) == 9

    # The last stable offset is the open transaction's first offset.
    assert query_end(broker, topic, COMMITTED) == 6
    assert query_end(broker, topic, UNCOMMITTED) == 9

    # read_committed reaches the end of the partition at the LSO: only the committed
    # records, and kcat -e exits there rather than waiting for the open transaction.
    committed = kcat_consume(broker, topic, "-X", COMMITTED)
    assert values(committed) == [f"c{i}" for i in range(5)]
    assert offsets(committed) == [0, 1, 2, 3, 4]
    uncommitted = kcat_consume(broker, topic, "-X", UNCOMMITTED)
    assert values(uncommitted) == [f"c{i}" for i in range(5)] + [f"o{i}" for i in range(3)]

    # A tail offset (-o -3: three before the end) counts back from the LSO (6) under
    # read_committed, to 3: records 3 and 4, then the commit marker at 5; and from the
    # high watermark (9) under read_uncommitted, to 6.
    tail = kcat_consume(broker, topic, "-o", "-3", "-X", COMMITTED)
    assert offsets(tail) == [3, 4]
    tail = kcat_consume(broker, topic, "-o", "-3", "-X", UNCOMMITTED)
    assert offsets(tail) == [6, 7, 8]

    p.commit_transaction(30)  # marker 9
    wait_until(lambda: query_end(broker, topic, COMMITTED) == 10, 10, what="the commit marker")
    assert query_end(broker, topic, UNCOMMITTED) == 10
    committed = kcat_consume(broker, topic, "-X", COMMITTED)
    assert values(committed) == [f"c{i}" for i in range(5)] + [f"o{i}" for i in range(3)]
    assert offsets(committed) == [*range(0, 5), *range(6, 9)]
