"""Three-node Strom clusters under faults: leader crashes during idempotent acks=all
production, an isolated leader (peer traffic cut by proxies), whole-cluster crashes, a
follower's downtime, and how CreateTopics spreads leaders.

Each test starts its own cluster (cluster_util.Cluster) in its tmp dir; the fixture stops
it (SIGTERM, panics are errors) whatever happens, and a failing test's report carries the
tail of every node's log.
"""

from __future__ import annotations

import gc
import os
import re
import socket
import struct
import threading
import time

import pytest

import kafka_wire
from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from cluster_util import (
    Cluster,
    assert_all_acked,
    assert_exactly_once_in_order,
    consume_values,
    number_of,
    produce_numbered,
    value_of,
    wait_until,
)

MAX_ELECTION_S = 10.0


class _ClusterLogs:
    """Attaches every node's log tail to a failing test's report."""

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        clusters = getattr(item, "_strom_clusters", None)
        if clusters and report.failed:
            for c in clusters:
                for i, n in c.nodes.items():
                    report.sections.append((f"node {i} log ({n.log_path})", n.log_tail(150)))
                for i, p in c.proxies.items():
                    report.sections.append(
                        (f"proxy {i}", f"blocked {sorted(p.blocked)} swallowed connections {p.swallowed} forwarded {p.forwarded}")
                    )


@pytest.fixture
def make_cluster(request, tmp_path):
    pm = request.config.pluginmanager
    if not pm.has_plugin("strom-cluster-logs"):
        pm.register(_ClusterLogs(), "strom-cluster-logs")
    clusters: list[Cluster] = []
    request.node._strom_clusters = clusters

    def make(proxies: bool = False, args: list[str] | None = None) -> Cluster:
        c = Cluster(tmp_path / f"cluster{len(clusters)}", proxies=proxies, args=args)
        clusters.append(c)
        c.start_all()
        return c

    yield make
    gc.collect()  # destroy the test's clients while the brokers still run
    problems = []
    for c in clusters:
        problems += c.shutdown()
    assert not problems, "; ".join(problems)


@pytest.fixture
def topic(request) -> str:
    name = re.sub(r"[^a-zA-Z0-9._-]", "_", request.node.name)[:100]
    return f"c.{name}.{os.urandom(3).hex()}"


def say(capsys, line: str):
    """Prints a measurement into the run's output even when the test passes."""
    with capsys.disabled():
        print(f"\n[cluster] {line}", flush=True)


NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7


def produce_direct(node, topic: str, partition: int, value: bytes, timeout_ms: int = 5000) -> int | None:
    """One acks=all Produce (v3) of one record sent to `node` itself; its error code, or None
    if no answer came within the request's timeout plus 5 s."""
    body = kafka_wire.produce_v3_body(
        topic, partition, kafka_wire.record_batch([(None, value)]), acks=-1, timeout_ms=timeout_ms
    )
    try:
        with kafka_wire.Conn(node.bootstrap, timeout=timeout_ms / 1000 + 5) as conn:
            (res,) = kafka_wire.parse_produce_v3(conn.call(0, 3, body))
            return res.error_code
    except (socket.timeout, TimeoutError):
        return None


def wait_new_leader(c: Cluster, topic: str, partition: int, old: int, via: list[int],
                    timeout: float = 30.0) -> int:
    """Polls Metadata from the nodes `via` until one names a leader other than `old`."""

    def new_leader():
        for i in via:
            l = c.leader_of(topic, partition, via=i)
            if l >= 0 and l != old:
                return l
        return None

    return wait_until(new_leader, timeout, f"a leader of {topic}-{partition} other than {old}", interval=0.05)


