"""Revenue in the reporting currency during a rebuild: the rates, and what could not be converted.

The conversion itself is pure (``closedloop.mapping.currency``); this keeps the run's account
of it: how many won deals were converted and how, and which won deals had no amount or no rate
(named in the run record: a marketer must see what the total leaves out, never a silent zero).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from closedloop.config.models import Config
from closedloop.config.rates import read_rates_file
from closedloop.mapping.currency import Money, Rates

EXAMPLES = 20  # deal ids named per problem in the run record


def load_rates(config: Config) -> Rates:
    return Rates.from_rows(read_rates_file(config.rates_file), config.reporting_currency)


@dataclass(slots=True)
class DealMoneyStats:
    reporting_currency: str = ""
    won_deals: int = 0
    won_revenue: float = 0.0  # in the reporting currency, what conversions carry
    converted: dict[str, int] = field(default_factory=dict)  # "home" / "rate" -> won deals
    won_without_amount: int = 0
    won_without_rate: int = 0
    without_amount_examples: list[str] = field(default_factory=list)
    without_rate_examples: list[str] = field(default_factory=list)  # "id (EUR on 2024-03-01)"

    def count(self, deal_id: str, money: Money, *, currency: str | None, day: str) -> None:
        """One won deal's money."""
        self.won_deals += 1
        if money.value is not None:
            self.won_revenue += money.value
            if money.via != "as_is":
                self.converted[money.via] = self.converted.get(money.via, 0) + 1
        elif money.problem == "no_amount":
            self.won_without_amount += 1
            if len(self.without_amount_examples) < EXAMPLES:
                self.without_amount_examples.append(deal_id)
        else:
            self.won_without_rate += 1
            if len(self.without_rate_examples) < EXAMPLES:
                self.without_rate_examples.append(f"{deal_id} ({currency} on {day})")

    def as_dict(self) -> dict[str, Any]:
        return {
            "reporting_currency": self.reporting_currency,
            "won_deals": self.won_deals,
            "won_revenue": round(self.won_revenue, 2),
            "converted": dict(self.converted),
            "won_without_amount": self.won_without_amount,
            "won_without_rate": self.won_without_rate,
            "without_amount_examples": list(self.without_amount_examples),
            "without_rate_examples": list(self.without_rate_examples),
        }
