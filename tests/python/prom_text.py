"""A strict parser of the Prometheus text exposition format 0.0.4, for checking what the
broker's /metrics serves: it fails on anything Prometheus would reject or that the format
says must not happen (a family's TYPE after its samples or twice, interleaved families,
bad names or escapes, histogram buckets that are not cumulative or lack +Inf, a +Inf
bucket that differs from _count, negative counters)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class ExpositionError(AssertionError):
    pass


@dataclass
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass
class Family:
    name: str
    type: str = "untyped"
    help: str | None = None
    samples: list[Sample] = field(default_factory=list)


def parse_value(text: str, line: int) -> float:
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
        raise ExpositionError(f"line {line}: bad value {text!r}")
    return float(text)


def unescape(text: str, allowed: str, line: int) -> str:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text) or text[i + 1] not in allowed:
                raise ExpositionError(f"line {line}: bad escape in {text!r}")
            out.append({"\\": "\\", '"': '"', "n": "\n"}[text[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_labels(text: str, line: int) -> tuple[dict[str, str], str]:
    """Parses `{a="b",...}` at the start of `text`; returns the labels and the rest."""
    assert text.startswith("{")
    labels: dict[str, str] = {}
    i = 1
    while True:
        if text[i] == "}":
            return labels, text[i + 1 :]
        m = LABEL_NAME.match(text, i)
        if not m:
            raise ExpositionError(f"line {line}: bad label name at {text[i:]!r}")
        name = m.group(0)
        i = m.end()
        if text[i : i + 2] != '="':
            raise ExpositionError(f"line {line}: expected =\" after label {name}")
        i += 2
        start = i
        while i < len(text) and text[i] != '"':
            i += 2 if text[i] == "\\" else 1
        if i >= len(text):
            raise ExpositionError(f"line {line}: unterminated label value")
        if name in labels:
            raise ExpositionError(f"line {line}: label {name} given twice")
        labels[name] = unescape(text[start:i], '\\"n', line)
        i += 1
        if text[i] == ",":
            i += 1
        elif text[i] != "}":
            raise ExpositionError(f"line {line}: expected , or }} after label {name}")


def family_of(sample: str, families: dict[str, Family]) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        base = sample[: -len(suffix)] if sample.endswith(suffix) else None
        if base and base in families and families[base].type in ("histogram", "summary"):
            return base
    return sample


def parse(text: str) -> dict[str, Family]:
    if text and not text.endswith("\n"):
        raise ExpositionError("the exposition must end with a newline")
    families: dict[str, Family] = {}
    typed: set[str] = set()
    current: str | None = None
    finished: set[str] = set()
    for n, raw in enumerate(text.split("\n")[:-1], start=1):
        line = raw.strip(" \t")
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.fullmatch(name):
                    raise ExpositionError(f"line {n}: bad metric name {name!r}")
                fam = families.setdefault(name, Family(name))
                if fam.samples:
                    raise ExpositionError(f"line {n}: {parts[1]} of {name} after its samples")
                if parts[1] == "TYPE":
                    if name in typed:
                        raise ExpositionError(f"line {n}: second TYPE for {name}")
                    kind = parts[3] if len(parts) > 3 else ""
                    if kind not in TYPES:
                        raise ExpositionError(f"line {n}: bad type {kind!r}")
                    fam.type = kind
                    typed.add(name)
                else:
                    if fam.help is not None:
                        raise ExpositionError(f"line {n}: second HELP for {name}")
                    fam.help = unescape(parts[3] if len(parts) > 3 else "", "\\n", n)
            continue
        m = NAME.match(line)
        if not m:
            raise ExpositionError(f"line {n}: bad sample {line!r}")
        name, rest = m.group(0), line[m.end() :]
        labels: dict[str, str] = {}
        if rest.startswith("{"):
            labels, rest = parse_labels(rest, n)
        fields = rest.split()
        if not rest.startswith((" ", "\t")) or len(fields) not in (1, 2):
            raise ExpositionError(f"line {n}: expected a value after {name}")
        value = parse_value(fields[0], n)
        fam_name = family_of(name, families)
        if fam_name not in typed:
            raise ExpositionError(f"line {n}: sample {name} has no TYPE line before it")
        if fam_name != current:
            if fam_name in finished:
                raise ExpositionError(f"line {n}: samples of {fam_name} are not together")
            if current is not None:
                finished.add(current)
            current = fam_name
        fam = families[fam_name]
        if fam.type == "counter" and not value >= 0:
            raise ExpositionError(f"line {n}: counter {name} is {value}")
        fam.samples.append(Sample(name, labels, value))
    for fam in families.values():
        if fam.type == "histogram":
            check_histogram(fam)
    return families


def check_histogram(fam: Family) -> None:
    series: dict[tuple, dict] = {}
    for s in fam.samples:
        key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        entry = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if s.name == fam.name + "_bucket":
            if "le" not in s.labels:
                raise ExpositionError(f"{fam.name}: bucket without le")
            entry["buckets"].append((parse_value(s.labels["le"], 0), s.value))
        elif s.name == fam.name + "_sum":
            entry["sum"] = s.value
        elif s.name == fam.name + "_count":
            entry["count"] = s.value
        else:
            raise ExpositionError(f"{fam.name}: unexpected sample {s.name}")
    for key, e in series.items():
        bounds = [b for b, _ in e["buckets"]]
        counts = [c for _, c in e["buckets"]]
        if not bounds or bounds[-1] != math.inf:
            raise ExpositionError(f"{fam.name}{key}: no +Inf bucket last")
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ExpositionError(f"{fam.name}{key}: buckets not ascending")
        if counts != sorted(counts):
            raise ExpositionError(f"{fam.name}{key}: buckets not cumulative: {counts}")
        if e["count"] is None or e["sum"] is None:
            raise ExpositionError(f"{fam.name}{key}: _sum or _count missing")
        if e["count"] != counts[-1]:
            raise ExpositionError(f"{fam.name}{key}: +Inf {counts[-1]} != _count {e['count']}")


def value(families: dict[str, Family], name: str, **labels: str) -> float | None:
    """The value of the one sample `name` with exactly these labels, or None."""
    fam = families.get(family_of(name, families))
    if fam is None:
        return None
    for s in fam.samples:
        if s.name == name and s.labels == labels:
            return s.value
    return None


def samples(families: dict[str, Family], name: str) -> list[Sample]:
    fam = families.get(family_of(name, families))
    return [s for s in fam.samples if s.name == name] if fam else []