@pytest.mark.parametrize("partitions", [1, 3])
def test_sigkill_leader_during_idempotent_acks_all_production(make_cluster, topic, partitions, capsys):
    c = make_cluster()
    c.create_topic(topic, partitions)
    leader = c.wait_leaders(topic, partitions)[0]
    survivors = [i for i in c.ids if i != leader]

    n = 30000
    rate = 5000.0  # messages per second: production spans the kill and the election
    reports: dict[int, tuple] = {}
    client_errors: list[KafkaError] = []
    producer = Producer({
        "bootstrap.servers": c.bootstrap(),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 90000,
        "socket.timeout.ms": 10000,
        "error_cb": lambda e: client_errors.append(e),
    })

    def cb(err, msg):
        reports[number_of(msg.value())] = (err, msg.partition(), msg.offset())

    left = []

    def produce():
        start = time.monotonic()
        for i in range(n):
            while True:
                try:
                    producer.produce(topic, value=value_of(i), partition=i % partitions, on_delivery=cb)
                    break
                except BufferError:
                    producer.poll(0.05)
            if i % 100 == 0:
                producer.poll(0)
                ahead = start + i / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        left.append(producer.flush(75))

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    wait_until(lambda: len(reports) >= n // 3, 30, f"{n // 3} acknowledgements before the kill")
    acked_before_kill = len(reports)
    c.kill(leader)
    killed_at = time.monotonic()
    new = wait_new_leader(c, topic, 0, leader, survivors, timeout=30)
    election = time.monotonic() - killed_at
    say(capsys, f"{partitions} partition(s): SIGKILL of leader {leader} after {acked_before_kill} acks; "
                f"node {new} leads after {election:.2f}s")
    assert election < MAX_ELECTION_S, f"election took {election:.2f}s"

    t.join(80)
    assert not t.is_alive(), "production did not finish"
    assert left == [0], f"{left} messages still undelivered"
    fatal = [e for e in client_errors if e.fatal()]
    assert not fatal, f"fatal producer errors: {fatal}"
    assert len(reports) == n
    assert_all_acked(reports)
    assert len(reports) > acked_before_kill
    # Each partition's messages, in production order, got offsets 0, 1, 2, ...: the
    # leader change took none.
    for p in range(partitions):
        offs = [reports[i][2] for i in range(p, n, partitions)]
        assert offs == list(range(len(offs))), \
            f"partition {p}: acknowledged offsets are not 0..{len(offs) - 1}: " \
            f"{[(a, b) for a, b in zip([-1] + offs, offs) if b != a + 1][:3]}"

    c.start(leader)
    consumed = consume_values(c.bootstrap(), topic, list(range(partitions)), timeout=60, expect=n)
    assert_exactly_once_in_order(consumed, reports)
    c.wait_logs_identical(topic, range(partitions), timeout=60)


def test_isolated_leader_stops_acknowledging_and_majority_elects(make_cluster, topic, capsys):
    c = make_cluster(proxies=True)
    c.create_topic(topic, 1)
    old = c.wait_leaders(topic, 1)[0]
    majority = [i for i in c.ids if i != old]

    reports = produce_numbered(c.bootstrap(), topic, range(0, 2000))
    assert_all_acked(reports)

    c.isolate(old)
    isolated_at = time.monotonic()
    # Straight at the isolated leader (raw Produce, so no client can follow Metadata to the
    # new leader), first while it may still believe it leads, again after the election:
    # acks=all must not be answered with success, as it cannot reach a majority.
    early: list = []

    def produce_early():
        t0 = time.monotonic()
        early.append(produce_direct(c[old], topic, 0, b"isolated-early"))
        early.append(time.monotonic() - t0)

    t = threading.Thread(target=produce_early, daemon=True)
    t.start()

    new = wait_new_leader(c, topic, 0, old, majority, timeout=30)
    election = time.monotonic() - isolated_at
    say(capsys, f"isolated leader {old}: node {new} leads after {election:.2f}s")
    assert new in majority
    assert election < MAX_ELECTION_S, f"election took {election:.2f}s"
    wait_until(lambda: c.agreed_leader(topic, 0, majority) == new, 15,
               f"nodes {majority} to agree on leader {new}")

    try:
        during = produce_numbered(c.bootstrap(majority), topic, range(2000, 4000))
        assert_all_acked(during)
    except AssertionError as e:
        raise AssertionError(
            f"acks=all production through nodes {majority} failed: {e}; "
            f"the leader as each node reports it: {c.views(topic)}"
        ) from None
    reports.update(during)

    late = produce_direct(c[old], topic, 0, b"isolated-late")
    t.join(30)
    assert early, "the first produce to the isolated leader did not finish"
    say(capsys, f"acks=all Produce to isolated leader {old}: at once {early[0]} "
                f"(answered after {early[1]:.2f}s), after the election {late}")
    for when, res in (("right after isolating it", early[0]), ("after the election", late)):
        assert res != 0, f"acks=all produce to the isolated leader {old} {when} was acknowledged"
        assert res in (None, NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT), (
            f"acks=all produce to the isolated leader {old} {when}: unexpected error code {res}"
        )

    c.heal()
    # The old leader rejoins as a follower of the leader the majority elected.
    leader_after = wait_until(lambda: c.agreed_leader(topic, 0), 30,
                              "all three nodes to agree on a leader after healing")
    assert leader_after != old, f"old leader {old} leads again after healing"
    c.wait_logs_identical(topic, 0, timeout=60)

    consumed = consume_values(c.bootstrap(), topic, [0], timeout=60, expect=len(reports))
    values = [v for _, v in consumed[0]]
    assert b"isolated-early" not in values and b"isolated-late" not in values, \
        "a message only the isolated leader had (never acknowledged) was committed"
    assert_exactly_once_in_order(consumed, reports)


def test_whole_cluster_restart(make_cluster, topic):
    c = make_cluster(args=["--group-initial-rebalance-delay-ms", "0"])
    partitions = 3
    c.create_topic(topic, partitions)
    reports = produce_numbered(c.bootstrap(), topic, range(6000), partitions=partitions)
    assert_all_acked(reports)

    group = f"g-{os.urandom(4).hex()}"
    gc_conf = {
        "bootstrap.servers": c.bootstrap(),
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "socket.timeout.ms": 10000,
    }
    consumer = Consumer(gc_conf)
    try:
        consumer.subscribe([topic])
        got = 0
        deadline = time.monotonic() + 45
        while got < 3000:
            assert time.monotonic() < deadline, f"group consumer got {got} messages in 45s"
            for m in consumer.consume(500, 0.5):
                if m.error():
                    raise KafkaException(m.error())
                got += 1
        committed = consumer.commit(asynchronous=False)
        expected = {tp.partition: tp.offset for tp in committed}
        assert all(tp.error is None for tp in committed), committed
        assert any(o > 0 for o in expected.values()), f"nothing committed: {committed}"
        expected = {p: expected.get(p, OFFSET_INVALID) for p in range(partitions)}
        before = {tp.partition: tp.offset for tp in
                  consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)}
        assert before == expected, f"committed {expected}, but the group reads back {before}"
    finally:
        consumer.close()

    c.kill_all()
    c.restart_all()
    c.wait_leaders(topic, partitions, timeout=30)

    consumed = consume_values(c.bootstrap(), topic, list(range(partitions)), timeout=60, expect=len(reports))
    assert_exactly_once_in_order(consumed, reports)

    check = Consumer(gc_conf)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]

        def committed_now():
            try:
                res = check.committed(tps, timeout=5)
            except KafkaException:
                return None
            return {tp.partition: tp.offset for tp in res if tp.error is None}

        last = wait_until(lambda: (lambda r: r if r and len(r) == partitions else None)(committed_now()),
                          30, "committed offsets after the restart")
        assert last == expected, f"committed offsets before the crash {expected}, after {last}"
    finally:
        check.close()
    for p in range(partitions):
        c.wait_logs_identical(topic, p, timeout=60)


