"""A read_committed reader of the output topic, running beside the workers: every
partition from the beginning (assign, no group), each record it sees logged as
[partition, offset, txn tag, input number] (value that does not decode: tag null), until
SIGTERM. The checker holds what it saw against the transactions' outcomes (an aborted
transaction's record seen = an aborted read) and against the final read (a record seen and
later gone, or changed)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition  # noqa: E402

from history import History, decode_output  # noqa: E402

stop = False


def _on_term(_sig, _frm):
    global stop
    stop = True


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--reader", type=int, required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--out-partitions", type=int, required=True)
    ap.add_argument("--history", required=True)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, _on_term)
    h = History(Path(a.history), reader=a.reader)
    c = Consumer({
        "bootstrap.servers": a.bootstrap,
        "group.id": f"txn-reader-{a.reader}",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 200,
        "socket.timeout.ms": 10000,
    })
    c.assign([TopicPartition(a.output, p, OFFSET_BEGINNING) for p in range(a.out_partitions)])
    h.log("reader-start")
    while not stop:
        recs = []
        for m in c.consume(500, 0.5):
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    h.log("read-error", err=m.error().name())
                continue
            d = decode_output(m.value())
            recs.append([m.partition(), m.offset(), d and d["txn"], d and d["n"]])
        if recs:
            h.log("read", recs=recs)
        else:
            time.sleep(0.05)
    h.log("reader-exit")
    c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
