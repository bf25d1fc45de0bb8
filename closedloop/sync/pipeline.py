"""One run of the loop: pull every stream since its cursor, rebuild, write back, record the run."""

from __future__ import annotations

import inspect
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, select
from sqlmodel import Session

from closedloop.config.models import Config
from closedloop.connectors.base import CRMWriter, Source
from closedloop.connectors.calls import ApiCallLog
from closedloop.errors import ClosedloopAPIError, ClosedloopError, RecordError
from closedloop.records import Batch
from closedloop.store.engine import session_scope
from closedloop.store.ingest import store_batch, store_records
from closedloop.store.models import Deal as DealRow
from closedloop.store.models import PipelineStage as PipelineStageRow
from closedloop.store.models import SyncRun, table
from closedloop.store.upsert import OVERSIZED
from closedloop.sync.cursors import load_cursor
from closedloop.sync.derive import RebuildStats, rebuild
from closedloop.sync.interrupt import Interrupted, ShouldStop, never
from closedloop.sync.memory import limit_malloc_arenas, release_free_memory
from closedloop.sync.overlap import rebuild_and_write_back
from closedloop.sync.readahead import read_ahead
from closedloop.sync.retention import expire_sessions
from closedloop.sync.runs import start_run
from closedloop.sync.writeback import WritebackStats

logger = logging.getLogger(__name__)
Step = tuple[str, int, int | None]  # (stream, done, total or None while unknown)


class Progress(Protocol):
    """A progress sink: a message, and optionally a structured step for a bar with an ETA."""

    def __call__(self, message: str, step: Step | None = None) -> None: ...


def with_steps(sink: Callable[..., None] | None) -> Progress:
    """``sink`` as a Progress: one that takes only a message (the scheduler's log line) gets
    just the message, so steps are optional and older one-argument sinks keep working."""
    if sink is None:
        return lambda _message, _step=None: None
    try:
        inspect.signature(sink).bind("", None)
    except (TypeError, ValueError):
        one = sink
        return lambda message, _step=None: one(message)
    return sink


Warn = Callable[[str, str], None]  # (kind, example): ApiCallLog.warn


def no_warn(_kind: str, _example: str) -> None:
    return None

# Records a stream may fetch ahead of the store: 25 contacts pages (five seconds of searches) ride
# out another stream's large commit; a GA4 page of 50,000 rows still waits for the one before.
READ_AHEAD_RECORDS = 5_000
# Records per transaction of a large page: SQLite has one writer, and a 50,000-row GA4 page
# committed whole kept the contacts stream (a search page every 0.2 s) from committing for
# seconds.  Writers take turns (store.gate), so a slice is how long a search page may wait:
# with 5,000-row slices the contacts stream fell behind while GA4 was stored (searches at 25-30
# per 10 s instead of 45, and a pull of 121 s instead of 113 s); 1,000 keeps up.  The cursor
# moves with the page's last slice, so a crash re-pulls the page whole.
COMMIT_RECORDS = 1_000


@dataclass(slots=True)
class RunReport:
    run_id: int
    started_at: datetime
    status: str = "running"
    duration_s: float = 0.0
    pulled: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    rebuild: RebuildStats | None = None
    writeback: WritebackStats | None = None
    api_calls: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    # Each service's own quota figures (Salesforce: daily allocation, first/last usage seen).
    usage: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed_streams: list[str] = field(default_factory=list)
    # Things used but not as they should be (naive timestamps, unknown stages, values cut to
    # their column): count by kind, and a few examples of each.
    warnings: dict[str, int] = field(default_factory=dict)
    warning_examples: dict[str, list[str]] = field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        return {
            "pulled": self.pulled,
            "usage": self.usage,
            "failed_streams": self.failed_streams,
            "warnings": {"counts": self.warnings, "examples": self.warning_examples},
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "rebuild": self.rebuild.as_dict() if self.rebuild else None,
            "writeback": _writeback_dict(self.writeback),
            "duration_s": round(self.duration_s, 3),
        }


def _writeback_dict(stats: WritebackStats | None) -> dict[str, Any] | None:
    if stats is None:
        return None
    return {
        "properties_created": stats.properties_created,
        "objects_written": stats.objects_written,
        "properties_written": stats.properties_written,
        "records_failed": stats.records_failed,
        "records_given_up": stats.records_given_up,
        "already_right": stats.already_right,
        "by_property": stats.by_property,
        "failures": stats.failures,
    }