def test_follower_catches_up_after_downtime(make_cluster, topic, capsys):
    # Small segments: the follower's catch-up rolls segments too.
    c = make_cluster(args=["--segment-bytes", "1048576"])
    c.create_topic(topic, 1)
    leader = c.wait_leaders(topic, 1)[0]
    follower = next(i for i in c.ids if i != leader)
    first = produce_numbered(c.bootstrap(), topic, range(1000))
    assert_all_acked(first)
    c.wait_logs_identical(topic, 0, timeout=30)

    rc = c.stop(follower)
    assert rc == 0, f"node {follower} exited with {rc} after SIGTERM"
    up = [i for i in c.ids if i != follower]
    more = produce_numbered(c.bootstrap(up), topic, range(1000, 41000), pad=200)
    assert_all_acked(more)
    sizes = c.log_sizes(topic, 0)
    assert sizes[follower] < sizes[leader], f"the stopped follower's log grew: {sizes}"

    c.start(follower)
    started = time.monotonic()
    c.wait_logs_identical(topic, 0, timeout=60)
    say(capsys, f"node {follower} caught up {sizes[leader] - sizes[follower]} bytes in "
                f"{time.monotonic() - started:.2f}s")
    first.update(more)
    consumed = consume_values(c.bootstrap(), topic, [0], timeout=60, expect=len(first))
    assert_exactly_once_in_order(consumed, first)


