"""Transactions (issue 16) with confluent-kafka and kcat, against Apache Kafka 4.4 first and
then Strom: every expectation is Kafka's, shown on the reference broker in the same run
(kafka_ref.py), and Strom is held to it unweakened (docs/transactions.md).

The last test runs the history checker of tests/txn (docs/transactions-testing.md) at a
small size on each broker, and shows on Kafka's real history that the checker finds every
kind of anomaly when one is planted in it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import (
    IsolationLevel,
    KafkaError,
    KafkaException,
    OFFSET_BEGINNING,
    TopicPartition,
)
from confluent_kafka.admin import OffsetSpec

from conftest import REPO
from kafka_ref import bootstrap, kafka_broker, strom_broker  # noqa: F401 (fixtures)
from kafka_util import (
    admin,
    client_conf,
    consume,
    create_topic,
    make_consumer,
    make_producer,
    produce_all,
    assert_delivered,
    wait_until,
    watermarks,
)

# init_transactions: both brokers answer within a second or two (the first one creates
# __transaction_state).
INIT_S = 10.0
TXN = REPO / "tests" / "txn"
KCAT = shutil.which("kcat")


def unique(name: str) -> str:
    return f"txn.{name}.{uuid.uuid4().hex[:8]}"


def txn_producer(bootstrap: str, txn_id: str | None = None, **conf):
    p = make_producer(bootstrap, transactional_id=txn_id or unique("tid"), **conf)
    p.init_transactions(INIT_S)
    return p


def values(records) -> list[bytes]:
    return [r.value for r in records]


def read(bootstrap: str, topic: str, partitions=0, level: str = "read_committed"):
    return consume(bootstrap, topic, partitions, isolation_level=level)


def latest(bootstrap: str, topic: str, partition: int, level) -> int:
    a = admin(bootstrap)  # held until the result is in: a dropped AdminClient never answers
    fs = a.list_offsets(
        {TopicPartition(topic, partition): OffsetSpec.latest()}, isolation_level=level, request_timeout=15
    )
    (f,) = fs.values()
    return f.result(timeout=30).offset


def fatal_error(e: KafkaException) -> KafkaError:
    return e.args[0]


def test_a_committed_transaction_is_visible_to_read_committed(bootstrap):
    topic = unique("commit")
    create_topic(bootstrap, topic, partitions=2)
    p = txn_producer(bootstrap)
    p.begin_transaction()
    reports = produce_all(p, topic, [{"value": f"v{i}".encode(), "partition": i % 2} for i in range(6)])
    assert_delivered(reports)
    p.commit_transaction(30)
    got = read(bootstrap, topic, [0, 1])
    assert sorted(values(got)) == [f"v{i}".encode() for i in range(6)]
    for part in (0, 1):
        assert [r.offset for r in got if r.partition == part] == [0, 1, 2]
        # The COMMIT marker takes the next offset: no record there, but the end moves.
        assert watermarks(bootstrap, topic, part) == (0, 4)


def test_an_aborted_transaction_is_invisible_to_read_committed_and_visible_to_read_uncommitted(bootstrap):
    topic = unique("abort")
    create_topic(bootstrap, topic)
    p = txn_producer(bootstrap)
    p.begin_transaction()
    assert_delivered(produce_all(p, topic, [{"value": b"a%d" % i} for i in range(3)]))
    p.abort_transaction(30)
    p.begin_transaction()
    assert_delivered(produce_all(p, topic, [{"value": b"c%d" % i} for i in range(2)]))
    p.commit_transaction(30)
    # a0..a2 at 0..2, the ABORT marker at 3, c0 c1 at 4 5, the COMMIT marker at 6.
    committed = read(bootstrap, topic)
    assert [(r.offset, r.value) for r in committed] == [(4, b"c0"), (5, b"c1")]
    uncommitted = read(bootstrap, topic, level="read_uncommitted")
    assert [(r.offset, r.value) for r in uncommitted] == [
        (0, b"a0"), (1, b"a1"), (2, b"a2"), (4, b"c0"), (5, b"c1")
    ]
    assert watermarks(bootstrap, topic) == (0, 7)


def test_send_offsets_to_transaction_commits_the_groups_offsets_only_on_commit(bootstrap):
    src, dst, group = unique("src"), unique("dst"), unique("group")
    create_topic(bootstrap, src)
    create_topic(bootstrap, dst)
    assert_delivered(produce_all(make_producer(bootstrap), src, [{"value": b"in%d" % i} for i in range(5)]))
    c = make_consumer(bootstrap, group_id=group, isolation_level="read_committed", auto_offset_reset="earliest",
                      enable_partition_eof=False)
    try:
        c.subscribe([src])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 5 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m)
        assert [m.offset() for m in got] == [0, 1, 2, 3, 4]
        p = txn_producer(bootstrap)

        def committed() -> int:
            return c.committed([TopicPartition(src, 0)], timeout=15)[0].offset

        p.begin_transaction()
        produce_all(p, dst, [{"value": b"out"}])
        p.send_offsets_to_transaction([TopicPartition(src, 0, 3)], c.consumer_group_metadata(), 30)
        p.abort_transaction(30)
        assert committed() < 0, "an aborted transaction's offsets were committed"

        p.begin_transaction()
        produce_all(p, dst, [{"value": b"out"}])
        p.send_offsets_to_transaction([TopicPartition(src, 0, 5)], c.consumer_group_metadata(), 30)
        p.commit_transaction(30)
        assert committed() == 5
    finally:
        c.close()
    # The group's offsets as another client of the group sees them.
    other = make_consumer(bootstrap, group_id=group)
    try:
        assert other.committed([TopicPartition(src, 0)], timeout=15)[0].offset == 5
    finally:
        other.close()
    assert values(read(bootstrap, dst)) == [b"out"]


def test_a_second_producer_with_the_same_transactional_id_fences_the_first(bootstrap):
    topic = unique("fence")
    create_topic(bootstrap, topic)
    tid = unique("tid")
    zombie = txn_producer(bootstrap, tid)
    zombie.begin_transaction()
    assert_delivered(produce_all(zombie, topic, [{"value": b"zombie"}]))
    # The new instance's InitProducerId bumps the epoch and aborts the open transaction.
    successor = txn_producer(bootstrap, tid)
    with pytest.raises(KafkaException) as e:
        zombie.commit_transaction(30)
    err = fatal_error(e.value)
    assert err.code() == KafkaError._FENCED and err.fatal(), err
    successor.begin_transaction()
    assert_delivered(produce_all(successor, topic, [{"value": b"successor"}]))
    successor.commit_transaction(30)
    assert values(read(bootstrap, topic)) == [b"successor"]
    assert values(read(bootstrap, topic, level="read_uncommitted")) == [b"zombie", b"successor"]


def test_an_open_transaction_blocks_read_committed_at_the_last_stable_offset_until_it_commits(bootstrap):
    topic = unique("lso")
    create_topic(bootstrap, topic)
    p = txn_producer(bootstrap)
    p.begin_transaction()
    assert_delivered(produce_all(p, topic, [{"value": b"txn"}]))
    # A plain record after the open transaction's: read_committed must not pass the LSO
    # (the open transaction's first offset) to reach it.
    assert_delivered(produce_all(make_producer(bootstrap), topic, [{"value": b"plain"}]))
    c = make_consumer(bootstrap, isolation_level="read_committed", enable_partition_eof=False)
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        seen = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                seen.append(m.value())
        assert seen == [], "read_committed read past an open transaction"
        assert values(read(bootstrap, topic, level="read_uncommitted")) == [b"txn", b"plain"]
        p.commit_transaction(30)
        deadline = time.monotonic() + 20
        while len(seen) < 2 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                seen.append(m.value())
        assert seen == [b"txn", b"plain"]
    finally:
        c.close()


def test_list_offsets_latest_is_the_last_stable_offset_for_read_committed(bootstrap):
    topic = unique("listoffsets")
    create_topic(bootstrap, topic)
    assert_delivered(produce_all(make_producer(bootstrap), topic, [{"value": b"plain%d" % i} for i in range(2)]))
    p = txn_producer(bootstrap)
    p.begin_transaction()
    assert_delivered(produce_all(p, topic, [{"value": b"t%d" % i} for i in range(3)]))
    assert latest(bootstrap, topic, 0, IsolationLevel.READ_UNCOMMITTED) == 5  # the high watermark
    assert latest(bootstrap, topic, 0, IsolationLevel.READ_COMMITTED) == 2  # the open transaction's start
    p.commit_transaction(30)
    # The COMMIT marker at 5; nothing open: both ends are the high watermark.
    assert latest(bootstrap, topic, 0, IsolationLevel.READ_UNCOMMITTED) == 6
    assert latest(bootstrap, topic, 0, IsolationLevel.READ_COMMITTED) == 6


def test_a_transaction_past_its_timeout_is_aborted_by_the_coordinator(bootstrap):
    topic = unique("timeout")
    create_topic(bootstrap, topic)
    p = txn_producer(bootstrap, transaction_timeout_ms=5000, message_timeout_ms=5000, socket_timeout_ms=5000)
    p.begin_transaction()
    assert_delivered(produce_all(p, topic, [{"value": b"late%d" % i} for i in range(2)]))
    # Kafka looks for timed-out transactions every 10 s
    # (transaction.abort.timed.out.transaction.cleanup.interval.ms): the ABORT marker at 2.
    wait_until(
        lambda: latest(bootstrap, topic, 0, IsolationLevel.READ_COMMITTED) == 3, 40, 0.5,
        "the coordinator to abort the timed-out transaction",
    )
    assert latest(bootstrap, topic, 0, IsolationLevel.READ_UNCOMMITTED) == 3
    assert read(bootstrap, topic) == []
    assert values(read(bootstrap, topic, level="read_uncommitted")) == [b"late0", b"late1"]
    # The abort bumped the producer's epoch: this instance is fenced.
    with pytest.raises(KafkaException) as e:
        p.commit_transaction(30)
    err = fatal_error(e.value)
    assert err.code() == KafkaError._FENCED and err.fatal(), err


def test_kcat_reads_only_committed_transactions_with_isolation_level_read_committed(bootstrap):
    if KCAT is None:
        pytest.fail("kcat is not installed: apt-get install -y kcat (scripts/test-clients.sh does)")
    topic = unique("kcat")
    create_topic(bootstrap, topic)
    p = txn_producer(bootstrap)
    for vals, commit in ((["c1", "c2"], True), (["a1"], False), (["c3"], True)):
        p.begin_transaction()
        assert_delivered(produce_all(p, topic, [{"value": v.encode()} for v in vals]))
        p.commit_transaction(30) if commit else p.abort_transaction(30)

    def kcat(level: str) -> list[str]:
        out = subprocess.run(
            [KCAT, "-b", bootstrap, "-C", "-t", topic, "-e", "-q", "-f", "%o:%s\n", "-X", f"isolation.level={level}"],
            capture_output=True, text=True, timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()

    # c1 c2 at 0 1, COMMIT at 2, a1 at 3, ABORT at 4, c3 at 5, COMMIT at 6.
    assert kcat("read_committed") == ["0:c1", "1:c2", "5:c3"]
    assert kcat("read_uncommitted") == ["0:c1", "1:c2", "3:a1", "5:c3"]


# ---------------------------------------------------------------------------------------
# The history checker at a small size


def plant_and_check(run: Path, tmp: Path, kinds: tuple[str, ...], plant) -> None:
    """Copies the run, plants one anomaly with `plant(copy)`, and asserts the checker
    reports each of `kinds` (and exits 1)."""
    copy = tmp / f"planted-{plant.__name__}"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("kafka-ref", "strom", "logs"))
    plant(copy)
    out = subprocess.run([sys.executable, str(TXN / "checker.py"), str(copy)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1, f"{plant.__name__}: checker exited {out.returncode}\n{out.stdout}{out.stderr}"
    for kind in kinds:
        assert f"ANOMALY {kind}:" in out.stdout, f"{plant.__name__}: {kind} not reported:\n{out.stdout}"


def edit_final(copy: Path, fn) -> None:
    f = copy / "final.json"
    d = json.loads(f.read_text())
    fn(d)
    f.write_text(json.dumps(d))


def history_lines(copy: Path):
    for f in sorted((copy / "history").glob("w*.jsonl")):
        yield f, [json.loads(l) for l in f.read_text().splitlines() if l.strip()]


def committed_tag(copy: Path) -> tuple[str, str]:
    for _f, lines in history_lines(copy):
        for l in lines:
            if l["op"] == "commit" and l.get("ok"):
                return l["tag"], l["txn_id"]
    raise AssertionError("no committed transaction in the history")


def plant_aborted_read(copy: Path):
    tag, _ = committed_tag(copy)
    for f, lines in history_lines(copy):
        out = []
        for l in lines:
            if l["op"] == "commit" and l.get("tag") == tag:
                l = {**l, "op": "abort", "ok": True, "deliberate": True}
            out.append(json.dumps(l))
        f.write_text("\n".join(out) + "\n")


def plant_lost_write(copy: Path):
    """Drops one record of a committed transaction that wrote to several partitions."""
    def fn(d):
        parts_of: dict[str, set] = {}
        for p, recs in d["rc"].items():
            for _off, v in recs:
                parts_of.setdefault(json.loads(v)["txn"], set()).add(p)
        for p, recs in d["rc"].items():
            for i, (_off, v) in enumerate(recs):
                if len(parts_of[json.loads(v)["txn"]]) > 1:
                    recs.pop(i)
                    return
        raise AssertionError("no transaction wrote to several partitions")

    edit_final(copy, fn)


def plant_duplicate(copy: Path):
    def fn(d):
        p = max(d["rc"], key=lambda k: len(d["rc"][k]))
        off, v = d["rc"][p][0]
        end = max(o for o, _ in d["ru"][p]) + 10
        d["rc"][p].append([end, v])
        d["ru"][p].append([end, v])

    edit_final(copy, fn)


def plant_offsets(copy: Path):
    def fn(d):
        p = next(k for k, v in d["committed"].items() if v and v > 0)
        d["committed"][p] -= 1

    edit_final(copy, fn)


def plant_zombie_commit(copy: Path):
    """A newer incarnation of a committed transaction's id (started after that one's init
    returned) that initialised half a second before the commit started."""
    lines = [l for _f, ls in history_lines(copy) for l in ls]
    init = {(l["txn_id"], l["inc"]): l["t"] for l in lines if l["op"] == "init" and l.get("ok")}
    for l in lines:
        if l["op"] != "commit-start":
            continue
        start = l["t"]
        if start - init[(l["txn_id"], l["inc"])] > 1.0:
            with open(copy / "history" / "w9.99.jsonl", "w") as f:
                for op, t in (("start", start - 0.6), ("init", start - 0.5)):
                    f.write(json.dumps({"t": t, "op": op, "w": 9, "inc": 99, "txn_id": l["txn_id"], "ok": True}) + "\n")
            return
    raise AssertionError("no commit a second after its init")


@pytest.mark.timeout(300)
def test_the_history_checker_finds_no_anomaly_under_worker_kills_and_zombies(bootstrap, tmp_path):
    run = tmp_path / "run"
    argv = [
        sys.executable, str(TXN / "run.py"), "--bootstrap", bootstrap, "--dir", str(run),
        "--duration", "20", "--records", "300", "--workers", "2", "--worker-interval", "3,6",
        "--init-deadline", "25", "--drain", "60",
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, f"run.py exited {out.returncode}:\n{out.stdout[-6000:]}\n{out.stderr[-3000:]}"
    report = json.loads((run / "report.json").read_text())
    s = report["stats"]
    assert s["committed"] > 0 and s["input_offsets_committed"] == s["input_records"] == 300, s
    assert s["output_read_committed"] == 300, s
    assert s["nemesis"].get("kill-worker", 0) + s["nemesis"].get("pause-worker", 0) >= 2, s

    # The checker is not vacuous: each anomaly planted in this real history is found.
    for kinds, plant in [
        (("aborted-read",), plant_aborted_read),
        (("lost-write", "torn", "offsets"), plant_lost_write),
        (("duplicate", "offsets"), plant_duplicate),
        (("offsets",), plant_offsets),
        (("zombie-commit",), plant_zombie_commit),
    ]:
        plant_and_check(run, tmp_path, kinds, plant)
