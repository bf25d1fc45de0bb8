"""``closedloop demo``: the whole loop against the built-in sandbox, shown as tables or JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from closedloop.cli.console import console, now, progress_line

app = typer.Typer()


def register(parent: typer.Typer) -> None:
    parent.command()(demo)



@app.command()
def demo(
    contacts: Annotated[int, typer.Option(min=50, max=200_000, help="Contacts in the synthetic company.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic company; same seed, same company.")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    db: Annotated[Path | None, typer.Option(help="SQLite file to keep (default: a temporary file).")] = None,
    crm: Annotated[str, typer.Option(help="The emulated CRM: hubspot or salesforce.")] = "hubspot",
) -> None:
    """Run the whole loop against the built-in sandbox on SQLite and show what it found and wrote."""
    from closedloop.report.coverage import store_coverage
    from closedloop.report.period import DEFAULT_CURRENCY
    from closedloop.report.roi_table import roi_table
    from closedloop.report.summary import ChannelRow, ChannelSummary
    from closedloop.report.terminal import (
        api_calls_table,
        channel_table,
        coverage_table,
        revenue_chart,
        writeback_table,
    )
    from closedloop.sandbox.demo import run_demo

    with progress_line(not as_json) as say:
        result = run_demo(contacts=contacts, seed=seed, database=db, now=now(), progress=say, crm=crm)
    data = result.as_dict()
    coverage = store_coverage(f"sqlite:///{data['database']}", data["summary"]["primary_model"])
    data.setdefault("coverage", [f.as_dict() for f in coverage])
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        return
    s = data["summary"]
    summary = ChannelSummary(
        s["primary_model"],
        s["models"],
        [
            ChannelRow(name, v["sessions"], v["contacts"], v["deals"], v["won"], v["revenue"])
            for name, v in s["channels"].items()
        ],
        s["won_revenue"],
        s["totals"],
    )
    company = data["company"]
    currency = str(s.get("currency") or data.get("currency") or DEFAULT_CURRENCY)
    console.rule("[bold]closedloop demo")
    console.print(
        f"Synthetic company: {company['contacts']:,} contacts, {company['deals']:,} deals, "
        f"{company['sessions']:,} web sessions. Store: {data['database']}"
    )
    console.print(channel_table(summary, currency=currency))
    console.print(revenue_chart(summary, currency=currency))
    console.print(f"Won revenue {s['won_revenue']:,.0f} {currency}; every model credits exactly that much.")
    console.print(roi_table(result.roi, title=f"ROI by channel under {s['primary_model']} (spend: GA4 ad cost)",
                            currency=currency))
    console.print(coverage_table(coverage, currency=currency))
    console.print(writeback_table(data["first_run"]["writeback"]))
    console.print(api_calls_table(data["first_run"]["api_calls"], title="API calls of the first run"))
    second = data["second_run"]["writeback"] or {}
    console.print(
        f"Second run, immediately after: [bold]{second.get('properties_written', 0)}[/] "
        f"properties written, {second.get('records_failed', 0)} failed."
    )
    for title, props in data["crm_sample"].items():
        console.print(f"[bold]In the CRM now[/], {title}:")
        for key, value in props.items():
            console.print(f"   {key} = {value}")
    secs = data["seconds"]
    console.print(
        f"Done in {secs['total']:.1f}s (first run {secs['first_run']:.1f}s, second {secs['second_run']:.1f}s)."
    )