def test_create_topic_spreads_leaders(make_cluster, topic, capsys):
    c = make_cluster()
    partitions = 6
    c.create_topic(topic, partitions)

    for via in c.ids:
        md = c.metadata(via, topic)
        t = md.topics[topic]
        assert t.error is None, f"node {via}: {t.error}"
        assert sorted(t.partitions) == list(range(partitions)), f"node {via}: partitions {sorted(t.partitions)}"
        for p, pm in t.partitions.items():
            assert sorted(pm.replicas) == c.ids, f"node {via}: partition {p} replicas {pm.replicas}"

    def spread():
        leaders = {}
        for p in range(partitions):
            l = c.agreed_leader(topic, p)
            if l is None:
                return None
            leaders[p] = l
        return leaders if set(leaders.values()) == set(c.ids) else None

    try:
        leaders = wait_until(spread, 15, "every node to lead at least one partition", interval=0.3)
    except AssertionError:
        now = {p: c.leader_of(topic, p) for p in range(partitions)}
        raise AssertionError(f"leaders of {partitions} partitions are not spread over {c.ids}: {now}")
    say(capsys, f"leaders of the 6 partitions: {leaders}")

    reports: dict[int, tuple] = {}
    for k, via in enumerate(c.ids):
        # One node's address only: the client must follow Metadata to each leader.
        r = produce_numbered(c[via].bootstrap, topic, range(k * 600, (k + 1) * 600), partitions=partitions)
        assert_all_acked(r)
        reports.update(r)
    for via in c.ids:
        consumed = consume_values(c[via].bootstrap, topic, list(range(partitions)), timeout=60,
                                  expect=len(reports))
        assert_exactly_once_in_order(consumed, reports, what=f"via node {via}: ")


