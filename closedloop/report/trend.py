"""The monthly trend: leads created, deals won and won revenue per calendar month.

Leads and won deals are real counts here (one conversion is one), not credited shares: a
month does not split a conversion the way channels do.  Months are calendar months in the
account's time zone, and every month between the first and the last is listed, empty or not,
so a chart's gaps are real gaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session, col

from closedloop.report.period import Period
from closedloop.store import models as m


@dataclass(slots=True)
class MonthRow:
    month: str  # YYYY-MM
    leads: int = 0
    won: int = 0
    revenue: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"month": self.month, "leads": self.leads, "won": self.won, "revenue": round(self.revenue, 2)}


def _next(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year + number // 12}-{number % 12 + 1:02d}"


def monthly_trend(session: Session, period: Period) -> list[MonthRow]:
    tz = ZoneInfo(period.timezone)
    stmt = select(col(m.Conversion.kind), col(m.Conversion.occurred_at), col(m.Conversion.value)).where(
        col(m.Conversion.kind).in_(("contact_created", "deal_won"))
    )
    stmt = period.where(stmt, col(m.Conversion.occurred_at))
    months: dict[str, MonthRow] = {}
    for kind, at, value in session.execute(stmt):
        key = at.astimezone(tz).strftime("%Y-%m")
        row = months.setdefault(key, MonthRow(key))
        if kind == "contact_created":
            row.leads += 1
        else:
            row.won += 1
            row.revenue += float(value or 0.0)
    if not months:
        return []
    out: list[MonthRow] = []
    month, last = min(months), max(months)
    while month <= last:
        out.append(months.get(month, MonthRow(month)))
        month = _next(month)
    return out