def pull_stream(
    engine: Engine,
    source: Source,
    stream: str,
    *,
    now: datetime,
    progress: Callable[..., None],
    should_stop: ShouldStop = never,
    warn: Warn = no_warn,
    quarantine_raw: bool = False,
) -> Counter[str]:
    """Store every batch of ``stream`` with its cursor; ``progress`` hears each batch as a step."""
    step = with_steps(progress)
    with Session(engine) as session:
        cursor = load_cursor(session, stream)
    totals: Counter[str] = Counter()
    # Later batches are fetched while this one is stored; closing stops the fetching too.
    pages = source.pull(stream, cursor, now=now)
    with closing(read_ahead(pages, budget=READ_AHEAD_RECORDS, weigh=_size, name=f"pull {stream}")) as batches:
        for batch in batches:
            ahead, last = _commit_slices(batch)
            for records in ahead:
                with session_scope(engine) as session:
                    totals.update(store_records(session, records))
                _warn_oversized(session, warn)
            with session_scope(engine) as session:
                totals.update(store_batch(session, last, now=now, quarantine_raw=quarantine_raw))
            _warn_oversized(session, warn)
            totals["batches"] += 1
            stored = sum(v for k, v in totals.items() if k != "batches")
            # The API's own count where it gave one (objects, the unit of its total), else records stored.
            done, total = batch.position if batch.position else (stored, None)
            step(f"{stream}: {stored:,} records", (stream, done, total))
            if should_stop():
                raise Interrupted(f"stopped after batch {totals['batches']} of {stream}")
    return totals


def _commit_slices(batch: Batch) -> tuple[list[list[Any]], Batch]:
    """Records committed ahead of the page, and the page's last part, which moves the cursor.

    Only a page of one kind of record (GA4 sessions) is sliced; pages that mix kinds (deals
    with their links and stage history) are stored whole.
    """
    records = batch.records
    if len(records) <= COMMIT_RECORDS or any(type(r) is not type(records[0]) for r in records):
        return [], batch
    cut = len(records) - COMMIT_RECORDS
    ahead = [records[start : min(start + COMMIT_RECORDS, cut)] for start in range(0, cut, COMMIT_RECORDS)]
    return ahead, replace(batch, records=records[cut:])


def _size(batch: Batch) -> int:
    return len(batch.records) + len(batch.quarantined)


def pull_sources(
    engine: Engine,
    sources: Sequence[Source],
    report: RunReport,
    *,
    now: datetime,
    progress: Progress,
    should_stop: ShouldStop,
    warn: Warn = no_warn,
    quarantine_raw: bool = False,
) -> None:
    """Every stream side by side, each committing its own batches and cursor.

    Streams are independent (a cursor each), and their limits differ: HubSpot's search is paced
    at about 5 calls a second while its burst window allows more, so deals' batch reads fill the
    window beside the contacts' searches; GA4 costs CPU while HubSpot mostly waits.  Pulling
    them at once makes the pull as long as its slowest stream instead of their sum.

    A stream that fails (after its retries) stops alone: it is named in ``failed_streams`` and
    the others, and the write-back of what was pulled, go on.
    """

    def fail(stream: str, message: str) -> None:
        report.failed_streams.append(stream)
        report.errors.append(f"{stream}: {message}")

    def pull_one(source: Source, stream: str) -> None:
        progress(f"pulling {stream}")
        started = time.perf_counter()
        try:
            report.pulled[stream] = dict(
                pull_stream(engine, source, stream, now=now, progress=progress, should_stop=should_stop, warn=warn,
                            quarantine_raw=quarantine_raw)
            )
        except (ClosedloopAPIError, RecordError) as exc:
            # A record error here is one its connector failed to quarantine: the stream stops, the run goes on.
            fail(stream, str(exc))
        except ClosedloopError:
            raise  # an interrupt, the store gone: the run's, not the stream's
        except Exception as exc:
            # An answer no rule foresaw (or a bug reading it): this stream stops, the rest goes on.
            logger.exception("stream %s failed", stream)
            fail(stream, f"unexpected {type(exc).__name__}: {str(exc)[:300]}")
        finally:
            report.seconds[f"pull {stream}"] = time.perf_counter() - started

    jobs = [(source, stream) for source in sources for stream in source.streams()]
    with ThreadPoolExecutor(max_workers=max(1, len(jobs)), thread_name_prefix="pull") as pool:
        for done in [pool.submit(pull_one, source, stream) for source, stream in jobs]:
            done.result()  # re-raises Interrupted and unexpected errors in this thread


