"""Lifecycle stages mapped to milestones set the lead position; the dates come from the CRM."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select
from sqlmodel import Session

from closedloop.config.mapping import MappingConfig
from closedloop.config.models import HubSpotConfig
from closedloop.connectors.calls import ApiCallLog
from closedloop.connectors.hubspot import HubSpotClient, HubSpotSource
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import SANDBOX_TOKEN, start_sandbox
from closedloop.store import models as m
from closedloop.store.engine import open_store
from closedloop.sync.derive import rebuild
from closedloop.sync.factory import build_connectors
from closedloop.sync.pipeline import run_once

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _iso(text: str) -> datetime:
    """The sandbox's ISO-8601 string read with the standard library, not the connector's parser."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def test_lifecycle_dates_arrive_and_move_the_lead_milestone(tmp_path: Path) -> None:
    company = generate_company(contacts=150, seed=21, now=NOW)
    with start_sandbox(company, now=NOW, burst_limit=100_000) as sandbox:
        client = HubSpotClient(base_url=sandbox.hubspot.url, token_provider=lambda: SANDBOX_TOKEN, log=ApiCallLog())
        source = HubSpotSource(client, HubSpotConfig(base_url=sandbox.hubspot.url, access_token=SecretStr("t")),
                               lifecycle_stages=["lead", "marketingqualifiedlead"])
        pulled = {r.crm_id: r for b in source.pull("hubspot.contacts", None, now=NOW) for r in b.records}
        for contact in company.contacts:
            for stage in ("lead", "marketingqualifiedlead"):
                expected = contact.extra.get(f"hs_lifecyclestage_{stage}_date")
                assert pulled[contact.id].lifecycle_dates.get(stage) == (_iso(expected) if expected else None)

        url = f"sqlite:///{tmp_path / 'l.db'}"
        engine = open_store(url)
        config = sandbox.config(store_url=url)
        connectors = build_connectors(config, sleep=lambda _s: None)
        run_once(engine=engine, config=config, sources=connectors.sources, writer=None, log=connectors.log, now=NOW)

    def u_shaped_credits() -> dict[tuple[str, int], float]:
        with Session(engine) as session:
            rows = session.execute(select(m.Credit.conversion_id, m.Credit.touchpoint_id, m.Credit.weight)
                                   .where(m.Credit.model == "u_shaped"))
            return {(c, t): w for c, t, w in rows}

    before = u_shaped_credits()
    # Marketing counts a lead only once it is marketing-qualified.
    mql_is_lead = MappingConfig.model_validate({"milestones": {"lifecycle_stages": {
        "marketingqualifiedlead": "lead", "customer": "closed_won"}}})
    rebuild(engine, config.model_copy(update={"mapping": mql_is_lead}))
    after = u_shaped_credits()
    assert before.keys() == after.keys()
    moved = {c for (c, t), w in after.items() if abs(w - before[(c, t)]) > 1e-9}
    assert moved, "an MQL date after creation must move some lead positions"
    with_mql = {c.id for c in company.contacts if "hs_lifecyclestage_marketingqualifiedlead_date" in c.extra}
    for conversion_id in moved:
        if conversion_id.startswith("contact_created:"):
            assert conversion_id.split(":", 1)[1] in with_mql
    engine.dispose()
