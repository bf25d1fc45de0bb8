"""Writes to the Salesforce sandbox through the unmodified simple-salesforce: sObject Collections,
Bulk API 2.0 ingest and query jobs, and Tooling CustomField with field-level security.

Every expectation is read back from the org after the write (or computed from the records sent),
so a sandbox that applies a failed record, loses result order, ignores allOrNone, or shows a field
before it is granted fails.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceOperationError

from closedloop.sandbox.company import Company, SyntheticContact
from closedloop.sandbox.salesforce import PERMISSION_SET, SalesforceSandbox, SalesforceState

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
N = 25
FIELD = "Closedloop_First_Touch_Channel__c"


def _company() -> Company:
    return Company(contacts=[
        SyntheticContact(id=str(1001 + i), email=f"p{i}@example.com", created_at=T0 + timedelta(hours=i),
                         updated_at=T0 + timedelta(hours=i), lifecycle_stage="lead", ga_client_ids=[f"1.{i}"],
                         extra={"firstname": f"F{i}", "lastname": f"L{i}", "company": "Acme"})
        for i in range(N)])


@pytest.fixture
def sandbox() -> Iterator[SalesforceSandbox]:
    clock = iter(T0 + timedelta(days=30, seconds=s) for s in range(10**6))
    state = SalesforceState(now=lambda: next(clock))
    state.load_company(_company())
    with SalesforceSandbox(state) as running:
        yield running


@pytest.fixture
def sf(sandbox: SalesforceSandbox) -> Salesforce:
    return Salesforce(instance_url=sandbox.url, session_id=sandbox.issue_session(), session=sandbox.requests_session())


def _leads(sf: Salesforce, *fields: str) -> list[dict[str, Any]]:
    return sf.query_all(f"SELECT Id, {', '.join(fields)} FROM Lead ORDER BY Email")["records"]


def _create_field(sf: Salesforce, sobject: str = "Lead", name: str = FIELD) -> str:
    made = sf.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": f"{sobject}.{name}", "Metadata": {"label": "First touch channel", "type": "Text", "length": 255}})
    assert made["success"] is True and made["id"].startswith("00N")
    return made["id"]


def _grant(sf: Salesforce, sandbox: SalesforceSandbox, *, edit: bool, field: str = f"Lead.{FIELD}") -> str:
    made = sf.FieldPermissions.create({"ParentId": sandbox.state.permission_set_id, "SobjectType": "Lead",
                                       "Field": field, "PermissionsRead": True, "PermissionsEdit": edit})
    return made["id"]


# ---- sObject Collections ---------------------------------------------------------------------


def test_collections_partial_failure_keeps_request_order_and_applies_the_rest(sandbox: SalesforceSandbox,
                                                                            sf: Salesforce) -> None:
    leads = _leads(sf, "Email")[:5]
    failing = leads[2]["Id"]
    sandbox.state.fail_records([failing], code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
                               message="Company must not be blank", fields=["Company"])
    records = [{"attributes": {"type": "Lead"}, "id": lead["Id"], "UTM_Campaign__c": f"wave-{i}"}
               for i, lead in enumerate(reversed(leads))]
    results = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records})
    assert [r["id"] for r in results] == [r["id"] for r in records]
    assert [r["success"] for r in results] == [r["id"] != failing for r in records]
    failed = next(r for r in results if not r["success"])
    assert failed["errors"] == [{"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                                 "message": "Company must not be blank", "fields": ["Company"]}]
    after = {r["Id"]: r["UTM_Campaign__c"] for r in _leads(sf, "UTM_Campaign__c")}
    assert {i: after[r["id"]] for i, r in enumerate(records)} == {
        i: None if r["id"] == failing else f"wave-{i}" for i, r in enumerate(records)}
    retry = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [records[2]]})
    assert retry == [{"id": failing, "success": True, "errors": []}]  # the injected failure was for one attempt


def test_collections_all_or_none_rolls_everything_back(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    leads = _leads(sf, "Email")[:3]
    sandbox.state.fail_records([leads[1]["Id"]])
    records = [{"attributes": {"type": "Lead"}, "id": lead["Id"], "UTM_Source__c": "x"} for lead in leads]
    results = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": True, "records": records})
    codes = [r["errors"][0]["statusCode"] for r in results]
    assert codes == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "UNABLE_TO_LOCK_ROW", "ALL_OR_NONE_OPERATION_ROLLED_BACK"]
    assert all(r["UTM_Source__c"] is None for r in _leads(sf, "UTM_Source__c"))


def test_collections_per_record_errors_and_request_errors(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    lead = _leads(sf, "Email")[0]
    sandbox.state.convert_lead(lead["Id"])
    other = _leads(sf, "Email", "IsConverted")[1]
    records = [
        {"attributes": {"type": "Lead"}, "id": lead["Id"], "UTM_Source__c": "x"},
        {"attributes": {"type": "Lead"}, "id": other["Id"], "No_Such__c": "x"},
        {"attributes": {"type": "Lead"}, "id": other["Id"], "IsConverted": True},
        {"attributes": {"type": "Lead"}, "id": other["Id"], "UTM_Source__c": "y" * 256},
        {"attributes": {"type": "Lead"}, "id": "not-an-id"},
        {"attributes": {"type": "Lead"}, "id": "00Q000000000000"},
    ]
    results = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records})
    assert [r["errors"][0]["statusCode"] for r in results] == [
        "CANNOT_UPDATE_CONVERTED_LEAD", "INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE", "STRING_TOO_LONG",
        "MALFORMED_ID", "INVALID_CROSS_REFERENCE_KEY"]
    too_many = [{"attributes": {"type": "Lead"}, "id": other["Id"]}] * 201
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": too_many})
    assert caught.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_writes_move_system_modstamp(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    lead = _leads(sf, "SystemModstamp")[3]
    sf.restful("composite/sobjects", method="PATCH",
               json={"allOrNone": False, "records": [{"attributes": {"type": "Lead"}, "id": lead["Id"],
                                                      "UTM_Medium__c": "email"}]})
    cursor = datetime.fromisoformat(lead["SystemModstamp"].replace("+0000", "+00:00"))
    changed = sf.query_all(format_soql("SELECT Id FROM Lead WHERE SystemModstamp > {}", cursor + timedelta(days=1)))
    assert [r["Id"] for r in changed["records"]] == [lead["Id"]]


# ---- Bulk API 2.0 ----------------------------------------------------------------------------


def test_bulk2_ingest_with_results_and_failures(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    leads = _leads(sf, "Email")
    failing = leads[4]["Id"]
    sandbox.state.fail_records([failing], code="FIELD_CUSTOM_VALIDATION_EXCEPTION", message="no", fields=[])
    records = [{"Id": lead["Id"], "UTM_Campaign__c": f"bulk-{i}", "UTM_Source__c": "" if i % 2 else "news"}
               for i, lead in enumerate(leads)]
    [outcome] = sf.bulk2.Lead.update(records=records, wait=0.1)
    assert (outcome["numberRecordsProcessed"], outcome["numberRecordsFailed"]) == (N, 1)
    failed = list(csv.DictReader(io.StringIO(sf.bulk2.Lead.get_failed_records(outcome["job_id"]))))
    assert [(r["sf__Id"], r["Id"]) for r in failed] == [(failing, failing)]
    assert failed[0]["sf__Error"].startswith("FIELD_CUSTOM_VALIDATION_EXCEPTION:no")
    done = list(csv.DictReader(io.StringIO(sf.bulk2.Lead.get_successful_records(outcome["job_id"]))))
    assert sorted(r["sf__Id"] for r in done) == sorted(r["Id"] for r in records if r["Id"] != failing)
    assert {r["sf__Created"] for r in done} == {"false"}
    rows = _leads(sf, "UTM_Campaign__c", "UTM_Source__c")
    after = {r["Id"]: (r["UTM_Campaign__c"], r["UTM_Source__c"]) for r in rows}
    for i, record in enumerate(records):  # an empty cell leaves the field as it was
        expected = (None, None) if record["Id"] == failing else (f"bulk-{i}", None if i % 2 else "news")
        assert after[record["Id"]] == expected


def test_bulk2_matches_columns_by_header_name_in_any_order(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    leads = _leads(sf, "Email")[:2]
    body = "utm_medium__C,ID\n" + "".join(f"m{i},{lead['Id']}\n" for i, lead in enumerate(leads))
    http = sandbox.requests_session()
    auth = {"Authorization": f"Bearer {sf.session_id}", "Content-Type": "application/json"}
    base = f"{sandbox.url}/services/data/v59.0/jobs/ingest"
    job = http.post(base, json={"object": "Lead", "operation": "update", "contentType": "CSV",
                                "lineEnding": "LF"}, headers=auth).json()
    assert job["state"] == "Open"
    upload = http.put(f"{base}/{job['id']}/batches", data=body, headers={**auth, "Content-Type": "text/csv"})
    assert upload.status_code == 201
    closed = http.patch(f"{base}/{job['id']}", json={"state": "UploadComplete"}, headers=auth).json()
    states = [closed["state"]] + [http.get(f"{base}/{job['id']}", headers=auth).json()["state"] for _ in range(2)]
    assert states == ["UploadComplete", "InProgress", "JobComplete"]
    assert {r["Id"]: r["UTM_Medium__c"] for r in _leads(sf, "UTM_Medium__c")[:2]} == {
        leads[0]["Id"]: "m0", leads[1]["Id"]: "m1"}


def test_bulk2_unknown_column_fails_the_job(sf: Salesforce) -> None:
    lead = _leads(sf, "Email")[0]
    with pytest.raises(SalesforceOperationError, match="Field name not found : Nope__c"):
        sf.bulk2.Lead.update(records=[{"Id": lead["Id"], "Nope__c": "x"}], wait=0.1)


def test_bulk2_query_pages_with_locator(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    sandbox.server.reset_calls()
    pages = list(sf.bulk2.Lead.query("SELECT Id, Email, Owner.Name FROM Lead ORDER BY Email", max_records=10,
                                     wait=0.1))
    rows = [row for page in pages for row in csv.DictReader(io.StringIO(page))]
    assert [r["Email"] for r in rows] == sorted(f"p{i}@example.com" for i in range(N))
    assert set(rows[0]) == {"Id", "Email", "Owner.Name"} and rows[0]["Owner.Name"] == "Closedloop Integration"
    assert sandbox.calls_by_endpoint()["GET /services/data/{version}/jobs/query/{job}/results"] == 3
    http = sandbox.requests_session()
    jobs = http.get(f"{sandbox.url}/services/data/v59.0/jobs/query",
                    headers={"Authorization": f"Bearer {sf.session_id}"}).json()["records"]
    last = http.get(f"{sandbox.url}/services/data/v59.0/jobs/query/{jobs[-1]['id']}/results",
                    params={"maxRecords": 20}, headers={"Authorization": f"Bearer {sf.session_id}"})
    assert last.headers["Sforce-Locator"] != "null" and last.headers["Sforce-NumberOfRecords"] == "20"
    rest = http.get(f"{sandbox.url}/services/data/v59.0/jobs/query/{jobs[-1]['id']}/results",
                    params={"maxRecords": 20, "locator": last.headers["Sforce-Locator"]},
                    headers={"Authorization": f"Bearer {sf.session_id}"})
    assert rest.headers["Sforce-Locator"] == "null" and rest.headers["Sforce-NumberOfRecords"] == str(N - 20)
    assert sf.limits()["DailyBulkV2QueryJobs"]["Remaining"] == 10_000 - 1


def test_bulk2_query_all_sees_deleted_rows(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    lead = _leads(sf, "Email")[0]
    sandbox.state.delete("Lead", lead["Id"])
    live = [r for page in sf.bulk2.Lead.query("SELECT Id FROM Lead", wait=0.1)
            for r in csv.DictReader(io.StringIO(page))]
    everything = [r for page in sf.bulk2.Lead.query_all("SELECT Id, IsDeleted FROM Lead", wait=0.1)
                  for r in csv.DictReader(io.StringIO(page))]
    assert len(live) == N - 1 and lead["Id"] not in {r["Id"] for r in live}
    assert [r["IsDeleted"] for r in everything if r["Id"] == lead["Id"]] == ["true"]


# ---- Tooling CustomField and field-level security -------------------------------------------


def test_created_field_is_invisible_until_field_permissions_grant_it(sandbox: SalesforceSandbox,
                                                                    sf: Salesforce) -> None:
    field_id = _create_field(sf)
    found = sf.toolingexecute("query/?q=" + format_soql(
        "SELECT Id, DeveloperName, TableEnumOrId FROM CustomField WHERE TableEnumOrId = {}", "Lead"))
    assert [(r["Id"], r["DeveloperName"]) for r in found["records"]] == [(field_id, FIELD.removesuffix("__c"))]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(f"SELECT Id, {FIELD} FROM Lead")
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert FIELD not in {f["name"] for f in sf.Lead.describe()["fields"]}
    lead = _leads(sf, "Email")[0]
    write = [{"attributes": {"type": "Lead"}, "id": lead["Id"], FIELD: "Paid Search"}]
    result = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": write})
    assert result[0]["errors"][0]["statusCode"] == "INVALID_FIELD"

    pset = sf.query(format_soql("SELECT Id, Name FROM PermissionSet WHERE Name = {}", PERMISSION_SET))["records"]
    assigned = sf.query(format_soql("SELECT AssigneeId FROM PermissionSetAssignment WHERE PermissionSetId = {}",
                                    pset[0]["Id"]))["records"]
    assert [a["AssigneeId"] for a in assigned] == [sandbox.state.user_id]
    grant = _grant(sf, sandbox, edit=False)
    assert sf.query(f"SELECT Id, {FIELD} FROM Lead LIMIT 1")["records"][0][FIELD] is None
    result = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": write})
    assert result[0]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    sf.FieldPermissions.update(grant, {"PermissionsEdit": True})
    result = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": write})
    assert result == [{"id": lead["Id"], "success": True, "errors": []}]
    rows = sf.query(format_soql(f"SELECT Id FROM Lead WHERE {FIELD} = {{}}", "Paid Search"))["records"]
    assert [r["Id"] for r in rows] == [lead["Id"]]
    grants = sf.query(format_soql("SELECT Field, PermissionsRead, PermissionsEdit FROM FieldPermissions "
                                  "WHERE ParentId = {} AND SobjectType IN {}", pset[0]["Id"], ["Lead", "Contact"]))
    assert [(g["Field"], g["PermissionsRead"], g["PermissionsEdit"]) for g in grants["records"]] == [
        (f"Lead.{FIELD}", True, True)]


def test_custom_field_and_grant_validation(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    _create_field(sf)
    for data, code in [
        ({"FullName": f"Lead.{FIELD}", "Metadata": {"label": "x", "type": "Text", "length": 255}},
         "DUPLICATE_DEVELOPER_NAME"),
        ({"FullName": "Lead.Bad__Name__c", "Metadata": {"label": "x", "type": "Text", "length": 255}},
         "INVALID_FIELD"),
        ({"FullName": "Leed.X__c", "Metadata": {"label": "x", "type": "Text", "length": 255}}, "INVALID_TYPE"),
        ({"FullName": "Lead.Y__c", "Metadata": {"label": "x", "type": "Text", "length": 256}},
         "FIELD_INTEGRITY_EXCEPTION"),
    ]:
        with pytest.raises(SalesforceMalformedRequest) as caught:
            sf.toolingexecute("sobjects/CustomField", method="POST", data=data)
        assert caught.value.content[0]["errorCode"] == code
    with pytest.raises(SalesforceMalformedRequest) as caught:
        _grant(sf, sandbox, edit=True, field="Lead.Unknown__c")
    assert caught.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.FieldPermissions.create({"ParentId": sandbox.state.permission_set_id, "SobjectType": "Lead",
                                    "Field": f"Lead.{FIELD}", "PermissionsRead": False, "PermissionsEdit": True})
    assert caught.value.content[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    number = sf.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": "Opportunity.Closedloop_Credit__c",
        "Metadata": {"label": "Credit", "type": "Number", "precision": 18, "scale": 2}})
    fetched = sf.toolingexecute(f"sobjects/CustomField/{number['id']}")
    assert fetched["FullName"] == "Opportunity.Closedloop_Credit__c" and fetched["Metadata"]["scale"] == 2
