"""Run rows that tell the truth: each records who runs it, and a row whose process died is
marked ``abandoned`` by the next run instead of staying ``running`` for ever.

Who is alive: a run started by `serve` under a job lease is alive while that lease is held by
its holder and not expired (the holder renews it from a heartbeat; a dead one stops).  A run
with no lease (`closedloop run`) is alive while its process is: same host, same pid and the
same process start time (a restarted container reuses pid 1).  A lease-less run on another host
cannot be judged from here and is left alone.
"""

from __future__ import annotations

import os
import socket
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from closedloop.store.engine import session_scope
from closedloop.store.models import JobLease, SyncRun

current_holder: ContextVar[str | None] = ContextVar("closedloop_lease_holder", default=None)
"""The lease holder a scheduled job body runs under (set by the scheduler in the job's thread)."""


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux /proc), or None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def this_owner() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname()[:80], "pid": pid, "pid_start": process_start(pid),
            "holder": current_holder.get()}


def start_run(engine: Engine, *, job: str, now: datetime) -> int:
    """Mark dead runs abandoned, then insert this run's row (status running, with its owner)."""
    mark_abandoned(engine, now=now)
    with session_scope(engine) as session:
        run = SyncRun(job=job, started_at=now, status="running", stats={"owner": this_owner()})
        session.add(run)
        session.flush()
        return int(run.id or 0)


def mark_abandoned(engine: Engine, *, now: datetime) -> list[int]:
    """Every ``running`` row whose process is known to be gone becomes ``abandoned``; their ids."""
    with Session(engine) as session:
        running = session.exec(select(SyncRun).where(col(SyncRun.status) == "running")).all()
        leases = {row.job: (row.holder, row.expires_at) for row in session.exec(select(JobLease)).all()}
    dead = [run for run in running if owner_alive((run.stats or {}).get("owner"), run.job, leases, now=now) is False]
    if not dead:
        return []
    with session_scope(engine) as session:
        for run in dead:
            row = session.get(SyncRun, run.id)
            if row is None or row.status != "running":
                continue
            owner = (row.stats or {}).get("owner") or {}
            row.status = "abandoned"
            row.finished_at = now
            row.errors = {"messages": [
                f"abandoned: its process ({owner.get('host', '?')} pid {owner.get('pid', '?')}) ended without "
                f"recording the run's end; noticed at {now.isoformat()}"
            ]}
    return [int(run.id or 0) for run in dead]


def owner_alive(
    owner: Any, job: str, leases: dict[str, tuple[str, datetime]], *, now: datetime
) -> bool | None:
    """True alive, False gone, None cannot tell (another host, no lease, or no owner recorded)."""
    if not isinstance(owner, dict):
        return None
    holder = owner.get("holder")
    if holder:
        lease = leases.get(job)
        return lease is not None and lease[0] == holder and _aware(lease[1]) > now
    if owner.get("host") != socket.gethostname()[:80] or not isinstance(owner.get("pid"), int):
        return None
    pid = int(owner["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    started = process_start(pid)
    recorded = owner.get("pid_start")
    return not (started is not None and recorded is not None and started != recorded)


def _aware(moment: datetime) -> datetime:
    from datetime import UTC

    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
