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
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from closedloop.store.models import JobLease

pytestmark = pytest.mark.postgres
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


def test_one_execution_per_tick_and_takeover_after_a_kill(
    engine: Engine, store_url: str, tmp_path: Path,
) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("the replica test runs on the PostgreSQL store")
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
        assert [b - a for a, b in zip(ticks, ticks[1:], strict=False)] == [1.0] * (len(ticks) - 1), \
            f"a tick was run by nobody: {ticks}"
        ends = [r for r in short if r["phase"] == "end"]
        spans = sorted((s["t"], next(e["t"] for e in ends if e["tick"] == s["tick"] and e["holder"] == s["holder"]))
                       for s in starts if any(e["tick"] == s["tick"] for e in ends))
        assert all(prev_end <= start for (_, prev_end), (start, _) in zip(spans, spans[1:], strict=False)), \
            "two executions overlapped"

        # Phase 2: a long run; kill its holder outright.
        rows = _wait_for(tmp_path, lambda rows: any(r["phase"] == "start" and r["long"] for r in rows), timeout=5)
        victim = next(r for r in rows if r["phase"] == "start" and r["long"])["holder"]
        with engine.connect() as conn:
            assert conn.execute(select(JobLease.holder)).scalar_one() == victim  # type: ignore[call-overload]
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
            assert procs[name].wait(timeout=10) == 0, procs[name].stderr.read().decode() if procs[name].stderr else ""
        rows = _records(tmp_path)
        assert any(r["phase"] == "end" and r["holder"] == heir["holder"] and r.get("status") == "interrupted"
                   for r in rows)
        assert {r["holder"] for r in rows if r["phase"] == "down"} == set(survivors)
        with engine.connect() as conn:
            lease = conn.execute(select(JobLease.holder, JobLease.expires_at)).first()  # type: ignore[call-overload]
        assert lease is None or lease.expires_at <= datetime.now(UTC) + timedelta(seconds=1)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stderr:
                proc.stderr.close()