def test_follower_behind_the_leaders_log_start_restarts_from_it(make_cluster, topic, capsys):
    """A follower that was down while retention deleted the entries it lacks cannot be sent
    them: it gets a (data-less) snapshot, throws its log away and continues from the
    leader's log start offset (docs/adr/0005-kafka-offsets.md), then follows normally and
    can lead."""
    c = make_cluster(args=["--retention-check-ms", "200"])
    c.create_topic(topic, 1, config={"segment.bytes": "100000", "retention.bytes": "300000"})
    leader = c.wait_leaders(topic, 1)[0]
    follower = next(i for i in c.ids if i != leader)
    assert_all_acked(produce_numbered(c.bootstrap(), topic, range(500), pad=200))
    c.wait_logs_identical(topic, 0, timeout=30)

    c.kill(follower)
    up = [i for i in c.ids if i != follower]
    acked = produce_numbered(c.bootstrap(up), topic, range(500, 20500), pad=200)
    assert_all_acked(acked)
    # Retention on the leader moves its log start past everything the follower has.
    old_follower_log = c[follower].partition_log(topic, 0)
    wait_until(lambda: len(c[leader].partition_log(topic, 0)) < 2_000_000, 30,
               "retention on the leader")

    c.start(follower)
    started = time.monotonic()

    def follower_caught_up():
        lead, foll = c[leader].partition_log(topic, 0), c[follower].partition_log(topic, 0)
        # Retention runs on each node by itself, so compare what both still hold.
        n = min(len(lead), len(foll))
        return n > 0 and lead[-n:] == foll[-n:] and len(foll) < len(old_follower_log) + len(lead)

    wait_until(follower_caught_up, 60, "the follower restarting from the leader's log start")
    say(capsys, f"node {follower} restarted from the leader's log start in "
                f"{time.monotonic() - started:.2f}s")
    assert not c[follower].partition_log(topic, 0).startswith(old_follower_log[:1000]), \
        "the follower kept its old head instead of restarting at the leader's log start"

    # The restarted follower is a full replica: with the leader gone it can lead, and the
    # newest records are all there.
    c.kill(leader)
    rest = [i for i in c.ids if i != leader]
    wait_new_leader(c, topic, 0, leader, rest)
    more = produce_numbered(c.bootstrap(rest), topic, range(20500, 21000), pad=200)
    assert_all_acked(more)
    consumed = consume_values(c.bootstrap(rest), topic, [0], timeout=60)
    values = [v for _, v in consumed[0]]
    assert values[-500:] == [value_of(i, 200) for i in range(20500, 21000)], values[-3:]


def test_every_node_names_the_leaders_of_partitions_it_holds_no_replica_of(make_cluster, topic):
    """Nodes report the groups they lead to each other (leaders.rs): a node without a
    replica of a partition still names its current leader and ISR in Metadata, and once
    the only replica is gone it says LEADER_NOT_AVAILABLE instead of a stale leader."""
    c = make_cluster()
    c.create_topic(topic, 3, rf=1)

    def every_node_agrees():
        views = [c.metadata(i, topic).topics[topic] for i in c.ids]
        wanted = {p: (pm.replicas, pm.replicas) for p, pm in views[0].partitions.items()}
        for v in views:
            for p, pm in v.partitions.items():
                if pm.error is not None or [pm.leader] != pm.replicas or \
                        (pm.replicas, pm.isrs) != wanted[p]:
                    return False
        return True

    wait_until(every_node_agrees, 15, "every node naming each single replica as leader and ISR")
    md = c.metadata(c.ids[0], topic).topics[topic]
    victim_partition, victim = next((p, pm.leader) for p, pm in md.partitions.items())
    c.kill(victim)
    others = [i for i in c.ids if i != victim]

    def offline_everywhere():
        for i in others:
            pm = c.metadata(i, topic).topics[topic].partitions[victim_partition]
            if pm.leader != -1 or pm.error is None or pm.error.code() != KafkaError.LEADER_NOT_AVAILABLE:
                return False
        return True

    wait_until(offline_everywhere, 10, f"partition {victim_partition} reported leaderless once node {victim} died")


