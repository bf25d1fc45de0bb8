"""Three replicas, separate processes, one PostgreSQL store, a one-second job.

Phase 1: short runs; every tick must be run by exactly one replica.  Phase 2: a long run; its
holder is SIGKILLed, and the job must pass to another replica only after the lease ran out.
Phase 3: SIGTERM; the run in flight stops between steps, and the lease is freed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from closedloop.store.models import JobLease

LEASE_SECONDS = 2.0

REPLICA = r"""
import json, os, signal, sys, time
from closedloop.config.schedule import ScheduleConfig
from closedloop.store.engine import make_engine
from closedloop.sync.scheduler import JobOutcome, Scheduler

url, holder, out, mode_file, lease = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
schedule = ScheduleConfig.model_validate({"jobs": {"run": {"interval_seconds": 1}}, "lease_seconds": lease,
                                          "health_enabled": False})

def record(**fields):
    with open(out, "a", encoding="utf-8") as f:
        f.write(json.dumps({"holder": holder, "t": time.time(), **fields}) + "\n")

def body(ctx):
    long = os.path.exists(mode_file)
    record(phase="start", tick=ctx.tick.timestamp(), long=long)
    deadline = time.monotonic() + (30 if long else 0.3)
    while time.monotonic() < deadline:
        if long and ctx.should_stop():
            record(phase="end", tick=ctx.tick.timestamp(), status="interrupted")
            return JobOutcome(status="interrupted")
        time.sleep(0.02)
    record(phase="end", tick=ctx.tick.timestamp(), status="ok")
    return JobOutcome(status="ok")

