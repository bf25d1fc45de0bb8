"""The ROI table as people read it: money with cents only where they matter, '—' where a ratio has
nothing to divide by (no cost, no leads...), never 'inf'."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from closedloop.attribution.roi import RoiReport, RoiRow

DASH = "—"


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
