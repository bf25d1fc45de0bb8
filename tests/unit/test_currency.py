"""Money in one reporting currency: dated rates, the order of sources, and credited revenue that
equals won revenue whatever the mix of currencies (hypothesis)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.attribution.engine import attribute_journeys
from closedloop.attribution.journeys import build_journey
from closedloop.attribution.types import Touch
from closedloop.config.attribution import AttributionConfig
from closedloop.config.rates import parse_rates_csv
from closedloop.errors import ConfigError
from closedloop.mapping.currency import Rates, deal_amount

DAY = date(2026, 3, 10)
RATES = Rates.from_rows(
    [(date(2026, 1, 1), "EUR", 1.1), (date(2026, 3, 1), "EUR", 1.2), (date(2026, 3, 20), "EUR", 1.3),
     (date(2026, 1, 1), "GBP", 1.25)],
    "USD",
)


def test_the_latest_rate_on_or_before_the_day_is_used() -> None:
    assert RATES.rate("EUR", date(2026, 3, 1)) == 1.2
    assert RATES.rate("EUR", DAY) == 1.2
    assert RATES.rate("EUR", date(2026, 3, 20)) == 1.3
    assert RATES.rate("EUR", date(2025, 12, 31)) is None  # no rate before the first: never a later one
    assert RATES.rate("usd", DAY) == 1.0 and RATES.rate("JPY", DAY) is None


def test_the_order_reporting_then_home_amount_then_our_rate() -> None:
    assert deal_amount(100.0, "USD", 999.0, DAY, rates=RATES).value == 100.0
    assert deal_amount(100.0, None, None, DAY, rates=RATES).value == 100.0  # no code: home = reporting
    home = deal_amount(100.0, "EUR", 118.0, DAY, rates=RATES)
    assert (home.value, home.via) == (118.0, "home")
    ours = deal_amount(100.0, "EUR", None, DAY, rates=RATES)
    assert (ours.value, ours.via) == (pytest.approx(120.0), "rate")
    assert deal_amount(100.0, "JPY", None, DAY, rates=RATES).problem == "no_rate"
    assert deal_amount(None, "EUR", None, DAY, rates=RATES).problem == "no_amount"
    # A home currency that is not the reporting one: HubSpot's home amount is converted too.
    via_home = deal_amount(100.0, "JPY", 80.0, DAY, rates=RATES, home_currency="GBP")
    assert via_home.value == pytest.approx(100.0) and via_home.via == "rate"


def test_a_rates_file_lists_every_bad_line() -> None:
    rows = parse_rates_csv("date,currency,rate\n2026-01-01,eur,1.1\n", file="r.csv")
    assert rows == [(date(2026, 1, 1), "EUR", 1.1)]
    with pytest.raises(ConfigError) as caught:
        parse_rates_csv("date,currency,rate\n2026-13-01,EUR,1\n2026-01-01,EURO,1\n2026-01-01,GBP,-2\n", file="r.csv")
    assert [p.line for p in caught.value.problems] == [2, 3, 4]


deal = st.tuples(
    st.floats(1, 1e6, allow_nan=False),
    st.sampled_from([None, "USD", "EUR", "GBP", "JPY"]),
    st.one_of(st.none(), st.floats(1, 1e6, allow_nan=False)),
    st.integers(0, 120),
    st.lists(st.sampled_from(["Email", "Paid Search", "Organic Search", "Direct"]), min_size=1, max_size=5),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(deal, min_size=1, max_size=12))
def test_credited_revenue_equals_won_revenue_in_the_reporting_currency(deals: list) -> None:  # type: ignore[type-arg]
    config = AttributionConfig(models=["first_touch", "linear", "u_shaped", "time_decay", "markov", "shapley"])
    journeys, expected = [], 0.0
    for n, (amount, currency, home, days, channels) in enumerate(deals):
        won = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=days)
        money = deal_amount(amount, currency, home, won.date(), rates=RATES)
        # Independently: what the deal is worth in USD.
        rate = {"USD": 1.0, None: 1.0, "GBP": 1.25, "JPY": None}.get(currency)
        if currency == "EUR":
            rate = 1.1 if won.date() < date(2026, 3, 1) else 1.2 if won.date() < date(2026, 3, 20) else 1.3
        want = amount if currency in (None, "USD") else home if home is not None else (
            amount * rate if rate is not None else None)
        assert (money.value is None) == (want is None)
        if money.value is None:
            continue
        assert money.value == pytest.approx(want)
        expected += money.value
        touches = [Touch(ch, won - timedelta(days=len(channels) - i), n * 10 + i) for i, ch in enumerate(channels)]
        journeys.append(build_journey(touches, converted_at=won, lookback=timedelta(days=90),
                                      conversion_id=f"deal_won:{n}", value=money.value))
    credited: dict[str, float] = {}
    for row in attribute_journeys(journeys, models=config.models, config=config):
        credited[row.model] = credited.get(row.model, 0.0) + row.revenue
    for model in config.models:
        assert credited.get(model, 0.0) == pytest.approx(expected, rel=1e-9, abs=1e-6), model
