"""kcat (Debian's, on librdkafka 2.0.2) with default settings against Strom: metadata,
keyed produce, every compression codec, consume to the end. Old librdkafka decides what to
use from the ApiVersions ranges, so this catches quirks a modern client does not."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

import kafka_wire
from kafka_util import (
    assert_delivered,
    consume,
    create_topic,
    assert_contiguous,
    make_producer,
    produce_all,
    watermarks,
)

KCAT = shutil.which("kcat")


@pytest.fixture(autouse=True)
def _kcat_installed():
    # A failure, not a skip: a suite that silently skips its old-client tests proves nothing.
    if KCAT is None:
        pytest.fail("kcat is not installed: apt-get install -y kcat (scripts/test-clients.sh does)")


CODECS = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

SEP = "\x1f"  # field separator in kcat's output format


def kcat(broker, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
    proc = subprocess.run(
        [KCAT, "-b", broker.bootstrap, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"kcat {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return proc.stdout


def kcat_consume(broker, topic: str, *extra: str) -> list[dict]:
    """Everything in the topic (all partitions), via `kcat -C -e -f`."""
    fmt = SEP.join(["%p", "%o", "%k", "%s", "%h"]) + "\n"
    out = kcat(broker, "-C", "-t", topic, "-e", "-q", "-f", fmt, *extra)
    rows = []
    for line in out.splitlines():
        p, o, k, s, h = line.split(SEP)
        rows.append({"partition": int(p), "offset": int(o), "key": k, "value": s, "headers": h})
    return rows


def test_kcat_metadata(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=3)
    md = json.loads(kcat(broker, "-L", "-J"))
    assert md["brokers"] == [{"id": 1, "name": broker.bootstrap}]
    assert md["controllerid"] == 1
    topics = {t["topic"]: t for t in md["topics"]}
    assert topic in topics
    parts = topics[topic]["partitions"]
    assert [p["partition"] for p in parts] == [0, 1, 2]
    for p in parts:
        assert p["leader"] == 1
        assert p["replicas"] == [{"id": 1}] and p["isrs"] == [{"id": 1}]
    assert "error" not in topics[topic]

    text = kcat(broker, "-L", "-t", topic)
    assert f'topic "{topic}" with 3 partitions' in text


def test_kcat_produce_keys_and_consume(broker, topic):
    lines = [f"key{i}:value {i}:with colon" for i in range(50)]
    kcat(broker, "-P", "-t", topic, "-K:", "-H", "origin=kcat", stdin="\n".join(lines) + "\n")
    rows = kcat_consume(broker, topic)
    # The auto-created partition holds exactly the 50 records, at offsets 0..49.
    assert_contiguous([r["offset"] for r in rows], 0)
    assert watermarks(broker.bootstrap, topic, 0) == (0, 50)
    assert [(r["key"], r["value"]) for r in rows] == [
        (f"key{i}", f"value {i}:with colon") for i in range(50)
    ]
    assert {r["headers"] for r in rows} == {"origin=kcat"}

    # And confluent-kafka reads the same.
    got = consume(broker.bootstrap, topic, 0, count=50)
    assert [(g.key, g.value) for g in got] == [
        (f"key{i}".encode(), f"value {i}:with colon".encode()) for i in range(50)
    ]
    assert {tuple(g.headers) for g in got} == {(("origin", b"kcat"),)}
    assert [g.offset for g in got] == [r["offset"] for r in rows]


@pytest.mark.parametrize(
    "codec",
    CODECS,
)
def test_kcat_compression(broker, topic, codec):
    n = 300
    lines = [f"k{i % 3}:" + f"line {i:04d} " + "lorem ipsum " * 30 for i in range(n)]
    kcat(broker, "-P", "-t", topic, "-K:", "-z", codec, "-X", "linger.ms=100", stdin="\n".join(lines) + "\n")

    # librdkafka 2.0.2 silently sends uncompressed batches when it thinks the broker cannot
    # take compression (no Produce v0 in ApiVersions): check what was stored.
    with kafka_wire.Conn(broker.bootstrap) as c:
        batches = c.fetch_all_batches(topic, 0)
    assert {b.compression for b in batches} == {CODECS[codec]}
    assert all(b.crc_ok for b in batches)
    assert batches[0].base_offset == 0 and sum(b.count for b in batches) == n

    rows = kcat_consume(broker, topic)
    assert [(r["key"], r["value"]) for r in rows] == [tuple(line.split(":", 1)) for line in lines]
    assert [r["offset"] for r in rows] == list(range(n))
    got = consume(broker.bootstrap, topic, 0, count=n)
    assert [g.value.decode() for g in got] == [line.split(":", 1)[1] for line in lines]


def test_kcat_reads_what_confluent_wrote_and_partitions_agree(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=4)
    keys = [f"account-{i}" for i in range(24)]
    p = make_producer(broker.bootstrap, compression_type="zstd")
    reports = produce_all(
        p,
        topic,
        [{"key": k.encode(), "value": f"c:{k}".encode(), "headers": [("src", b"ck")]} for k in keys],
    )
    assert_delivered(reports)
    confluent_partition = {r.key.decode(): r.partition for r in reports}

    # kcat's producer (same default partitioner, older librdkafka) puts each key on the
    # same partition.
    kcat(broker, "-P", "-t", topic, "-K:", stdin="".join(f"{k}:k:{k}\n" for k in keys))
    rows = kcat_consume(broker, topic)
    assert len(rows) == 2 * len(keys)
    for r in rows:
        assert r["partition"] == confluent_partition[r["key"]], r
        if r["value"].startswith("c:"):
            assert r["headers"] == "src=ck"
    assert sorted(r["value"] for r in rows) == sorted(
        [f"c:{k}" for k in keys] + [f"k:{k}" for k in keys]
    )

    # Reading one partition from an offset: that of its second message. Each partition's
    # messages are at offsets 0, 1, ..., up to its high watermark.
    part = confluent_partition[keys[0]]
    offsets = sorted(r["offset"] for r in rows if r["partition"] == part)
    assert len(offsets) >= 2
    assert_contiguous(offsets, 0)
    assert watermarks(broker.bootstrap, topic, part) == (0, len(offsets))
    one = kcat_consume(broker, topic, "-p", str(part), "-o", str(offsets[1]))
    assert [r["offset"] for r in one] == offsets[1:]
