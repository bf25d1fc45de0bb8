"""Deletions, archives and merges in the CRM reach the store on the next run, through the real SDK.

The sandbox portal is changed over HTTP as a user would (DELETE, batch/archive, merge); the next
run must purge what hangs off a removed record, change the credited totals by exactly what that
record carried, and leave no row anywhere that names it.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, String, select
from sqlmodel import Session, SQLModel

from closedloop.config.models import Config
from closedloop.connectors.hashing import hash_email
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import SANDBOX_TOKEN, RunningSandbox, start_sandbox
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

    def run(self) -> RunReport:
        connectors = build_connectors(self.config, sleep=lambda _s: None)
        report = run_once(engine=self.engine, config=self.config, sources=connectors.sources,
                          writer=connectors.writer, log=connectors.log, now=NOW)
        assert report.status == "ok", report.errors
        return report

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> int:
        request = urllib.request.Request(
            self.sandbox.hubspot.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {SANDBOX_TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    company = generate_company(contacts=150, seed=11, now=NOW)
    with start_sandbox(company, now=NOW, burst_limit=100_000) as sandbox:
        url = f"sqlite:///{tmp_path / 'del.db'}"
        engine = open_store(url)
        yield World(sandbox, engine, sandbox.config(store_url=url))
        engine.dispose()


def references(engine: Engine, needles: set[str]) -> list[tuple[str, str, str]]:
    """Every (table, column, value) in the store whose text or JSON names one of ``needles``."""
    found: list[tuple[str, str, str]] = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            columns = list(table.columns)
            for row in conn.execute(select(*columns)):
                for column, value in zip(columns, row, strict=True):
                    if not isinstance(value, str | dict | list):
                        continue
                    text = value if isinstance(value, str) else json.dumps(value)
                    if any(needle in text for needle in needles):
                        found.append((table.name, column.name, text[:80]))
    return found


def exact_ids(engine: Engine, needle: str) -> list[tuple[str, str]]:
    """Id-like columns equal to ``needle`` (ids are short digits: substring matches would be noise)."""
    out: list[tuple[str, str]] = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for column in table.columns:
                id_like = column.name.endswith("id") or column.name in ("record_key", "object_id", "merged_into")
                if id_like and _is_text(column) and conn.execute(
                    select(column).where(column == needle).limit(1)
                ).first():
                    out.append((table.name, column.name))
    return out


def _is_text(column: Any) -> bool:
    kind = column.type
    return isinstance(kind, String) or isinstance(getattr(kind, "impl", None), String)


def credited(engine: Engine, kind: str) -> dict[str, float]:
    """Credited revenue per model over conversions of one kind."""
    with Session(engine) as session:
        rows = session.execute(
            select(m.Credit.model, m.Credit.revenue, m.Conversion.kind)  # type: ignore[call-overload]
            .join(m.Conversion, m.Conversion.id == m.Credit.conversion_id)
        ).all()
    out: dict[str, float] = {}
    for model, revenue, conversion_kind in rows:
        if conversion_kind == kind:
            out[model] = out.get(model, 0.0) + revenue
    return out


def credited_for(engine: Engine, conversion_id: str) -> dict[str, float]:
    with Session(engine) as session:
        rows = session.execute(
            select(m.Credit.model, m.Credit.revenue).where(m.Credit.conversion_id == conversion_id)  # type: ignore[call-overload]
        ).all()
    out: dict[str, float] = {}
    for model, revenue in rows:
        out[model] = out.get(model, 0.0) + revenue
    return out


def _contact_created(session: Session) -> int:
    rows = session.execute(select(m.Conversion.id).where(m.Conversion.kind == "contact_created"))  # type: ignore[call-overload]
    return len(rows.all())


def _won_deal_with_credits(engine: Engine, skip: set[str]) -> tuple[str, dict[str, float]]:
    with Session(engine) as session:
        ids = session.execute(select(m.Deal.id).where(m.Deal.is_won).order_by(m.Deal.id)).scalars().all()  # type: ignore[arg-type]
    for deal_id in ids:
        if deal_id not in skip and (credit := credited_for(engine, f"deal_won:{deal_id}")):
            return deal_id, credit
    raise AssertionError("no credited won deal in the sandbox company")


def test_an_archived_and_a_batch_archived_deal_leave_the_store_and_the_totals(world: World) -> None:
    world.run()
    before = credited(world.engine, "deal_won")
    first, first_credit = _won_deal_with_credits(world.engine, set())
    second, second_credit = _won_deal_with_credits(world.engine, {first})
    named = exact_ids(world.engine, first)
    assert ("deals", "id") in named and ("conversions", "deal_id") in named
    assert world.call("DELETE", f"/crm/v3/objects/deals/{first}") == 204
    assert world.call("POST", "/crm/v3/objects/deals/batch/archive", {"inputs": [{"id": second}]}) == 204
    report = world.run()
    assert report.pulled["hubspot.deletions"]["purged.deals"] == 2
    after = credited(world.engine, "deal_won")
    assert set(after) == set(before)
    for model in before:  # every model loses exactly what the two deals carried, nothing else moves
        assert after[model] == pytest.approx(before[model] - first_credit[model] - second_credit[model])
    for deal_id in (first, second):
        assert exact_ids(world.engine, deal_id) == [], deal_id
    # Nothing is written to the archived deals any more; the others keep their values.
    assert world.run().writeback.objects_written == 0  # type: ignore[union-attr]


def test_an_archived_contact_is_purged_with_everything_that_hangs_off_it(world: World) -> None:
    world.run()
    with Session(world.engine) as session:
        touched = session.execute(
            select(m.Touchpoint.contact_id).where(m.Touchpoint.is_offline.is_(False)).order_by(m.Touchpoint.contact_id)  # type: ignore[attr-defined]
        ).scalars().first()
        assert touched is not None
        contacts_before = session.execute(select(m.Contact.id)).scalars().all()  # type: ignore[call-overload]
        created_before = _contact_created(session)
    person = next(c for c in world.sandbox.company.contacts if c.id == touched)
    needles = {hash_email(person.email), *person.ga_client_ids}
    assert references(world.engine, needles), "the person must be in the store before the archive"
    assert world.call("DELETE", f"/crm/v3/objects/contacts/{person.id}") == 204
    world.run()
    assert references(world.engine, needles) == []
    assert exact_ids(world.engine, person.id) == []
    with Session(world.engine) as session:
        assert len(session.execute(select(m.Contact.id)).all()) == len(contacts_before) - 1  # type: ignore[call-overload]
        created_after = _contact_created(session)
    assert created_after == created_before - 1


def test_a_merge_folds_the_merged_contact_onto_the_survivor(world: World) -> None:
    world.run()
    with Session(world.engine) as session:
        counts = dict(session.execute(
            select(m.Touchpoint.contact_id, m.Touchpoint.id).where(m.Touchpoint.is_offline.is_(False))  # type: ignore[attr-defined]
        ).all())
        by_contact: dict[str, int] = {}
        web = select(m.Touchpoint.contact_id).where(m.Touchpoint.is_offline.is_(False))  # type: ignore[attr-defined]
        for contact_id in session.execute(web).scalars():
            by_contact[contact_id] = by_contact.get(contact_id, 0) + 1
    assert counts
    survivor, merged = sorted(by_contact, key=int)[:2]
    response = world.call("POST", "/crm/v3/objects/contacts/merge",
                          {"primaryObjectId": survivor, "objectIdToMerge": merged})
    assert response == 200
    world.run()
    with Session(world.engine) as session:
        row = session.get(m.Contact, merged)
        assert row is not None and row.merged_into == survivor
        left = session.execute(select(m.Touchpoint.id).where(m.Touchpoint.contact_id == merged)).all()  # type: ignore[call-overload]
        survivor_web = len(session.execute(select(m.Touchpoint.id).where(
            m.Touchpoint.contact_id == survivor, m.Touchpoint.is_offline.is_(False))).all())  # type: ignore[attr-defined,call-overload]
    assert left == []
    assert survivor_web == by_contact[survivor] + by_contact[merged]
    written = world.sandbox.hubspot.state.get_properties("contacts", survivor)
    assert written.get("closedloop_touch_count") == str(survivor_web)


def test_a_gdpr_deleted_contact_is_purged_on_the_next_run(world: World) -> None:
    world.config = world.config.model_copy(
        update={"privacy": world.config.privacy.model_copy(update={"reconcile_hours": 0})})
    world.run()
    with Session(world.engine) as session:
        owner = session.execute(select(m.DealContact.contact_id).order_by(m.DealContact.contact_id)).scalars().first()  # type: ignore[call-overload]
    person = next(c for c in world.sandbox.company.contacts if c.id == owner)
    needles = {hash_email(person.email), *person.ga_client_ids}
    assert references(world.engine, needles) and exact_ids(world.engine, person.id)
    with Session(world.engine) as session:
        contacts_before = len(session.execute(select(m.Contact.id)).all())  # type: ignore[call-overload]
    assert world.call("POST", "/crm/v3/objects/contacts/gdpr-delete",
                      {"objectId": person.email, "idProperty": "email"}) == 204
    report = world.run()
    assert report.pulled["hubspot.deletions"]["purged.contacts"] == 1
    assert references(world.engine, needles) == [] and exact_ids(world.engine, person.id) == []
    with Session(world.engine) as session:
        assert len(session.execute(select(m.Contact.id)).all()) == contacts_before - 1  # type: ignore[call-overload]


def test_reconciling_every_run_purges_nobody_still_in_the_crm(world: World) -> None:
    """The live listing itself must not purge anyone still in the CRM."""
    world.config = world.config.model_copy(
        update={"privacy": world.config.privacy.model_copy(update={"reconcile_hours": 0})})
    world.run()
    report = world.run()
    assert not any(k.startswith("purged.") and v for k, v in report.pulled["hubspot.deletions"].items())


def test_a_gdpr_deleted_contact_leaves_every_listing_of_the_sandbox(world: World) -> None:
    person = world.sandbox.company.contacts[0]
    assert world.call("POST", "/crm/v3/objects/contacts/gdpr-delete",
                      {"objectId": person.email, "idProperty": "email"}) == 204
    state = world.sandbox.hubspot.state
    assert state.get("contacts", person.id) is None
    assert person.email.lower() in state.gdpr_blocklist
    assert all(o.id != person.id for o in state.all_objects("contacts"))


def test_a_record_deleted_in_the_salesforce_org_leaves_the_store_on_the_next_pull(tmp_path: Path) -> None:
    salesforce = pytest.importorskip("closedloop.sandbox.salesforce")
    if not hasattr(salesforce, "SalesforceSandbox"):
        pytest.skip("the Salesforce sandbox does not serve yet")
    from closedloop.config.models import SalesforceConfig
    from closedloop.connectors.calls import ApiCallLog
    from closedloop.connectors.salesforce.build import build_salesforce
    from closedloop.sync.pipeline import pull_stream

    t0, now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    state = salesforce.SalesforceState()
    leads = [state.insert("Lead", {"LastName": f"P{i}", "Company": "Acme", "Email": f"p{i}@example.com",
                                   "GA_Client_Id__c": f"{i}.77", "Status": "Open"}, at=t0)["Id"] for i in range(3)]
    contact = state.insert("Contact", {"LastName": "Buyer", "Email": "buyer@example.com"}, at=t0)["Id"]
    opp = state.insert("Opportunity", {"Name": "Deal", "StageName": "Closed Won", "Amount": 5000.0,
                                       "CloseDate": t0.date(), "IsWon": True, "IsClosed": True}, at=t0)["Id"]
    state.insert("OpportunityContactRole", {"OpportunityId": opp, "ContactId": contact, "IsPrimary": True}, at=t0)
    server = salesforce.SalesforceSandbox(state).start()
    try:
        secrets = {"password": salesforce.SF_PASSWORD, "security_token": salesforce.SF_SECURITY_TOKEN,
                   "consumer_secret": salesforce.SF_CONSUMER_SECRET}
        parts = build_salesforce(
            SalesforceConfig(auth="password", login_url=server.url, multicurrency=False,
                             username=salesforce.SF_USERNAME, consumer_key=salesforce.SF_CONSUMER_KEY, **secrets),
            log=ApiCallLog(), property_prefix="closedloop_", http=server.requests_session(),
            now=lambda: datetime.now(UTC), sleep=lambda _s: None, secret=lambda name: secrets[name])
        engine = open_store(f"sqlite:///{tmp_path / 'sf.db'}")
        streams = [s for s in parts.source.streams() if s.rsplit(".", 1)[1] in (
            "leads", "contacts", "opportunities", "opportunity_contact_roles")]

        def pull_all() -> None:
            for stream in streams:
                pull_stream(engine, parts.source, stream, now=now, progress=lambda _m: None)

        pull_all()
        assert exact_ids(engine, leads[1]) and exact_ids(engine, opp)
        assert ("deal_contacts", "contact_id") in exact_ids(engine, contact)
        state.delete("Lead", leads[1], at=now - timedelta(minutes=5))
        state.delete("Opportunity", opp, at=now - timedelta(minutes=5))
        pull_all()
        assert exact_ids(engine, leads[1]) == [] and exact_ids(engine, opp) == []
        assert references(engine, {hash_email("p1@example.com"), "1.77"}) == []
        assert references(engine, {hash_email("p0@example.com"), "0.77"})  # the others stay
        kept = exact_ids(engine, contact)  # the buyer stays; their link to the deleted deal does not
        assert ("contacts", "id") in kept and ("deal_contacts", "contact_id") not in kept
        engine.dispose()
    finally:
        server.stop()


def test_archive_merge_and_gdpr_delete_through_the_sdk_agree_with_hubspots_spec() -> None:
    """The archived listing, merge and GDPR delete, sent by the SDK, checked against the stored OpenAPI spec."""
    spec_file = Path(__file__).resolve().parents[3] / "shared" / "specs" / "hubspot" / "crm_contacts.json"
    if not spec_file.is_file():
        pytest.skip(f"HubSpot OpenAPI specs not found at {spec_file.parent}")
    from hubspot import HubSpot
    from hubspot.crm.contacts import PublicGdprDeleteInput, PublicMergeInput
    from test_sandbox_hubspot_spec import TOKEN, RequestLog, Spec, small_company

    from closedloop.sandbox.hubspot import HubSpotSandbox, HubSpotState

    spec = Spec("contacts")
    state = HubSpotState()
    state.load_company(small_company())
    sandbox = HubSpotSandbox(state, access_token=TOKEN, search_per_second=10_000).start()
    sent = RequestLog()
    sandbox.server.fault_hooks.append(sent)
    try:
        contacts = HubSpot(access_token=TOKEN, host=sandbox.url).crm.contacts.basic_api
        assert contacts.archive_with_http_info("203")[1] == 204
        page = contacts.get_page_with_http_info(archived="true", limit=10, _preload_content=False)
        body = json.loads(page.data)
        spec.check_response("GET", "/crm/v3/objects/contacts", page.status, body)
        assert [(o["id"], o["archived"]) for o in body["results"]] == [("203", True)]
        assert body["results"][0]["archivedAt"]
        live = json.loads(contacts.get_page_with_http_info(limit=100, _preload_content=False).data)
        assert "203" not in {o["id"] for o in live["results"]}

        merged = contacts.merge_with_http_info(PublicMergeInput(primary_object_id="200", object_id_to_merge="201"),
                                               _preload_content=False)
        merge_path = "/crm/v3/objects/contacts/merge"
        spec.check_request("POST", merge_path, sent.last("POST", merge_path))
        spec.check_response("POST", "/crm/v3/objects/contacts/merge", merged.status, json.loads(merged.data))
        assert state.get_properties("contacts", "200")["hs_merged_object_ids"] == "201"
        assert state.associated_ids("deals", "900", "contacts") == ["200"]  # 201's deal link moved to 200

        gone = contacts.purge_with_http_info(PublicGdprDeleteInput(object_id="c4@example.org", id_property="email"))
        assert gone[1] == 204
        spec.check_request("POST", "/crm/v3/objects/contacts/gdpr-delete",
                           sent.last("POST", "/crm/v3/objects/contacts/gdpr-delete"))
        assert state.get("contacts", "204") is None
        bin_ids = {o["id"] for o in json.loads(contacts.get_page_with_http_info(
            archived="true", limit=10, _preload_content=False).data)["results"]}
        assert bin_ids == {"203"}  # a GDPR delete is permanent: not even in the recycle bin
    finally:
        sandbox.stop()
