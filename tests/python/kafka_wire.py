"""A tiny hand-written Kafka wire-protocol client for tests that need exact bytes.

Real clients never send garbage, corrupted batches or unknown API keys, and never show
how a batch was stored; this module builds such requests with `struct` and parses the few
responses the tests read: ApiVersions v0, Produce v3, Fetch v4 and RecordBatch v2.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field

# ---------------------------------------------------------------- CRC-32C (Castagnoli)


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ---------------------------------------------------------------- primitive encoders


def varint(n: int) -> bytes:
    """Zig-zag varint, as used inside RecordBatch v2 records."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = 0
    z = 0
    while True:
        b = buf[pos]
        pos += 1
        z |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return (z >> 1) ^ -(z & 1), pos


def string(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def nbytes(b: bytes | None) -> bytes:
    if b is None:
        return struct.pack(">i", -1)
    return struct.pack(">i", len(b)) + b


# ---------------------------------------------------------------- record batches


def record_batch(
    records: list[tuple[bytes | None, bytes | None]],
    base_offset: int = 0,
    timestamp_ms: int | None = None,
) -> bytes:
    """An uncompressed RecordBatch v2 (no producer id) of (key, value) records."""
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    body = bytearray()
    for i, (key, value) in enumerate(records):
        rec = bytearray()
        rec += b"\x00"  # attributes
        rec += varint(0)  # timestamp delta
        rec += varint(i)  # offset delta
        rec += varint(-1) if key is None else varint(len(key)) + key
        rec += varint(-1) if value is None else varint(len(value)) + value
        rec += varint(0)  # headers
        body += varint(len(rec)) + rec
    after_crc = (
        struct.pack(
            ">hiqqqhii",
            0,  # attributes: no compression, create time, not transactional
            len(records) - 1,  # last offset delta
            ts,  # first timestamp
            ts,  # max timestamp
            -1,  # producer id
            -1,  # producer epoch
            -1,  # base sequence
            len(records),
        )
        + bytes(body)
    )
    crc = crc32c(after_crc)
    # batch length counts everything after the length field itself
    batch_length = 4 + 1 + 4 + len(after_crc)
    return struct.pack(">qiibI", base_offset, batch_length, 0, 2, crc) + after_crc


@dataclass
class Batch:
    base_offset: int
    length: int
    leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    first_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    count: int
    raw: bytes

    @property
    def compression(self) -> int:
        """0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd."""
        return self.attributes & 0x07

    @property
    def is_control(self) -> bool:
        """A control batch (attribute bit 5). Kafka writes them as transaction markers;
        Strom's partition logs hold none (docs/adr/0005-kafka-offsets.md: leader changes
        take no offset), so tests assert their absence."""
        return bool(self.attributes & 0x20)

    @property
    def crc_ok(self) -> bool:
        return crc32c(self.raw[21:]) == self.crc

    def records(self) -> list[tuple[int, bytes | None, bytes | None]]:
        """(offset, key, value) of an uncompressed batch."""
        assert self.compression == 0, "only uncompressed batches are parsed"
        out = []
        pos = 61
        for _ in range(self.count):
            length, pos = read_varint(self.raw, pos)
            end = pos + length
            pos += 1  # attributes
            _, pos = read_varint(self.raw, pos)  # timestamp delta
            delta, pos = read_varint(self.raw, pos)
            klen, pos = read_varint(self.raw, pos)
            key = None if klen < 0 else self.raw[pos : pos + klen]
            pos += max(klen, 0)
            vlen, pos = read_varint(self.raw, pos)
            value = None if vlen < 0 else self.raw[pos : pos + vlen]
            out.append((self.base_offset + delta, key, value))
            pos = end
        return out


def parse_batches(data: bytes) -> list[Batch]:
    """Every complete batch in `data` (a fetch may end with a partial one)."""
    out = []
    pos = 0
    while pos + 61 <= len(data):
        base_offset, length = struct.unpack_from(">qi", data, pos)
        end = pos + 12 + length
        if end > len(data):
            break
        fields = struct.unpack_from(">ibIhiqqqhii", data, pos + 12)
        out.append(Batch(base_offset, length, *fields, raw=bytes(data[pos:end])))
        pos = end
    return out


# ---------------------------------------------------------------- requests


def request_frame(
    api_key: int, version: int, correlation_id: int, body: bytes, client_id: str = "strom-tests"
) -> bytes:
    """A length-prefixed request with a v1 (non-flexible) header."""
    header = struct.pack(">hhi", api_key, version, correlation_id) + string(client_id)
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def produce_v3_body(
    topic: str, partition: int, records: bytes, acks: int = -1, timeout_ms: int = 10000
) -> bytes:
    return (
        string(None)  # transactional id
        + struct.pack(">hi", acks, timeout_ms)
        + struct.pack(">i", 1)
        + string(topic)
        + struct.pack(">i", 1)
        + struct.pack(">i", partition)
        + nbytes(records)
    )


def fetch_v4_body(topic: str, partition: int, offset: int, max_bytes: int = 4 << 20) -> bytes:
    return (
        struct.pack(">iiiib", -1, 0, 1, max_bytes, 0)  # replica, max wait, min bytes, max bytes, isolation
        + struct.pack(">i", 1)
        + string(topic)
        + struct.pack(">i", 1)
        + struct.pack(">iqi", partition, offset, max_bytes)
    )


def metadata_v1_body(topics: list[str] | None) -> bytes:
    if topics is None:
        return struct.pack(">i", -1)
    return struct.pack(">i", len(topics)) + b"".join(string(t) for t in topics)


class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, fmt: str):
        vals = struct.unpack_from(">" + fmt, self.data, self.pos)
        self.pos += struct.calcsize(">" + fmt)
        return vals if len(vals) > 1 else vals[0]

    def string(self) -> str | None:
        n = self.take("h")
        if n < 0:
            return None
        s = self.data[self.pos : self.pos + n].decode()
        self.pos += n
        return s

    def bytes(self) -> bytes | None:
        n = self.take("i")
        if n < 0:
            return None
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b


