"""The reference Apache Kafka and a Strom with the same defaults, as module-scoped pytest
fixtures shared by the test modules that compare the two (test_differential.py,
test_kafka_tools.py), and Kafka's command-line tools from scripts/kafka-ref.sh's cache.

A test module imports `kafka_broker`, `strom_broker` and `bootstrap`; each module then
gets its own pair of brokers. `bootstrap` is parametrized over both, Kafka first, so every
expectation is shown to be Kafka's before Strom is held to it. `on_both(strom_xfail=...)`
marks a test that is known to fail on Strom as a strict xfail for the Strom side only: it
turns into a failure when Strom is fixed, and the marker is then removed.

The reference broker needs Java 17+ and, the first time, Maven (the jars are cached);
where they are missing the Kafka side, and every use of Kafka's tools, is skipped with the
reason, unless STROM_REQUIRE_KAFKA_REF=1 makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

import pytest

from conftest import REPO, StromBroker

SCRIPT = REPO / "scripts" / "kafka-ref.sh"
# A tool is one JVM start (~1.5 s here); the long ones (perf tests, consumers) stay well
# below this, which only bounds a hang.
TOOL_TIMEOUT_S = 90


def require_java(maven: bool = True) -> None:
    """Skips (or fails, with STROM_REQUIRE_KAFKA_REF=1) when the reference cannot run."""
    missing = [t for t in ("java", "mvn") if shutil.which(t) is None and (maven or t == "java")]
    if missing:
        reason = f"the reference Kafka needs {' and '.join(missing)}"
        if os.environ.get("STROM_REQUIRE_KAFKA_REF") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def kafka_broker(tmp_path_factory) -> str:
    """The reference Apache Kafka (one KRaft node) for this module's tests."""
    require_java()
    state = tmp_path_factory.mktemp("kafka-ref")
    env = {**os.environ, "KAFKA_REF_DIR": str(state)}
    started = subprocess.run(
        [str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=600
    )
    if started.returncode != 0:
        pytest.fail(f"the reference Kafka did not start:\n{started.stdout}\n{started.stderr}")
    bootstrap = started.stdout.strip().splitlines()[-1]
    yield bootstrap
    subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def strom_broker(tmp_path_factory) -> str:
    """A Strom with the reference's defaults (4 partitions, no rebalance delay)."""
    d = tmp_path_factory.mktemp("strom")
    b = StromBroker(
        d / "data",
        d / "strom.stderr",
        ["--default-partitions", "4", "--group-initial-rebalance-delay-ms", "0"],
    )
    b.start()
    yield b.bootstrap
    assert b.stop() == 0, "strom exited uncleanly"
    assert "panicked" not in b.log_text()


@pytest.fixture(params=["kafka", "strom"])
def bootstrap(request) -> str:
    """Each test runs against Kafka first, then Strom."""
    return request.getfixturevalue(f"{request.param}_broker")


def on_both(strom_xfail: str):
    """Parametrizes `bootstrap` over both brokers, the Strom side a strict xfail naming the
    difference (`strom_xfail`): Kafka's behaviour is asserted unweakened on both."""
    return pytest.mark.parametrize(
        "bootstrap",
        [
            "kafka",
            pytest.param("strom", marks=pytest.mark.xfail(strict=True, reason=strom_xfail)),
        ],
        indirect=True,
    )


@dataclass
class ToolRun:
    args: list[str]
    rc: int
    stdout: str
    stderr: str

    def ok(self) -> str:
        """stdout, after asserting the tool exited 0."""
        assert self.rc == 0, f"{' '.join(self.args)} exited {self.rc}:\n{self.stdout}\n{self.stderr}"
        return self.stdout

    def lines(self) -> list[str]:
        return self.ok().splitlines()


def run_tool(name: str, *args: str, stdin: str | None = None, timeout: float = TOOL_TIMEOUT_S) -> ToolRun:
    """One of Kafka's tools (`scripts/kafka-ref.sh tool NAME ARGS...`), its exit code and
    output. The tools log their warnings and errors to stderr."""
    require_java(maven=False)
    argv = [str(SCRIPT), "tool", name, *args]
    out = subprocess.run(
        argv,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return ToolRun([name, *args], out.returncode, out.stdout, out.stderr)