def run_once(
    *,
    engine: Engine,
    config: Config,
    sources: Sequence[Source],
    writer: CRMWriter | None,
    log: ApiCallLog,
    now: datetime,
    progress: Callable[..., None] | None = None,
    job: str = "run",
    clock: Callable[[], float] = time.perf_counter,
    should_stop: ShouldStop = never,
    pull: bool = True,
) -> RunReport:
    """Pull, rebuild, write back.  ``should_stop`` is checked between batches (SIGTERM handling).

    ``pull=False`` recomputes from the stored raw data only: after a mapping or model change.
    """
    say = with_steps(progress)  # a one-argument sink (the scheduler's) still works
    limit_malloc_arenas()
    started = clock()
    run_id = start_run(engine, job=job, now=now)  # marks runs whose process died abandoned first
    report = RunReport(run_id=run_id, started_at=now)
    try:
        mark = clock()
        if pull:
            pull_sources(engine, sources, report, now=now, progress=say, should_stop=should_stop, warn=log.warn,
                         quarantine_raw=config.privacy.quarantine_raw)
            _warn_unknown_stages(engine, log.warn)
        expire_sessions(engine, config, now=now)  # privacy.session_retention_days
        if should_stop():
            raise Interrupted("stopped after the pull, before the rebuild")
        report.seconds["pull"], mark = clock() - mark, clock()
        release_free_memory()  # the pull's pages are gone; the rebuild should not stack on them
        if writer is not None and config.writeback.enabled:
            say("rebuilding touchpoints and credits, writing back to the CRM as they are ready")
            report.writeback = WritebackStats()  # counted into as it goes: an interrupted run still says what it wrote
            both = rebuild_and_write_back(
                engine, config, writer, now=now, clock=clock, progress=say, should_stop=should_stop,
                writeback_stats=report.writeback,
            )
            report.rebuild, report.writeback = both.rebuild, both.writeback
            # They overlap: each is measured from the end of the pull.
            report.seconds["rebuild"], report.seconds["writeback"] = both.rebuild_s, both.writeback_s
        else:
            say("rebuilding touchpoints and credits")
            report.rebuild = rebuild(engine, config, progress=say, should_stop=should_stop)
            report.seconds["rebuild"] = clock() - mark
        report.status = _status(report, pulled=pull)
    except Interrupted as exc:
        report.status = "interrupted"
        report.errors.append(str(exc))
    except BaseException as exc:
        report.status = "failed"
        report.errors.append(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        report.duration_s = clock() - started
        report.api_calls = log.by_endpoint()
        report.usage = log.usage()
        report.warnings, report.warning_examples = log.warnings()
        _finish(engine, report, now=now)
        release_free_memory()  # `serve` lives on between runs
    return report


def _status(report: RunReport, *, pulled: bool) -> str:
    """ok; partial when something failed (a stream named in the errors); failed when every
    stream failed, since then nothing of this run's data arrived at all."""
    if not report.errors:
        return "ok"
    if pulled and report.failed_streams and not report.pulled:
        return "failed"
    return "partial"


def _warn_oversized(session: Session, warn: Warn) -> None:
    """Values cut to their column (or rows whose key did not fit) while storing, as warnings."""
    counts = session.info.pop(OVERSIZED, None) or {}
    for column, n in counts.items():
        for _ in range(n):
            warn("value_longer_than_column", column)


def _warn_unknown_stages(engine: Engine, warn: Warn) -> None:
    """Deals whose (pipeline, stage) is not among the pipelines' stages: their milestones and
    won/lost cannot be read from the stage.  Checked only when some pipeline is known."""
    deals, stages = table(DealRow), table(PipelineStageRow)
    with engine.connect() as conn:
        if conn.execute(select(stages.c.stage_id).limit(1)).first() is None:
            return
        known = (stages.c.pipeline_id == deals.c.pipeline) & (stages.c.stage_id == deals.c.stage)
        rows = conn.execute(
            select(deals.c.id, deals.c.pipeline, deals.c.stage)
            .select_from(deals.outerjoin(stages, known))
            .where(deals.c.stage.is_not(None), stages.c.stage_id.is_(None))
        ).all()
    for deal_id, pipeline, stage_id in rows:
        warn("unknown_deal_stage", f"deal {deal_id}: stage {stage_id!r} is not in pipeline {pipeline!r}")


def _finish(engine: Engine, report: RunReport, *, now: datetime) -> None:
    with session_scope(engine) as session:
        run = session.get(SyncRun, report.run_id)
        if run is None:
            return
        run.status = report.status
        run.finished_at = now + timedelta(seconds=report.duration_s)
        run.stats = report.stats()
        run.api_calls = report.api_calls
        run.errors = {"messages": report.errors}
