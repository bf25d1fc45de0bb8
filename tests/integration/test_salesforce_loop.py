"""The whole loop against the emulated org through simple-salesforce over TLS: pull -> store ->
rebuild -> write-back, then the org changes (a deletion, a removed role) and the loop follows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch_salesforce import RunningSalesforceSandbox, start_salesforce_sandbox
from closedloop.store import models as m
from closedloop.store.engine import open_store
from closedloop.sync.crm_check import crm_check
from closedloop.sync.factory import build_connectors
from closedloop.sync.pipeline import RunReport, run_once


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningSalesforceSandbox, Engine, Any]]:
    from datetime import UTC

    now = datetime(2026, 11, 2, 12, tzinfo=UTC)
    company = generate_company(contacts=250, seed=11, now=now)
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('sfloop')) / 'loop.db'}"
    with start_salesforce_sandbox(company, now=now) as sandbox:
        engine = open_store(url)
        config = sandbox.config(store_url=url)
        yield sandbox, engine, config
        engine.dispose()


def run(engine: Engine, config: Any, now: datetime) -> RunReport:
    connectors = build_connectors(config)
    return run_once(engine=engine, config=config, sources=connectors.sources, writer=connectors.writer,
                    log=connectors.log, now=now)


@pytest.fixture(scope="module")
def first_two(loop: tuple[RunningSalesforceSandbox, Engine, Any]) -> tuple[RunReport, RunReport]:
    _sandbox, engine, config = loop
    now = datetime.fromisoformat("2026-11-02T12:00:00+00:00")
    return run(engine, config, now), run(engine, config, now + timedelta(minutes=5))


def test_the_first_run_writes_and_the_second_writes_nothing(first_two: tuple[RunReport, RunReport]) -> None:
    first, second = first_two
    assert first.status == second.status == "ok", first.errors + second.errors
    assert first.writeback is not None and first.writeback.properties_written > 0
    assert second.writeback is not None and second.writeback.properties_written == 0
    assert not any("composite" in e or "ingest" in e for e in second.api_calls)
    usage = first.stats()["usage"]["salesforce"]
    assert 0 < usage["api_usage_first"] <= usage["api_usage_last"] < usage["api_allocation"]


def test_converted_leads_fold_onto_their_contact_with_the_leads_creation_time(
    loop: tuple[RunningSalesforceSandbox, Engine, Any], first_two: Any
) -> None:
    sandbox, engine, _ = loop
    converted = [row for row in sandbox.salesforce.state.all_rows("Lead") if row["IsConverted"]]
    assert converted
    with Session(engine) as session:
        folded = {c.id: c.merged_into for c in session.exec(select(m.Contact).where(m.Contact.merged_into != None))}  # noqa: E711
        conversions = {c.contact_id: c.occurred_at for c in session.exec(
            select(m.Conversion).where(m.Conversion.kind == "contact_created"))}
    assert folded == {lead["Id"]: lead["ConvertedContactId"] for lead in converted}
    for lead in converted:
        # One person, created when the Lead was (the Contact is only created at conversion).
        assert lead["Id"] not in conversions
        assert conversions[lead["ConvertedContactId"]] == lead["CreatedDate"]
        assert lead["CreatedDate"] < sandbox.salesforce.state.get("Contact", lead["ConvertedContactId"])["CreatedDate"]
    assert len(conversions) == len(sandbox.company.contacts)


def test_contact_roles_become_links_with_the_primary_person(
    loop: tuple[RunningSalesforceSandbox, Engine, Any], first_two: Any
) -> None:
    sandbox, engine, _ = loop
    roles = {(r["OpportunityId"], r["ContactId"]): r["IsPrimary"]
             for r in sandbox.salesforce.state.all_rows("OpportunityContactRole")}
    with Session(engine) as session:
        links = {(link.deal_id, link.contact_id): link.is_primary for link in session.exec(select(m.DealContact))}
    assert links == roles
    assert any(not primary for primary in links.values())  # deals with a second person exist


def test_campaign_responses_are_touchpoints_channelled_by_the_rule(
    loop: tuple[RunningSalesforceSandbox, Engine, Any], first_two: Any
) -> None:
    sandbox, engine, _ = loop
    members = [r for r in sandbox.salesforce.state.all_rows("CampaignMember") if r["HasResponded"]]
    assert members
    with Session(engine) as session:
        touches = {t.key: t for t in session.exec(select(m.Touchpoint).where(m.Touchpoint.is_offline == True))}  # noqa: E712
    for member in members:
        touch = touches[f"sf-campaign-member:{member['Id']}"]
        assert (touch.medium, touch.channel) == ("campaign", "Offline")
        assert touch.rule == "channel_rules[0] 'CRM campaign responses'"
        # A converted Lead's response belongs to the Contact it became.
        assert touch.contact_id == (member["ContactId"] or member["LeadId"])


def test_deletions_in_the_org_leave_the_store(
    loop: tuple[RunningSalesforceSandbox, Engine, Any], first_two: Any
) -> None:
    sandbox, engine, config = loop
    state = sandbox.salesforce.state
    lead = next(r for r in state.all_rows("Lead") if not r["IsConverted"])
    role = next(r for r in state.all_rows("OpportunityContactRole") if not r["IsPrimary"])
    state.delete("Lead", lead["Id"])
    state.delete("OpportunityContactRole", role["Id"])
    report = run(engine, config, datetime.fromisoformat("2026-11-02T13:00:00+00:00"))
    assert report.status == "ok", report.errors
    with Session(engine) as session:
        assert session.get(m.Contact, lead["Id"]) is None
        assert not session.exec(select(m.Touchpoint).where(m.Touchpoint.contact_id == lead["Id"])).all()
        assert session.get(m.DealContact, (role["OpportunityId"], role["ContactId"])) is None
        assert session.exec(select(m.DealContact)).first() is not None  # the other links stay


def test_crm_check_sees_every_field_after_the_run(
    loop: tuple[RunningSalesforceSandbox, Engine, Any], first_two: Any
) -> None:
    _, _, config = loop
    result = crm_check(config, create=False)
    assert result.crm == "salesforce" and result.ok and result.expected and not result.created
