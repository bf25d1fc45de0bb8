"""The body of `closedloop serve`: run the schedule until SIGTERM, with health endpoints for the container.

SIGTERM and SIGINT stop the scheduling; the run in flight notices between batches, stores what it
has, records itself as interrupted and frees its lease; then the process exits 0, well inside an
orchestrator's grace period as long as one batch is.
"""

from __future__ import annotations

import errno
import logging
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from types import FrameType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, text

from closedloop.config.schedule import ScheduleConfig
from closedloop.sync.scheduler import JobBody, JobContext, JobFactory, JobOutcome, Scheduler

if TYPE_CHECKING:
    from closedloop.config.models import Config
    from closedloop.sync.pipeline import RunReport

_MIGRATION_LOCK_KEY = 0x636C6F73  # "clos": replicas starting together migrate one at a time
_OK_STATUSES = frozenset({"ok", "interrupted"})


def schedule_of(cfg: Config) -> ScheduleConfig:
    """The config's schedule: section, or the defaults where the config model has none yet."""
    found = getattr(cfg, "schedule", None)
    return found if isinstance(found, ScheduleConfig) else ScheduleConfig()


def serve_schedule(
    schedule: ScheduleConfig,
    engine: Engine,
    *,
    job_factory: JobFactory,
    once: bool = False,
    log: logging.Logger | None = None,
    holder: str | None = None,
    secret_files: list[tuple[str, str]] | None = None,
    metrics_token: str | None = None,
) -> int:
    """The body of `serve`, separate from option parsing so other entry points can reuse it.

    ``secret_files`` (field, path) must stay readable for /readyz to say ready;
    ``metrics_token`` guards /metrics.  A port that cannot be bound is a ``UsageError`` naming
    the port and the setting, raised before any job starts.
    """
    from closedloop.sync.health import Metrics, all_ready, files_readiness, store_readiness

    log = log or logging.getLogger("closedloop")
    metrics = Metrics()
    seed_last_success(engine, metrics, schedule)
    scheduler = Scheduler(schedule, engine, job_factory=job_factory, observer=metrics, logger=log, holder=holder)
    log.info("closedloop serve: holder %s, jobs %s", scheduler.holder, ", ".join(scheduler.jobs) or "none enabled")
    readiness = all_ready(store_readiness(engine), files_readiness(secret_files or []))
    health = (
        bind_health(schedule, metrics=metrics, readiness=readiness, metrics_token=metrics_token)
        if schedule.health_enabled and not once
        else nullcontext()
    )
    with health as server, stop_on_signals(scheduler, log):
        if server is not None:
            log.info("health endpoints on http://%s:%d (/healthz /readyz /metrics)", server.host, server.port)
        if once:
            results = [scheduler.run_now(job) for job in scheduler.jobs]
            failed = [r for r in results if r.startswith("ran:") and r[4:] not in _OK_STATUSES]
            return 1 if failed else 0
        scheduler.run_until_stopped(run_at_start=schedule.run_at_start)
    log.info("closedloop serve stopped cleanly")
    return 0


@contextmanager
def bind_health(
    schedule: ScheduleConfig, *, metrics: Any, readiness: Any, metrics_token: str | None
) -> Iterator[Any]:
    """The health server on the configured address; a taken port or a bad host is one line naming the setting."""
    from closedloop.errors import UsageError
    from closedloop.sync.health import serve_health

    host, port = schedule.health_host, schedule.health_port
    try:
        context = serve_health(host=host, port=port, metrics=metrics, readiness=readiness, metrics_token=metrics_token)
        server = context.__enter__()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {port} on {host} is already in use (another closedloop serve?); set schedule.health_port, "
                "`serve --port` or $CLOSEDLOOP_PORT to a free port (0 picks one)",
                param_hint="--port",
            ) from None
        raise UsageError(
            f"cannot listen on {host}:{port} ({exc.strerror or type(exc).__name__}); check schedule.health_host, "
            "`serve --host` or $CLOSEDLOOP_HOST (an address of this machine, 127.0.0.1 or 0.0.0.0)",
            param_hint="--host",
        ) from None
    try:
        yield server
    finally:
        context.__exit__(None, None, None)


@contextmanager
def stop_on_signals(scheduler: Scheduler, log: logging.Logger) -> Iterator[None]:
    """SIGTERM/SIGINT ask for a stop; the handlers are put back afterwards."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        if not scheduler.stop_requested.is_set():
            log.info("%s received: no new ticks; the run in flight stops after its batch", signal.Signals(signum).name)
        scheduler.stop_requested.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def pipeline_jobs(cfg: Config, engine: Engine) -> JobFactory:
    """The real job bodies: `run` builds fresh connectors (fresh call counts) and runs the loop once."""

    def factory(job: str) -> JobBody:
        if job != "run":
            raise ValueError(f"no job body for {job!r}")

        def body(ctx: JobContext) -> JobOutcome:
            from closedloop.sync.factory import build_connectors
            from closedloop.sync.pipeline import run_once

            connectors = build_connectors(cfg)
            report = run_once(
                engine=engine,
                config=cfg,
                sources=connectors.sources,
                writer=connectors.writer,
                log=connectors.log,
                now=ctx.now,
                progress=ctx.progress,
                job=ctx.job,
                should_stop=ctx.should_stop,
            )
            return outcome_of(report)

        return body

    return factory


def outcome_of(report: RunReport) -> JobOutcome:
    pulled = {stream: sum(n for k, n in counts.items() if k != "batches") for stream, counts in report.pulled.items()}
    wb = report.writeback
    return JobOutcome(
        status=report.status,
        records_pulled=pulled,
        properties_written=wb.properties_written if wb else 0,
        write_failures=wb.records_failed if wb else 0,
        api_calls=report.api_calls,
    )


def seed_last_success(engine: Engine, metrics: Any, schedule: ScheduleConfig) -> None:
    """Carry the last successful run across restarts, so "no success for 2 h" alerts stay true."""
    from sqlmodel import Session, col, select

    from closedloop.store.models import SyncRun

    with Session(engine) as session:
        for job in schedule.enabled_jobs():
            finished = session.exec(
                select(SyncRun.finished_at)
                .where(SyncRun.job == job, SyncRun.status == "ok")
                .order_by(col(SyncRun.finished_at).desc())
                .limit(1)
            ).first()
            if finished is not None:
                metrics.seed_last_success(job, finished)


def open_store_once(url: str) -> Engine:
    """Open and migrate the store; on PostgreSQL replicas take turns (an advisory lock) to migrate."""
    from closedloop.store.engine import make_engine, migrate

    engine = make_engine(url)
    if engine.dialect.name != "postgresql":
        migrate(engine)
        return engine
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        try:
            migrate(engine)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            conn.commit()
    return engine


def configure_logging(level: int = logging.INFO) -> logging.Logger:
    """Timestamped UTC lines on stderr; the scheduler library only speaks up when something is wrong."""
    formatter = logging.Formatter("%(asctime)sZ %(levelname)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    log = logging.getLogger("closedloop")
    if not any(getattr(h, "_closedloop_serve", False) for h in log.handlers):
        handler._closedloop_serve = True  # type: ignore[attr-defined]
        log.addHandler(handler)
        aps = logging.getLogger("apscheduler")
        aps.addHandler(handler)
        aps.setLevel(logging.WARNING)
    log.setLevel(level)
    return log
