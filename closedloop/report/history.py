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
                "Failed", "Calls", "API usage")
_LEFT = ("Job", "Status", "Started (UTC)", "API usage")
_KEYS = ("Run",)
_RUN_LEGEND = {"Touch Δ": "touchpoints changed", "Credit Δ": "credits changed", "Calls": "API calls"}


def runs_rows(engine: Engine, *, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` newest runs as plain dicts (``runs --json``)."""
    table = runs_table(engine, limit=limit)
    keys = ("run", "job", "started_at", "status", "seconds", "pulled", "touchpoints_changed", "credits_changed",
            "written", "failed", "api_calls", "api_usage")
    return [dict(zip(keys, row, strict=True)) for row in table.rows]


def runs_table(engine: Engine, *, limit: int) -> FitTable:
    """The ``limit`` newest runs: duration, records pulled, changes, writes, failures, API calls."""
    with Session(engine) as session:
        rows = session.exec(select(SyncRun).order_by(col(SyncRun.id).desc()).limit(limit)).all()
    columns = [Col(name, "left" if name in _LEFT else "right", key=name in _KEYS, wrap=name == "API usage")
               for name in _RUN_COLUMNS]
    table = FitTable("Recent runs", columns, legend=_RUN_LEGEND)
    for r in rows:
        stats: dict[str, Any] = r.stats or {}
        pulled = sum(v for counts in (stats.get("pulled") or {}).values() for k, v in counts.items() if k != "batches")
        rb = stats.get("rebuild") or {}
        wb = stats.get("writeback") or {}
        calls = sum(n for statuses in (r.api_calls or {}).values() for n in statuses.values())
        table.add_row(
            str(r.id),
            r.job,
            r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            r.status,
            f"{stats.get('duration_s', 0):.1f}",
            f"{pulled:,}",
            f"{(rb.get('touchpoints') or {}).get('changed', 0):,}",
            f"{(rb.get('credits') or {}).get('changed', 0):,}",
            f"{wb.get('properties_written', 0):,}",
            f"{wb.get('records_failed', 0):,}",
            f"{calls:,}",
            _usage(stats.get("usage") or {}),
        )
    return table


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