@dataclass
class ProducePartitionResult:
    partition: int
    error_code: int
    base_offset: int


def parse_produce_v3(body: bytes) -> list[ProducePartitionResult]:
    r = Reader(body)
    out = []
    for _ in range(r.take("i")):
        r.string()
        for _ in range(r.take("i")):
            partition, error, base, _append_time = r.take("ihqq")
            out.append(ProducePartitionResult(partition, error, base))
    return out


@dataclass
class FetchPartitionResult:
    partition: int
    error_code: int
    high_watermark: int
    log_start_offset: int = -1
    records: bytes = b""
    batches: list[Batch] = field(default_factory=list)


def parse_fetch_v4(body: bytes) -> list[FetchPartitionResult]:
    r = Reader(body)
    r.take("i")  # throttle
    out = []
    for _ in range(r.take("i")):
        r.string()
        for _ in range(r.take("i")):
            partition, error, hw, _lso = r.take("ihqq")
            aborted = r.take("i")
            for _ in range(max(aborted, 0)):
                r.take("qq")
            records = r.bytes() or b""
            out.append(
                FetchPartitionResult(
                    partition, error, hw, records=records, batches=parse_batches(records)
                )
            )
    return out


# ---------------------------------------------------------------- connection


class ConnectionClosed(Exception):
    pass


class Conn:
    """A blocking socket speaking length-prefixed frames."""

    def __init__(self, bootstrap: str, timeout: float = 10.0):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.settimeout(timeout)
        self.correlation = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionClosed(f"connection closed after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def recv_frame(self) -> tuple[int, bytes]:
        """(correlation id, response body after a v0 response header)."""
        (n,) = struct.unpack(">i", self._recv_exact(4))
        frame = self._recv_exact(n)
        (corr,) = struct.unpack_from(">i", frame)
        return corr, frame[4:]

    def call(self, api_key: int, version: int, body: bytes) -> bytes:
        self.correlation += 1
        corr = self.correlation
        self.send_raw(request_frame(api_key, version, corr, body))
        got, resp = self.recv_frame()
        assert got == corr, f"correlation id {got}, expected {corr}"
        return resp

    def wait_closed(self, timeout: float = 10.0) -> bool:
        """True when the peer closes (EOF or reset) within `timeout`; data is discarded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except (ConnectionResetError, BrokenPipeError):
                return True
            except socket.timeout:
                return False
        return False

    # convenience wrappers

    def api_versions(self, version: int = 0) -> tuple[int, dict[int, tuple[int, int]]]:
        body = self.call(18, version, b"")
        r = Reader(body)
        error = r.take("h")
        apis = {}
        for _ in range(r.take("i")):
            key, lo, hi = r.take("hhh")
            apis[key] = (lo, hi)
        return error, apis

    def produce(
        self, topic: str, partition: int, records: bytes, acks: int = -1
    ) -> ProducePartitionResult:
        (res,) = parse_produce_v3(self.call(0, 3, produce_v3_body(topic, partition, records, acks)))
        return res

    def fetch(self, topic: str, partition: int, offset: int, max_bytes: int = 4 << 20):
        (res,) = parse_fetch_v4(self.call(1, 4, fetch_v4_body(topic, partition, offset, max_bytes)))
        return res

    def metadata(self, topics: list[str] | None) -> bytes:
        return self.call(3, 1, metadata_v1_body(topics))

    def fetch_all_batches(self, topic: str, partition: int, start: int = 0) -> list[Batch]:
        """Every batch from `start` to the high watermark, as stored."""
        out: list[Batch] = []
        offset = start
        while True:
            res = self.fetch(topic, partition, offset)
            assert res.error_code == 0, f"fetch error {res.error_code} at offset {offset}"
            if not res.batches:
                return out
            for b in res.batches:
                if b.base_offset + b.last_offset_delta >= offset:
                    out.append(b)
            offset = res.batches[-1].base_offset + res.batches[-1].last_offset_delta + 1
            if offset >= res.high_watermark:
                return out
