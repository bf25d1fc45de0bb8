"""The ``ga4.ad_cost`` stream: the real GA4 SDK against the emulator, then into the store."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from closedloop.config.models import GA4Config
from closedloop.connectors.calls import ApiCallLog
from closedloop.connectors.ga4.source import AD_COST_STREAM, STREAM, GA4Source
from closedloop.records import AdCostRecord, Batch
from closedloop.sandbox.company import Company
from closedloop.sandbox.ga4 import GA4Sandbox, GA4State
from closedloop.sandbox.generator import generate_company
from closedloop.store.engine import open_store, session_scope
from closedloop.store.ingest import store_batch
from closedloop.store.models import Spend, SyncCursor

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def company() -> Company:
    return generate_company(contacts=150, seed=11, now=NOW, days=40)


@pytest.fixture(scope="module")
def sandbox(company: Company) -> Iterator[GA4Sandbox]:
    state = GA4State(property_id=company.ga4_property_id, time_zone=company.ga4_time_zone)
    state.load_company(company)
    with GA4Sandbox(state, now=lambda: NOW) as running:
        yield running


def source_for(sandbox: GA4Sandbox, company: Company, **overrides: object) -> GA4Source:
    config = GA4Config(
        property_id=company.ga4_property_id, base_url=sandbox.url, initial_days=60, **overrides
    )
    return GA4Source(config, ApiCallLog(), sleep=lambda _s: None)


def expected_cost(company: Company, first: date | None = None) -> dict[tuple[date, str, str, str], float]:
    out: dict[tuple[date, str, str, str], float] = defaultdict(float)
    for item in company.spend:
        if item.cost and (first is None or item.day >= first):
            out[(item.day, item.source, item.medium, item.campaign)] += item.cost
    return dict(out)


def test_streams_include_ad_cost(sandbox: GA4Sandbox, company: Company) -> None:
    assert source_for(sandbox, company).streams() == (STREAM, AD_COST_STREAM)


def test_ad_cost_matches_the_company_spend_day_by_day(sandbox: GA4Sandbox, company: Company) -> None:
    batches = list(source_for(sandbox, company).pull(AD_COST_STREAM, None, now=NOW))
    records = [r for b in batches for r in b.records]
    assert records and all(isinstance(r, AdCostRecord) for r in records)
    got = {(r.day, r.source, r.medium, r.campaign): r.cost for r in records}
    want = expected_cost(company)
    assert got.keys() == want.keys()
    for key, cost in want.items():
        assert got[key] == pytest.approx(cost, abs=1e-6)
    assert {r.currency for r in records} == {company.currency_code}
    assert not any(b.quarantined for b in batches)
    today = NOW.astimezone(sandbox.state.zone).date()
    assert batches[-1].cursor == {"complete_through": today.isoformat(), "time_zone": company.ga4_time_zone}


def test_small_pages_hold_the_cursor_until_the_last(sandbox: GA4Sandbox, company: Company) -> None:
    batches = list(source_for(sandbox, company, page_size=25).pull(AD_COST_STREAM, None, now=NOW))
    assert len(batches) > 2
    assert all(b.cursor == {} for b in batches[:-1])
    assert batches[-1].cursor["complete_through"]
    whole = list(source_for(sandbox, company).pull(AD_COST_STREAM, None, now=NOW))
    paged = [r for b in batches for r in b.records]
    assert len(paged) == len(set(paged))  # stable order: no row served twice across pages
    assert set(paged) == {r for b in whole for r in b.records}


def test_cursor_re_pulls_only_the_lookback(sandbox: GA4Sandbox, company: Company) -> None:
    through = NOW.astimezone(sandbox.state.zone).date() - timedelta(days=5)
    cursor = {"complete_through": through.isoformat(), "time_zone": company.ga4_time_zone}
    records = [
        r for b in source_for(sandbox, company, lookback_days=2).pull(AD_COST_STREAM, cursor, now=NOW)
        for r in b.records
    ]
    first = through - timedelta(days=2)
    assert records
    assert min(r.day for r in records) == first
    assert {(r.day, r.source, r.medium, r.campaign) for r in records} == set(expected_cost(company, first))


def test_stored_twice_is_stored_once(tmp_path: Path, sandbox: GA4Sandbox, company: Company) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    source = source_for(sandbox, company)
    for _ in range(2):
        for batch in source.pull(AD_COST_STREAM, None, now=NOW):
            with session_scope(engine) as session:
                store_batch(session, batch, now=NOW)
    with Session(engine) as session:
        rows = session.exec(select(Spend)).all()
        cursor = session.get(SyncCursor, AD_COST_STREAM)
    want = expected_cost(company)
    assert len(rows) == len(want)
    assert {r.origin for r in rows} == {"ga4"} and {r.channel for r in rows} == {""}
    assert sum(r.cost for r in rows) == pytest.approx(sum(want.values()), rel=1e-9)
    assert cursor is not None and cursor.state["time_zone"] == company.ga4_time_zone


def test_an_unreadable_row_is_quarantined_not_lost() -> None:
    from closedloop.connectors.ga4.source import _parse_ad_cost_rows

    def row(dims: list[str], mets: list[str]) -> dict[str, object]:
        """A row as the API's JSON carries it."""
        return {"dimensionValues": [{"value": d} for d in dims], "metricValues": [{"value": m} for m in mets]}

    records, quarantined = _parse_ad_cost_rows(
        [row(["20260501", "google", "cpc", "brand"], ["12.5"]), row(["May 1", "g", "cpc", "x"], ["3"])],
        "USD",
    )
    assert records == [AdCostRecord(date(2026, 5, 1), "google", "cpc", "brand", 12.5, "USD")]
    assert len(quarantined) == 1 and quarantined[0].stream == AD_COST_STREAM
    assert quarantined[0].payload["dimensions"][0] == "May 1"


def test_batch_type_is_the_stream_of_the_request(sandbox: GA4Sandbox, company: Company) -> None:
    batches: list[Batch] = list(source_for(sandbox, company).pull(AD_COST_STREAM, None, now=NOW))
    assert {b.stream for b in batches} == {AD_COST_STREAM}
