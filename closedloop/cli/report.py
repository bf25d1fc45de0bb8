"""``closedloop report``, ``runs`` and ``quarantine``: what the store holds, shown to people."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from closedloop.cli.console import DEFAULT_CONFIG, ConfigOption, console, err, load, now

app = typer.Typer()


def register(parent: typer.Typer) -> None:
    parent.command()(report)
    parent.command()(runs)
    parent.command()(quarantine)


@app.command()
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

    cfg = load(config)
    summary = channel_summary(open_store(cfg.store.url), cfg)
    if html is not None:
        from closedloop.report.html import render_report

        html.write_text(render_report(summary, generated_at=now()), encoding="utf-8")
        err.print(f"Wrote {html}")
    if as_json:
        sys.stdout.write(json.dumps(summary.as_dict(), indent=2) + "\n")
    else:
        print_summary(console, summary)


@app.command()
def runs(
    config: ConfigOption = DEFAULT_CONFIG,
    limit: Annotated[int, typer.Option(help="How many recent runs.")] = 20,
) -> None:
    """List recent runs: duration, records pulled, changes, writes, failures, API calls."""
    from closedloop.report.history import runs_table
    from closedloop.store.engine import open_store

    cfg = load(config)
    console.print(runs_table(open_store(cfg.store.url), limit=limit))


@app.command()
def quarantine(
    config: ConfigOption = DEFAULT_CONFIG,
    limit: Annotated[int, typer.Option(help="How many records to list.")] = 50,
) -> None:
    """List records the APIs sent that could not be used, with the reason, instead of losing them."""
    from closedloop.report.history import quarantine_table
    from closedloop.store.engine import open_store

    cfg = load(config)
    table = quarantine_table(open_store(cfg.store.url), limit=limit)
    if table is None:
        console.print("No quarantined records: every record pulled so far could be used.")
        return
    console.print(table)
