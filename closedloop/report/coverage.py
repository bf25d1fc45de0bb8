"""How much of a report rests on web data and how much on fallback: the coverage figures.

A won deal whose journey holds no web session was credited from the CRM's own source fields
(an offline touch) or not at all; a marketer must see that share before trusting a channel's
number.  A conversion "has a web journey" when any touch credited for it, under any model,
is a GA4 session; models that credit every touch (linear, the position models' middle) make
that the whole journey the engine saw.

Other parts add their own figures (sessions dropped as not-a-person, deals without an amount
or an exchange rate...) by appending ``CoverageFigure`` values in ``coverage_figures``; every
output renders the list as it comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from closedloop.attribution.roi import ratio
from closedloop.report.period import Period
from closedloop.store import models as m


@dataclass(frozen=True, slots=True)
class CoverageFigure:
    """``part`` of ``whole`` (a share), or a plain count when ``whole`` is None."""

    key: str
    label: str
    part: float
    whole: float | None = None
    money: bool = False  # part and whole are amounts in the report's currency
    note: str = ""

    @property
    def share(self) -> float | None:
        return None if self.whole is None else ratio(self.part, self.whole)

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "part": self.part, "whole": self.whole,
                "share": self.share, "money": self.money, "note": self.note}



def coverage_figures(session: Session, model: str, period: Period) -> list[CoverageFigure]:
    """Web-journey shares of won revenue, won deals and new contacts; offline-credited revenue."""
    at = col(m.Conversion.occurred_at)
    # Stops at a conversion's first credited web touch: 4x faster than listing every credited
    # pair (2.8 million credit rows at 100,000 contacts took 3 s; this takes under 1).
    has_web_touch = (
        select(col(m.Credit.touchpoint_id))
        .join(m.Touchpoint, col(m.Touchpoint.id) == col(m.Credit.touchpoint_id))
        .where(col(m.Credit.conversion_id) == col(m.Conversion.id), col(m.Touchpoint.is_offline).is_(False))
        .exists()
    )
    conversions = period.where(
        select(col(m.Conversion.kind), col(m.Conversion.value), has_web_touch).where(
            col(m.Conversion.kind).in_(("contact_created", "deal_won"))
        ),
        at,
    )
    won = won_web = revenue = revenue_web = contacts = contacts_web = 0.0
    for kind, value, web in session.execute(conversions):
        if kind == "deal_won":
            won += 1
            revenue += float(value or 0.0)
            if web:
                won_web += 1
                revenue_web += float(value or 0.0)
        else:
            contacts += 1
            contacts_web += web
    credited = period.where(
        select(col(m.Touchpoint.is_offline), func.sum(col(m.Credit.revenue)))
        .join(m.Touchpoint, col(m.Touchpoint.id) == col(m.Credit.touchpoint_id))
        .join(m.Conversion, col(m.Conversion.id) == col(m.Credit.conversion_id))
        .where(col(m.Credit.model) == model, col(m.Conversion.kind) == "deal_won")
        .group_by(col(m.Touchpoint.is_offline)),
        at,
    )
    by_kind = {bool(offline): float(total or 0.0) for offline, total in session.execute(credited)}
    return [
        CoverageFigure("won_revenue_web", "Won revenue with a web journey", revenue_web, revenue, money=True),
        CoverageFigure("won_deals_web", "Won deals with a web journey", won_web, won),
        CoverageFigure("contacts_web", "New contacts with a web journey", contacts_web, contacts),
        CoverageFigure(
            "revenue_offline",
            f"Won revenue credited to offline sources ({model})",
            by_kind.get(True, 0.0),
            sum(by_kind.values()),
            money=True,
            note="CRM source fields stood in where no GA4 session matched",
        ),
        *_run_figures(session),
    ]


def _run_figures(session: Session) -> list[CoverageFigure]:
    """What the last run recorded (not-a-person sessions, deals without amount or rate, GA4 flags)."""
    from closedloop.report.coverage_run import last_run_stats, run_figures  # it imports this module

    return run_figures(last_run_stats(session))


def store_coverage(url: str, model: str, period: Period | None = None) -> list[CoverageFigure]:
    """The figures for the store at ``url`` (the demo's and a run's summary line)."""
    from closedloop.store.engine import make_engine

    with Session(make_engine(url)) as session:
        return coverage_figures(session, model, period or Period())
