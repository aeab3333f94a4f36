#!/usr/bin/env python3
"""Import circles between the top-level modules of a crate (default: strom-broker).

    python3 scripts/modgraph.py [crates/<crate>/src] [--print]

A top-level module is a file or directory under src/; module A depends on module B when
any non-test file of A names `crate::B`. Test code (`tests.rs`, `*_tests.rs`,
`test_broker.rs`, and everything after `#[cfg(test)]\\nmod tests`) is left out: tests may
reach anywhere. Exits 1 and names each circle when there is one. `--print` lists every
module's dependencies.
"""

import os
import re
import sys

TEST_FILES = ("tests.rs", "test_broker.rs")


def module_deps(root: str) -> dict[str, set[str]]:
    deps: dict[str, set[str]] = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs") or f in TEST_FILES or f.endswith("_tests.rs"):
                continue
            path = os.path.join(dirpath, f)
            parts = os.path.relpath(path, root)[:-3].split(os.sep)
            if parts in (["lib"], ["main"]):
                continue
            top = parts[0]
            src = open(path, encoding="utf-8").read().split("#[cfg(test)]\nmod tests")[0]
            names = set(re.findall(r"crate::([a-z_][a-z0-9_]*)", src))
            for group in re.findall(r"use crate::\{([^}]*)\}", src, re.S):
                names.update(re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group))
            names.discard(top)
            deps.setdefault(top, set()).update(names)
    for m in deps:
        deps[m] &= deps.keys()
    return deps


def circles(deps: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(deps[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(deps):
        if v not in index:
            visit(v)
    return found


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "crates", "strom-broker", "src")
    deps = module_deps(root)
    if "--print" in sys.argv:
        for m in sorted(deps):
            print(f"{m} -> {', '.join(sorted(deps[m])) or '-'}")
    found = circles(deps)
    for c in found:
        print("import circle:", " <-> ".join(c), file=sys.stderr)
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
