"""The Salesforce sandbox's routes and the headers it accepts, checked against Salesforce's own
Postman collection (CC0) in ``../shared/specs/salesforce/``, read in place.

Every route the sandbox serves must match a Postman request (method, and path with the
collection's variables substituted), except the few named in ``NOT_IN_COLLECTION`` with the
reason; and the collection's own requests, sent with its headers and bodies, are accepted.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def _spec_dir() -> Path:
    configured = os.environ.get("CLOSEDLOOP_SHARED_DIR")
    shared = Path(configured) if configured else Path(__file__).resolve().parents[3] / "shared"
    return shared / "specs" / "salesforce"


SPEC_DIR = _spec_dir()
if not (SPEC_DIR / "postman_rest_core.json").is_file():
    pytest.skip(f"Salesforce Postman collection not found at {SPEC_DIR}", allow_module_level=True)

from closedloop.sandbox.company import Company, SyntheticContact  # noqa: E402
from closedloop.sandbox.salesforce import (  # noqa: E402
    SF_CONSUMER_KEY,
    SF_CONSUMER_SECRET,
    SF_PASSWORD,
    SF_SECURITY_TOKEN,
    SF_USERNAME,
    SalesforceSandbox,
    SalesforceState,
)

VERSION = "59.0"
# Routes the collection (a 2021 snapshot of request templates) has no item for, and why each exists.
NOT_IN_COLLECTION = {
    # nextRecordsUrl pages: REST API guide, resources_query.htm ("query/01gRO0000016PIAYA2-500")
    ("GET", "/services/data/v59.0/query/01g8c0000000001-2000"),
    ("GET", "/services/data/v59.0/queryAll/01g8c0000000001-2000"),
    ("GET", "/services/data/v59.0/tooling/query/01g8c0000000001-2000"),
    # the collection's update/delete use composite/sobjects/<SOBJECT>; the REST guide documents the bare path
    ("PATCH", "/services/data/v59.0/composite/sobjects"),
    ("DELETE", "/services/data/v59.0/composite/sobjects"),
    # simple-salesforce's ResultsType.unprocessed spelling (bulk2.py); the collection spells it unprocessedrecords
    ("GET", "/services/data/v59.0/jobs/ingest/7508c0000000001AAA/unprocessedRecords"),
    # a Tooling row read back by id (Tooling API guide: CustomField supports GET)
    ("GET", "/services/data/v59.0/tooling/sobjects/CustomField/00Q8c0000000001AAA"),
}
_EXAMPLES = {"version": f"v{VERSION}", "sobject": "Lead", "id": "00Q8c0000000001AAA", "job": "7508c0000000001AAA",
             "locator": "01g8c0000000001-2000"}


def _postman() -> list[dict[str, Any]]:
    items = []
    for path in sorted(SPEC_DIR.glob("postman_*.json")):
        items.extend(json.loads(path.read_text())["requests"].values())
    return items


def _pattern(url: str) -> re.Pattern[str]:
    path = url.split("?", 1)[0]
    path = path.replace("{{_endpoint}}", "").replace("{{url}}{{site}}", "").replace("{{version}}", VERSION)
    parts = re.split(r"(\{\{\w+\}\}|<\w+>)", path.rstrip("/"))
    regex = "".join("[^/]+" if re.fullmatch(r"\{\{\w+\}\}|<\w+>", p) else re.escape(p) for p in parts)
    return re.compile(f"^{regex}/?$")


POSTMAN = [(item["method"], _pattern(item["url"]), item) for item in _postman()]


def _example(template: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: _EXAMPLES[m.group(1)], template)


def _matching(method: str, path: str) -> list[dict[str, Any]]:
    return [item for m, pattern, item in POSTMAN if m == method and pattern.match(path)]


@pytest.fixture
def sandbox() -> Iterator[SalesforceSandbox]:
    state = SalesforceState()
    state.load_company(Company(contacts=[SyntheticContact(
        id="1001", email="ava@example.com", created_at=state.now(), updated_at=state.now(),
        lifecycle_stage="lead", ga_client_ids=["1.2"], extra={"lastname": "Adler", "company": "Acme"})]))
    state.insert("Account", {"Name": "Acme"})
    with SalesforceSandbox(state) as running:
        yield running


def test_every_served_route_has_a_postman_request_or_a_named_reason(sandbox: SalesforceSandbox) -> None:
    unmatched = set()
    for method, template in sandbox.templates:
        path = _example(template).rstrip("/") or "/"
        if not _matching(method, path):
            unmatched.add((method, path))
    assert unmatched == NOT_IN_COLLECTION
    assert len(sandbox.templates) > 40


def test_the_collection_covers_the_connector_facing_requests() -> None:
    wanted = [("GET", "/services/data/v59.0/query"), ("GET", "/services/data/v59.0/queryAll"),
              ("GET", "/services/data/v59.0/sobjects/Lead/describe"), ("GET", "/services/data/v59.0/limits"),
              ("GET", "/services/data/v59.0/sobjects/Lead/deleted"), ("POST", "/services/data/v59.0/jobs/ingest"),
              ("PUT", "/services/data/v59.0/jobs/ingest/750x/batches"), ("POST", "/services/data/v59.0/jobs/query"),
              ("GET", "/services/data/v59.0/jobs/query/750x/results"), ("POST", "/services/oauth2/token"),
              ("POST", "/services/data/v59.0/tooling/sobjects/CustomField"),
              ("GET", "/services/data/v59.0/tooling/query"), ("POST", "/services/data/v59.0/sobjects/FieldPermissions")]
    assert [w for w in wanted if not _matching(*w)] == []


def _headers(item: dict[str, Any], token: str | None) -> dict[str, str]:
    headers = {h["key"]: h["value"] for h in item.get("headerData") or [] if h.get("key")}
    headers.pop("charset", None)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def test_token_requests_as_the_collection_sends_them(sandbox: SalesforceSandbox) -> None:
    item = next(i for _, _, i in POSTMAN if any(d.get("value") == "password" for d in i.get("data") or []))
    values = {"{{clientId}}": SF_CONSUMER_KEY, "{{clientSecret}}": SF_CONSUMER_SECRET, "{{username}}": SF_USERNAME,
              "{{password}}{{secretToken}}": SF_PASSWORD + SF_SECURITY_TOKEN}
    form = {d["key"]: values.get(d["value"], d["value"]) for d in item["data"]}
    answer = sandbox.requests_session().post(f"{sandbox.url}/services/oauth2/token", data=form,
                                             headers=_headers(item, None))
    assert answer.status_code == 200 and answer.json()["instance_url"] == sandbox.url


def test_query_and_bulk_requests_with_the_collections_headers(sandbox: SalesforceSandbox) -> None:
    http, token = sandbox.requests_session(), sandbox.issue_session()
    base = sandbox.url
    query = next(i for m, p, i in POSTMAN if m == "GET" and i["url"].endswith("query/?q=SELECT+name+from+Account"))
    url = query["url"].replace("{{_endpoint}}", base).replace("{{version}}", VERSION)
    answer = http.get(url, headers=_headers(query, token))
    assert answer.status_code == 200 and [r["Name"] for r in answer.json()["records"]] == ["Acme"]
    assert answer.headers["Sforce-Limit-Info"].startswith("api-usage=")

    create = next(i for m, p, i in POSTMAN if m == "POST" and i["url"].endswith("/jobs/ingest"))
    body = {**json.loads(create["rawModeData"]), "object": "Lead"}  # the template names Asset
    job = http.post(f"{base}/services/data/v{VERSION}/jobs/ingest", json=body, headers=_headers(create, token))
    assert job.status_code == 200 and job.json()["operation"] == "update"
    job_id = job.json()["id"]
    lead = next(iter(sandbox.state.all_rows("Lead")))
    upload = next(i for m, p, i in POSTMAN if m == "PUT" and "/batches" in i["url"])
    assert _headers(upload, None) == {"Content-Type": "text/csv"}
    put = http.put(f"{base}/services/data/v{VERSION}/jobs/ingest/{job_id}/batches",
                   data=f"Id,UTM_Source__c\n{lead['Id']},postman\n", headers=_headers(upload, token))
    assert put.status_code == 201
    close = next(i for m, p, i in POSTMAN if m == "PATCH" and i["url"].endswith("/jobs/ingest/{{_jobId}}"))
    closed = http.patch(f"{base}/services/data/v{VERSION}/jobs/ingest/{job_id}", data=close["rawModeData"],
                        headers=_headers(close, token))
    assert closed.status_code == 200 and closed.json()["state"] == "UploadComplete"
    info = next(i for m, p, i in POSTMAN if m == "GET" and i["url"].endswith("/jobs/ingest/{{_jobId}}"))
    states = [http.get(f"{base}/services/data/v{VERSION}/jobs/ingest/{job_id}",
                       headers=_headers(info, token)).json()["state"] for _ in range(2)]
    assert states == ["InProgress", "JobComplete"]
    assert sandbox.state.get("Lead", lead["Id"])["UTM_Source__c"] == "postman"  # type: ignore[index]
    for suffix in ("successfulResults", "failedResults", "unprocessedrecords"):
        item = next(i for m, p, i in POSTMAN if m == "GET" and i["url"].endswith(suffix))
        got = http.get(f"{base}/services/data/v{VERSION}/jobs/ingest/{job_id}/{suffix}", headers=_headers(item, token))
        assert got.status_code == 200 and got.headers["Content-Type"].startswith("text/csv")

    results = next(i for m, p, i in POSTMAN if m == "GET" and i["url"].endswith("/results"))
    made = http.post(f"{base}/services/data/v{VERSION}/jobs/query", json={"operation": "query",
                                                                         "query": "SELECT Id FROM Lead"},
                     headers={"Authorization": f"Bearer {token}"}).json()
    auth = {"Authorization": f"Bearer {token}"}
    states = [http.get(f"{base}/services/data/v{VERSION}/jobs/query/{made['id']}", headers=auth).json()["state"]
              for _ in range(2)]
    assert states == ["InProgress", "JobComplete"]
    page = http.get(f"{base}/services/data/v{VERSION}/jobs/query/{made['id']}/results",
                    headers=_headers(results, token))  # the collection's Accept is the typo "test/csv"
    assert page.status_code == 200 and page.headers["Sforce-Locator"] == "null"
    assert page.headers["Sforce-NumberOfRecords"] == "1"
