"""Spend in other currencies is converted into the reporting currency with the dated rates
revenue is converted with (the latest rate on or before the cost's day), in `roi` and `report`.

The store holds one won deal (1,000 USD credited to Paid Search) and Paid Search cost in EUR,
GBP and USD on several days; every expected figure below is worked out by hand from the rates.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from closedloop.config.loader import load_config
from closedloop.config.models import Config
from closedloop.errors import UsageError
from closedloop.report.build import build_report
from closedloop.report.period import Period
from closedloop.report.roi_query import compute_roi
from closedloop.store import models as m
from closedloop.store.engine import open_store, session_scope
from closedloop.store.models import table
from closedloop.store.upsert import upsert

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
RATES = "date,currency,rate\n2026-10-01,EUR,1.10\n2026-10-04,EUR,1.20\n2026-10-01,GBP,1.25\n"
# (day, cost, currency) -> in USD: 100 EUR on 1 Oct at 1.10 = 110; 10 EUR on 3 Oct at 1 Oct's 1.10 = 11;
# 20 EUR on 5 Oct at 4 Oct's 1.20 = 24; 50 GBP on 3 Oct at 1.25 = 62.5; 30 USD = 30.
SPEND = [(date(2026, 10, 1), 100.0, "EUR"), (date(2026, 10, 3), 10.0, "EUR"), (date(2026, 10, 5), 20.0, "EUR"),
         (date(2026, 10, 3), 50.0, "GBP"), (date(2026, 10, 6), 30.0, "USD")]
EXPECTED_COST = 110.0 + 11.0 + 24.0 + 62.5 + 30.0


def _at(day: int) -> datetime:
    return datetime(2026, 10, day, 12, tzinfo=UTC)


def _store(folder: Path, spend: list[tuple[date, float, str]]) -> str:
    url = f"sqlite:///{folder / 'spend.db'}"
    engine = open_store(url)
    with session_scope(engine) as session:
        upsert(session, table(m.Contact), [{"id": "c1", "created_at": _at(2), "updated_at": _at(2),
                                             "properties": {}}], key=("id",))
        upsert(session, table(m.Deal), [{"id": "d1", "created_at": _at(8), "updated_at": _at(20), "amount": 1000.0,
                                         "closed_at": _at(20), "is_won": True, "is_closed": True,
                                         "properties": {}}], key=("id",))
        upsert(session, table(m.Touchpoint), [{
            "id": 1, "contact_id": "c1", "key": "t1", "occurred_at": _at(1), "channel": "Paid Search",
            "subchannel": None, "source": "google", "medium": "cpc", "campaign": "", "landing_page": "",
            "is_offline": False, "rule": ""}], key=("id",))
        upsert(session, table(m.Conversion), [
            {"id": "c1:lead", "kind": "contact_created", "contact_id": "c1", "deal_id": None, "occurred_at": _at(2),
             "value": 0.0},
            {"id": "d1:won", "kind": "deal_won", "contact_id": "c1", "deal_id": "d1", "occurred_at": _at(20),
             "value": 1000.0}], key=("id",))
        upsert(session, table(m.Credit), [
            {"conversion_id": cid, "touchpoint_id": 1, "model": "first_touch", "channel": "Paid Search",
             "campaign": "", "weight": 1.0, "revenue": revenue}
            for cid, revenue in (("c1:lead", 0.0), ("d1:won", 1000.0))],
            key=("conversion_id", "touchpoint_id", "model"))
        upsert(session, table(m.Spend), [
            {"origin": "ga4", "day": day, "channel": "", "source": "google", "medium": "cpc",
             "campaign": f"{currency}-{day}", "cost": cost, "currency": currency}
            for day, cost, currency in spend], key=("origin", "day", "channel", "source", "medium", "campaign"))
    engine.dispose()
    return url


def _config(folder: Path, url: str, monkeypatch: pytest.MonkeyPatch, *, rates: str | None = RATES) -> Config:
    monkeypatch.setenv("SPEND_TEST_TOKEN", "unused")
    lines = ["version: 1", f"store:\n  url: {url}", "reporting_currency: USD",
             "hubspot:\n  base_url: http://127.0.0.1:9\n  access_token: ${SPEND_TEST_TOKEN}",
             "attribution:\n  models: [first_touch]\n  primary_model: first_touch"]
    if rates is not None:
        (folder / "rates.csv").write_text(rates, encoding="utf-8")
        lines.append(f"rates_file: {folder / 'rates.csv'}")
    path = folder / "closedloop.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_config(path)


def test_roi_converts_each_cost_with_the_rate_of_its_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _config(tmp_path, _store(tmp_path, SPEND), monkeypatch)
    found = compute_roi(cfg, [], "first_touch", "channel", None)
    assert found.currency == "USD"
    paid = next(r for r in found.report.rows if r.channel == "Paid Search")
    assert paid.cost == pytest.approx(EXPECTED_COST, abs=1e-9)
    assert found.report.total.cost == pytest.approx(EXPECTED_COST, abs=1e-9)
    assert paid.revenue == pytest.approx(1000.0)
    assert paid.roas == pytest.approx(1000.0 / EXPECTED_COST)
    # The campaign view converts the same rows: one row per (currency, day) campaign.
    by_campaign = compute_roi(cfg, [], "first_touch", "campaign", None).report
    costs = {r.campaign: r.cost for r in by_campaign.rows if r.cost}
    assert costs == pytest.approx({"EUR-2026-10-01": 110.0, "EUR-2026-10-03": 11.0, "EUR-2026-10-05": 24.0,
                                   "GBP-2026-10-03": 62.5, "USD-2026-10-06": 30.0})


def test_the_report_converts_spend_the_same_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _config(tmp_path, _store(tmp_path, SPEND), monkeypatch)
    data = build_report(open_store(cfg.store.url), cfg, model="first_touch", period=Period(None, None, cfg.timezone),
                        now=NOW)
    assert data.currency == "USD"
    assert data.roi_channel.total.cost == pytest.approx(EXPECTED_COST, abs=1e-9)


def test_a_cost_without_a_rate_is_refused_naming_its_currency_and_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # EUR before the first EUR rate (30 Sep) has no rate on or before its day; nothing is guessed.
    spend = [*SPEND, (date(2026, 9, 30), 5.0, "EUR"), (date(2026, 10, 2), 7.0, "JPY")]
    cfg = _config(tmp_path, _store(tmp_path, spend), monkeypatch)
    with pytest.raises(UsageError) as refused:
        compute_roi(cfg, [], "first_touch", "channel", None)
    assert "EUR (first on 2026-09-30)" in str(refused.value) and "JPY (first on 2026-10-02)" in str(refused.value)
    # Without the early rows, a window that leaves them out converts fine.
    found = compute_roi(cfg, [], "first_touch", "channel", date(2026, 10, 3))
    assert found.report.total.cost == pytest.approx(EXPECTED_COST - 110.0, abs=1e-9)


def test_spend_in_the_reporting_currency_needs_no_rates_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spend = [(date(2026, 10, 6), 30.0, "USD"), (date(2026, 10, 7), 12.5, "")]  # blank: the reporting currency
    cfg = _config(tmp_path, _store(tmp_path, spend), monkeypatch, rates=None)
    assert compute_roi(cfg, [], "first_touch", "channel", None).report.total.cost == pytest.approx(42.5)
