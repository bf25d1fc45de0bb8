"""`closedloop serve`'s clock: APScheduler fires ticks, a store lease decides which replica runs them.

Every replica schedules every job.  At a tick each one tries the job's lease; the winner runs the
job body, renewing the lease from a heartbeat, and on finishing keeps the lease until the tick's
grace period has passed, so a replica that woke up a little late cannot run the same tick again.
An interrupted run frees the lease at once, so another replica may take the tick over.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from closedloop.config.schedule import TICK_EPOCH, JobSchedule, ScheduleConfig
from closedloop.sync.locks import Clock, JobLeases, make_holder_id, wall_clock
from closedloop.sync.runs import current_holder

_UTC = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a job body gets: its tick, a stop signal to check between batches, a progress sink."""

    job: str
    tick: datetime
    now: datetime
    should_stop: Callable[[], bool]
    progress: Callable[[str], None]


@dataclass(slots=True)
class JobOutcome:
    status: str  # ok | partial | interrupted | failed
    records_pulled: dict[str, int] = field(default_factory=dict)
    properties_written: int = 0
    write_failures: int = 0
    api_calls: dict[str, dict[str, int]] = field(default_factory=dict)


JobBody = Callable[[JobContext], JobOutcome]
JobFactory = Callable[[str], JobBody]


class RunObserver(Protocol):
    """Where the scheduler reports what it did (the /metrics registry implements it)."""

    def run_finished(self, job: str, outcome: JobOutcome, *, finished_at: datetime, duration_s: float) -> None: ...

    def lease_held(self, job: str, held: bool) -> None: ...

    def tick_skipped(self, job: str, reason: str) -> None: ...


class _NoObserver:
    def run_finished(self, job: str, outcome: JobOutcome, *, finished_at: datetime, duration_s: float) -> None:
        return None

    def lease_held(self, job: str, held: bool) -> None:
        return None

    def tick_skipped(self, job: str, reason: str) -> None:
        return None


def make_trigger(job: JobSchedule, *, timezone: str = "UTC") -> BaseTrigger:
    """Interval ticks count from a fixed epoch, so replicas started at different times agree."""
    if job.cron is not None:
        return CronTrigger.from_crontab(job.cron, timezone=ZoneInfo(timezone))
    return IntervalTrigger(seconds=job.period_seconds, start_date=TICK_EPOCH, timezone=_UTC)


def current_tick(trigger: BaseTrigger, now: datetime, grace_s: float) -> datetime | None:
    """The tick ``now`` belongs to: the first fire time in (now - grace, now]; None if too late."""
    tick = trigger.get_next_fire_time(None, now - timedelta(seconds=grace_s))
    if tick is None or tick > now:
        return None
    return tick


