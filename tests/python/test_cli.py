"""The `strom` command line (topic, produce, consume, group, cluster) against a real
`strom serve`, and its interoperability with kcat in both directions.

Each test runs the same binary as the broker (conftest's STROM_BIN) as a client process
and checks its exact output, its JSON output and its exit status."""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import time

import pytest

from conftest import STROM_BIN, free_port
from kafka_util import wait_for_first_leaders

KCAT = shutil.which("kcat")
# The first rebalance of a new group waits for more members by default (3 s); tests
# with groups skip that wait.
NO_REBALANCE_DELAY = pytest.mark.strom_args("--group-initial-rebalance-delay-ms", "0")


def strom(broker, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60):
    """Runs `strom ARGS --bootstrap <broker>`; with `check`, a non-zero exit fails the test."""
    cmd = [str(STROM_BIN), *args]
    if broker is not None:
        cmd += ["--bootstrap", broker.bootstrap]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr}"
    return proc


def strom_json(broker, *args: str):
    return json.loads(strom(broker, *args, "--output", "json").stdout)


def assert_one_line_error(proc, *, code: int = 1, contains: str = ""):
    assert proc.returncode == code, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {proc.stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    assert contains in lines[0], lines[0]
    assert "panicked" not in proc.stderr and "backtrace" not in proc.stderr.lower()


def kcat(broker, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        [KCAT, "-b", broker.bootstrap, *args], input=stdin, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, f"kcat {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return proc.stdout


def committed(broker, group: str) -> dict[int, int | None]:
    d = strom_json(broker, "group", "describe", group)
    return {o["partition"]: o["committed_offset"] for o in d["offsets"]}


def test_topic_create_list_describe_alter_delete(broker, topic):
    out = strom(broker, "topic", "create", topic, "--partitions", "3", "--config", "retention.ms=60000").stdout
    assert out == f"created topic {topic} with 3 partitions\n"

    assert topic in strom(broker, "topic", "list").stdout.split()
    listed = {t["topic"]: t for t in strom_json(broker, "topic", "list")}
    assert listed[topic]["partitions"] == 3
    assert listed[topic]["replication_factor"] == 1
    assert "__consumer_offsets" not in listed

    # Empty partitions: earliest and latest offset both 0.
    wait_for_first_leaders(broker.bootstrap, topic, 3)
    d = strom_json(broker, "topic", "describe", topic)
    assert [p["partition"] for p in d["partitions"]] == [0, 1, 2]
    for p in d["partitions"]:
        assert p["leader"] == 1 and p["replicas"] == [1] and p["isr"] == [1]
        assert (p["earliest_offset"], p["latest_offset"]) == (0, 0)
    assert d["configs"]["retention.ms"] == "60000"
    text = strom(broker, "topic", "describe", topic).stdout
    assert "PARTITION  LEADER" in text and "retention.ms" in text

    strom(broker, "topic", "alter-config", topic, "--config", "retention.ms=120000", "--config", "segment.ms=3600000")
    d = strom_json(broker, "topic", "describe", topic)
    assert d["configs"]["retention.ms"] == "120000"
    assert d["configs"]["segment.ms"] == "3600000"
    strom(broker, "topic", "alter-config", topic, "--delete", "segment.ms")
    d = strom_json(broker, "topic", "describe", topic)
    assert d["configs"]["retention.ms"] == "120000"
    assert d["configs"]["segment.ms"] != "3600000"

    # The broker's refusals come back as one line with Kafka's error name.
    assert_one_line_error(strom(broker, "topic", "create", topic, check=False), contains="TOPIC_ALREADY_EXISTS")
    assert_one_line_error(
        strom(broker, "topic", "alter-config", topic, "--config", "no.such=1", check=False), contains="INVALID_CONFIG"
    )

    assert strom(broker, "topic", "delete", topic).stdout == f"deleted topic {topic}\n"
    assert topic not in strom(broker, "topic", "list").stdout.split()
    assert_one_line_error(strom(broker, "topic", "describe", topic, check=False), contains=f"unknown topic {topic}")


def test_replication_factor_is_sent_and_the_refusal_printed(broker, topic):
    # A single node cannot hold 3 replicas; the CLI asks anyway and prints the answer.
    proc = strom(broker, "topic", "create", topic, "--replication-factor", "3", check=False)
    assert_one_line_error(proc, contains="INVALID_REPLICATION_FACTOR")


def test_produce_file_with_keys_and_headers_then_consume_with_format(broker, topic, tmp_path):
    strom(broker, "topic", "create", topic, "--partitions", "1")
    data = tmp_path / "in.txt"
    data.write_text("k1:v1\nk2:v:with:colons\nno key here\n")
    out = strom(
        broker, "produce", topic, "--file", str(data), "--key-separator", ":", "--header", "src=file", "--header", "n=1"
    ).stdout
    assert out == f"produced 3 messages to topic {topic}\n"

    out = strom(broker, "consume", topic, "--count", "3", "--format", "%k|%v|%p|%o|%h\\n").stdout
    assert out == "k1|v1|0|0|src=file,n=1\nk2|v:with:colons|0|1|src=file,n=1\n|no key here|0|2|src=file,n=1\n"

    # --offset (the second message's), a count smaller than what is there, and %t/%K/%S.
    out = strom(broker, "consume", topic, "--offset", "1", "--count", "1", "--format", "%t %K %S %%\\n").stdout
    assert out == f"{topic} 2 13 %\n"

    rows = [json.loads(line) for line in strom(broker, "consume", topic, "--count", "3", "--output", "json").stdout.splitlines()]
    assert [r["key"] for r in rows] == ["k1", "k2", None]
    assert rows[0]["headers"] == [{"key": "src", "value": "file"}, {"key": "n", "value": "1"}]
    assert [r["offset"] for r in rows] == [0, 1, 2]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_produce_round_trips(broker, topic, codec):
    lines = [f"key{i}:value {i} " + "x" * 50 for i in range(200)]
    strom(broker, "produce", topic, "-K", ":", "--compression", codec, "--acks", "1", stdin="\n".join(lines) + "\n")
    out = strom(broker, "consume", topic, "--count", "200", "--format", "%k:%v\\n").stdout
    assert out.splitlines() == lines


def test_produce_exits_non_zero_when_messages_fail(broker, topic):
    strom(broker, "topic", "create", topic, "--config", "max.message.bytes=200")
    proc = strom(broker, "produce", topic, stdin="small\n" + "x" * 1000 + "\n", check=False)
    # Both lines are one batch (the CLI does not split what fits its batch size), so both fail.
    assert_one_line_error(proc, contains="2 of 2 messages were not produced")
    assert "MESSAGE_TOO_LARGE" in proc.stderr
    assert strom(broker, "consume", topic, "--timeout", "500ms").stdout == ""
    # Apart, the small one goes through and the large one fails.
    strom(broker, "produce", topic, stdin="small\n")
    proc = strom(broker, "produce", topic, "--output", "json", stdin="x" * 1000 + "\n", check=False)
    assert_one_line_error(proc, contains="MESSAGE_TOO_LARGE")
    assert json.loads(proc.stdout)["failed"] == 1
    assert strom(broker, "consume", topic, "--timeout", "500ms").stdout == "small\n"


def test_consume_from_a_timestamp_and_from_the_end(broker, topic):
    strom(broker, "produce", topic, stdin="old1\nold2\n")
    time.sleep(0.05)
    since = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(0.05)
    strom(broker, "produce", topic, stdin="new1\nnew2\n")
    stamp = since.strftime("%Y-%m-%dT%H:%M:%S.") + f"{since.microsecond // 1000:03d}Z"
    out = strom(broker, "consume", topic, "--from", stamp, "--timeout", "1s").stdout
    assert out == "new1\nnew2\n"
    assert strom(broker, "consume", topic, "--from", "end", "--timeout", "500ms").stdout == ""
    assert strom(broker, "consume", topic, "--from", "beginning", "--timeout", "500ms").stdout == "old1\nold2\nnew1\nnew2\n"


@NO_REBALANCE_DELAY
def test_group_consume_lag_and_reset_offsets(broker, topic):
    group = f"g-{topic}"
    strom(broker, "topic", "create", topic, "--partitions", "2")
    # a, b, c are at offsets 0..2 of partition 0; d, e at 0..1 of partition 1.
    strom(broker, "produce", topic, "--partition", "0", stdin="a\nb\nc\n")
    strom(broker, "produce", topic, "--partition", "1", stdin="d\ne\n")
    end0, end1 = 3, 2

    out = strom(broker, "consume", topic, "--group", group, "--timeout", "1s").stdout
    assert sorted(out.splitlines()) == ["a", "b", "c", "d", "e"]
    d = strom_json(broker, "group", "describe", group)
    assert d["state"] == "Empty" and d["members"] == []
    assert d["total_lag"] == 0
    assert {(o["partition"], o["committed_offset"], o["end_offset"], o["lag"]) for o in d["offsets"]} == {
        (0, end0, end0, 0),
        (1, end1, end1, 0),
    }
    assert group in [g["group"] for g in strom_json(broker, "group", "list")]

    strom(broker, "produce", topic, "--partition", "1", stdin="f\ng\nh\n")
    end1 = 5
    d = strom_json(broker, "group", "describe", group)
    assert d["total_lag"] == 3
    assert {(o["partition"], o["committed_offset"], o["end_offset"], o["lag"]) for o in d["offsets"]} == {
        (0, end0, end0, 0),
        (1, 2, end1, 3),
    }
    assert {o["partition"]: o["lag"] for o in d["offsets"]} == {0: 0, 1: 3}
    text = strom(broker, "group", "describe", group).stdout
    assert "total lag: 3" in text

    # The dry run prints the plan and changes nothing.
    plan = strom(broker, "group", "reset-offsets", "--group", group, "--topic", topic, "--to-earliest").stdout
    assert "dry run" in plan
    dry = strom_json(broker, "group", "reset-offsets", "--group", group, "--topic", topic, "--to-earliest")
    assert dry["executed"] is False
    assert {(o["partition"], o["current_offset"], o["new_offset"]) for o in dry["offsets"]} == {
        (0, end0, 0),
        (1, 2, 0),
    }
    assert committed(broker, group) == {0: end0, 1: 2}

    # The earliest offset is the log start, 0: the lag is every record, 3 + 5.
    strom(broker, "group", "reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--execute")
    assert committed(broker, group) == {0: 0, 1: 0}
    assert strom_json(broker, "group", "describe", group)["total_lag"] == 8

    strom(broker, "group", "reset-offsets", "--group", group, "--topic", topic, "--shift-by", "2", "--execute")
    assert committed(broker, group) == {0: 2, 1: 2}
    strom(broker, "group", "reset-offsets", "--group", group, "--topic", topic, "--to-latest", "--partition", "0", "--execute")
    assert committed(broker, group) == {0: end0, 1: 2}

    # The group resumes where the reset put it: partition 1 from offset 2 (d, e, f, g, h
    # are at 0..4), so f, g, h.
    out = strom(broker, "consume", topic, "--group", group, "--timeout", "1s").stdout
    assert out == "f\ng\nh\n"
    assert strom_json(broker, "group", "describe", group)["total_lag"] == 0

    assert strom(broker, "group", "delete", group).stdout == f"deleted group {group}\n"
    assert group not in [g["group"] for g in strom_json(broker, "group", "list")]


@NO_REBALANCE_DELAY
def test_reset_is_refused_while_the_group_has_members(broker, topic):
    group = f"g-{topic}"
    strom(broker, "produce", topic, stdin="x\n")
    member = subprocess.Popen(
        [str(STROM_BIN), "consume", topic, "--group", group, "--timeout", "20s", "--bootstrap", broker.bootstrap],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            d = strom_json(broker, "group", "describe", group)
            if d["state"] == "Stable":
                break
            time.sleep(0.1)
        assert d["state"] == "Stable"
        assert len(d["members"]) == 1
        assert d["members"][0]["client_id"] == "strom"
        assert d["members"][0]["assignment"] == {topic: [0]}
        proc = strom(
            broker, "group", "reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--execute", check=False
        )
        assert_one_line_error(proc, contains="Stable")
        assert_one_line_error(strom(broker, "group", "delete", group, check=False), contains="NON_EMPTY_GROUP")
    finally:
        member.terminate()
        member.wait(timeout=30)


def test_cluster_info(broker, topic):
    strom(broker, "topic", "create", topic, "--partitions", "2")
    info = strom_json(broker, "cluster", "info")
    assert info["cluster_id"]
    assert info["controller_id"] == 1
    assert [b["node_id"] for b in info["brokers"]] == [1]
    assert info["brokers"][0]["port"] == broker.port
    assert info["brokers"][0]["leader_partitions"] == info["partitions"] >= 2
    assert info["under_replicated"] == []
    text = strom(broker, "cluster", "info").stdout
    assert "under-replicated partitions: none" in text


def test_errors_are_one_line_and_non_zero(broker, topic):
    nobody = f"127.0.0.1:{free_port()}"
    proc = subprocess.run(
        [str(STROM_BIN), "topic", "list", "--bootstrap", nobody], capture_output=True, text=True, timeout=60
    )
    assert_one_line_error(proc, contains=f"cannot reach broker {nobody}")
    assert_one_line_error(strom(broker, "consume", "no-such-topic", check=False), contains="unknown topic no-such-topic")
    assert_one_line_error(strom(broker, "consume", topic, "--from", "yesterday", check=False), contains="--from")
    assert_one_line_error(strom(broker, "topic", "create", topic, "--bogus", check=False), code=2)
    assert_one_line_error(strom(broker, "consume", topic, "--format", "%x", check=False), contains="--format")
    assert_one_line_error(
        strom(broker, "group", "reset-offsets", "--group", "g", "--topic", topic, check=False), code=2
    )
    assert_one_line_error(strom(broker, "produce", topic, "--acks", "2", stdin="x\n", check=False), contains="acks")


@pytest.mark.parametrize("codec", ["none", "gzip", "lz4", "zstd", "snappy"])
def test_kcat_reads_what_strom_produced(broker, topic, codec):
    lines = ["user1:hello", "user2:wörld", "user1:again"]
    strom(
        broker, "produce", topic, "-K", ":", "-H", "origin=strom", "-H", "v=2", "--compression", codec,
        stdin="\n".join(lines) + "\n",
    )
    out = kcat(broker, "-C", "-t", topic, "-e", "-q", "-f", "%k|%s|%h\n")
    assert sorted(out.splitlines()) == sorted(f"{line.replace(':', '|', 1)}|origin=strom,v=2" for line in lines)


def test_strom_consumes_what_kcat_produced(broker, topic):
    kcat(broker, "-P", "-t", topic, "-K:", "-H", "origin=kcat", "-z", "lz4", stdin="a:1\nb:2\nc:3\n")
    out = strom(broker, "consume", topic, "--count", "3", "--format", "%k=%v [%h]\\n").stdout
    assert out == "a=1 [origin=kcat]\nb=2 [origin=kcat]\nc=3 [origin=kcat]\n"


def test_txn_list_describe_producers_and_abort(broker, topic):
    """`strom txn`: a transaction left open (its producer gone) is listed and described,
    its partition's producer shows where it started, and `abort` ends it there: a
    read_committed reader then gets past it."""
    from kafka_util import consume, make_producer

    strom(broker, "topic", "create", topic, "--partitions", "1")
    wait_for_first_leaders(broker.bootstrap, topic, 1)
    p = make_producer(broker.bootstrap, transactional_id="cli-txn")
    p.init_transactions(10)
    p.begin_transaction()
    p.produce(topic, value=b"committed")
    p.commit_transaction(10)
    p.begin_transaction()
    p.produce(topic, value=b"left-open")
    p.flush(10)

    (listed,) = [t for t in strom_json(broker, "txn", "list") if t["transactional_id"] == "cli-txn"]
    assert listed["state"] == "Ongoing" and listed["coordinator"] == 1
    d = strom_json(broker, "txn", "describe", "cli-txn")
    assert (d["state"], d["partitions"]) == ("Ongoing", [f"{topic}-0"])
    assert d["producer_id"] == listed["producer_id"] and d["start_time_ms"] is not None
    (prod,) = strom_json(broker, "txn", "producers", topic, "--partition", "0")
    # Offsets: committed 0, its COMMIT marker 1, the open transaction from 2.
    assert (prod["producer_id"], prod["current_txn_start_offset"]) == (d["producer_id"], 2)
    assert stable_end(broker, topic) == 2, "held at the open transaction's start"

    out = strom(broker, "txn", "abort", topic, "--partition", "0", "--start-offset", "2").stdout
    assert f"aborted the transaction of producer {d['producer_id']}" in out
    (prod,) = strom_json(broker, "txn", "producers", topic, "--partition", "0")
    assert prod["current_txn_start_offset"] is None
    assert stable_end(broker, topic) == 4, "past the ABORT marker at 3"
    got = [r.value for r in consume(broker.bootstrap, topic, 0, isolation_level="read_committed")]
    assert got == [b"committed"]
    again = strom(broker, "txn", "abort", topic, "--partition", "0", "--start-offset", "2", check=False)
    assert_one_line_error(again, contains="no transaction of")
    missing = strom(broker, "txn", "describe", "no-such-id", check=False)
    assert_one_line_error(missing, contains="TRANSACTIONAL_ID_NOT_FOUND")


def stable_end(broker, topic: str) -> int:
    """Partition 0's latest offset for read_committed consumers (its last stable offset)."""
    from confluent_kafka import IsolationLevel, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec

    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    fs = a.list_offsets(
        {TopicPartition(topic, 0): OffsetSpec.latest()},
        isolation_level=IsolationLevel.READ_COMMITTED,
        request_timeout=15,
    )
    (f,) = fs.values()
    return f.result(timeout=30).offset
