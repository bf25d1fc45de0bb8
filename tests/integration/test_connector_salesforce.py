"""The Salesforce connector through the unmodified simple-salesforce, against the sandbox over TLS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from closedloop.config.models import SalesforceConfig
from closedloop.connectors.base import PropertyUpdate
from closedloop.connectors.calls import ApiCallLog
from closedloop.connectors.salesforce.build import SalesforceParts, build_salesforce
from closedloop.errors import AuthError, BudgetExhaustedError, FatalAPIError
from closedloop.records import ContactRecord, DealContactRole, DealRecord, DealStageEvent, DeletedRecord
from closedloop.sync.properties import property_specs

sandbox_module = pytest.importorskip("closedloop.sandbox.salesforce")
if not hasattr(sandbox_module, "SalesforceSandbox"):
    pytest.skip("the Salesforce sandbox does not serve yet", allow_module_level=True)

from closedloop.sandbox.salesforce import (  # noqa: E402
    SF_CONSUMER_KEY,
    SF_CONSUMER_SECRET,
    SF_PASSWORD,
    SF_SECURITY_TOKEN,
    SF_USERNAME,
    SalesforceSandbox,
    SalesforceState,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def add_leads(state: Any, n: int, *, start: datetime = T0) -> list[str]:
    return [
        state.insert(
            "Lead",
            {
                "LastName": f"Person {i}",
                "Company": "Acme",
                "Email": f"p{i}@example.com",
                "LeadSource": "Web",
                "GA_Client_Id__c": f"{i}.1",
                "UTM_Source__c": "google",
                "Status": "Open - Not Contacted",
            },
            at=start + timedelta(seconds=i),
        )["Id"]
        for i in range(n)
    ]


@pytest.fixture
def state() -> Any:
    return SalesforceState()


@pytest.fixture
def sandbox(state: Any) -> Iterator[Any]:
    server = SalesforceSandbox(state).start()
    try:
        yield server
    finally:
        server.stop()


def connect(sandbox: Any, *, auth: str = "password", **overrides: Any) -> SalesforceParts:
    fields: dict[str, Any] = {"auth": auth, "login_url": sandbox.url, "multicurrency": False, **overrides}
    secrets = {
        "password": SF_PASSWORD,
        "security_token": SF_SECURITY_TOKEN,
        "consumer_secret": SF_CONSUMER_SECRET,
    }
    if auth == "password":
        fields.update(username=SF_USERNAME, consumer_key=SF_CONSUMER_KEY, **secrets)
    elif auth == "jwt":
        fields.update(
            username=SF_USERNAME, consumer_key=SF_CONSUMER_KEY, private_key_file=str(sandbox.jwt_private_key_file)
        )
    else:
        fields.update(access_token="set-by-secret", instance_url=sandbox.url)

    def secret(name: str) -> str:
        # A session "file" a sidecar keeps fresh: each read is a session the org knows now.
        return sandbox.issue_session() if name == "access_token" else secrets[name]

    return build_salesforce(
        SalesforceConfig(**fields),
        log=ApiCallLog(),
        property_prefix="closedloop_",
        http=sandbox.requests_session(),
        now=lambda: datetime.now(UTC),
        sleep=lambda _s: None,
        secret=secret,
    )


def pull(parts: SalesforceParts, stream: str, cursor: dict[str, Any] | None = None) -> tuple[list[Any], dict[str, Any]]:
    batches = list(parts.source.pull(stream, cursor, now=NOW))
    return [r for b in batches for r in b.records], batches[-1].cursor


def test_paging_past_2000_and_incremental_pull(sandbox: Any, state: Any) -> None:
    ids = add_leads(state, 4_500)
    parts = connect(sandbox)
    records, cursor = pull(parts, "salesforce.leads")
    assert [r.crm_id for r in records] == ids
    calls = parts.client.log.by_endpoint()
    assert sum(calls["salesforce GET query"].values()) == 1
    assert sum(calls["salesforce GET query/{id}"].values()) == 2  # 2,000 + 2,000 + 500
    state.update("Lead", ids[7], {"Email": "new@example.com"}, at=NOW - timedelta(days=1))
    state.update("Lead", ids[4_000], {"LeadSource": "Partner"}, at=NOW - timedelta(days=1))
    again, _ = pull(parts, "salesforce.leads", cursor)
    assert sorted(r.crm_id for r in again) == sorted([ids[7], ids[4_000]])


def test_deleted_records_arrive_as_deletions(sandbox: Any, state: Any) -> None:
    ids = add_leads(state, 5)
    parts = connect(sandbox)
    _, cursor = pull(parts, "salesforce.leads")
    state.delete("Lead", ids[2], at=NOW + timedelta(minutes=1))
    records, _ = pull(parts, "salesforce.leads", cursor)
    assert records == [DeletedRecord("contact", ids[2], NOW + timedelta(minutes=1))]


def test_lead_conversion_folds_the_lead_onto_its_contact(sandbox: Any, state: Any) -> None:
    ids = add_leads(state, 3)
    parts = connect(sandbox)
    _, lead_cursor = pull(parts, "salesforce.leads")
    contact_id = state.convert_lead(ids[1], at=NOW - timedelta(days=2))
    leads, _ = pull(parts, "salesforce.leads", lead_cursor)
    contacts, _ = pull(parts, "salesforce.contacts")
    [lead] = leads
    assert isinstance(lead, ContactRecord) and lead.crm_id == ids[1] and lead.merged_into == contact_id
    [contact] = contacts
    assert contact.crm_id == contact_id and contact.ga_client_ids == ("1.1",)
    assert contact.email_hash == lead.email_hash  # the same person by email too


def test_opportunities_history_and_roles(sandbox: Any, state: Any) -> None:
    contact = state.insert("Contact", {"LastName": "Buyer", "Email": "b@example.com"}, at=T0)["Id"]
    opp = state.insert(
        "Opportunity",
        {
            "Name": "Deal",
            "StageName": "Closed Won",
            "Amount": 5000.0,
            "CloseDate": T0.date() + timedelta(days=30),
            "IsWon": True,
            "IsClosed": True,
        },
        at=T0,
    )["Id"]
    state.insert("OpportunityHistory", {"OpportunityId": opp, "StageName": "Prospecting"}, at=T0)
    state.insert("OpportunityHistory", {"OpportunityId": opp, "StageName": "Closed Won"}, at=T0 + timedelta(days=30))
    role = state.insert(
        "OpportunityContactRole", {"OpportunityId": opp, "ContactId": contact, "IsPrimary": True}, at=T0
    )
    parts = connect(sandbox)
    [deal], _ = pull(parts, "salesforce.opportunities")
    assert isinstance(deal, DealRecord) and (deal.amount, deal.is_won, deal.stage) == (5000.0, True, "Closed Won")
    history, _ = pull(parts, "salesforce.opportunity_history")
    assert history == [
        DealStageEvent(opp, "Prospecting", T0),
        DealStageEvent(opp, "Closed Won", T0 + timedelta(days=30)),
    ]
    roles, cursor = pull(parts, "salesforce.opportunity_contact_roles")
    assert roles == [DealContactRole(role["Id"], opp, contact, True, None)]
    state.delete("OpportunityContactRole", role["Id"], at=NOW + timedelta(minutes=1))
    gone, _ = pull(parts, "salesforce.opportunity_contact_roles", cursor)
    assert [(g.kind, g.deal_id, g.contact_id) for g in gone] == [("deal_contact_role", opp, contact)]


@pytest.mark.parametrize("auth", ["jwt", "password", "session"])
def test_each_auth_flow_signs_in_and_renews_an_expired_session(sandbox: Any, state: Any, auth: str) -> None:
    add_leads(state, 2_500)
    parts = connect(sandbox, auth=auth)
    pages = parts.source.pull("salesforce.leads", None, now=NOW)
    first = next(pages)
    state.expire_sessions()  # the next page's call answers 401 INVALID_SESSION_ID
    rest = [r for b in pages for r in b.records]
    assert len(first.records) + len(rest) == 2_500
    assert parts.client.authenticator.sign_ins == 2  # type: ignore[attr-defined]


def test_bulk_write_renews_an_expired_session(sandbox: Any, state: Any) -> None:
    ids = add_leads(state, 6)
    parts = connect(sandbox, bulk_threshold=5, bulk_poll_s=0.05, grant_field_permissions=True)
    parts.writer.ensure_properties(property_specs("closedloop_", "linear"), group_name="", group_label="")
    state.expire_sessions()
    result = parts.writer.write([PropertyUpdate("contacts", i, {"closedloop_journey": "Organic Search"}) for i in ids])
    assert len(result.written) == 6 and not result.failed
    assert parts.writer.bulk_jobs == 1
    assert all(state.get("Lead", i)["Closedloop_Journey__c"] == "Organic Search" for i in ids)
    assert parts.client.authenticator.sign_ins == 2  # type: ignore[attr-defined]


def test_a_session_that_stays_refused_is_an_auth_error(sandbox: Any, state: Any) -> None:
    add_leads(state, 1)
    parts = connect(sandbox, auth="session")
    parts.client.authenticator.credentials = parts.client.authenticator.credentials.__class__(  # type: ignore[attr-defined]
        "session", sandbox.url, lambda _name: "00Dnot-a-session", instance_url=sandbox.url
    )
    with pytest.raises(AuthError, match="INVALID_SESSION_ID"):
        pull(parts, "salesforce.leads")


def test_spent_allocation_and_usage_share_stop_the_run(sandbox: Any, state: Any) -> None:
    add_leads(state, 4_500)
    state.set_daily_limit(1_000, used=497)
    parts = connect(sandbox, auth="session", daily_usage_share=0.5)
    with pytest.raises(BudgetExhaustedError, match="daily_usage_share"):
        pull(parts, "salesforce.leads")
    assert state.api_usage == 500  # three pages of the query, then not one call past 50%
    state.set_daily_limit(1_000, used=1_000)
    with pytest.raises(BudgetExhaustedError):
        pull(connect(sandbox, daily_usage_share=1.0), "salesforce.leads")


def test_partial_write_failure_is_kept_and_retried(sandbox: Any, state: Any) -> None:
    ids = add_leads(state, 3)
    parts = connect(sandbox, grant_field_permissions=True)
    parts.writer.ensure_properties(property_specs("closedloop_", "linear"), group_name="", group_label="")
    state.fail_records([ids[1]])
    updates = [PropertyUpdate("contacts", i, {"closedloop_touch_count": "4"}) for i in ids]
    result = parts.writer.write(updates)
    assert [u.object_id for u in result.written] == [ids[0], ids[2]]
    assert [(f.object_id, f.reason.split(":")[0]) for f in result.failed] == [(ids[1], "UNABLE_TO_LOCK_ROW")]
    retry = parts.writer.write([updates[1]])
    assert [u.object_id for u in retry.written] == [ids[1]]
    assert parts.writer.read_properties("contacts", ids, ["closedloop_touch_count"]) == {
        i: {"closedloop_touch_count": "4"} for i in ids
    }


def test_bulk_path_reads_back_failed_rows(sandbox: Any, state: Any) -> None:
    ids = add_leads(state, 8)
    parts = connect(sandbox, bulk_threshold=5, bulk_poll_s=0.05, grant_field_permissions=True)
    parts.writer.ensure_properties(property_specs("closedloop_", "linear"), group_name="", group_label="")
    state.fail_records([ids[3]], code="FIELD_CUSTOM_VALIDATION_EXCEPTION", message="no")
    result = parts.writer.write([PropertyUpdate("contacts", i, {"closedloop_lead_channel": "Email"}) for i in ids])
    assert [f.object_id for f in result.failed] == [ids[3]]
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in result.failed[0].reason
    assert len(result.written) == 7
    assert sum(n for k, v in parts.client.log.by_endpoint().items() if "composite" in k for n in v.values()) == 0


def test_field_creation_and_the_missing_permission_message(sandbox: Any, state: Any) -> None:
    specs = property_specs("closedloop_", "linear")
    parts = connect(sandbox)
    with pytest.raises(FatalAPIError) as caught:
        parts.writer.ensure_properties(specs, group_name="", group_label="")
    message = str(caught.value)
    assert "Closedloop_Integration" in message and "Lead.Closedloop_First_Touch_Channel__c" in message
    granted = connect(sandbox, grant_field_permissions=True)
    assert granted.writer.ensure_properties(specs, group_name="", group_label="") == []  # created by the first
    contact_fields = sum(1 for s in specs if s.object_type == "contacts")
    from closedloop.connectors.salesforce.build import check_fields

    report = check_fields(granted, specs, create=True, grant=True)
    assert report.missing == [] and len(report.expected) == 2 * contact_fields + len(specs) - contact_fields
