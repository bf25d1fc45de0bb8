"""``closedloop roi``: load the spend files, then cost against credited results per channel.

Spend files are (re)loaded into the store on every call, so editing a file and re-running is
all an analyst does; GA4's imported cost arrives with ``closedloop run`` (stream
``ga4.ad_cost``).  Counts are credited counts under one model; see ``closedloop.attribution.roi``
for every definition.
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from closedloop.attribution.roi import GroupBy, RoiReport, RoiRow, roi_report
from closedloop.attribution.roi_query import (
    credited_models,
    read_credits,
    read_days_lead_to_won,
    read_spend,
    replace_file_spend,
)
from closedloop.attribution.spend import SpendFile, load_spend_files
from closedloop.config.loader import ConfigError, Problem, load_config
from closedloop.config.models import Config

DASH = "—"


def register(app: typer.Typer) -> None:
    app.command("roi")(roi)


def roi(
    config: Annotated[Path, typer.Option("--config", "-c", help="Path of the YAML config.")] = Path(
        "closedloop.yaml"
    ),
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Attribution model (default: primary_model).")
    ] = None,
    by: Annotated[str, typer.Option("--by", help="Group rows by 'channel' or 'campaign'.")] = "channel",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only spend and conversions on or after this day (YYYY-MM-DD)."),
    ] = None,
) -> None:
    """Cost per lead, per opportunity, CAC, ROAS, ROI and funnel rates per channel or campaign."""
    out, err = Console(), Console(stderr=True)
    if by not in ("channel", "campaign"):
        raise typer.BadParameter("use 'channel' or 'campaign'", param_hint="--by")
    since_day = _parse_day(since)
    cfg = _config_or_exit(config, err)
    chosen = model or cfg.attribution.primary_model
    if chosen not in cfg.attribution.model_names():
        raise typer.BadParameter(
            f"unknown model {chosen!r}; valid: {', '.join(cfg.attribution.model_names())}",
            param_hint="--model",
        )
    try:
        files = load_spend_files(cfg.attribution.spend_files)
    except ConfigError as exc:
        _print_problems(err, "The spend files cannot be used", exc.problems)
        raise typer.Exit(2) from None
    group_by: GroupBy = "campaign" if by == "campaign" else "channel"
    result, currency, loaded = _compute(cfg, files, chosen, group_by, since_day, err)
    if as_json:
        payload = {
            "model": chosen,
            "group_by": by,
            "currency": currency,
            "since": since_day.isoformat() if since_day else None,
            "spend_files": {str(f.path): {"origin": f.origin, "rows": len(f.entries), "cost": f.total} for f in files},
            "rows": [r.as_dict() for r in result.rows],
            "total": result.total.as_dict(),
            "spend_without_credit": result.spend_without_credit,
            "ga4_cost_overridden_by_files": result.ga4_cost_overridden,
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    title = f"ROI by {by} under {chosen}" + (f" since {since_day}" if since_day else "")
    out.print(roi_table(result, title=title, currency=currency))
    out.print(f"Spend files: {loaded:,} day rows loaded from {len(files)} file(s).")
    if result.ga4_cost_overridden:
        out.print(
            f"GA4 cost of {result.ga4_cost_overridden:,.2f} left out: spend files cover those channel-days."
        )
    if result.spend_without_credit:
        out.print(
            "[yellow]Spend on channel(s) no conversion credits:[/] "
            + escape(", ".join(result.spend_without_credit))
            + " (check the channel names against `closedloop report`)."
        )


def _parse_day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date; write YYYY-MM-DD", param_hint="--since") from None


def _config_or_exit(path: Path, err: Console) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        _print_problems(err, "The config cannot be used", exc.problems)
        raise typer.Exit(2) from None


def _print_problems(err: Console, headline: str, problems: list[Problem]) -> None:
    err.print(f"[bold red]{headline}[/] ({len(problems)} problem(s)):")
    for problem in problems:
        err.print(f"  {escape(str(problem))}")


def _compute(
    cfg: Config, files: list[SpendFile], model: str, by: GroupBy, since: date | None, err: Console
) -> tuple[RoiReport, str, int]:
    from closedloop.mapping.channels import ChannelMapper
    from closedloop.store.engine import open_store, session_scope

    since_at = datetime.combine(since, time(), ZoneInfo(cfg.timezone)) if since else None
    engine = open_store(cfg.store.url)
    with session_scope(engine) as session:
        loaded = replace_file_spend(session, files, currency=cfg.attribution.currency or "")
        spend, currencies = read_spend(
            session,
            ChannelMapper.from_config(cfg.mapping),
            file_origins=[f.origin for f in files],
            since=since,
        )
        credits = read_credits(session, model, since=since_at)
        models = credited_models(session) if not credits else []
        days = read_days_lead_to_won(session, since=since_at)
    if len(currencies) > 1:
        err.print(
            f"[bold red]Spend is in several currencies[/] ({', '.join(sorted(currencies))}); closedloop "
            "does not convert. Set attribution.currency to GA4's currency or convert the spend files."
        )
        raise typer.Exit(2)
    if not credits and models:
        err.print(
            f"[yellow]No credits under model {escape(model)!r}[/] in the store; models with credits: "
            f"{escape(', '.join(models))}. Add it to attribution.models and run `closedloop run`."
        )
    return roi_report(spend, credits, days, group_by=by), next(iter(currencies), ""), loaded


def _money(value: float | None) -> str:
    """Cents only where they matter (a cost per lead of 12.34), whole units for totals."""
    if value is None:
        return DASH
    return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"


def _count(value: float) -> str:
    return f"{value:,.1f}"


def _percent(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:,.0f}%" if abs(value) >= 10 else f"{value * 100:.1f}%"


def _times(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}x"


def _days(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}"


def _cells(row: RoiRow, *, by_campaign: bool, is_total: bool = False) -> list[str]:
    head = [escape(row.channel)]
    if by_campaign:
        head.append("" if is_total else escape(row.campaign or "(none)"))
    return [
        *head,
        _money(row.cost),
        _count(row.leads),
        _count(row.opportunities),
        _count(row.customers),
        _money(row.revenue),
        _money(row.cost_per_lead),
        _money(row.cost_per_opportunity),
        _money(row.cac),
        _times(row.roas),
        _percent(row.roi),
        _percent(row.lead_to_opportunity),
        _percent(row.opportunity_to_won),
        _days(row.median_days_lead_to_won),
    ]


def roi_table(result: RoiReport, *, title: str, currency: str = "") -> Table:
    """The rich table: '—' marks a ratio with nothing to divide by (no cost, no leads...)."""
    by_campaign = result.group_by == "campaign"
    table = Table(title=title, title_justify="left", show_footer=True)
    money = f" ({currency})" if currency else ""
    total = _cells(result.total, by_campaign=by_campaign, is_total=True)
    headers: list[tuple[str, Any]] = [("Channel", "left")]
    if by_campaign:
        headers.append(("Campaign", "left"))
    headers += [
        (f"Cost{money}", "right"),
        ("Leads", "right"),
        ("Opps", "right"),
        ("Customers", "right"),
        (f"Revenue{money}", "right"),
        ("Cost/lead", "right"),
        ("Cost/opp", "right"),
        ("CAC", "right"),
        ("ROAS", "right"),
        ("ROI", "right"),
        ("Lead→opp", "right"),
        ("Opp→won", "right"),
        ("Days lead→won", "right"),
    ]
    for (name, justify), footer in zip(headers, total, strict=True):
        # Numbers never wrap or get cut; headers wrap instead.
        table.add_column(name, justify=justify, footer=footer, no_wrap=justify == "right" or name == "Channel")
    for row in result.rows:
        table.add_row(*_cells(row, by_campaign=by_campaign))
    return table
