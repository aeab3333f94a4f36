"""Bounded requests against a real `strom serve`: the broker's memory (VmHWM from
/proc/<pid>/status) stays within its request budget whatever one request or a few
clients that never read their answers send, and oversized partition counts are refused
before they cost anything."""

from __future__ import annotations

import socket
import struct
import time

import pytest

import kafka_wire

INVALID_PARTITIONS = 37
MIB = 1 << 20


def memory_mib(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) // 1024
    return out


def metadata_v4(names: list[str]) -> bytes:
    """Metadata v4 for `names`, without auto-creation."""
    return struct.pack(">i", len(names)) + b"".join(kafka_wire.string(n) for n in names) + b"\x00"


def create_topics_v2(name: str, partitions: int, validate_only: bool) -> bytes:
    return (
        struct.pack(">i", 1)
        + kafka_wire.string(name)
        + struct.pack(">ihii", partitions, -1, 0, 0)  # partitions, rf, no assignments, no configs
        + struct.pack(">ib", 30000, int(validate_only))
    )


def create_topics_error(body: bytes) -> int:
    r = kafka_wire.Reader(body)
    r.take("i")  # throttle
    assert r.take("i") == 1
    r.string()
    return r.take("h")


@pytest.mark.parametrize("validate_only", [True, False])
def test_create_topics_with_2_pow_31_partitions(broker, validate_only):
    """A 51-byte CreateTopics aborted the broker on a 51 GB allocation."""
    body = create_topics_v2("huge", 0x7FFFFFFF, validate_only)
    frame = kafka_wire.request_frame(19, 2, 1, body, client_id="")
    assert len(frame) <= 51
    before = memory_mib(broker.proc.pid)["VmRSS"]
    with kafka_wire.Conn(broker.bootstrap) as c:
        assert create_topics_error(c.call(19, 2, body)) == INVALID_PARTITIONS
        c.api_versions(0)
    assert broker.running()
    assert memory_mib(broker.proc.pid)["VmHWM"] - before < 50


def test_one_huge_metadata_request_is_refused_not_decoded(broker):
    """3M one-letter names (9 MB): decoded, 70x the frame (626 MB). Its decoded cost is
    more than the whole request budget now, so the connection is closed unread."""
    pid = broker.proc.pid
    before = memory_mib(pid)["VmRSS"]
    with kafka_wire.Conn(broker.bootstrap, timeout=60) as c:
        c.send_raw(kafka_wire.request_frame(3, 4, 1, metadata_v4(["a"] * 3_000_000)))
        assert c.wait_closed(60)
    grew = memory_mib(pid)["VmHWM"] - before
    assert grew < 100, f"peak grew {grew} MiB"
    with kafka_wire.Conn(broker.bootstrap) as c:
        assert c.api_versions(0)[0] == 0


@pytest.mark.strom_args(
    "--auto-create-topics", "false",
    "--max-frame-bytes", str(16 * MIB),
    "--queued-max-request-bytes", str(96 * MIB),
    "--max-request-bytes-per-connection", str(24 * MIB),
)
def test_clients_that_never_read_hold_no_more_than_the_budget(broker):
    """Four clients pipeline Metadata requests (50k names each: 1 MB frames, ~13 MB
    decoded and answered) and never read an answer. Before the budget each connection
    read and decoded 64 requests ahead; now reading stops once the budget is held."""
    pid = broker.proc.pid
    names = [f"no-such-topic-{i:06d}" for i in range(50_000)]
    frame = kafka_wire.request_frame(3, 4, 1, metadata_v4(names))
    before = memory_mib(pid)["VmRSS"]
    socks = []
    for _ in range(4):
        s = socket.create_connection(("127.0.0.1", broker.port))
        s.setblocking(False)
        socks.append([s, 40 * len(frame), 0])  # socket, bytes to send, sent
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(sent < total for _, total, sent in socks):
        progressed = False
        for entry in socks:
            s, total, sent = entry
            if sent >= total:
                continue
            offset = sent % len(frame)
            try:
                n = s.send(frame[offset:])
            except BlockingIOError:
                continue
            entry[2] += n
            progressed = True
        if not progressed:
            time.sleep(0.05)
    time.sleep(2)  # let the broker read and decode whatever it is going to
    grew = memory_mib(pid)["VmHWM"] - before
    for s, _, _ in socks:
        s.close()
    assert broker.running()
    # Budget 96 MiB + answers queued (4 x 24 MiB) + allocator slack.
    assert grew < 250, f"peak grew {grew} MiB"
    with kafka_wire.Conn(broker.bootstrap) as c:
        assert c.api_versions(0)[0] == 0
