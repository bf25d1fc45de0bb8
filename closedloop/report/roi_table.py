"""The ROI table as people read it: money with cents only where they matter, '—' where a ratio has
nothing to divide by (no cost, no leads...), never 'inf'.

Its totals compare like with like: the *paid* total divides the revenue of channels with spend
by their cost; the all-channels line adds organic revenue and so carries no cost ratio.  Short
headers with a legend keep it readable at 80 columns; campaign names wrap, never cut.
"""

from __future__ import annotations

from rich.markup import escape

from closedloop.attribution.roi import RoiReport, RoiRow
from closedloop.report.fit import Col, FitTable
from closedloop.report.roi_paid import ALL_LABEL, paid_total

DASH = "—"
LEGEND = {
    "CPL": "cost per lead",
    "CPO": "cost per opportunity",
    "CAC": "cost per won customer",
    "ROAS": "revenue / cost",
    "ROI": "(revenue - cost) / cost",
    "L→O": "lead to opportunity",
    "O→W": "opportunity to won",
    "Days": "median days lead to won",
}


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


def _cells(row: RoiRow, *, by_campaign: bool, is_total: bool = False, cost_ratios: bool = True) -> list[str]:
    head = [escape(row.channel)]
    if by_campaign:
        head.append("" if is_total else escape(row.campaign or "(none)"))
    ratios = [_money(row.cost_per_lead), _money(row.cost_per_opportunity), _money(row.cac), _times(row.roas),
              _percent(row.roi)] if cost_ratios else [DASH] * 5
    return [
        *head,
        _money(row.cost),
        _count(row.leads),
        _count(row.opportunities),
        _count(row.customers),
        _money(row.revenue),
        *ratios,
        _percent(row.lead_to_opportunity),
        _percent(row.opportunity_to_won),
        _days(row.median_days_lead_to_won),
    ]


def roi_table(result: RoiReport, *, title: str, currency: str = "") -> FitTable:
    """Rows, then the paid total (its ratios are paid revenue over paid cost) and all channels."""
    by_campaign = result.group_by == "campaign"
    money = f" in {currency}" if currency else ""
    columns = [Col("Channel", "left", key=True, wrap=True)]
    if by_campaign:
        columns.append(Col("Campaign", "left", key=True, wrap=True))
    columns += [Col(name) for name in ("Cost", "Leads", "Opps", "Won", "Revenue", "CPL", "CPO", "CAC", "ROAS",
                                        "ROI", "L→O", "O→W", "Days")]
    table = FitTable(
        f"{title} (money{money})",
        columns,
        legend=LEGEND,
        note="Paid total: channels with spend only, so ROAS and ROI compare paid revenue with paid cost. "
        "Counts are credited shares, so they can be fractional.",
    )
    for row in result.rows:
        table.add_row(*_cells(row, by_campaign=by_campaign))
    table.footer.append(_cells(paid_total(result), by_campaign=by_campaign, is_total=True))
    everything = RoiRow(ALL_LABEL, "" if by_campaign else None, result.total.cost, result.total.leads,
                        result.total.opportunities, result.total.customers, result.total.revenue,
                        result.total.median_days_lead_to_won)
    table.footer.append(_cells(everything, by_campaign=by_campaign, is_total=True, cost_ratios=False))
    return table
