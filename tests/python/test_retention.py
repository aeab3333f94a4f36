"""retention.ms as a TTL: with small retention.ms and segment.ms on a topic and a broker
checking retention every 500 ms, old records disappear (the earliest offset advances,
not before they expire) while recent ones stay readable."""

from __future__ import annotations

import time

import pytest

from kafka_util import (
    assert_contiguous,
    assert_delivered,
    consume,
    create_topic,
    make_producer,
    produce_all,
    watermarks,
)

RETENTION_MS = 3000
SEGMENT_MS = 200


@pytest.mark.strom_args("--retention-check-ms", "500")
def test_retention_ms_expires_old_records_and_keeps_new_ones(broker, topic):
    create_topic(
        broker.bootstrap,
        topic,
        config={"retention.ms": str(RETENTION_MS), "segment.ms": str(SEGMENT_MS)},
    )
    p = make_producer(broker.bootstrap, linger_ms=0)
    old = [{"value": f"old-{i}".encode()} for i in range(20)]
    t_old = time.time()
    reports = produce_all(p, topic, old)
    assert_delivered(reports)
    old_offsets = [r.offset for r in reports]
    assert_contiguous(old_offsets, 0)
    first_new = 20  # the fresh records follow on directly

    # Keep writing fresh records (each append may roll a segment, since segment.ms is
    # short) until the old ones are gone.
    produced_at: list[float] = []  # wall time of each fresh record, by offset - first_new
    deadline = time.monotonic() + RETENTION_MS / 1000 + 20
    low = 0
    while time.monotonic() < deadline:
        reports = produce_all(p, topic, [{"value": f"new-{len(produced_at)}".encode()}])
        assert_delivered(reports)
        assert reports[0].offset == first_new + len(produced_at)
        produced_at.append(time.time())
        low, high = watermarks(broker.bootstrap, topic)
        assert high == first_new + len(produced_at)
        if low > old_offsets[0]:
            # No old record went before it expired (a little slack for clock reads).
            assert time.time() - t_old >= RETENTION_MS / 1000 - 0.2, "old records deleted too early"
        if low >= first_new:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"old records still there after {RETENTION_MS / 1000 + 20}s (earliest offset {low})")

    # Records younger than the retention time (with a second of slack for the checker's
    # interval and segment granularity) are still there. (Retention keeps running, so
    # the earliest offset may move on while we read.)
    now = time.time()
    young = [first_new + i for i, t in enumerate(produced_at) if now - t < RETENTION_MS / 1000 - 1.0]
    assert young, "no fresh records to check"
    got = consume(broker.bootstrap, topic, 0)
    low, high = watermarks(broker.bootstrap, topic)
    assert got, "everything expired"
    first = got[0].offset
    assert first <= young[0], f"earliest consumed offset {first} is past young record {young[0]}"
    assert [g.offset for g in got] == list(range(first, high))
    assert [g.value for g in got] == [f"new-{o - first_new}".encode() for o in range(first, high)]
    assert low <= young[0]