def test_a_leader_whose_disk_fails_hands_over_and_nothing_acknowledged_is_lost(request, make_cluster, tmp_path, capsys):
    """Node i's fsyncs of partitions of topics named faulty{i}* fail for good after a
    while (STROM_FAULTS). When such a node leads, its replica must go offline at the first
    failed fsync and acknowledge nothing more, the other two must elect a leader, and an
    idempotent acks=all producer must lose nothing and write nothing twice. Restarted
    without the fault, the node catches up."""
    c = Cluster(tmp_path / "faulty", args=None)
    for i, n in c.nodes.items():
        n.env["STROM_FAULTS"] = f"sync:EIO:path=faulty{i}.:skip=10"
    request.node._strom_clusters.append(c)  # the fixture reports its logs and stops it
    c.start_all()
    chosen = None
    for k in range(8):
        for i in c.ids:
            t = f"faulty{i}.{k}"
            c.create_topic(t, 1)
            if c.wait_leaders(t, 1)[0] == i:
                chosen = (t, i)
                break
        if chosen:
            break
    assert chosen, "no faulty topic was led by the node whose disk fails it"
    topic, bad = chosen
    # In chunks, so the leader runs many fsync rounds and meets the failing ones.
    n, chunk = 3000, 100
    reports = {}
    for start in range(0, n, chunk):
        reports.update(produce_numbered(
            c.bootstrap(), topic, range(start, start + chunk), timeout=120,
            **{"enable.idempotence": True, "linger.ms": 2, "message.timeout.ms": 110000},
        ))
    assert_all_acked(reports)
    new = c.leader_of(topic, 0, via=[i for i in c.ids if i != bad][0])
    say(capsys, f"{topic}: node {bad} lost its disk; node {new} leads")
    assert new != bad and new > 0
    assert "storage error" in c[bad].log_text()
    consumed = consume_values(c.bootstrap(), topic, [0], timeout=60, expect=n)
    assert_exactly_once_in_order(consumed, reports)
    # Back without the fault: it recovers its log and catches up.
    c.kill(bad)
    c[bad].env.pop("STROM_FAULTS")
    c.start(bad)
    c.wait_logs_identical(topic, [0], timeout=60)


def test_recreated_topic_survives_restarts_of_every_node(make_cluster, topic):
    """A topic deleted and created again under its name is a new topic: restarting a node
    afterwards replayed the old topic's creation and deletion over the new topic's log
    (the node panicked in a loop, "to_commit ... is out of range"). SIGTERM of each node in
    turn, then SIGKILL of the whole cluster, must lose nothing acknowledged."""
    c = make_cluster()
    partitions = 2
    c.create_topic(topic, partitions)
    old = produce_numbered(c.bootstrap(), topic, range(300), partitions=partitions)
    assert_all_acked(old)
    a = c.admin()  # alive until the answer came
    fs = a.delete_topics([topic], operation_timeout=20, request_timeout=30)
    fs[topic].result(timeout=30)
    wait_until(lambda: all(topic not in c.metadata(i).topics for i in c.ids), 20, "the delete on every node")
    c.create_topic(topic, partitions)
    reports = produce_numbered(c.bootstrap(), topic, range(1000, 1600), partitions=partitions)
    assert_all_acked(reports)
    for p in range(partitions):
        c.wait_logs_identical(topic, p, timeout=60)

    for i in c.ids:
        assert c.stop(i) == 0, f"node {i} did not stop cleanly"
        c.start(i)
        c.wait_formed()
        c.wait_leaders(topic, partitions, timeout=30)
        consumed = consume_values(c.bootstrap(), topic, list(range(partitions)), timeout=60, expect=len(reports))
        assert_exactly_once_in_order(consumed, reports, what=f"after restarting node {i}: ")
    c.kill_all()
    c.restart_all()
    c.wait_leaders(topic, partitions, timeout=30)
    consumed = consume_values(c.bootstrap(), topic, list(range(partitions)), timeout=60, expect=len(reports))
    assert_exactly_once_in_order(consumed, reports, what="after SIGKILL of every node: ")
    for p in range(partitions):
        c.wait_logs_identical(topic, p, timeout=60)
    for i in c.ids:
        assert "out of range" not in c[i].log_text(), f"node {i}"


