"""Commands that read the store: the channel report, run history, quarantined records."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from closedloop.cli_support import DEFAULT_CONFIG, ConfigOption, console, err, load_or_exit, now


def register(app: typer.Typer) -> None:
    app.command()(report)
    app.command()(runs)
    app.command()(quarantine)


def report(
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report with charts here.")
    ] = None,
) -> None:
    """Show the channel table and revenue chart from what is in the store now."""
    from closedloop.report.summary import channel_summary
    from closedloop.report.terminal import print_summary
    from closedloop.store.engine import open_store

    cfg = load_or_exit(config)
    summary = channel_summary(open_store(cfg.store.url), cfg)
    if html is not None:
        from closedloop.report.html import render_report

        html.write_text(render_report(summary, generated_at=now()), encoding="utf-8")
        err.print(f"Wrote {html}")
    if as_json:
        sys.stdout.write(json.dumps(summary.as_dict(), indent=2) + "\n")
    else:
        print_summary(console, summary)


def runs(
    config: ConfigOption = DEFAULT_CONFIG,
    limit: Annotated[int, typer.Option(help="How many recent runs.")] = 20,
) -> None:
    """List recent runs: duration, records pulled, changes, writes, failures, API calls."""
    from rich.table import Table
    from sqlmodel import Session, select

    from closedloop.store.engine import open_store
    from closedloop.store.models import SyncRun

    cfg = load_or_exit(config)
    with Session(open_store(cfg.store.url)) as session:
        rows = session.exec(select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)).all()  # type: ignore[union-attr]
    table = Table(title="Recent runs", title_justify="left")
    for col in (
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
    ):
        table.add_column(col, justify="right" if col not in ("Job", "Status", "Started (UTC)") else "left")
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
        )
    console.print(table)


def quarantine(
    config: ConfigOption = DEFAULT_CONFIG,
    limit: Annotated[int, typer.Option(help="How many records to list.")] = 50,
) -> None:
    """List records the APIs sent that could not be used, with the reason, instead of losing them."""
    from rich.table import Table
    from sqlmodel import Session, col, func, select

    from closedloop.store.engine import open_store
    from closedloop.store.models import QuarantinedRow

    cfg = load_or_exit(config)
    with Session(open_store(cfg.store.url)) as session:
        total = session.exec(select(func.count()).select_from(QuarantinedRow)).one()
        newest_first = select(QuarantinedRow).order_by(col(QuarantinedRow.last_seen).desc())
        rows = session.exec(newest_first.limit(limit)).all()
    if not total:
        console.print("No quarantined records: every record pulled so far could be used.")
        return
    table = Table(title=f"{total:,} quarantined record(s)", title_justify="left")
    for header in ("Stream", "Record", "Reason", "Seen", "Last seen (UTC)"):
        table.add_column(header, justify="right" if header == "Seen" else "left")
    for r in rows:
        seen = r.last_seen.strftime("%Y-%m-%d %H:%M")
        table.add_row(r.stream, r.record_key, escape(r.reason), str(r.times_seen), seen)
    console.print(table)
