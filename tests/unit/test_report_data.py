"""Report figures against a tiny store whose every number can be worked out by hand (report_store.py)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from report_store import fill_store, write_config
from sqlalchemy import update

from closedloop.config.loader import load_config
from closedloop.report.build import ReportData, build_report
from closedloop.report.period import Period, report_currency
from closedloop.report.roi_paid import paid_total
from closedloop.store import models as m
from closedloop.store.engine import open_store, session_scope

NOW = datetime(2026, 12, 1, tzinfo=UTC)
os.environ.setdefault("REPORT_TEST_TOKEN", "not-used")


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, Path]:
    url = fill_store(tmp_path)
    return url, write_config(tmp_path, url)


def report(store: tuple[str, Path], model: str = "first_touch", since: date | None = None,
           until: date | None = None) -> ReportData:
    url, config = store
    return build_report(open_store(url), load_config(config), model=model, period=Period(since, until, "UTC"), now=NOW)


def funnel(data: ReportData) -> dict[str, Any]:
    return {r.channel: r for r in data.funnel}


def test_funnel_per_channel_is_the_hand_computed_one(store: tuple[str, Path]) -> None:
    data = report(store)
    rows = funnel(data)
    paid, offline, organic, email = rows["Paid Search"], rows["Offline"], rows["Organic Search"], rows["Email"]
    assert (paid.sessions, paid.leads, paid.mql, paid.sql, paid.opportunities, paid.won, paid.revenue) == (
        2, 1.0, 1.0, 1.0, 1.0, 1.0, 1000.0)
    assert paid.session_to_lead == 0.5 and paid.days_to_close == pytest.approx(20.0)
    assert (offline.sessions, offline.mql, offline.sql, offline.revenue) == (0, 1.0, 0.0, 500.0)
    assert offline.days_to_close == pytest.approx(30.0) and offline.session_to_lead is None
    assert (organic.sessions, organic.leads, organic.mql, organic.won) == (4, 1.0, 0.0, 0.0)
    assert (email.sessions, email.leads) == (1, 0.0)
    total = data.funnel_total
    assert (total.sessions, total.leads, total.mql, total.sql, total.won, total.revenue) == (7, 3.0, 2.0, 1.0, 2.0,
                                                                                            1500.0)
    assert [r.channel for r in data.funnel][:2] == ["Paid Search", "Offline"]  # by revenue
    assert data.currency == "USD" and data.period_label == "2026-10-05 to 2026-11-09"


def test_a_split_model_gives_fractional_counts_and_every_model_sits_side_by_side(store: tuple[str, Path]) -> None:
    data = report(store, model="linear")
    rows = funnel(data)
    assert rows["Paid Search"].leads == 0.5 and rows["Email"].leads == 0.5
    assert rows["Email"].won == 0.5 and rows["Email"].revenue == 500.0
    assert data.revenue_by_model == {"Paid Search": {"first_touch": 1000.0, "linear": 500.0},
                                     "Email": {"linear": 500.0},
                                     "Offline": {"first_touch": 500.0, "linear": 500.0}}
    assert set(data.model_notes) == {"first_touch", "linear"} and all(data.model_notes.values())


def test_paid_totals_compare_paid_revenue_with_paid_cost(store: tuple[str, Path]) -> None:
    data = report(store)
    paid = paid_total(data.roi_channel)
    assert (paid.cost, paid.revenue, paid.roas, paid.roi) == (200.0, 1000.0, 5.0, 4.0)  # not 1,500 / 200
    everything = data.as_dict()["roi_by_channel"]
    assert everything["total"]["revenue"] == 1500.0 and everything["total"]["roas"] is None
    assert everything["unpaid_revenue"] == 500.0
    campaigns = data.as_dict()["roi_by_campaign"]["rows"]
    assert [(r["channel"], r["campaign"], r["cost"], r["revenue"]) for r in campaigns] == [
        ("Paid Search", "spring", 200.0, 1000.0)]
    assert any("paid revenue" in note for note in data.notes)


def test_since_and_until_cut_every_figure(store: tuple[str, Path]) -> None:
    november = report(store, since=date(2026, 11, 1))
    assert [(r.month, r.leads, r.won, r.revenue) for r in november.trend] == [("2026-11", 1, 1, 500.0)]
    assert november.funnel_total.leads == 1.0 and november.funnel_total.sessions == 4
    assert not november.has_spend  # the only cost is on 1 October
    october = report(store, until=date(2026, 10, 31))
    assert [(r.month, r.leads, r.won, r.revenue) for r in october.trend] == [("2026-10", 2, 1, 1000.0)]
    assert october.won_revenue == 1000.0 and october.funnel_total.sessions == 3
    assert october.period_label.endswith("2026-10-31")


def test_trend_lists_every_month_including_empty_ones(store: tuple[str, Path]) -> None:
    data = report(store)
    assert [(r.month, r.leads, r.won, r.revenue) for r in data.trend] == [
        ("2026-10", 2, 1, 1000.0), ("2026-11", 1, 1, 500.0)]


def test_landing_pages_rank_by_credited_leads_then_revenue(store: tuple[str, Path]) -> None:
    pages = report(store).landing_pages
    assert [(p.page, p.sessions, p.leads, p.revenue, p.lead_rate) for p in pages] == [
        ("/pricing", 2, 1.0, 1000.0, 0.5), ("/blog", 4, 1.0, 0.0, 0.25)]


def test_coverage_says_how_much_rests_on_web_data(store: tuple[str, Path]) -> None:
    figures = {f.key: (f.part, f.whole) for f in report(store).coverage}
    web = {k: v for k, v in figures.items() if k in ("won_revenue_web", "won_deals_web", "contacts_web",
                                                     "revenue_offline")}
    assert web == {
        "won_revenue_web": (1000.0, 1500.0),
        "won_deals_web": (1.0, 2.0),
        "contacts_web": (2.0, 3.0),
        "revenue_offline": (500.0, 1500.0),
    }


def test_without_lifecycle_stages_there_is_no_mql_column(store: tuple[str, Path]) -> None:
    url, _ = store
    with session_scope(open_store(url)) as session:
        session.execute(update(m.Contact).values(lifecycle_stage=None))
    data = report(store)
    assert not data.has_lifecycle and all(r.mql is None for r in data.funnel)


def test_report_currency_reads_the_reporting_currency_first(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert report_currency(load_config(write_config(tmp_path, url))) == "USD"
    path = write_config(tmp_path, url)
    path.write_text(path.read_text(encoding="utf-8") + "reporting_currency: EUR\n", encoding="utf-8")
    assert report_currency(load_config(path)) == "EUR"


def test_each_model_sentence_follows_the_configured_weights() -> None:
    from closedloop.config.attribution import AttributionConfig
    from closedloop.report.model_notes import model_note

    config = AttributionConfig.model_validate(
        {"u_shaped": {"first": 50, "lead": 50}, "custom_models": {"mine": {"first": 10, "last": 90}},
         "time_decay_half_life_days": 3})
    assert model_note("u_shaped", config).endswith("(first 50%, lead 50%)")
    assert model_note("mine", config).endswith("(first 10%, last 90%)")
    assert "half-life 3 days" in model_note("time_decay", config)
    assert "removed" in model_note("markov", config) and model_note("linear", config) != model_note("markov", config)


def test_a_model_without_credits_says_so(store: tuple[str, Path]) -> None:
    path = store[1]
    path.write_text(path.read_text(encoding="utf-8").replace("[first_touch, linear]", "[first_touch, linear, markov]"),
                    encoding="utf-8")
    data = report(store, model="markov")
    assert data.funnel_total.leads == 0 and any("No credits under model markov" in n for n in data.notes)
    assert not any("No credits" in n for n in report(store).notes)