def test_offsets_stay_dense_across_ten_leader_changes(make_cluster, topic, capsys):
    """docs/adr/0005-kafka-offsets.md: leader changes take no offset. An idempotent acks=all
    producer writes numbered messages to a 3-replica partition while its leader is
    SIGKILLed (and restarted) ten times: message i gets offset i, the log ends at the count
    sent, a consumer reads exactly those, and every replica's segment files hold the
    same batches at the same offsets, byte for byte."""
    c = make_cluster()
    c.create_topic(topic, 1, rf=3)
    c.wait_leaders(topic, 1)

    rate = 2000.0  # messages per second, for as long as the leader changes take
    reports: dict[int, tuple] = {}
    client_errors: list[KafkaError] = []
    producer = Producer({
        "bootstrap.servers": c.bootstrap(),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 60000,
        "socket.timeout.ms": 10000,
        "reconnect.backoff.max.ms": 500,
        "error_cb": lambda e: client_errors.append(e),
    })

    def cb(err, msg):
        reports[number_of(msg.value())] = (err, msg.partition(), msg.offset())

    stop = threading.Event()
    sent = [0]

    def produce():
        start = time.monotonic()
        i = 0
        while not stop.is_set():
            while True:
                try:
                    producer.produce(topic, value=value_of(i), partition=0, on_delivery=cb)
                    break
                except BufferError:
                    producer.poll(0.05)
            i += 1
            sent[0] = i
            if i % 50 == 0:
                producer.poll(0)
                ahead = start + i / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)

    def acked() -> int:
        return sum(1 for r in list(reports.values()) if r[0] is None)

    def in_sync_everywhere(leader: int) -> bool:
        try:
            pm = c.metadata(leader, topic).topics[topic].partitions[0]
        except (KafkaException, KeyError):
            return False
        return pm.error is None and pm.leader == leader and sorted(pm.isrs) == c.ids

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    started = time.monotonic()
    changes = []
    try:
        for change in range(10):
            leader = c.wait_leaders(topic, 1, timeout=30)[0]
            # Every replica in sync, and the current leader has acknowledged messages of
            # its own term, before it goes.
            wait_until(lambda: in_sync_everywhere(leader), 30,
                       f"all three replicas in sync under leader {leader} (change {change})", interval=0.1)
            target = acked() + 1000
            wait_until(lambda: acked() >= target, 30, f"1000 more acknowledgements (change {change})",
                       interval=0.05)
            c.kill(leader)
            killed_at = time.monotonic()
            new = wait_new_leader(c, topic, 0, leader, [i for i in c.ids if i != leader], timeout=30)
            changes.append((leader, new, round(time.monotonic() - killed_at, 2)))
            c.start(leader)
        c.wait_leaders(topic, 1, timeout=30)
        target = acked() + 1000
        wait_until(lambda: acked() >= target, 30, "acknowledgements after the last change", interval=0.05)
    finally:
        stop.set()
        t.join(30)
    left = producer.flush(70)
    say(capsys, f"10 leader changes (old, new, seconds) {changes} in {time.monotonic() - started:.1f}s; "
                f"{sent[0]} messages")
    assert not t.is_alive(), "the producer thread did not stop"
    assert left == 0, f"{left} messages still undelivered"
    fatal = [e for e in client_errors if e.fatal()]
    assert not fatal, f"fatal producer errors: {fatal}"
    n = sent[0]
    assert len(reports) == n
    assert_all_acked(reports)

    # Dense from 0 across every leader change: message i is at offset i.
    wrong = [(i, reports[i][2]) for i in range(n) if reports[i][2] != i]
    assert not wrong, f"{len(wrong)} of {n} messages not at offset = number, first (number, offset): {wrong[:5]}"
    check = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": "watermarks", "socket.timeout.ms": 10000})
    try:
        marks = check.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    finally:
        check.close()
    assert marks == (0, n), f"watermarks {marks} after {n} messages"
    consumed = consume_values(c.bootstrap(), topic, [0], timeout=60, expect=n)
    assert consumed[0] == [(i, value_of(i)) for i in range(n)], "the log is not messages 0..n-1 at offsets 0..n-1"

    # Every replica: the same segment bytes, which are the messages at their offsets, in
    # batches stamped with at least one leader epoch per leader that acknowledged some.
    c.wait_logs_identical(topic, 0, timeout=60)
    for i in c.ids:
        batches = kafka_wire.parse_batches(c[i].partition_log(topic, 0))
        assert not [b for b in batches if b.is_control], f"node {i}: control batches in the log"
        records = [(o, v) for b in batches for o, _, v in b.records()]
        assert records == [(k, value_of(k)) for k in range(n)], f"node {i}: records differ"
        epochs = sorted({b.leader_epoch for b in batches})
        assert len(epochs) >= 11, f"node {i}: batches of only {len(epochs)} leader epochs: {epochs}"


