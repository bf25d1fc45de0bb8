"""What the store remembers about past runs and refused records, as tables for `closedloop runs`
and `closedloop quarantine`: the queries and their rendering, so the commands hold no SQL."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from closedloop.store.models import QuarantinedRow, SyncRun

_RUN_COLUMNS = (
    "Run",
    "Job",
    "Started (UTC)",
    "Status",
    "Seconds",
    "Pulled",
    "Touchpoints Δ",
    "Credits Δ",
    "Written",
    "Failed",
    "API calls",
    "API usage",
)
_LEFT = ("Job", "Status", "Started (UTC)")


def runs_table(engine: Engine, *, limit: int) -> Table:
    """The ``limit`` newest runs: duration, records pulled, changes, writes, failures, API calls."""
    with Session(engine) as session:
        rows = session.exec(select(SyncRun).order_by(col(SyncRun.id).desc()).limit(limit)).all()
    table = Table(title="Recent runs", title_justify="left")
    for name in _RUN_COLUMNS:
        table.add_column(name, justify="left" if name in _LEFT else "right")
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


def quarantine_table(engine: Engine, *, limit: int) -> Table | None:
    """The ``limit`` most recently seen quarantined records, newest first; None when there are none."""
    with Session(engine) as session:
        total = session.exec(select(func.count()).select_from(QuarantinedRow)).one()
        newest_first = select(QuarantinedRow).order_by(col(QuarantinedRow.last_seen).desc())
        rows = session.exec(newest_first.limit(limit)).all()
    if not total:
        return None
    table = Table(title=f"{total:,} quarantined record(s)", title_justify="left")
    for header in ("Stream", "Record", "Reason", "Seen", "Last seen (UTC)"):
        table.add_column(header, justify="right" if header == "Seen" else "left")
    for r in rows:
        seen = r.last_seen.strftime("%Y-%m-%d %H:%M")
        table.add_row(r.stream, r.record_key, escape(r.reason), str(r.times_seen), seen)
    return table
