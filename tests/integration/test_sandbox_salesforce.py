"""The Salesforce sandbox read side and its gate, driven by the unmodified simple-salesforce over TLS.

Expectations come from the hand-made company below (or from the org's own rows for ids), never
from a pasted answer: a sandbox that drops, repeats or mis-filters records, pages wrongly, or
answers errors in another shape than Salesforce's JSON array fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from closedloop.sandbox.company import (
    Company,
    SyntheticContact,
    SyntheticDeal,
    SyntheticPipeline,
    SyntheticStage,
    SyntheticStageChange,
)
from closedloop.sandbox.faults import FaultPlan, drop_connection
from closedloop.sandbox.salesforce import SalesforceSandbox, SalesforceState
from closedloop.sandbox.salesforce.faults import concurrent_limit, expire_sessions_after, server_error

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
LEADS = 2300
PIPELINE = SyntheticPipeline("default", "Sales", [
    SyntheticStage("qualify", "Qualification", 0, 0.2, False),
    SyntheticStage("propose", "Proposal", 1, 0.6, False),
    SyntheticStage("won", "Closed Won", 2, 1.0, True),
    SyntheticStage("lost", "Closed Lost", 3, 0.0, True),
])
NEXT_PAGE = re.compile(r"^/services/data/v59\.0/query/01g\w+-(\d+)$")


def make_company(n: int = LEADS) -> Company:
    contacts = [
        SyntheticContact(
            id=str(1001 + i), email=f"person{i}@example{i % 7}.com", created_at=T0 + timedelta(minutes=i),
            updated_at=T0 + timedelta(minutes=i, hours=1), lifecycle_stage="lead",
            ga_client_ids=[f"{100000 + i}.{1700000000 + i}"] if i % 3 else [],
            original_source="PAID_SEARCH" if i % 3 else "OFFLINE",
            original_source_detail_2="" if i % 3 else "field_event_nyc",
            utm_source="google" if i % 3 else "", utm_medium="cpc" if i % 3 else "",
            extra={"firstname": f"First{i}", "lastname": f"Last{i}", "company": f"Company {i % 40}"},
        )
        for i in range(n)
    ]
    deals = [
        SyntheticDeal("2000001", "Company 0 - Pilot", "default", 12000.0, T0 + timedelta(days=3),
                      T0 + timedelta(days=9),
                      [SyntheticStageChange("qualify", T0 + timedelta(days=3)),
                       SyntheticStageChange("won", T0 + timedelta(days=9))], ["1001", "1003"], T0 + timedelta(days=9)),
        SyntheticDeal("2000002", "Company 5 - Expansion", "default", 8000.0, T0 + timedelta(days=4),
                      T0 + timedelta(days=5), [SyntheticStageChange("qualify", T0 + timedelta(days=4)),
                                               SyntheticStageChange("propose", T0 + timedelta(days=5))], ["1006"]),
    ]
    return Company(contacts=contacts, deals=deals, pipelines=[PIPELINE])


@pytest.fixture(scope="module")
def company() -> Company:
    return make_company()


@pytest.fixture
def sandbox(company: Company) -> Iterator[SalesforceSandbox]:
    state = SalesforceState(now=lambda: T0 + timedelta(days=10))
    state.load_company(company)
    with SalesforceSandbox(state) as running:
        yield running


@pytest.fixture
def sf(sandbox: SalesforceSandbox) -> Salesforce:
    return Salesforce(instance_url=sandbox.url, session_id=sandbox.issue_session(), session=sandbox.requests_session())


def _error_code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.content[0]["errorCode"]


# ---- query and paging ------------------------------------------------------------------------


def test_query_all_iter_pages_past_two_thousand_with_next_records_url(sandbox: SalesforceSandbox,
                                                                      sf: Salesforce, company: Company) -> None:
    first = sf.query("SELECT Id, Email FROM Lead")
    assert first["totalSize"] == LEADS and first["done"] is False and len(first["records"]) == 2000
    match = NEXT_PAGE.match(first["nextRecordsUrl"])
    assert match and match.group(1) == "2000"
    sandbox.server.reset_calls()
    emails = [r["Email"] for r in sf.query_all_iter("SELECT Id, Email FROM Lead")]
    assert sorted(emails) == sorted(c.email for c in company.contacts)
    assert len(set(emails)) == LEADS
    calls = sandbox.calls_by_endpoint()
    assert calls == {"GET /services/data/{version}/query/": 1, "GET /services/data/{version}/query/{locator}": 1}


def test_batch_size_header_sets_the_page_and_is_clamped(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    page = sf.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options": "batchSize=500"})
    assert len(page["records"]) == 500 and NEXT_PAGE.match(page["nextRecordsUrl"]).group(1) == "500"  # type: ignore[union-attr]
    sandbox.server.reset_calls()
    ids = [r["Id"] for r in sf.query_all_iter("SELECT Id FROM Lead", headers={"Sforce-Query-Options": "batchSize=500"})]
    assert len(ids) == len(set(ids)) == LEADS
    assert sandbox.calls_by_endpoint()["GET /services/data/{version}/query/{locator}"] == 4  # 500 x 4 + 300
    tiny = sf.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options": "batchSize=10"})
    assert len(tiny["records"]) == 200  # Salesforce's minimum


@pytest.mark.parametrize(("soql", "code"), [
    ("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY"),
    ("SELECT Id FROM Lead WHERE IsConverted = true AND Email != null OR Id = null", "MALFORMED_QUERY"),
    ("SELECT Id, Closedloop_First_Touch__c FROM Lead", "INVALID_FIELD"),
    ("SELECT Id FROM Lead WHERE SystemModstamp > '2024-01-01T00:00:00Z'", "INVALID_FIELD"),
    ("SELECT Id FROM Leads", "INVALID_TYPE"),
])
def test_soql_errors_are_400_with_salesforce_codes(sf: Salesforce, soql: str, code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)
    assert caught.value.status == 400
    assert _error_code(caught) == code


def test_incremental_filter_with_format_soql_datetimes(sf: Salesforce, company: Company) -> None:
    cutoff = T0 + timedelta(minutes=1500, hours=1)
    soql = format_soql("SELECT Id, Email, SystemModstamp FROM Lead WHERE SystemModstamp > {} "
                       "AND IsConverted = false ORDER BY SystemModstamp", cutoff)
    got = [r["Email"] for r in sf.query_all_iter(soql)]
    on_deals = {cid for d in company.deals for cid in d.contact_ids}
    expected = [c.email for c in company.contacts if c.updated_at > cutoff and c.id not in on_deals]
    assert got == expected and len(got) == LEADS - 1501


def test_lead_conversion_links_lead_and_contact(sf: Salesforce, company: Company) -> None:
    rows = sf.query_all("SELECT Email, ConvertedDate, ConvertedContact.Email, ConvertedOpportunity.Amount "
                        "FROM Lead WHERE IsConverted = true ORDER BY Email")["records"]
    assert [(r["Email"], r["ConvertedContact"]["Email"]) for r in rows] == [
        ("person0@example0.com", "person0@example0.com"), ("person2@example2.com", "person2@example2.com"),
        ("person5@example5.com", "person5@example5.com")]
    assert [r["ConvertedDate"] for r in rows] == ["2024-03-04", "2024-03-04", "2024-03-05"]
    # the co-contact of deal 1 converted without an opportunity of its own
    assert [(r["ConvertedOpportunity"] or {}).get("Amount") for r in rows] == [12000.0, None, 8000.0]


# ---- deletions -------------------------------------------------------------------------------


def test_deleted_records_only_through_query_all_and_get_deleted(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    victim = sf.query("SELECT Id, Email FROM Lead WHERE Email = 'person7@example0.com'")["records"][0]
    sandbox.state.delete("Lead", victim["Id"])
    assert sf.query(format_soql("SELECT Id FROM Lead WHERE Id = {}", victim["Id"]))["totalSize"] == 0
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == LEADS - 1
    gone = sf.query("SELECT Id, IsDeleted FROM Lead WHERE IsDeleted = true", include_deleted=True)
    assert [(r["Id"], r["IsDeleted"]) for r in gone["records"]] == [(victim["Id"], True)]
    now = sandbox.state.now()
    deleted = sf.Lead.deleted(now - timedelta(days=1), now + timedelta(minutes=1))
    assert [d["id"] for d in deleted["deletedRecords"]] == [victim["Id"]]
    assert sf.Lead.deleted(now - timedelta(days=1), now - timedelta(hours=1))["deletedRecords"] == []


# ---- describe, limits and the gate -----------------------------------------------------------


def test_describe_lists_visible_fields_with_types(sf: Salesforce) -> None:
    fields = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
    assert fields["Amount"]["type"] == "currency" and fields["CloseDate"]["type"] == "date"
    assert fields["IsWon"]["updateable"] is False and "CurrencyIsoCode" not in fields
    lead = {f["name"] for f in sf.Lead.describe()["fields"]}
    assert {"GA_Client_Id__c", "UTM_Source__c", "IsConverted", "ConvertedContactId"} <= lead


def test_limit_info_on_every_answer_feeds_api_usage(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    sf.query("SELECT Id FROM Lead LIMIT 1")
    sf.query("SELECT Id FROM Lead LIMIT 1")
    usage = sf.api_usage["api-usage"]
    assert (usage.used, usage.total) == (sandbox.state.api_usage, 100_000) and usage.used == 2
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 100_000, "Remaining": 100_000 - 3}
    assert {"DailyBulkV2QueryJobs", "DailyBulkApiBatches", "DailyBulkV2QueryFileStorageMB"} <= set(limits)
    # error answers carry the header too (simple-salesforce raises before it reads it, so ask directly)
    answer = sandbox.requests_session().get(f"{sandbox.url}/services/data/v59.0/query",
                                            params={"q": "SELECT Nope FROM Lead"},
                                            headers={"Authorization": f"Bearer {sf.session_id}"})
    assert answer.status_code == 400 and answer.headers["Sforce-Limit-Info"] == "api-usage=4/100000"
    versions = sandbox.requests_session().get(f"{sandbox.url}/services/data")
    assert versions.status_code == 200 and "Sforce-Limit-Info" not in versions.headers


def test_request_limit_exceeded_past_the_daily_allocation(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    sandbox.state.set_daily_limit(50, used=49)
    sf.query("SELECT Id FROM Lead LIMIT 1")
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert caught.value.status == 403
    assert caught.value.content == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert sf.api_usage["api-usage"].used == 50
    with pytest.raises(SalesforceRefusedRequest):
        list(sf.bulk2.Lead.query("SELECT Id FROM Lead"))


def test_expired_session_is_401_invalid_session_id_on_rest_and_bulk2(sandbox: SalesforceSandbox,
                                                                     sf: Salesforce) -> None:
    sf.query("SELECT Id FROM Lead LIMIT 1")
    sandbox.state.expire_sessions()
    with pytest.raises(SalesforceExpiredSession) as rest:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert rest.value.content == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    with pytest.raises(SalesforceExpiredSession) as bulk:
        list(sf.bulk2.Lead.query("SELECT Id FROM Lead", wait=0.1))
    assert bulk.value.content[0]["errorCode"] == "INVALID_SESSION_ID"
    fresh = Salesforce(instance_url=sandbox.url, session_id=sandbox.issue_session(), session=sandbox.requests_session())
    assert fresh.query("SELECT COUNT() FROM Lead")["totalSize"] == LEADS


def test_server_errors_and_dropped_connections_through_fault_hooks(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    plan = FaultPlan().install(sandbox.server)
    plan.add(server_error(503, 1, endpoint="GET /services/data/*/query/"))
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert caught.value.status == 503 and _error_code(caught) == "SERVER_UNAVAILABLE"
    plan.add(drop_connection(1, endpoint="GET /services/data/{version}/limits/"))
    with pytest.raises(requests.ConnectionError):
        sf.limits()
    plan.add(concurrent_limit(1))
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert refused.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert sf.query("SELECT Id FROM Lead LIMIT 1")["totalSize"] == 1
    assert plan.fired() == 3


def test_unknown_resources_answer_the_error_array(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.restful("nothing/here")
    assert caught.value.content == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
    with pytest.raises(SalesforceResourceNotFound):
        sf.Leed.describe()


def test_session_expiring_between_pages_refuses_the_next_page(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    plan = FaultPlan().install(sandbox.server)
    plan.add(expire_sessions_after(sandbox.state, 0, endpoint="GET /services/data/{version}/query/{locator}"))
    seen: list[str] = []
    with pytest.raises(SalesforceExpiredSession) as caught:
        seen.extend(r["Id"] for r in sf.query_all_iter("SELECT Id FROM Lead"))
    assert len(seen) == 2000 and caught.value.content[0]["errorCode"] == "INVALID_SESSION_ID"
    assert not sandbox.state.session_valid(sf.session_id)
