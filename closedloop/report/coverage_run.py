"""Coverage figures the last run recorded: what the numbers leave out, named in every output.

The rebuild counts GA4 rows of no one (``(not set)``, ``(other)``, empty client id: kept out
of every journey) and won deals it could not give revenue (no amount, or no exchange rate into
the reporting currency); the GA4 pull counts report pages GA4 flagged (thresholding, rows
folded into "(other)", sampling).  They are read from the newest finished run's record.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from closedloop.report.coverage import CoverageFigure
from closedloop.store import models as m


def last_run_stats(session: Session) -> dict[str, Any]:
    """The stats of the newest run that rebuilt (ok, partial or interrupted); {} if none."""
    stmt = (
        select(col(m.SyncRun.stats))
        .where(col(m.SyncRun.finished_at).is_not(None))
        .order_by(col(m.SyncRun.started_at).desc(), col(m.SyncRun.id).desc())
        .limit(20)
    )
    for (stats,) in session.execute(stmt):
        if (stats or {}).get("rebuild"):
            return dict(stats)
    return {}


def run_figures(stats: dict[str, Any]) -> list[CoverageFigure]:
    rebuild = stats.get("rebuild") or {}
    money = rebuild.get("money") or {}
    ga4 = (stats.get("pulled") or {}).get("ga4.sessions") or {}
    pages = ga4.get("batches")
    kinds = ("sessions_matched", "sessions_anonymous", "sessions_not_a_person")
    sessions = sum(int(rebuild.get(k) or 0) for k in kinds)
    won = money.get("won_deals")
    figures = [
        CoverageFigure(
            "sessions_not_a_person",
            "GA4 sessions of no one, left out of journeys",
            float(rebuild.get("sessions_not_a_person") or 0),
            float(sessions) if sessions else None,
            note='client id "(not set)", "(other)" or empty',
        ),
        CoverageFigure("won_deals_without_amount", "Won deals without an amount (no revenue)",
                       float(money.get("won_without_amount") or 0), float(won) if won else None,
                       note=", ".join(money.get("without_amount_examples") or [])[:200]),
        CoverageFigure("won_deals_without_rate", "Won deals without an exchange rate (no revenue)",
                       float(money.get("won_without_rate") or 0), float(won) if won else None,
                       note=", ".join(money.get("without_rate_examples") or [])[:200]),
    ]
    for key, label in (
        ("pages_subject_to_thresholding", "GA4 report pages subject to thresholding"),
        ("pages_with_other_row_loss", 'GA4 report pages with rows folded into "(other)"'),
        ("pages_sampled", "GA4 report pages sampled"),
    ):
        figures.append(CoverageFigure(key, label, float(ga4.get(key) or 0), float(pages) if pages else None))
    return figures
