"""Deals in several currencies, credited in one reporting currency, through the real SDK.

The sandbox portal serves ``deal_currency_code`` and ``amount_in_home_currency``; the rebuild
credits each won deal's amount in the reporting currency (as is, HubSpot's own home amount,
or our dated rate), names the won deals that lacked an amount or a rate, and never sums raw.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from closedloop.config.models import Config
from closedloop.report.coverage import coverage_figures
from closedloop.report.period import Period
from closedloop.sandbox.company import Company, SyntheticDeal
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import RunningSandbox, start_sandbox
from closedloop.store import models as m
from closedloop.store.engine import open_store
from closedloop.sync.factory import build_connectors
from closedloop.sync.pipeline import RunReport, run_once

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass
class World:
    sandbox: RunningSandbox
    engine: Engine
    config: Config
    cases: dict[str, SyntheticDeal]

    def run(self) -> RunReport:
        connectors = build_connectors(self.config, sleep=lambda _s: None)
        return run_once(engine=self.engine, config=self.config, sources=connectors.sources,
                        writer=connectors.writer, log=connectors.log, now=NOW)


def won_deals(company: Company) -> list[SyntheticDeal]:
    won_stages = {s.id for p in company.pipelines for s in p.stages if s.is_closed and s.probability >= 1.0}
    return [d for d in company.deals if d.stage_history and d.stage_history[-1].stage in won_stages]


def won_day(deal: SyntheticDeal) -> str:
    return deal.stage_history[-1].at.date().isoformat()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    company = generate_company(contacts=150, seed=11, now=NOW)
    won = won_deals(company)
    assert len(won) >= 5, "the company must have enough won deals for every case"
    cases = {"home": won[0], "rate": won[1], "no_rate": won[2], "no_amount": won[3], "usd_coded": won[4]}
    cases["home"].currency, cases["home"].amount_home = "EUR", 1234.5  # HubSpot converted it: used as is
    cases["rate"].currency = "GBP"  # no home amount: our dated rate
    cases["no_rate"].currency = "JPY"  # neither: named in the run, no revenue
    cases["usd_coded"].currency = "USD"  # coded in the reporting currency itself
    rates = tmp_path / "rates.csv"
    # Two GBP rates: the one on or before the won day must be used, never the later one.
    day = won_day(cases["rate"])
    rates.write_text(f"date,currency,rate\n2000-01-01,GBP,1.25\n{day},GBP,1.5\n2999-01-01,GBP,9.0\n")
    with start_sandbox(company, now=NOW, burst_limit=100_000) as sandbox:
        # A won deal with no amount at all (HubSpot holds none).
        sandbox.hubspot.state.get("deals", cases["no_amount"].id).properties["amount"] = None  # type: ignore[union-attr]
        url = f"sqlite:///{tmp_path / 'cur.db'}"
        engine = open_store(url)
        config = sandbox.config(store_url=url).model_copy(
            update={"reporting_currency": "USD", "rates_file": str(rates)}
        )
        yield World(sandbox, engine, config, cases)
        engine.dispose()


def test_won_revenue_is_credited_in_the_reporting_currency_and_gaps_are_named(world: World) -> None:
    report = world.run()
    assert report.status == "ok", report.errors
    cases = world.cases
    expected: dict[str, float] = {}
    for deal in won_deals(world.sandbox.company):
        if deal is cases["home"]:
            expected[deal.id] = 1234.5
        elif deal is cases["rate"]:
            expected[deal.id] = deal.amount * 1.5
        elif deal in (cases["no_rate"], cases["no_amount"]):
            expected[deal.id] = 0.0
        else:
            expected[deal.id] = deal.amount
    with Session(world.engine) as session:
        values = dict(session.execute(
            select(col(m.Conversion.deal_id), col(m.Conversion.value)).where(col(m.Conversion.kind) == "deal_won")
        ).all())
        assert values == pytest.approx(expected)
        models = world.config.attribution.models
        for model in models:
            credited = session.execute(
                select(func.sum(m.Credit.revenue)).where(
                    col(m.Credit.model) == model, col(m.Credit.conversion_id).like("deal_won:%")
                )
            ).scalar_one()
            # Deals whose journey has no touch get no credit rows; every other dollar is credited.
            with_touches = {
                cid.removeprefix("deal_won:") for (cid,) in session.execute(
                    select(col(m.Credit.conversion_id)).where(col(m.Credit.model) == model,
                                                              col(m.Credit.conversion_id).like("deal_won:%")))
            }
            assert credited == pytest.approx(sum(v for k, v in expected.items() if k in with_touches)), model
    assert report.rebuild is not None
    money = report.rebuild.money.as_dict()
    assert money["reporting_currency"] == "USD"
    assert money["won_deals"] == len(expected)
    assert money["won_revenue"] == pytest.approx(sum(expected.values()), abs=0.01)
    assert money["won_without_amount"] == 1 and money["without_amount_examples"] == [cases["no_amount"].id]
    assert money["won_without_rate"] == 1
    assert money["without_rate_examples"] == [f"{cases['no_rate'].id} (JPY on {won_day(cases['no_rate'])})"]
    assert money["converted"] == {"home": 1, "rate": 1}
    # Every output's coverage figures name what the total leaves out.
    with Session(world.engine) as session:
        figures = {f.key: f for f in coverage_figures(session, "u_shaped", Period())}
    assert (figures["won_deals_without_amount"].part, figures["won_deals_without_amount"].whole) == (1, len(expected))
    assert figures["won_deals_without_rate"].part == 1
    assert cases["no_rate"].id in figures["won_deals_without_rate"].note
    assert figures["sessions_not_a_person"].part == 0
