"""The history file format of the transaction checker: one JSON object per line.

Every process of a run (each worker incarnation, each reader, the runner itself) appends to
a file of its own in RUN/history/, one line per operation, flushed as written: a SIGKILL
loses at most the line being written, never a line already returned from write(). The
checker merges the files; a torn last line (the process was killed mid-write) is skipped.

Common fields: "t" (wall-clock seconds, time.time(): the processes share one clock), "op",
and for workers "w" (worker number), "inc" (incarnation: 0, then +1 at every restart) and
"txn_id" (the transactional.id, the same for every incarnation of a worker).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


class History:
    """An append-only JSON-lines file, one write() per line."""

    def __init__(self, path: Path, **common):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.common = common

    def log(self, op: str, **fields) -> dict:
        line = {"t": time.time(), "op": op, **self.common, **fields}
        os.write(self.fd, (json.dumps(line, separators=(",", ":")) + "\n").encode())
        return line

    def close(self):
        os.close(self.fd)


def read_history(directory: Path) -> tuple[list[dict], int]:
    """Every line of every *.jsonl file under `directory`, in time order, and the number of
    lines that did not parse (torn by a SIGKILL)."""
    lines: list[dict] = []
    torn = 0
    for f in sorted(Path(directory).glob("*.jsonl")):
        for raw in f.read_text(errors="replace").splitlines():
            if not raw.strip():
                continue
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                torn += 1
    lines.sort(key=lambda l: l.get("t", 0.0))
    return lines, torn


def encode_output(n: int, ip: int, io: int, tag: str) -> bytes:
    """The value a worker writes for input record n (read at input partition ip, offset io)
    in transaction `tag`: the checker finds the transaction of every record it reads."""
    return json.dumps({"n": n, "ip": ip, "io": io, "txn": tag}, separators=(",", ":")).encode()


def decode_output(value: bytes | None) -> dict | None:
    try:
        d = json.loads(value)
        if isinstance(d, dict) and {"n", "ip", "io", "txn"} <= d.keys():
            return d
    except (TypeError, ValueError):
        pass
    return None
