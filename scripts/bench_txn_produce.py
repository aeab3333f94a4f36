#!/usr/bin/env python3
"""Producer driver of scripts/bench-txn.sh (confluent-kafka, i.e. librdkafka): writes
records to partition 0 of one topic in one of three modes, and prints one JSON line.

    bench_txn_produce.py BOOTSTRAP TOPIC MODE SIZE SECONDS [--per-txn N] [--abort-every K] [--records N]

MODE:
  txn         transactional: begin, PER_TXN records, commit (abort every K-th), again
  idem        idempotent (what a transactional producer is without transactions): the
              records are produced as fast as the client can, flushed at the end
  idem_flush  idempotent, flush() after every PER_TXN records: the same batches and the
              same synchronous wait per PER_TXN records as `txn`, without the transaction
              requests (AddPartitionsToTxn, EndTxn) and markers; txn/idem_flush is the
              cost of the protocol alone, idem_flush/idem the cost of cutting batches

All modes: acks=all, enable.idempotence, linger.ms 5, batches up to 1 MB, the same
random payload of SIZE bytes for every record, no key. The clock runs for SECONDS, after a
warm-up of one PER_TXN unit (the producer id, metadata and connections are set up before
it starts), and stops when the last unit is acknowledged (committed, or flushed); with
--records, after that many records (however long that takes: a fill, not a measurement).
Records per transaction are exact, which kafka-producer-perf-test's
--transaction-duration-ms (time-based) cannot give.

Output: {"mode", "records", "aborted_records", "seconds", "rec_s", "mb_s", "units",
"unit_ms": {"p50", "p99", "max"}, "end_ms": {"p50", "p99"}, "log_records",
"log_committed", "concurrent_txn_retries"} where a unit is one transaction (or one
flushed group of PER_TXN) and end_ms the time in commit_transaction / abort_transaction /
flush() of a unit (the synchronous part); log_records counts the warm-up too (what a
consumer will find); concurrent_txn_retries (with --count-retries, from librdkafka's
`eos` debug log) how often AddPartitionsToTxn was answered CONCURRENT_TRANSACTIONS: the
previous transaction's markers were not complete yet, and librdkafka waits and retries.
MB = 10^6 bytes of payload.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid

from confluent_kafka import KafkaException, Producer


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("topic")
    ap.add_argument("mode", choices=["txn", "idem", "idem_flush"])
    ap.add_argument("size", type=int)
    ap.add_argument("seconds", type=float)
    ap.add_argument("--per-txn", type=int, default=100)
    ap.add_argument("--abort-every", type=int, default=0, help="abort every K-th transaction (0: none)")
    ap.add_argument("--records", type=int, default=0, help="stop after this many records instead (a fill)")
    ap.add_argument("--count-retries", action="store_true",
                    help="count AddPartitionsToTxn answers CONCURRENT_TRANSACTIONS (librdkafka's eos debug log)")
    a = ap.parse_args()

    errors: list[str] = []

    def on_error(err, _msg) -> None:  # only failed deliveries (delivery.report.only.error)
        errors.append(str(err))

    conf = {
        "bootstrap.servers": a.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 65_536,
        "delivery.report.only.error": True,
        "on_delivery": on_error,
    }
    txn = a.mode == "txn"
    if txn:
        conf["transactional.id"] = f"bench-txn-{uuid.uuid4()}"
    retries = [0]
    if txn and a.count_retries:

        class Count(logging.Handler):
            def emit(self, r: logging.LogRecord) -> None:
                if "concurrent operation" in r.getMessage():
                    retries[0] += 1

        log = logging.getLogger("bench_txn_produce")
        log.propagate = False
        log.addHandler(Count())
        log.setLevel(logging.DEBUG)
        conf["debug"] = "eos"
        conf["logger"] = log
    p = Producer(conf)
    if txn:
        p.init_transactions(30)
    payload = os.urandom(a.size)
    topic, n = a.topic, a.per_txn

    def produce(k: int) -> None:
        for _ in range(k):
            while True:
                try:
                    p.produce(topic, payload, partition=0)
                    break
                except BufferError:
                    p.poll(0.001)

    def unit(i: int) -> tuple[float, bool]:
        """One unit of PER_TXN records; returns the seconds spent waiting at its end."""
        abort = txn and a.abort_every > 0 and i % a.abort_every == a.abort_every - 1 and i >= 0
        if txn:
            p.begin_transaction()
        produce(n)
        t = time.perf_counter()
        if txn:
            if abort:
                # Written first, so that the log holds the aborted records (an abort
                # would purge what is still queued) and read_committed must skip them.
                p.flush(30)
                p.abort_transaction(30)
            else:
                p.commit_transaction(30)
        elif a.mode == "idem_flush":
            p.flush(30)
        p.poll(0)  # serves delivery errors (and the log lines --count-retries reads)
        return time.perf_counter() - t, abort

    unit(-1)  # warm-up (never aborted)
    p.flush(30)
    ends: list[float] = []
    units: list[float] = []
    records = aborted = 0
    start = time.perf_counter()
    deadline = start + a.seconds
    i = 0
    while True:
        u0 = time.perf_counter()
        if (records >= a.records) if a.records else (u0 >= deadline):
            break
        end, abort = unit(i)
        i += 1
        records += n
        aborted += n if abort else 0
        ends.append(end)
        units.append(time.perf_counter() - u0)
    if a.mode == "idem":
        left = p.flush(60)
        if left:
            errors.append(f"{left} records not delivered")
    secs = time.perf_counter() - start
    p.poll(0.1)
    if errors:
        sys.exit(f"bench_txn_produce: {len(errors)} delivery errors, first: {errors[0]}")
    ms = lambda xs, q: round(pct(xs, q) * 1000, 3)  # noqa: E731
    print(json.dumps({
        "mode": a.mode,
        "size": a.size,
        "per_txn": n,
        "records": records,
        "aborted_records": aborted,
        "seconds": round(secs, 4),
        "rec_s": round(records / secs, 1),
        "mb_s": round(records * a.size / secs / 1e6, 3),
        "units": len(units),
        # What the log holds (the warm-up unit included), for a consumer's record count.
        "log_records": records + n,
        "log_committed": records + n - (aborted if txn else 0),
        "concurrent_txn_retries": retries[0] if a.count_retries else None,
        "unit_ms": {"p50": ms(units, 0.5), "p99": ms(units, 0.99), "max": ms(units, 1.0)},
        "end_ms": {"p50": ms(ends, 0.5), "p99": ms(ends, 0.99)},
    }))


if __name__ == "__main__":
    try:
        main()
    except KafkaException as e:
        sys.exit(f"bench_txn_produce: {e}")