class Scheduler:
    """Runs the configured jobs on their ticks until ``stop``; one replica per tick via the lease."""

    def __init__(
        self,
        schedule: ScheduleConfig,
        engine: Engine,
        *,
        job_factory: JobFactory,
        holder: str | None = None,
        observer: RunObserver | None = None,
        logger: logging.Logger | None = None,
        clock: Clock = wall_clock,
    ) -> None:
        self.schedule = schedule
        self.jobs = schedule.enabled_jobs()
        self.leases = JobLeases(engine, holder=holder or make_holder_id(), lease_seconds=schedule.lease_seconds)
        self.observer: RunObserver = observer or _NoObserver()
        self.log = logger or logging.getLogger("closedloop.scheduler")
        self.clock = clock
        self.stop_requested = threading.Event()
        self._bodies = {name: job_factory(name) for name in self.jobs}
        self._triggers = {name: make_trigger(job, timezone=schedule.timezone) for name, job in self.jobs.items()}
        self._aps: BackgroundScheduler | None = None
        # The run at start and a tick of the same job share the lease holder id, so the lease alone
        # would let both run at once in this process; this lock does not.
        self._in_process = {name: threading.Lock() for name in self.jobs}

    @property
    def holder(self) -> str:
        return self.leases.holder

    def run_tick(self, job: str) -> str:
        """One scheduled firing: 'ran:<status>', or 'skipped:<why>' when this replica must not run it."""
        now = self.clock()
        tick = current_tick(self._triggers[job], now, self.jobs[job].grace_seconds)
        if tick is None:
            return self._skip(job, "missed", "started too late for its tick; waiting for the next one")
        return self._run(job, tick=tick, keep_until=tick + timedelta(seconds=self.jobs[job].grace_seconds))

    def run_now(self, job: str) -> str:
        """An unscheduled run (`serve --once`): no tick to guard, so the lease is freed afterwards."""
        return self._run(job, tick=self.clock(), keep_until=None)

    def _run(self, job: str, *, tick: datetime, keep_until: datetime | None) -> str:
        if self.stop_requested.is_set():
            return self._skip(job, "stopping", "not started: stopping")
        mine = self._in_process[job]
        if not mine.acquire(blocking=False):
            return self._skip(job, "running", f"tick {tick:%H:%M:%S} coalesced: this replica is running it")
        try:
            return self._run_held(job, tick=tick, keep_until=keep_until)
        finally:
            mine.release()

    def _run_held(self, job: str, *, tick: datetime, keep_until: datetime | None) -> str:
        try:
            held = self.leases.hold(job, clock=self.clock, heartbeat_seconds=self.schedule.heartbeat_seconds)
        except Exception as exc:  # a store outage skips this tick; the next one retries
            return self._skip(job, "store_error", f"lease not taken, store unreachable ({type(exc).__name__})")
        if held is None:
            try:
                other = self.leases.holder_of(job, now=self.clock())
            except Exception:  # only for the log line; the decision is already made
                other = None
            return self._skip(job, "lease_held", f"tick {tick:%H:%M:%S} left to {other or 'another replica'}")
        self.observer.lease_held(job, True)
        started, mark = self.clock(), time.perf_counter()
        self.log.info("job %s: tick %s started (holder %s)", job, tick.isoformat(), self.holder)
        context = JobContext(
            job=job,
            tick=tick,
            now=started,
            should_stop=lambda: self.stop_requested.is_set() or held.lost.is_set(),
            progress=_throttled(lambda msg: self.log.info("job %s: %s", job, msg)),
        )
        outcome = JobOutcome(status="failed")
        token = current_holder.set(self.holder)  # the run row names its lease holder (sync.runs)
        try:
            outcome = self._bodies[job](context)
        except Exception as exc:  # one failed run must not stop the schedule
            self.log.error("job %s failed: %s: %s", job, type(exc).__name__, exc)
        finally:
            current_holder.reset(token)
            held.release(keep_until=None if outcome.status == "interrupted" else keep_until)
            self.observer.lease_held(job, False)
        duration = time.perf_counter() - mark
        self.observer.run_finished(job, outcome, finished_at=self.clock(), duration_s=duration)
        self.log.info("job %s: tick %s finished: %s in %.1fs", job, tick.isoformat(), outcome.status, duration)
        return f"ran:{outcome.status}"

    def _skip(self, job: str, reason: str, message: str) -> str:
        self.observer.tick_skipped(job, reason)
        self.log.info("job %s: %s", job, message)
        return f"skipped:{reason}"

    def start(self, *, run_at_start: bool = False) -> None:
        """Start firing ticks in background threads; returns at once.

        ``run_at_start`` also runs every job once now (its own lease, freed afterwards), so a new
        deployment does not wait up to a period for its first data.
        """
        aps = BackgroundScheduler(
            timezone=_UTC,
            executors={"default": ThreadPoolExecutor(max_workers=max(1, 2 * len(self.jobs)))},
        )
        if run_at_start:
            for name in self.jobs:
                aps.add_job(self.run_now, "date", run_date=self.clock(), args=[name], id=f"{name}:start",
                            name=f"{name} at start", misfire_grace_time=None)
        for name, job in self.jobs.items():
            aps.add_job(
                self.run_tick,
                self._triggers[name],
                args=[name],
                id=name,
                name=name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, math.ceil(job.grace_seconds)),
            )
        aps.start()
        self._aps = aps
        for name in self.jobs:
            next_at = aps.get_job(name).next_run_time
            self.log.info("job %s scheduled; next tick %s", name, next_at.isoformat() if next_at else "never")

    def stop(self) -> None:
        """Fire no more ticks; the run in flight sees should_stop, ends after its batch, frees the lease."""
        self.stop_requested.set()
        if self._aps is not None:
            self._aps.shutdown(wait=True)
            self._aps = None

    def run_until_stopped(self, *, run_at_start: bool = False) -> None:
        """Block until ``stop_requested`` is set (a signal handler does it), then stop cleanly."""
        self.start(run_at_start=run_at_start)
        try:
            while not self.stop_requested.wait(0.2):
                pass
        finally:
            self.stop()


def _throttled(say: Callable[[str], None], *, every_s: float = 5.0) -> Callable[[str], None]:
    """Pass a progress line on when its step changes or every few seconds, not once per batch."""
    last: dict[str, float | str] = {"at": -math.inf, "step": ""}

    def progress(message: str) -> None:
        step = message.split(":", 1)[0]
        now = time.monotonic()
        if step != last["step"] or now - float(last["at"]) >= every_s:
            last["at"], last["step"] = now, step
            say(message)

    return progress
