"""`closedloop serve` as a container runs it: real pipeline against the sandbox, then SIGTERM.

The first test signals from outside once a pull is in flight; the others signal from the
sandbox's fault hook at the request that marks a phase (signal_helpers.PHASES), in the run at
start (``schedule.run_at_start``) and in a run on a tick, and then let `serve --once` finish the job.
"""

from __future__ import annotations

import re
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from signal_helpers import run_cli, sent_twice, sigterm_at, start_serve, sync_runs, wait_for_line, write_config
from sqlmodel import Session, select

from closedloop.sandbox.company import Company
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import SANDBOX_TOKEN, RunningSandbox, start_sandbox
from closedloop.store.engine import make_engine
from closedloop.store.models import JobLease

pytestmark = pytest.mark.slow

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
_HEALTH = "  lease_seconds: 30\n  health_host: 127.0.0.1\n  health_port: 0\n"
# Which run the signal reaches: the one at start (no tick for a day), or the first tick (none at start).
ORIGINS = {
    "start": "schedule:\n  jobs:\n    run:\n      interval_minutes: 1440\n  run_at_start: true\n" + _HEALTH,
    "tick": "schedule:\n  jobs:\n    run:\n      interval_seconds: 2\n  run_at_start: false\n" + _HEALTH,
}


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    now = datetime.now(UTC)
    company = generate_company(contacts=300, seed=11, now=now, days=60)
    with start_sandbox(company, now=now, latency=0.02, burst_limit=100_000) as running:
        yield running


@pytest.fixture(scope="module")
def small_company() -> Company:
    return generate_company(contacts=150, seed=5, now=NOW)


@pytest.fixture
def small_sandbox(small_company: Company) -> Iterator[RunningSandbox]:
    with start_sandbox(small_company, now=NOW, latency=0.01, burst_limit=100_000) as running:
        yield running


def _leases(tmp: Path) -> list[JobLease]:
    engine = make_engine(f"sqlite:///{tmp / 'store.db'}")
    with Session(engine) as session:
        leases = list(session.exec(select(JobLease)).all())
    engine.dispose()
    return leases


def test_sigterm_stops_after_the_batch_in_flight(sandbox: RunningSandbox, tmp_path: Path) -> None:
    config = tmp_path / "closedloop.yaml"
    config.write_text(
        sandbox.config_yaml(store_url=f"sqlite:///{tmp_path / 'store.db'}")
        + "schedule:\n  jobs:\n    run:\n      interval_seconds: 1\n" + _HEALTH,
        encoding="utf-8",
    )
    log = tmp_path / "serve.log"
    with log.open("w", encoding="utf-8") as stderr:
        proc = start_serve(config, stderr)
    try:
        port = int(wait_for_line(log, r"health endpoints on http://127\.0\.0\.1:(\d+)", timeout=20).group(1))
        with _NO_PROXY.open(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            assert resp.status == 200
        wait_for_line(log, r"job run: .*records", timeout=20)  # a pull is in flight
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
    runs, leases = sync_runs(tmp_path), _leases(tmp_path)
    assert len(runs) == 1, "SIGTERM came during the first run: no second one may start"
    assert runs[0].status in {"interrupted", "ok"} and runs[0].finished_at is not None
    if runs[0].status == "interrupted":
        assert leases == [], "an interrupted run frees its lease at once"
    else:  # a finished run guards its tick for the grace period only
        assert all(lease.expires_at <= datetime.now(UTC) for lease in leases)


@pytest.mark.parametrize(("origin", "phase"), [
    ("start", "pull"), ("start", "rebuild"), ("start", "write-back"),
    ("tick", "rebuild"), ("tick", "write-back"),
])
def test_sigterm_in_a_phase_records_interrupted_and_the_next_run_finishes(
    small_sandbox: RunningSandbox, tmp_path: Path, origin: str, phase: str
) -> None:
    config = write_config(small_sandbox, tmp_path, ORIGINS[origin])
    log = tmp_path / "serve.log"
    started: list[subprocess.Popen[str]] = []
    serving: list[subprocess.Popen[bytes]] = []
    plan = sigterm_at(phase, lambda: serving[0].pid if serving else None, small_sandbox)
    with log.open("w", encoding="utf-8") as stderr:
        serving.append(start_serve(config, stderr))
    try:
        code = serving[0].wait(timeout=120)
    finally:
        if serving[0].poll() is None:
            serving[0].kill()
            serving[0].wait(timeout=5)
    text = log.read_text(encoding="utf-8")
    assert plan.fired("kill_process") == 1, f"the {phase} phase was never reached:\n{text[-3000:]}"
    assert code == 0, text[-3000:]
    assert "SIGTERM received" in text and "stopped cleanly" in text
    [run] = sync_runs(tmp_path)
    scheduled = re.search(r"job run scheduled; next tick (\S+)", text)
    assert scheduled is not None, text[-3000:]
    first_tick = datetime.fromisoformat(scheduled.group(1))
    started_at = run.started_at if run.started_at.tzinfo else run.started_at.replace(tzinfo=UTC)
    assert (started_at < first_tick) == (origin == "start"), (started_at, first_tick)
    assert run.status == "interrupted", (run.status, run.errors)
    assert run.finished_at is not None
    assert not any("locked" in m for m in run.errors.get("messages", [])), run.errors
    assert "locked" not in text
    assert _leases(tmp_path) == [], "an interrupted run frees its lease at once"
    before = len(plan.recorded("POST */batch/update"))  # sent before the signal stopped the sending
    assert before >= 2 if phase == "write-back" else before == 0, before
    again = run_cli(["serve", "--once"], config, started)  # the next run resumes and finishes
    assert again.returncode == 0, again.stderr[-3000:]
    assert [r.status for r in sync_runs(tmp_path)] == ["interrupted", "ok"]
    assert plan.recorded("POST */batch/update"), "the next run writes back"
    assert sent_twice(plan) == [], "a value written before the signal is not sent again"
