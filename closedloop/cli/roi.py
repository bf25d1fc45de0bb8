"""``closedloop roi``: load the spend files, then cost against credited results per channel.

Spend files are (re)loaded into the store on every call, so editing a file and re-running is
all an analyst does; GA4's imported cost arrives with ``closedloop run`` (stream
``ga4.ad_cost``).  Counts are credited counts under one model; see ``closedloop.attribution.roi``
for every definition.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.markup import escape

from closedloop.cli.console import DEFAULT_CONFIG, ConfigOption, console, err, load

app = typer.Typer()


def register(parent: typer.Typer) -> None:
    parent.command("roi")(roi)


@app.command("roi")
def roi(
    config: ConfigOption = DEFAULT_CONFIG,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Attribution model (default: primary_model).")
    ] = None,
    by: Annotated[str, typer.Option("--by", help="Group rows by 'channel' or 'campaign'.")] = "channel",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only spend and conversions on or after this day (YYYY-MM-DD)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Only spend and conversions on or before this day (YYYY-MM-DD)."),
    ] = None,
) -> None:
    """Cost per lead, per opportunity, CAC, ROAS, ROI and funnel rates per channel or campaign."""
    from closedloop.cli.report import check_period, chosen_model, parse_day
    from closedloop.files.spend import load_spend_files
    from closedloop.report.roi_paid import totals_dict
    from closedloop.report.roi_query import compute_roi
    from closedloop.report.roi_table import roi_table
    from closedloop.report.terminal import coverage_table

    if by not in ("channel", "campaign"):
        raise typer.BadParameter("use 'channel' or 'campaign'", param_hint="--by")
    since_day, until_day = parse_day(since, "--since"), parse_day(until, "--until")
    check_period(since_day, until_day)
    cfg = load(config)
    chosen = chosen_model(cfg, model)
    files = load_spend_files(cfg.attribution.spend_files)
    found = compute_roi(cfg, files, chosen, "campaign" if by == "campaign" else "channel", since_day, until_day)
    result = found.report
    basis = found.basis  # credits from this YAML, or say so
    if basis.warning():
        err.print(f"[yellow]warning:[/] {escape(basis.warning() or '')}")
    if not found.has_credits and found.models_with_credits:
        err.print(
            f"[yellow]No credits under model {escape(chosen)!r}[/] in the store; models with credits: "
            f"{escape(', '.join(found.models_with_credits))}. Add it to attribution.models and run `closedloop run`."
        )
    if as_json:
        payload = {
            "model": chosen,
            "group_by": by,
            "currency": found.currency,
            "since": since_day.isoformat() if since_day else None,
            "until": until_day.isoformat() if until_day else None,
            "spend_files": {str(f.path): {"origin": f.origin, "rows": len(f.entries), "cost": f.total} for f in files},
            "rows": [r.as_dict() for r in result.rows],
            **totals_dict(result),
            "coverage": [f.as_dict() for f in found.coverage],
            "spend_without_credit": result.spend_without_credit,
            "ga4_cost_overridden_by_files": result.ga4_cost_overridden,
            "credits_config": basis.as_dict(),
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    title = f"ROI by {by} under {chosen}" + (f" since {since_day}" if since_day else "") + (
        f" until {until_day}" if until_day else ""
    )
    console.print(roi_table(result, title=title, currency=found.currency))
    console.print(coverage_table(found.coverage, currency=found.currency))
    console.print(f"Spend files: {found.loaded:,} day rows loaded from {len(files)} file(s).")
    if result.ga4_cost_overridden:
        console.print(
            f"GA4 cost of {result.ga4_cost_overridden:,.2f} left out: spend files cover those channel-days."
        )
    if result.spend_without_credit:
        console.print(
            "[yellow]Spend on channel(s) no conversion credits:[/] "
            + escape(", ".join(result.spend_without_credit))
            + " (check the channel names against `closedloop report`)."
        )

