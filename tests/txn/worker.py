"""One consume-transform-produce worker: a transactional Producer and a read_committed
Consumer in the run's group. Started (and restarted, with the same transactional.id and the
next incarnation number) by run.py; every step goes to its own history file.

Loop: consume a batch of input records; log the planned transaction (its inputs and the
outputs it will write) before producing anything; begin; produce one output record per
input record to the output partition n % partitions; send_offsets_to_transaction (the
next offset of every input partition read); sometimes abort on purpose (then rewind to the
batch's first offsets); otherwise log commit-start and commit.

Errors follow librdkafka's transactional contract: a fatal error (fenced by a newer
incarnation, among others) logs and exits 3; an abortable one aborts and rewinds; a
retriable one is retried. SIGTERM finishes the transaction under way and exits 0; SIGUSR1
lifts the rate limit (the runner's drain phase).
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition  # noqa: E402

from history import History, encode_output  # noqa: E402

EXIT_FATAL = 3  # fenced or another fatal producer error: restart with a new incarnation
EXIT_STUCK = 4  # an abort failed: the producer is unusable
EXIT_INIT = 5  # init_transactions failed

stop = False
unlimited = False


def _on_term(_sig, _frm):
    global stop
    stop = True


def _on_usr1(_sig, _frm):
    global unlimited
    unlimited = True


def err_fields(e: Exception) -> dict:
    if isinstance(e, KafkaException) and isinstance(e.args[0], KafkaError):
        k = e.args[0]
        return {
            "err": k.name(),
            "code": k.code(),
            "msg": k.str(),
            "fatal": k.fatal(),
            "retriable": k.retriable(),
            "abortable": k.txn_requires_abort(),
        }
    return {"err": type(e).__name__, "msg": str(e), "fatal": False, "retriable": False, "abortable": False}


class Fatal(Exception):
    pass


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--worker", type=int, required=True)
    ap.add_argument("--incarnation", type=int, required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--out-partitions", type=int, required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--txn-prefix", default="txn-w")
    ap.add_argument("--history", required=True)
    ap.add_argument("--rate", type=float, default=0.0, help="records/s, 0 = unlimited")
    ap.add_argument("--max-batch", type=int, default=10)
    ap.add_argument("--abort-prob", type=float, default=0.1)
    ap.add_argument("--txn-timeout-ms", type=int, default=20000)
    ap.add_argument("--op-timeout", type=float, default=30.0, help="seconds per transactional call")
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()

    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGUSR1, _on_usr1)
    rng = random.Random(a.seed)
    txn_id = f"{a.txn_prefix}{a.worker}"
    h = History(Path(a.history), w=a.worker, inc=a.incarnation, txn_id=txn_id)
    h.log("start", pid=__import__("os").getpid())

    producer = Producer({
        "bootstrap.servers": a.bootstrap,
        "transactional.id": txn_id,
        "transaction.timeout.ms": a.txn_timeout_ms,
        "linger.ms": 5,
        "socket.timeout.ms": 10000,
        "message.timeout.ms": min(int(a.op_timeout * 1000), a.txn_timeout_ms),
    })
    try:
        producer.init_transactions(a.op_timeout)
    except KafkaException as e:
        h.log("init", ok=False, **err_fields(e))
        return EXIT_INIT
    h.log("init", ok=True)

    def on_assign(c, parts):
        h.log("assigned", parts=[p.partition for p in parts])

    def on_revoke(c, parts):
        h.log("revoked", parts=[p.partition for p in parts])

    consumer = Consumer({
        "bootstrap.servers": a.bootstrap,
        "group.id": a.group,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "max.poll.interval.ms": 20000,
        "fetch.wait.max.ms": 100,
        "socket.timeout.ms": 10000,
    })
    consumer.subscribe([a.input], on_assign=on_assign, on_revoke=on_revoke)

    def rewind(first: dict[int, int]):
        """After an abort: back to the batch's first offsets (partitions no longer ours are
        the new owner's business: it starts from the committed offsets)."""
        for p, off in first.items():
            try:
                consumer.seek(TopicPartition(a.input, p, off))
            except KafkaException:
                pass

    def abort(tag: str, first: dict[int, int], deliberate: bool, cause: dict | None = None):
        try:
            producer.abort_transaction(a.op_timeout)
        except KafkaException as e:
            h.log("abort", tag=tag, ok=False, deliberate=deliberate, cause=cause, **err_fields(e))
            if e.args[0].fatal():
                raise Fatal() from e
            # A retriable failure of the abort: once more, then give up on this producer.
            try:
                producer.abort_transaction(a.op_timeout)
            except KafkaException as e2:
                h.log("abort", tag=tag, ok=False, deliberate=deliberate, retry=True, **err_fields(e2))
                raise Fatal() from e2
        h.log("abort", tag=tag, ok=True, deliberate=deliberate, cause=cause)
        rewind(first)

    def retrying(what: str, tag: str, call):
        """Runs a transactional call, retrying retriable errors until op_timeout passes."""
        deadline = time.monotonic() + a.op_timeout
        while True:
            try:
                return call()
            except KafkaException as e:
                k = e.args[0]
                if k.retriable() and not k.fatal() and not k.txn_requires_abort() and time.monotonic() < deadline:
                    h.log("retry", tag=tag, call=what, **err_fields(e))
                    time.sleep(0.2)
                    continue
                raise

    seq = 0
    rc = 0
    try:
        while not stop:
            msgs = consumer.consume(rng.randint(1, a.max_batch), 0.5)
            batch = []
            for m in msgs:
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        h.log("consume-error", **err_fields(KafkaException(m.error())))
                    continue
                batch.append((m.partition(), m.offset(), int(m.value())))
            if not batch:
                continue
            started = time.monotonic()
            seq += 1
            tag = f"{txn_id}.{a.incarnation}.{seq}"
            first: dict[int, int] = {}
            nxt: dict[int, int] = {}
            for p, off, _n in batch:
                first[p] = min(first.get(p, off), off)
                nxt[p] = max(nxt.get(p, 0), off + 1)
            outputs = [[n % a.out_partitions, n] for _p, _o, n in batch]
            deliberate = rng.random() < a.abort_prob
            h.log("txn", tag=tag, inputs=[list(b) for b in batch], outputs=outputs, offsets=nxt)
            try:
                producer.begin_transaction()
                delivered = []

                def on_delivery(err, msg):
                    try:
                        delivered.append([msg.partition(), msg.offset() if err is None else None,
                                          None if err is None else err.name()])
                    except Exception as e:  # noqa: BLE001 - never raise into librdkafka's callback
                        delivered.append([None, None, f"{type(e).__name__}: {e}"])

                for (p, off, n), (op, _n) in zip(batch, outputs):
                    while True:
                        try:
                            producer.produce(a.output, key=str(n).encode(), value=encode_output(n, p, off, tag),
                                             partition=op, on_delivery=on_delivery)
                            break
                        except BufferError:
                            producer.poll(0.05)
                if deliberate and rng.random() < 0.5:
                    # Abort before the records are even flushed, half the time.
                    abort(tag, first, True)
                    continue
                producer.flush(a.op_timeout)
                h.log("produced", tag=tag, delivered=delivered)
                gm = consumer.consumer_group_metadata()
                retrying("send_offsets", tag, lambda: producer.send_offsets_to_transaction(
                    [TopicPartition(a.input, p, o) for p, o in sorted(nxt.items())], gm, a.op_timeout))
                h.log("offsets-sent", tag=tag)
                if deliberate:
                    abort(tag, first, True)
                    continue
                h.log("commit-start", tag=tag)
                retrying("commit", tag, lambda: producer.commit_transaction(a.op_timeout))
                h.log("commit", tag=tag, ok=True)
            except KafkaException as e:
                f = err_fields(e)
                h.log("txn-error", tag=tag, **f)
                if f["fatal"]:
                    raise Fatal() from e
                abort(tag, first, False, cause=f)
                continue
            except Exception as e:  # noqa: BLE001
                # confluent-kafka can surface a fatal producer error as a SystemError out of
                # flush() (a delivery report of a fenced producer): the abort tells which.
                f = err_fields(e)
                h.log("txn-error", tag=tag, **f)
                abort(tag, first, False, cause=f)
                continue
            if a.rate > 0 and not unlimited:
                # Paced so the pre-filled input lasts the run.
                pause = len(batch) / a.rate - (time.monotonic() - started)
                end = time.monotonic() + pause
                while not stop and time.monotonic() < end and not unlimited:
                    time.sleep(min(0.1, max(0.0, end - time.monotonic())))
    except Fatal as e:
        cause = e.__cause__
        h.log("fatal", **(err_fields(cause) if cause else {}))
        rc = EXIT_FATAL
    except KafkaException as e:
        h.log("fatal", unexpected=True, **err_fields(e))
        rc = EXIT_STUCK
    if rc == 0:
        h.log("exit", reason="sigterm")
    try:
        consumer.close()
    except KafkaException:
        pass
    if rc == 0:
        producer.flush(5)
    return rc


if __name__ == "__main__":
    sys.exit(main())
