"""Money in one reporting currency: a deal's amount or a day's cost, converted with dated rates.

Pure.  Deals in several currencies were summed raw; now every amount is brought into the
configured reporting currency before it is credited, in this order:

1. an amount already in the reporting currency is taken as it is;
2. the CRM's own home-currency amount (HubSpot ``amount_in_home_currency``) is used where the
   home currency is the reporting currency (or converted from the home currency otherwise),
   because the CRM converted it with the rate its users see;
3. otherwise the amount is converted with the latest rate on or before the day (the win, or
   the cost's day) from the rates file.

What cannot be converted is never guessed: it is ``None`` with a reason (``no_amount``,
``no_rate``), and the run names those deals.  A rate is the value of one unit of a currency in
the reporting currency on that day (``date,currency,rate``: ``2024-03-01,EUR,1.09`` with USD
reporting); the reporting currency's own rate is 1.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

Problem = Literal["no_amount", "no_rate"]


@dataclass(frozen=True, slots=True)
class Rates:
    """Dated rates into ``reporting``: currency -> (days ascending, rates of those days)."""

    reporting: str
    by_currency: Mapping[str, tuple[tuple[date, ...], tuple[float, ...]]] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[date, str, float]], reporting: str) -> Rates:
        """Rows of ``(day, currency, rate)`` in any order; a repeated (day, currency) keeps the last."""
        grouped: dict[str, dict[date, float]] = {}
        for day, currency, rate in rows:
            grouped.setdefault(currency.upper(), {})[day] = rate
        table = {
            currency: (tuple(sorted(days)), tuple(days[d] for d in sorted(days))) for currency, days in grouped.items()
        }
        return cls(reporting.upper(), table)

    def rate(self, currency: str, day: date) -> float | None:
        """One unit of ``currency`` in the reporting currency: the latest rate on or before ``day``."""
        currency = currency.upper()
        if currency == self.reporting:
            return 1.0
        days, rates = self.by_currency.get(currency, ((), ()))
        i = bisect_right(days, day)
        return rates[i - 1] if i else None

    def convert(self, amount: float, currency: str, day: date) -> float | None:
        rate = self.rate(currency, day)
        return None if rate is None else amount * rate


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in the reporting currency, or why there is none."""

    value: float | None
    problem: Problem | None = None
    # How it was obtained: "as_is", "home" (the CRM's conversion), "rate" (ours), or "" if none.
    via: str = ""


def deal_amount(
    amount: float | None,
    currency: str | None,
    amount_home: float | None,
    day: date,
    *,
    rates: Rates,
    home_currency: str | None = None,
) -> Money:
    """A deal's amount in the reporting currency (see the module docstring for the order)."""
    home = (home_currency or rates.reporting).upper()
    own = (currency or home).upper()
    if amount is None and amount_home is None:
        return Money(None, "no_amount")
    if amount is not None and own == rates.reporting:
        return Money(amount, None, "as_is")
    if amount_home is not None:
        converted = rates.convert(amount_home, home, day)
        if converted is not None:
            return Money(converted, None, "home" if home == rates.reporting else "rate")
    if amount is not None:
        converted = rates.convert(amount, own, day)
        if converted is not None:
            return Money(converted, None, "rate")
    return Money(None, "no_rate")
