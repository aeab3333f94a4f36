"""The transaction history checker: reads a run's history (RUN/history/*.jsonl) and its
final reads (RUN/final.json, written by run.py) and reports every anomaly found.

    python tests/txn/checker.py RUN_DIR      # exit 0: no anomaly; 1: anomalies; 2: nothing to check

A transaction's outcome comes from its worker's history:
- committed: commit_transaction returned (its "commit" line, ok);
- aborted: abort_transaction returned after it (on purpose, or after an abortable error), or
  commit was never called (no "commit-start": no EndTxn(commit) was ever sent, so the
  transaction can only have been aborted, by the coordinator or by the next incarnation);
- unknown: commit was called but did not return (the worker was killed or fenced in it):
  it may have committed, or not; either is allowed, but only all of it.

Anomalies:
- aborted-read: a record of an aborted transaction visible to read_committed (the final
  read, or a reader during the run);
- lost-write: a record of a committed transaction missing from the final read_committed;
- torn: a transaction (any outcome) with some of its records visible to read_committed and
  others not;
- duplicate: an input record transformed into the output more than once among committed;
- offsets: the group's committed offsets disagree with the output: an input record below
  the committed offset not in the output exactly once, or one at or above it in the output
  (its offsets were not committed with it);
- zombie-commit: a commit that returned ok although it started after a newer incarnation of
  the same transactional.id had finished init_transactions (it should have been fenced).
  "Newer" is certain only for an incarnation whose process started after this one's
  init_transactions returned (one paused inside init_transactions may legitimately finish
  it after its successor and fence that one instead);
- unknown-record: a record in the output no transaction of the history wrote, or whose value
  does not say where it came from;
- mismatch: a record read_committed shows that read_uncommitted has differently at the same
  offset, a transformed record whose input number is not at the input offset it names, or a
  record a reader saw at an offset that the final read holds differently or not at all.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from history import decode_output, read_history  # noqa: E402

SHOW = 10  # examples per anomaly kind in the report


class Txn:
    def __init__(self, tag: str, line: dict):
        self.tag = tag
        self.w = line["w"]
        self.inc = line["inc"]
        self.txn_id = line["txn_id"]
        self.inputs = [tuple(i) for i in line["inputs"]]  # (partition, offset, n)
        self.outputs = [tuple(o) for o in line["outputs"]]  # (output partition, n)
        self.commit_start: float | None = None
        self.committed = False
        self.aborted = False
        self.deliberate = False
        self.errors: list[str] = []

    @property
    def outcome(self) -> str:
        if self.committed:
            return "committed"
        if self.aborted or self.commit_start is None:
            return "aborted"
        return "unknown"


def load_final(run: Path) -> dict:
    f = json.loads((run / "final.json").read_text())
    out = {}
    for key in ("rc", "ru"):
        out[key] = {int(p): [(o, v) for o, v in recs] for p, recs in f[key].items()}
    out["input"] = {int(p): {o: n for o, n in recs} for p, recs in f["input"].items()}
    out["committed"] = {int(p): o for p, o in f["committed"].items()}
    out["input_end"] = {int(p): o for p, o in f["input_end"].items()}
    out["meta"] = f.get("meta", {})
    return out


def check(run: Path) -> dict:
    """Returns the report: {"anomalies": {kind: [text...]}, "stats": {...}, "notes": [...]}."""
    lines, torn_lines = read_history(run / "history")
    final = load_final(run)
    anomalies: dict[str, list[str]] = defaultdict(list)
    notes: list[str] = []

    # -- the transactions and their outcomes --------------------------------------------
    txns: dict[str, Txn] = {}
    # txn_id -> incarnation -> [process start, init_transactions returned]
    inits: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(lambda: [None, None]))
    nemesis = Counter()
    for l in lines:
        op = l["op"]
        if op == "txn":
            txns[l["tag"]] = Txn(l["tag"], l)
        elif op == "commit-start":
            txns[l["tag"]].commit_start = l["t"]
        elif op == "commit" and l.get("ok"):
            txns[l["tag"]].committed = True
        elif op == "abort" and l.get("ok"):
            t = txns[l["tag"]]
            t.aborted = True
            t.deliberate = bool(l.get("deliberate"))
        elif op in ("txn-error", "retry") and l.get("tag") in txns:
            txns[l["tag"]].errors.append(l.get("err", "?"))
        elif op == "start" and "txn_id" in l:
            inits[l["txn_id"]][l["inc"]][0] = l["t"]
        elif op == "init" and l.get("ok"):
            inits[l["txn_id"]][l["inc"]][1] = l["t"]
        elif op == "nemesis":
            nemesis[l["action"]] += 1
    for t in txns.values():
        if t.committed and t.aborted:
            anomalies["history"].append(f"{t.tag}: both commit and abort returned ok")

    # Zombie commits. The fencing order is the order in which the coordinator handled the
    # InitProducerId requests, not the incarnation numbers (an incarnation paused inside
    # init_transactions finishes it after its successor, and fences the successor). It is
    # certain only when one incarnation's init_transactions returned before another's
    # process even started: then the later one is newer, and once its init returned, no
    # commit the older one starts may succeed.
    for t in txns.values():
        if not t.committed or t.commit_start is None:
            continue
        mine = inits[t.txn_id][t.inc]
        if mine[1] is None:
            anomalies["history"].append(f"{t.tag} committed without init_transactions in the history")
            continue
        newer = [(inc, se) for inc, se in inits[t.txn_id].items()
                 if inc != t.inc and se[0] is not None and se[1] is not None
                 and mine[1] < se[0] and se[1] < t.commit_start]
        if newer:
            inc, (_s, e) = min(newer, key=lambda x: x[1][1])
            anomalies["zombie-commit"].append(
                f"{t.tag} committed although incarnation {inc} of {t.txn_id}, started after this one's "
                f"init_transactions returned, had initialised {t.commit_start - e:.3f}s before this commit started"
            )

    # -- the final read_committed ---------------------------------------------------------
    rc_by_tag: dict[str, list[tuple[int, int, int]]] = defaultdict(list)  # tag -> (p, off, n)
    rc_count_n: Counter = Counter()
    rc_tags_of_n: dict[int, list[str]] = defaultdict(list)
    for p, recs in final["rc"].items():
        for off, v in recs:
            d = decode_output(v.encode() if isinstance(v, str) else v)
            if d is None:
                anomalies["unknown-record"].append(f"output {p}@{off}: value {v[:80]!r} is not a transformed record")
                continue
            t = txns.get(d["txn"])
            if t is None:
                anomalies["unknown-record"].append(f"output {p}@{off}: transaction {d['txn']} is not in the history")
                continue
            rc_by_tag[d["txn"]].append((p, off, d["n"]))
            rc_count_n[d["n"]] += 1
            rc_tags_of_n[d["n"]].append(d["txn"])
            if t.outcome == "aborted":
                anomalies["aborted-read"].append(
                    f"output {p}@{off} (input {d['n']}) of {t.tag}, aborted"
                    f"{' on purpose' if t.deliberate else ''}, is visible to read_committed"
                )
            if final["input"].get(d["ip"], {}).get(d["io"]) != d["n"]:
                anomalies["mismatch"].append(
                    f"output {p}@{off} says input {d['n']} was at input {d['ip']}@{d['io']}, "
                    f"which holds {final['input'].get(d['ip'], {}).get(d['io'])}"
                )
            if [p, d["n"]] not in [list(o) for o in t.outputs]:
                anomalies["mismatch"].append(f"output {p}@{off}: {t.tag} did not write input {d['n']} to partition {p}")

    # -- lost and torn --------------------------------------------------------------------
    for t in txns.values():
        want = Counter(t.outputs)
        got = Counter((p, n) for p, _off, n in rc_by_tag.get(t.tag, []))
        missing = want - got
        if t.committed and missing:
            anomalies["lost-write"].append(
                f"{t.tag} committed {sum(want.values())} records; {sum(missing.values())} missing from "
                f"read_committed (first (partition, input): {sorted(missing)[:5]})"
            )
        if got and missing:
            anomalies["torn"].append(
                f"{t.tag} ({t.outcome}): {sum(got.values())} of {sum(want.values())} records visible; "
                f"missing {sorted(missing)[:5]}, visible partitions {sorted({p for p, _ in got})}"
            )

    # -- duplicates -----------------------------------------------------------------------
    for n, k in sorted(rc_count_n.items()):
        if k > 1:
            anomalies["duplicate"].append(f"input {n} transformed {k} times among committed: {rc_tags_of_n[n]}")

    # -- committed offsets against the output ---------------------------------------------
    for p, recs in sorted(final["input"].items()):
        co = final["committed"].get(p)
        co = 0 if co is None or co < 0 else co
        for off, n in sorted(recs.items()):
            k = rc_count_n.get(n, 0)
            if off < co and k != 1:
                anomalies["offsets"].append(
                    f"input {p}@{off} (input {n}) is below the committed offset {co} but in the output {k} times"
                )
            elif off >= co and k != 0:
                anomalies["offsets"].append(
                    f"input {p}@{off} (input {n}) is at or above the committed offset {co} but in the output "
                    f"{k} times ({rc_tags_of_n[n]})"
                )

    # -- read_committed against read_uncommitted ------------------------------------------
    ru_at = {(p, off): v for p, recs in final["ru"].items() for off, v in recs}
    ru_outcomes = Counter()
    for (p, off), v in ru_at.items():
        d = decode_output(v.encode() if isinstance(v, str) else v)
        ru_outcomes[txns[d["txn"]].outcome if d and d["txn"] in txns else "unknown-record"] += 1
    for p, recs in final["rc"].items():
        for off, v in recs:
            if ru_at.get((p, off)) != v:
                anomalies["mismatch"].append(
                    f"output {p}@{off}: read_committed has {v[:60]!r}, read_uncommitted {str(ru_at.get((p, off)))[:60]!r}"
                )

    # -- what readers saw during the run --------------------------------------------------
    rc_at = {(p, off): v for p, recs in final["rc"].items() for off, v in recs}
    rc_tag_at = {}
    for (p, off), v in rc_at.items():
        d = decode_output(v.encode())
        rc_tag_at[(p, off)] = d and d["txn"]
    reader_seen = 0
    last_off: dict[tuple[int, int], int] = {}
    for l in lines:
        if l["op"] != "read":
            continue
        for p, off, tag, n in l["recs"]:
            reader_seen += 1
            key = (l["reader"], p)
            if off <= last_off.get(key, -1):
                anomalies["mismatch"].append(f"reader {l['reader']} read output {p}@{off} after offset {last_off[key]}")
            last_off[key] = off
            t = txns.get(tag)
            if t is not None and t.outcome == "aborted":
                anomalies["aborted-read"].append(
                    f"reader {l['reader']} saw output {p}@{off} (input {n}) of {tag}, aborted"
                    f"{' on purpose' if t.deliberate else ''}"
                )
            if (p, off) not in rc_at:
                anomalies["mismatch"].append(
                    f"reader {l['reader']} saw output {p}@{off} ({tag}), not in the final read_committed"
                )
            elif rc_tag_at[(p, off)] != tag:
                anomalies["mismatch"].append(
                    f"reader {l['reader']} saw output {p}@{off} from {tag}; the final read has it from {rc_tag_at[(p, off)]}"
                )

    # -- statistics -----------------------------------------------------------------------
    outcomes = Counter(t.outcome for t in txns.values())
    input_total = sum(len(r) for r in final["input"].values())
    committed_total = sum(
        max(0, final["committed"].get(p) or 0) for p in final["input"]
    )
    stats = {
        "transactions": len(txns),
        "committed": outcomes["committed"],
        "aborted": outcomes["aborted"],
        "aborted_on_purpose": sum(1 for t in txns.values() if t.outcome == "aborted" and t.deliberate),
        "aborted_never_committed": sum(1 for t in txns.values() if t.commit_start is None and not t.aborted),
        "unknown_outcome": outcomes["unknown"],
        "unknown_outcome_visible": sum(1 for t in txns.values() if t.outcome == "unknown" and rc_by_tag.get(t.tag)),
        "input_records": input_total,
        "input_offsets_committed": committed_total,
        "output_read_committed": sum(len(r) for r in final["rc"].values()),
        "output_read_uncommitted": sum(len(r) for r in final["ru"].values()),
        "read_uncommitted_by_outcome": dict(ru_outcomes),
        "reader_records_seen": reader_seen,
        "incarnations": sum(1 for v in inits.values() for se in v.values() if se[1] is not None),
        "nemesis": dict(nemesis),
        "zombies_fenced": sum(1 for l in lines if l["op"] == "zombie" and l.get("fenced")),
        "zombies_not_fenced": sum(1 for l in lines if l["op"] == "zombie" and not l.get("fenced")),
        "torn_history_lines": torn_lines,
    }
    if committed_total < input_total:
        notes.append(
            f"not drained: {committed_total} of {input_total} input offsets committed "
            "(the checks hold below the committed offsets)"
        )
    if outcomes["committed"] == 0:
        notes.append("no transaction committed: nothing was checked")
    return {"anomalies": dict(anomalies), "stats": stats, "notes": notes, "meta": final["meta"]}


def render(report: dict) -> str:
    out = []
    meta = report.get("meta") or {}
    if meta:
        out.append("run: " + ", ".join(f"{k}={v}" for k, v in meta.items()))
    s = report["stats"]
    out.append("stats: " + json.dumps(s, sort_keys=False))
    for n in report["notes"]:
        out.append(f"note: {n}")
    an = report["anomalies"]
    if not an:
        out.append("OK: no anomaly (aborted reads, lost writes, torn transactions, duplicates, "
                   "offsets, zombie commits, unknown records, mismatches)")
    for kind, items in sorted(an.items()):
        out.append(f"ANOMALY {kind}: {len(items)}")
        for i in items[:SHOW]:
            out.append(f"  {i}")
        if len(items) > SHOW:
            out.append(f"  ... {len(items) - SHOW} more")
    return "\n".join(out)


def exit_code(report: dict) -> int:
    if report["anomalies"]:
        return 1
    if report["stats"]["committed"] == 0:
        return 2
    return 0


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: checker.py RUN_DIR", file=sys.stderr)
        return 2
    run = Path(sys.argv[1])
    report = check(run)
    (run / "report.json").write_text(json.dumps(report, indent=1))
    print(render(report))
    return exit_code(report)


if __name__ == "__main__":
    sys.exit(main())
