"""The landing pages that convert: credited leads and won revenue per landing page.

A lead's credit goes to the touches of its journey (under the chosen model); each web touch
names the page the session landed on, so a page earns the leads its sessions were credited
with.  Sessions per page come from GA4; the lead rate is credited leads per session.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from closedloop.attribution.roi import ratio
from closedloop.report.period import Period
from closedloop.store import models as m


@dataclass(slots=True)
class LandingPageRow:
    page: str
    sessions: int = 0
    leads: float = 0.0
    revenue: float = 0.0

    @property
    def lead_rate(self) -> float | None:
        return ratio(self.leads, float(self.sessions))

    def as_dict(self) -> dict[str, Any]:
        return {
            "page": self.page,
            "sessions": self.sessions,
            "leads": round(self.leads, 3),
            "revenue": round(self.revenue, 2),
            "lead_rate": self.lead_rate,
        }


def top_landing_pages(session: Session, model: str, period: Period, *, limit: int = 10) -> list[LandingPageRow]:
    """The ``limit`` pages with the most credited leads (then revenue), web touches only."""
    pages: dict[str, LandingPageRow] = {}
    credited = (
        select(col(m.Touchpoint.landing_page), col(m.Conversion.kind), func.sum(col(m.Credit.weight)),
               func.sum(col(m.Credit.revenue)))
        .join(m.Touchpoint, col(m.Touchpoint.id) == col(m.Credit.touchpoint_id))
        .join(m.Conversion, col(m.Conversion.id) == col(m.Credit.conversion_id))
        .where(col(m.Credit.model) == model, col(m.Touchpoint.landing_page) != "",
               col(m.Conversion.kind).in_(("contact_created", "deal_won")))
        .group_by(col(m.Touchpoint.landing_page), col(m.Conversion.kind))
    )
    credited = period.where(credited, col(m.Conversion.occurred_at))
    for page, kind, weight, revenue in session.execute(credited):
        row = pages.setdefault(page, LandingPageRow(page))
        if kind == "contact_created":
            row.leads += float(weight or 0.0)
        else:
            row.revenue += float(revenue or 0.0)
    sessions: dict[str, int] = defaultdict(int)
    stmt = select(col(m.WebSession.landing_page), func.sum(col(m.WebSession.sessions))).where(
        col(m.WebSession.landing_page).in_(list(pages))
    ).group_by(col(m.WebSession.landing_page))
    if period.start is not None:
        stmt = stmt.where(col(m.WebSession.started_at) >= period.start)
    if period.end is not None:
        stmt = stmt.where(col(m.WebSession.started_at) < period.end)
    for page, n in session.execute(stmt):
        sessions[page] += int(n or 0)
    for page, row in pages.items():
        row.sessions = sessions.get(page, 0)
    ranked = sorted(pages.values(), key=lambda r: (-r.leads, -r.revenue, r.page))
    return [r for r in ranked if r.leads > 0 or r.revenue > 0][:limit]
