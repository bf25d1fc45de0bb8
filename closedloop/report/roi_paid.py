"""Totals that compare like with like: paid revenue against paid cost.

``roi_report``'s total adds every row, organic channels included, so its ROAS divided all
revenue by the cost of the paid channels alone and flattered every paid channel.  Here the
rows with a known cost (a spend row, even of zero) make the *paid* total whose ratios mean
something; the all-channel total keeps its counts and revenue but no cost ratio.
"""

from __future__ import annotations

from typing import Any

from closedloop.attribution.roi import RoiReport, RoiRow, weighted_median

PAID_LABEL = "Paid total"
ALL_LABEL = "All channels"
_COST_RATIOS = ("cost_per_lead", "cost_per_opportunity", "cac", "roas", "roi")


def paid_total(report: RoiReport) -> RoiRow:
    """Sum of the rows whose cost is known; its ROAS and ROI are paid revenue over paid cost."""
    paid = [r for r in report.rows if r.cost is not None]
    total = RoiRow(PAID_LABEL, "" if report.group_by == "campaign" else None)
    days: list[tuple[float, float]] = []
    for r in paid:
        total.cost = (total.cost or 0.0) + (r.cost or 0.0)
        total.leads += r.leads
        total.opportunities += r.opportunities
        total.customers += r.customers
        total.revenue += r.revenue
        days.extend(r._days)
    total.median_days_lead_to_won = weighted_median(days)
    return total


def unpaid_revenue(report: RoiReport) -> float:
    """Credited revenue of rows with no known cost (organic, direct, email...)."""
    return sum(r.revenue for r in report.rows if r.cost is None)


def totals_dict(report: RoiReport) -> dict[str, Any]:
    """JSON of both totals: ``paid_total`` with its ratios, ``total`` with counts only."""
    everything = report.total.as_dict()
    for key in _COST_RATIOS:
        everything[key] = None  # all revenue over paid cost compares unlike things
    everything["channel"] = ALL_LABEL
    return {
        "paid_total": paid_total(report).as_dict(),
        "total": everything,
        "unpaid_revenue": unpaid_revenue(report),
    }
