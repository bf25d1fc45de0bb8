"""``closedloop report``, ``runs`` and ``quarantine``: what the store holds, shown to people."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from closedloop.cli.console import DEFAULT_CONFIG, ConfigOption, console, err, load, now

if TYPE_CHECKING:
    from closedloop.config.models import Config

app = typer.Typer()

SinceOption = Annotated[
    str | None, typer.Option("--since", help="First day included (YYYY-MM-DD, account time zone).")
]
UntilOption = Annotated[
    str | None, typer.Option("--until", help="Last day included (YYYY-MM-DD, account time zone).")
]
ModelOption = Annotated[
    str | None, typer.Option("--model", "-m", help="Attribution model for counts (default: primary_model).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def register(parent: typer.Typer) -> None:
    parent.command()(report)
    parent.command()(runs)
    parent.command()(quarantine)


def parse_day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date; write YYYY-MM-DD", param_hint=option) from None


def check_period(since: date | None, until: date | None) -> None:
    if since and until and until < since:
        raise typer.BadParameter(f"--until {until} is before --since {since}", param_hint="--until")


def chosen_model(cfg: Config, model: str | None) -> str:
    """``--model``, else the primary model; one the config does not define is a usage error."""
    chosen = model or cfg.attribution.primary_model
    valid = cfg.attribution.model_names()
    if chosen not in valid:
        raise typer.BadParameter(f"unknown model {chosen!r}; valid: {', '.join(valid)}", param_hint="--model")
    return chosen


@app.command()
def report(
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report with charts here.")
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    model: ModelOption = None,
) -> None:
    """The funnel, revenue under every model, ROI, trend, landing pages and coverage, from the store."""
    from closedloop.report.build import build_report
    from closedloop.report.period import Period
    from closedloop.report.roi_table import roi_table
    from closedloop.report.terminal import (
        coverage_table,
        funnel_table,
        landing_pages_table,
        models_table,
        report_revenue_chart,
        trend_table,
    )
    from closedloop.store.engine import open_store

    since_day, until_day = parse_day(since, "--since"), parse_day(until, "--until")
    check_period(since_day, until_day)
    cfg = load(config)
    chosen = chosen_model(cfg, model)
    data = build_report(
        open_store(cfg.store.url), cfg, model=chosen, period=Period(since_day, until_day, cfg.timezone), now=now()
    )
    if html is not None:
        from closedloop.report.html import render_html

        html.write_text(render_html(data), encoding="utf-8")
        err.print(f"Wrote {html}")
    if as_json:
        basis = data.basis.as_dict()  # the warning itself is in notes
        sys.stdout.write(json.dumps({**data.as_dict(), "credits_config": basis}, indent=2) + "\n")
        return
    console.print(f"Period {data.period_label}; money in {data.currency}; counts credited under {chosen}.")
    for note in data.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(funnel_table(data))
    console.print(report_revenue_chart(data))
    console.print(models_table(data))
    if data.has_spend:
        console.print(roi_table(data.roi_channel, title=f"ROI by channel under {chosen}", currency=data.currency))
    console.print(trend_table(data))
    if data.landing_pages:
        console.print(landing_pages_table(data))
    console.print(coverage_table(data.coverage, currency=data.currency))


@app.command()
def runs(
    config: ConfigOption = DEFAULT_CONFIG,
    limit: Annotated[int, typer.Option(help="How many recent runs.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List recent runs: duration, records pulled, changes, writes, failures, API calls."""
    from closedloop.report.history import run_notes_table, runs_rows, runs_table
    from closedloop.store.engine import open_store

    cfg = load(config)
    engine = open_store(cfg.store.url)
    if as_json:
        sys.stdout.write(json.dumps(runs_rows(engine, limit=limit), indent=2) + "\n")
        return
    console.print(runs_table(engine, limit=limit))
    notes = run_notes_table(engine, limit=limit)
    if notes is not None:
        console.print(notes)


@app.command()
def quarantine(
    config: ConfigOption = DEFAULT_CONFIG,
    limit: Annotated[int, typer.Option(help="How many records to list.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List records the APIs sent that could not be used, with the reason, instead of losing them."""
    from closedloop.report.history import quarantine_rows, quarantine_table
    from closedloop.store.engine import open_store

    cfg = load(config)
    engine = open_store(cfg.store.url)
    if as_json:
        sys.stdout.write(json.dumps(quarantine_rows(engine, limit=limit), indent=2) + "\n")
        return
    table = quarantine_table(engine, limit=limit)
    if table is None:
        console.print("No quarantined records: every record pulled so far could be used.")
        return
    console.print(table)
