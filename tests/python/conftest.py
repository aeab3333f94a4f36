"""pytest fixtures: a real `strom serve` process per test, on a free port with a fresh data dir.

The `broker` fixture starts target/release/strom (under $CARGO_TARGET_DIR if set; or
$STROM_BIN), waits until it answers an ApiVersions request, and stops it with SIGTERM at
teardown (a non-zero exit or a hang is a test error). Its stderr goes to a file that is
attached to the report of a failing test.
Options per test: `@pytest.mark.strom_args("--retention-check-ms", "500")`, and
`@pytest.mark.strom_log("debug")` for the log filter (STROM_LOG). Every broker serves its
metrics and health endpoints on a free port of its own (`metrics_url`).
"""

from __future__ import annotations

import gc
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import kafka_wire

REPO = Path(__file__).resolve().parents[2]
# Where scripts/test-clients.sh's `cargo build --release` put it (CARGO_TARGET_DIR honoured).
TARGET_DIR = REPO / os.environ.get("CARGO_TARGET_DIR", "target")
STROM_BIN = Path(os.environ.get("STROM_BIN", TARGET_DIR / "release" / "strom"))

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StromBroker:
    """One strom process; restartable on the same data dir and port."""

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        args: list[str],
        log_filter: str | None = None,
        env: dict[str, str] | None = None,
    ):
        self.data_dir = data_dir
        # Extra environment, e.g. STROM_FAULTS for storage fault tests.
        self.env = dict(env or {})
        self.log_path = log_path
        self.args = list(args)
        self.log_filter = log_filter or os.environ.get("STROM_TEST_LOG", "info,strom_broker=debug")
        self.port = free_port()
        self.metrics_port = free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def http_get(self, path: str, timeout: float = 10.0) -> tuple[int, str, str]:
        """GET on the metrics endpoint: (status, content type, body); errors are answers too."""
        try:
            with urllib.request.urlopen(self.metrics_url + path, timeout=timeout) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read().decode()

    def command(self) -> list[str]:
        return [
            str(STROM_BIN),
            "serve",
            "--listen",
            self.bootstrap,
            "--data-dir",
            str(self.data_dir),
            "--metrics-listen",
            f"127.0.0.1:{self.metrics_port}",
            *self.args,
        ]

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = {k: v for k, v in os.environ.items() if not k.startswith("STROM_")}
        env.setdefault("RUST_BACKTRACE", "1")
        env["NO_COLOR"] = "1"
        env["STROM_LOG"] = self.log_filter
        env.update(self.env)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"==== start #{self.starts}: {' '.join(self.command())}\n".encode())
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
        self.wait_ready()

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Polls with ApiVersions until the broker answers (a bound port alone is not enough:
        the listener is bound before the data directory is recovered)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError(f"strom exited with {rc} while starting:\n{self.log_tail()}")
            try:
                with kafka_wire.Conn(self.bootstrap, timeout=2.0) as c:
                    error, apis = c.api_versions(0)
                    if error == 0 and apis:
                        return
            except (OSError, kafka_wire.ConnectionClosed) as e:
                last = e
            time.sleep(0.05)
        raise RuntimeError(f"strom did not answer within {timeout}s ({last}):\n{self.log_tail()}")

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code. A hang is killed and reported."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"strom did not stop within {STOP_TIMEOUT_S}s of SIGTERM")

    def kill(self) -> None:
        """SIGKILL: a crash, no shutdown code runs."""
        assert self.proc is not None and self.proc.poll() is None, "not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT_S)
        with open(self.log_path, "ab") as log:
            log.write(b"==== killed with SIGKILL\n")

    def restart(self) -> None:
        """Clean restart on the same data dir and port; the shutdown must succeed."""
        rc = self.stop()
        assert rc == 0, f"strom exited with {rc} after SIGTERM:\n{self.log_tail()}"
        self.start()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 200) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "strom_args(*args): extra `strom serve` flags for this test's broker"
    )
    config.addinivalue_line(
        "markers", "strom_log(filter): STROM_LOG of this test's broker (default info,strom_broker=debug)"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    broker = getattr(item, "_strom_broker", None)
    if broker is not None and report.failed:
        report.sections.append(
            (f"strom stderr ({broker.log_path})", broker.log_tail(400))
        )


@pytest.fixture
def broker(request, tmp_path) -> StromBroker:
    if not STROM_BIN.exists():
        pytest.fail(f"{STROM_BIN} is missing: run `cargo build --release -p strom`")
    args = ["--default-partitions", "1"]
    marker = request.node.get_closest_marker("strom_args")
    if marker is not None:
        args += list(marker.args)
    log_marker = request.node.get_closest_marker("strom_log")
    log_filter = log_marker.args[0] if log_marker is not None else None
    b = StromBroker(tmp_path / "data", tmp_path / "strom.stderr", args, log_filter)
    request.node._strom_broker = b
    b.start()
    yield b
    # Destroy the test's clients (some sit in reference cycles through their callbacks)
    # while the broker still runs, so they do not log reconnect failures into later tests.
    gc.collect()
    rc = b.stop()
    log = b.log_text()
    assert "panicked" not in log, "strom panicked (see its stderr)"
    assert rc == 0, f"strom exited with {rc} after SIGTERM"


@pytest.fixture
def topic(request) -> str:
    """A topic name unique to the test."""
    name = re.sub(r"[^a-zA-Z0-9._-]", "_", request.node.name)[:150]
    return f"t.{name}.{os.urandom(3).hex()}"