scheduler = Scheduler(schedule, make_engine(url), job_factory=lambda job: body, holder=holder)
signal.signal(signal.SIGTERM, lambda *_: scheduler.stop_requested.set())
record(phase="up")
scheduler.run_until_stopped()
record(phase="down")
"""


def _records(folder: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in folder.glob("*.jsonl"):
        rows.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return sorted(rows, key=lambda r: r["t"])


def _wait_for(folder: Path, predicate: Any, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _records(folder)
        if predicate(rows):
            return rows
        time.sleep(0.05)
    raise AssertionError(f"timed out; records so far: {_records(folder)[-10:]}")


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_one_execution_per_tick_and_takeover_after_a_kill(
    engine: Engine, store_url: str, tmp_path: Path,
) -> None:
    mode_file = tmp_path / "long-mode"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = {
        f"replica{i}": subprocess.Popen(
            [sys.executable, "-c", REPLICA, store_url, f"replica{i}", str(tmp_path / f"replica{i}.jsonl"),
             str(mode_file), str(LEASE_SECONDS)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for i in range(3)
    }
    try:
        _wait_for(tmp_path, lambda rows: sum(r["phase"] == "up" for r in rows) == 3, timeout=20)
        # Phase 1: five ticks with all three replicas up.
        first = _wait_for(tmp_path, lambda rows: sum(r["phase"] == "start" for r in rows) >= 1, timeout=5)
        first_tick = min(r["tick"] for r in first if r["phase"] == "start")
        short = _wait_for(tmp_path, lambda rows: sum(r["phase"] == "end" for r in rows) >= 6, timeout=10)
        mode_file.touch()
        starts = [r for r in short if r["phase"] == "start" and r["tick"] > first_tick]
        per_tick = Counter(r["tick"] for r in starts)
        assert per_tick and max(per_tick.values()) == 1, f"a tick ran twice: {per_tick}"
        ticks = sorted(per_tick)
        assert [b - a for a, b in pairwise(ticks)] == [1.0] * (len(ticks) - 1), \
            f"a tick was run by nobody: {ticks}"
        ends = [r for r in short if r["phase"] == "end"]
        spans = sorted((s["t"], next(e["t"] for e in ends if e["tick"] == s["tick"] and e["holder"] == s["holder"]))
                       for s in starts if any(e["tick"] == s["tick"] for e in ends))
        assert all(prev_end <= start for (_, prev_end), (start, _) in pairwise(spans)), \
            "two executions overlapped"

        # Phase 2: a long run; kill its holder outright.
        rows = _wait_for(tmp_path, lambda rows: any(r["phase"] == "start" and r["long"] for r in rows), timeout=5)
        victim = next(r for r in rows if r["phase"] == "start" and r["long"])["holder"]
        with Session(engine) as session:
            assert [lease.holder for lease in session.exec(select(JobLease))] == [victim]
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait(timeout=5)
        killed_at = time.time()
        rows = _wait_for(tmp_path, lambda rows: any(r["phase"] == "start" and r["long"] and r["holder"] != victim
                                                    for r in rows), timeout=LEASE_SECONDS + 5)
        heir = next(r for r in rows if r["phase"] == "start" and r["long"] and r["holder"] != victim)
        waited = heir["t"] - killed_at
        heartbeat = LEASE_SECONDS / 3
        assert LEASE_SECONDS - heartbeat - 0.5 <= waited <= LEASE_SECONDS + 2.0, \
            f"took over after {waited:.2f}s with a {LEASE_SECONDS}s lease"

        # Phase 3: SIGTERM the survivors; the long run stops between steps and frees the lease.
        survivors = [name for name in procs if name != victim]
        for name in survivors:
            procs[name].send_signal(signal.SIGTERM)
        for name in survivors:
            stderr = procs[name].stderr
            assert procs[name].wait(timeout=10) == 0, stderr.read().decode() if stderr is not None else ""
        rows = _records(tmp_path)
        assert any(r["phase"] == "end" and r["holder"] == heir["holder"] and r.get("status") == "interrupted"
                   for r in rows)
        assert {r["holder"] for r in rows if r["phase"] == "down"} == set(survivors)
        with Session(engine) as session:
            leases = session.exec(select(JobLease)).all()
        assert all(lease.expires_at <= datetime.now(UTC) + timedelta(seconds=1) for lease in leases)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stderr:
                proc.stderr.close()


class _FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def _scheduler(engine: Engine, holder: str, clock: _FakeClock, body: Any, metrics: Any = None) -> Any:
    from closedloop.config.schedule import ScheduleConfig
    from closedloop.sync.scheduler import Scheduler

    schedule = ScheduleConfig.model_validate({"jobs": {"run": {"interval_seconds": 10}}, "lease_seconds": 60,
                                              "health_enabled": False})
    return Scheduler(schedule, engine, job_factory=lambda _job: body, holder=holder, clock=clock, observer=metrics)


def test_in_process_ticks_one_winner_failures_and_stop(engine: Engine, now: datetime) -> None:
    from closedloop.sync.health import Metrics
    from closedloop.sync.scheduler import JobContext, JobOutcome

    ran: list[tuple[str, datetime]] = []

    def body_of(holder: str, status: str = "ok") -> Any:
        def body(ctx: JobContext) -> JobOutcome:
            ran.append((holder, ctx.tick))
            if status == "boom":
                raise RuntimeError("remote said no")
            return JobOutcome(status=status, records_pulled={"contacts": 5})
        return body

    clock = _FakeClock(now + timedelta(seconds=1))  # FROZEN_NOW is on a 10 s boundary; 1 s into its tick
    metrics = Metrics()
    a = _scheduler(engine, "a", clock, body_of("a"), metrics)
    b = _scheduler(engine, "b", clock, body_of("b", "boom"))
    assert a.run_tick("run") == "ran:ok"
    assert b.run_tick("run") == "skipped:lease_held", "the same tick, a little later, on another replica"
    assert ran == [("a", now)]
    clock.now = now + timedelta(seconds=9)
    assert b.run_tick("run") == "skipped:missed", "too late for the grace period of its tick"
    clock.now = now + timedelta(seconds=10)
    assert b.run_tick("run") == "ran:failed", "a failing body is reported, not raised"
    assert ran[-1] == ("b", now + timedelta(seconds=10))
    clock.now = now + timedelta(seconds=20)
    a.stop_requested.set()
    assert a.run_tick("run") == "skipped:stopping"
    samples = metrics.render()
    assert 'closedloop_runs_total{job="run",status="ok"} 1' in samples
    assert 'closedloop_records_pulled_total{stream="contacts"} 5' in samples
    assert 'closedloop_lease_held{job="run"} 0' in samples


def test_serve_once_runs_each_job_and_reports_failure_in_the_exit_code(engine: Engine, now: datetime) -> None:
    from closedloop.config.schedule import ScheduleConfig
    from closedloop.sync.scheduler import JobContext, JobOutcome
    from closedloop.sync.serve import serve_schedule

    schedule = ScheduleConfig.model_validate({"jobs": {"run": {"interval_minutes": 60}}, "health_enabled": False})
    seen: list[str] = []

    def factory(status: str) -> Any:
        def body(ctx: JobContext) -> JobOutcome:
            seen.append(ctx.job)
            assert not ctx.should_stop()
            return JobOutcome(status=status)
        return lambda _job: body

    assert serve_schedule(schedule, engine, job_factory=factory("ok"), once=True) == 0
    assert serve_schedule(schedule, engine, job_factory=factory("failed"), once=True) == 1
    assert seen == ["run", "run"]
    with Session(engine) as session:
        assert session.exec(select(JobLease)).all() == [], "--once frees the lease when done"
