"""A HubSpot deal's conversion belongs to the contact its association label names
(``hubspot.primary_contact_label``); without one, to its earliest-created contact.

Through the sandbox and the real SDK: two contacts share two won deals; the label marks the
later-created contact on one deal.  Whose conversion each deal is decides the won revenue
credited per contact, the days lead to won written back to the deal, and ROI's lead time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from closedloop.config.models import HubSpotConfig
from closedloop.report.roi_query import read_days_lead_to_won
from closedloop.sandbox.company import (
    Company,
    SyntheticContact,
    SyntheticDeal,
    SyntheticPipeline,
    SyntheticSession,
    SyntheticStage,
    SyntheticStageChange,
)
from closedloop.sandbox.launch import RunningSandbox, start_sandbox
from closedloop.store import models as m
from closedloop.store.engine import open_store
from closedloop.sync.factory import build_connectors
from closedloop.sync.pipeline import run_once

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T0 = NOW - timedelta(days=60)
LABEL = "Decision maker"
EARLY, LATE = "9", "10"  # created day 1 and day 5; as strings "10" sorts first, by creation "9" does


def _company() -> Company:
    contacts = [
        SyntheticContact(id=cid, email=f"p{cid}@example.com", created_at=T0 + timedelta(days=day),
                         updated_at=T0 + timedelta(days=day), lifecycle_stage="customer", ga_client_ids=[f"{cid}.1"])
        for cid, day in ((EARLY, 1), (LATE, 5))
    ]
    sessions = [
        SyntheticSession(f"{EARLY}.1", T0, "google", "cpc", "brand", "/pricing"),
        SyntheticSession(f"{LATE}.1", T0 + timedelta(days=4), "newsletter", "email", "weekly", "/news"),
    ]
    stages = [SyntheticStage("appointmentscheduled", "Appointment", 0, 0.2, False),
              SyntheticStage("closedwon", "Closed Won", 1, 1.0, True)]

    def deal(deal_id: str, amount: float, won_day: int) -> SyntheticDeal:
        won = T0 + timedelta(days=won_day)
        return SyntheticDeal(
            id=deal_id, name=f"Deal {deal_id}", pipeline="default", amount=amount,
            created_at=T0 + timedelta(days=6), updated_at=won,
            stage_history=[SyntheticStageChange("appointmentscheduled", T0 + timedelta(days=6)),
                           SyntheticStageChange("closedwon", won)],
            contact_ids=[EARLY, LATE], closed_at=won,
        )

    return Company(contacts=contacts, sessions=sessions, deals=[deal("7001", 1000.0, 20), deal("7002", 400.0, 30)],
                   pipelines=[SyntheticPipeline("default", "Sales", stages)])


def _run(sandbox: RunningSandbox, folder: Path, name: str, label: str | None) -> dict[str, object]:
    url = f"sqlite:///{folder / name}.db"
    engine = open_store(url)
    config = sandbox.config(store_url=url)
    assert config.hubspot is not None
    hubspot = HubSpotConfig.model_validate({**config.hubspot.model_dump(), "primary_contact_label": label})
    config = config.model_copy(update={"hubspot": hubspot})
    connectors = build_connectors(config, sleep=lambda _s: None)
    report = run_once(engine=engine, config=config, sources=connectors.sources, writer=connectors.writer,
                      log=connectors.log, now=NOW)
    assert report.status == "ok", report.errors
    with Session(engine) as session:
        won_by_contact = dict(session.execute(
            select(col(m.Conversion.contact_id), func.sum(col(m.Conversion.value)))
            .where(col(m.Conversion.kind) == "deal_won").group_by(col(m.Conversion.contact_id))).all())
        credited = dict(session.execute(
            select(col(m.Conversion.contact_id), func.sum(col(m.Credit.revenue)))
            .join(m.Credit, col(m.Credit.conversion_id) == col(m.Conversion.id))
            .where(col(m.Conversion.kind) == "deal_won", col(m.Credit.model) == "linear")
            .group_by(col(m.Conversion.contact_id))).all())
        days = read_days_lead_to_won(session)
    engine.dispose()
    state = sandbox.hubspot.state
    written = {d: state.get_properties("deals", d)["closedloop_days_to_close"] for d in ("7001", "7002")}
    return {"won": won_by_contact, "credited": credited, "days": days, "written": written}


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(_company(), now=NOW, burst_limit=100_000) as running:
        yield running


def test_the_labelled_contact_is_the_deal_s_person(sandbox: RunningSandbox, tmp_path: Path) -> None:
    sandbox.hubspot.state.association_labels[("7001", LATE)] = LABEL
    seen = _run(sandbox, tmp_path, "labelled", LABEL)
    # 7001 is the labelled contact's (created day 5, won day 20); 7002 has no label: the earliest's.
    assert seen["won"] == {LATE: 1000.0, EARLY: 400.0}
    assert seen["credited"] == pytest.approx({LATE: 1000.0, EARLY: 400.0})
    assert seen["days"] == pytest.approx({"deal_won:7001": 15.0, "deal_won:7002": 29.0})
    assert seen["written"] == {"7001": "15", "7002": "29"}


def test_without_the_setting_the_earliest_created_contact_takes_every_deal(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    sandbox.hubspot.state.association_labels[("7001", LATE)] = LABEL  # a label nobody configured counts for nothing
    seen = _run(sandbox, tmp_path, "unlabelled", None)
    assert seen["won"] == {EARLY: 1400.0}
    assert seen["credited"] == pytest.approx({EARLY: 1400.0})
    assert seen["days"] == pytest.approx({"deal_won:7001": 19.0, "deal_won:7002": 29.0})
    assert seen["written"] == {"7001": "19", "7002": "29"}
