"""What the store remembers about past runs and refused records, as tables for `closedloop runs`
and `closedloop quarantine`: the queries and their rendering, so the commands hold no SQL."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from closedloop.report.fit import Col, FitTable
from closedloop.store.models import QuarantinedRow, SyncRun

_RUN_COLUMNS = ("Run", "Job", "Started (UTC)", "Status", "Secs", "Pulled", "Touch Δ", "Credit Δ", "Written",
                "Failed", "Warn", "Calls", "API usage")
_LEFT = ("Job", "Status", "Started (UTC)", "API usage")
_KEYS = ("Run",)
_RUN_LEGEND = {"Touch Δ": "touchpoints changed", "Credit Δ": "credits changed", "Failed": "records not written",
               "Warn": "warnings", "Calls": "API calls"}
# Statuses whose run did not end cleanly: their notes carry the recorded reason.
_UNCLEAN = frozenset({"partial", "failed", "interrupted", "abandoned"})
_EXAMPLES_SHOWN = 1  # per warning kind in the table; ``--json`` carries all the run kept


def runs_rows(engine: Engine, *, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` newest runs as plain dicts (``runs --json``), newest first, with each run's
    failed streams, warnings (counts and examples by kind) and recorded errors."""
    with Session(engine) as session:
        rows = session.exec(select(SyncRun).order_by(col(SyncRun.id).desc()).limit(limit)).all()
    out = []
    for r in rows:
        stats: dict[str, Any] = r.stats or {}
        pulled = sum(v for counts in (stats.get("pulled") or {}).values() for k, v in counts.items() if k != "batches")
        rb = stats.get("rebuild") or {}
        wb = stats.get("writeback") or {}
        warnings = stats.get("warnings") or {}
        out.append({
            "run": r.id,
            "job": r.job,
            "started_at": r.started_at.isoformat(),
            "status": r.status,
            "seconds": round(float(stats.get("duration_s") or 0), 3),
            "pulled": pulled,
            "touchpoints_changed": (rb.get("touchpoints") or {}).get("changed", 0),
            "credits_changed": (rb.get("credits") or {}).get("changed", 0),
            "written": wb.get("properties_written", 0),
            "failed": wb.get("records_failed", 0),
            "failed_streams": list(stats.get("failed_streams") or []),
            "warnings": {"counts": dict(warnings.get("counts") or {}),
                         "examples": {k: list(v) for k, v in (warnings.get("examples") or {}).items()}},
            "errors": list((r.errors or {}).get("messages") or []),
            "api_calls": sum(n for statuses in (r.api_calls or {}).values() for n in statuses.values()),
            "api_usage": _usage(stats.get("usage") or {}),
        })
    return out


def runs_table(engine: Engine, *, limit: int) -> FitTable:
    """The ``limit`` newest runs: duration, records pulled, changes, writes, failures, warnings,
    API calls; what went wrong in each is in ``run_notes_table``."""
    columns = [Col(name, "left" if name in _LEFT else "right", key=name in _KEYS, wrap=name == "API usage")
               for name in _RUN_COLUMNS]
    table = FitTable("Recent runs", columns, legend=_RUN_LEGEND)
    for run in runs_rows(engine, limit=limit):
        table.add_row(
            str(run["run"]),
            run["job"],
            run["started_at"][:19].replace("T", " "),
            run["status"],
            f"{run['seconds']:.1f}",
            f"{run['pulled']:,}",
            f"{run['touchpoints_changed']:,}",
            f"{run['credits_changed']:,}",
            f"{run['written']:,}",
            f"{run['failed']:,}",
            f"{sum(run['warnings']['counts'].values()):,}",
            f"{run['api_calls']:,}",
            run["api_usage"],
        )
    return table


def run_notes_table(engine: Engine, *, limit: int) -> FitTable | None:
    """Per run among the ``limit`` newest, what did not go cleanly: streams that failed, warnings
    by kind with an example, and the recorded reason of a run that was partial, failed,
    interrupted or abandoned.  None when every run went cleanly, so a clean history stays short."""
    table = FitTable("What went wrong", [Col("Run", key=True), Col("Status", "left"), Col("Notes", "left", wrap=True)])
    for run in runs_rows(engine, limit=limit):
        notes = run_notes(run)
        if notes:
            table.add_row(str(run["run"]), run["status"], escape("\n".join(notes)))
    return table if table.rows else None


def run_notes(run: dict[str, Any]) -> list[str]:
    """One line per thing that went wrong in ``run`` (a ``runs_rows`` dict)."""
    notes = []
    if run["failed_streams"]:
        notes.append("failed streams: " + ", ".join(run["failed_streams"]))
    examples = run["warnings"]["examples"]
    for kind, n in sorted(run["warnings"]["counts"].items()):
        shown = "; ".join(str(e) for e in (examples.get(kind) or [])[:_EXAMPLES_SHOWN])
        notes.append(f"{n:,} {kind}" + (f" (e.g. {shown})" if shown else ""))
    if run["status"] in _UNCLEAN:
        notes.extend(run["errors"])
    return notes


def _usage(usage: dict[str, dict[str, Any]]) -> str:
    """A service's daily allocation as the run saw it: "salesforce 1,204->1,690/100,000" (first->last)."""
    parts = []
    for service, f in sorted(usage.items()):
        first, last, allocation = f.get("api_usage_first"), f.get("api_usage_last"), f.get("api_allocation")
        if last is None or allocation is None:
            continue
        parts.append(f"{service} {first or 0:,}->{last:,}/{allocation:,}")
    return "; ".join(parts) or "-"


def quarantine_table(engine: Engine, *, limit: int) -> FitTable | None:
    """The ``limit`` most recently seen quarantined records, newest first; None when there are none."""
    with Session(engine) as session:
        total = session.exec(select(func.count()).select_from(QuarantinedRow)).one()
        newest_first = select(QuarantinedRow).order_by(col(QuarantinedRow.last_seen).desc())
        rows = session.exec(newest_first.limit(limit)).all()
    if not total:
        return None
    table = FitTable(f"{total:,} quarantined record(s)", [
        Col("Stream", "left", wrap=True), Col("Record", "left", wrap=True), Col("Reason", "left", wrap=True),
        Col("Seen"), Col("Last seen (UTC)", "left", wrap=True)])
    for r in rows:
        seen = r.last_seen.strftime("%Y-%m-%d %H:%M")
        table.add_row(r.stream, r.record_key, escape(r.reason), str(r.times_seen), seen)
    return table


def quarantine_rows(engine: Engine, *, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` most recently seen quarantined records as plain dicts (``quarantine --json``)."""
    with Session(engine) as session:
        newest_first = select(QuarantinedRow).order_by(col(QuarantinedRow.last_seen).desc())
        rows = session.exec(newest_first.limit(limit)).all()
    return [
        {"stream": r.stream, "record": r.record_key, "reason": r.reason, "times_seen": r.times_seen,
         "first_seen": r.first_seen.isoformat(), "last_seen": r.last_seen.isoformat()}
        for r in rows
    ]
