"""What a report covers: the days chosen (``--since``/``--until``) and the currency its money is in.

One place decides both, so the terminal, JSON and HTML outputs can never disagree about them.
``report_currency`` is the single seam for the reporting currency: the multi-currency work
(issue 16) changes this function, not every renderer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from closedloop.config.models import Config

DEFAULT_CURRENCY = "USD"


def report_currency(config: Config) -> str:
    """The ISO code every money figure of a report is labelled with: the config's
    ``reporting_currency``, the one revenue is credited in and spend is converted to."""
    code = getattr(config, "reporting_currency", None) or config.attribution.currency or DEFAULT_CURRENCY
    return str(code).upper()


@dataclass(frozen=True, slots=True)
class Period:
    """Days ``since`` to ``until``, both included, in the account's time zone; ``None`` is open."""

    since: date | None = None
    until: date | None = None
    timezone: str = "UTC"

    @property
    def start(self) -> datetime | None:
        """First instant inside the period (an aware datetime), or None."""
        return datetime.combine(self.since, time(), ZoneInfo(self.timezone)) if self.since else None

    @property
    def end(self) -> datetime | None:
        """First instant after the period (exclusive bound), or None."""
        if self.until is None:
            return None
        return datetime.combine(self.until + timedelta(days=1), time(), ZoneInfo(self.timezone))

    def where(self, stmt: Any, moment: Any) -> Any:
        """``stmt`` kept to rows whose ``moment`` column is in the period: the SQL form of ``contains``."""
        if self.start is not None:
            stmt = stmt.where(moment >= self.start)
        if self.end is not None:
            stmt = stmt.where(moment < self.end)
        return stmt

    def contains(self, moment: datetime) -> bool:
        start, end = self.start, self.end
        return (start is None or moment >= start) and (end is None or moment < end)

    def contains_day(self, day: date) -> bool:
        return (self.since is None or day >= self.since) and (self.until is None or day <= self.until)

    def label(self, first: datetime | None = None, last: datetime | None = None) -> str:
        """'2026-09-01 to 2026-11-20'; an open end is filled from the data's first/last moment."""
        tz = ZoneInfo(self.timezone)
        low = self.since or (first.astimezone(tz).date() if first else None)
        high = self.until or (last.astimezone(tz).date() if last else None)
        if low is None and high is None:
            return "all data (the store is empty)"
        return f"{low or 'the start'} to {high or 'today'}"