def test_acks_all_over_many_partitions_times_out_once(make_cluster, topic, capsys):
    """Kafka's Produce `timeout_ms` bounds the whole request: when commits stall (the
    leader's followers are cut off, and a long election timeout keeps it leader), a
    request over several partitions is answered with REQUEST_TIMED_OUT after about one
    timeout, not one timeout per partition as it was."""
    c = make_cluster(proxies=True, args=["--raft-election-ticks", "100"])
    c.create_topic(topic, 12)
    leaders = c.wait_leaders(topic, 12)
    node = max(c.ids, key=lambda i: sum(1 for l in leaders.values() if l == i))
    parts = sorted(p for p, l in leaders.items() if l == node)
    assert len(parts) >= 3, leaders
    for other in c.ids:
        if other != node:
            c.block(other, node)
    timeout_ms = 1500
    body = (
        kafka_wire.string(None)
        + struct.pack(">hi", -1, timeout_ms)
        + struct.pack(">i", 1)
        + kafka_wire.string(topic)
        + struct.pack(">i", len(parts))
        + b"".join(
            struct.pack(">i", p) + kafka_wire.nbytes(kafka_wire.record_batch([(None, b"stalled")]))
            for p in parts
        )
    )
    t0 = time.monotonic()
    with kafka_wire.Conn(c[node].bootstrap, timeout=30) as conn:
        results = kafka_wire.parse_produce_v3(conn.call(0, 3, body))
    elapsed = time.monotonic() - t0
    c.heal()
    say(capsys, f"acks=all over {len(parts)} stalled partitions answered after {elapsed:.2f}s")
    assert sorted(r.partition for r in results) == parts
    assert all(r.error_code == 7 for r in results), results  # REQUEST_TIMED_OUT
    assert elapsed < 2 * timeout_ms / 1000, (
        f"{elapsed:.2f}s for {len(parts)} partitions with timeout_ms={timeout_ms}"
    )


def test_pipelined_transactional_batches_stay_in_order_where_the_coordinator_is_remote(make_cluster, topic):
    """A transaction's first batch to a partition led away from its coordinator waits for
    the coordinator's KIP-890 check; the producer's next batches, pipelined right behind
    it on the same connection (one message per batch), must not be appended before it.
    They were, intermittently: OUT_OF_ORDER_SEQUENCE_NUMBER, fatal to the producer
    (librdkafka's 0103 found it)."""
    c = make_cluster()
    partitions = 6
    c.create_topic(topic, partitions)
    c.wait_leaders(topic, partitions)
    p = Producer({
        "bootstrap.servers": c.bootstrap(),
        "transactional.id": f"{topic}-tx",
        "batch.num.messages": 1,
        "linger.ms": 0,
    })
    p.init_transactions(30)
    errors = []
    sent = {i: [] for i in range(partitions)}
    for txn in range(40):
        p.begin_transaction()
        for i in range(4 * partitions):
            part = i % partitions
            value = f"{txn}-{i}".encode()
            p.produce(topic, value, partition=part,
                      on_delivery=lambda err, msg: err and errors.append(err))
            sent[part].append(value)
        p.commit_transaction(30)
    assert not errors, errors
    consumer = Consumer({
        "bootstrap.servers": c.bootstrap(),
        "group.id": f"{topic}-check",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
    })
    consumer.assign([TopicPartition(topic, i, 0) for i in range(partitions)])
    got = {i: [] for i in range(partitions)}
    deadline = time.monotonic() + 30
    while sum(map(len, got.values())) < sum(map(len, sent.values())) and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and m.error() is None:
            got[m.partition()].append(m.value())
    consumer.close()
    assert got == sent
