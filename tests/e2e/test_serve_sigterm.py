"""`closedloop serve` as a container runs it: real pipeline against the sandbox, then SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import SANDBOX_TOKEN, RunningSandbox, start_sandbox
from closedloop.store.engine import make_engine
from closedloop.store.models import JobLease, SyncRun

pytestmark = pytest.mark.slow

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    now = datetime.now(UTC)
    company = generate_company(contacts=300, seed=11, now=now, days=60)
    with start_sandbox(company, now=now, latency=0.02, burst_limit=100_000) as running:
        yield running


def _wait_for_line(log: Path, pattern: str, timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text(encoding="utf-8"))
        if match:
            return match
        time.sleep(0.05)
    raise AssertionError(f"no line matching {pattern!r} in:\n{log.read_text(encoding='utf-8')}")


def test_sigterm_stops_after_the_batch_in_flight(sandbox: RunningSandbox, tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    config = tmp_path / "closedloop.yaml"
    config.write_text(
        sandbox.config_yaml(store_url=f"sqlite:///{db}")
        + "schedule:\n  jobs:\n    run:\n      interval_seconds: 1\n"
          "  lease_seconds: 30\n  health_host: 127.0.0.1\n  health_port: 0\n",
        encoding="utf-8",
    )
    log = tmp_path / "serve.log"
    env = {**os.environ, "CLOSEDLOOP_SANDBOX_TOKEN": SANDBOX_TOKEN, "PYTHONUNBUFFERED": "1"}
    with log.open("w", encoding="utf-8") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "closedloop", "serve", "--config", str(config)],
                                env=env, stdout=subprocess.DEVNULL, stderr=stderr, cwd=tmp_path)
    try:
        port = int(_wait_for_line(log, r"health endpoints on http://127\.0\.0\.1:(\d+)", timeout=20).group(1))
        with _NO_PROXY.open(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            assert resp.status == 200
        _wait_for_line(log, r"job run: .*records", timeout=20)  # a pull is in flight
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text(encoding="utf-8")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    text = log.read_text(encoding="utf-8")
    assert "SIGTERM received" in text and "stopped cleanly" in text
    assert SANDBOX_TOKEN not in text, "the token must never be logged"
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", line) for line in text.splitlines() if line.strip()), \
        "every line starts with a UTC timestamp"
    engine = make_engine(f"sqlite:///{db}")
    with Session(engine) as session:
        runs = session.exec(select(SyncRun)).all()
        leases = session.exec(select(JobLease)).all()
    engine.dispose()
    assert len(runs) == 1, "SIGTERM came during the first run: no second one may start"
    assert runs[0].status in {"interrupted", "ok"} and runs[0].finished_at is not None
    if runs[0].status == "interrupted":
        assert leases == [], "an interrupted run frees its lease at once"
    else:  # a finished run guards its tick for the grace period only
        assert all(lease.expires_at <= datetime.now(UTC) for lease in leases)
