"""Requests and responses of the GA4 emulator checked against Google's discovery document.

The document is read in place (``<repo>/../shared/specs`` or ``$CLOSEDLOOP_SHARED_DIR``), never
copied.  The validator below covers what the discovery format uses: ``$ref``, objects with
named properties (unknown fields rejected), maps, arrays, strings (int64 as digit strings),
integers (int32 range), numbers, booleans and enums.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.types import (
    DateRange,
    Dimension,
    Filter,
    FilterExpression,
    Metric,
    OrderBy,
    RunReportRequest,
)
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials

from closedloop.sandbox.ga4 import GA4Sandbox, GA4State
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.server import Request, Response

SHARED = Path(os.environ.get("CLOSEDLOOP_SHARED_DIR")
              or Path(__file__).resolve().parents[3] / "shared")
DISCOVERY = SHARED / "specs" / "ga4" / "analyticsdata.v1beta.discovery.json"
if not DISCOVERY.is_file():
    pytest.skip(f"GA4 discovery document not found at {DISCOVERY} (set CLOSEDLOOP_SHARED_DIR)",
                allow_module_level=True)

SCHEMAS: dict[str, Any] = json.loads(DISCOVERY.read_text())["schemas"]
NOW = datetime(2025, 6, 1, 15, 0, tzinfo=UTC)
RPC_STATUSES = {"INVALID_ARGUMENT", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "NOT_FOUND",
                "UNAUTHENTICATED", "INTERNAL", "UNAVAILABLE"}


def validate(value: Any, schema: dict[str, Any], path: str = "$", *,
             int_enums: bool = False) -> list[str]:
    if "$ref" in schema:
        return validate(value, SCHEMAS[schema["$ref"]], path, int_enums=int_enums)
    kind = schema.get("type")
    errors: list[str] = []
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: expected object, got {type(value).__name__}"]
        properties = schema.get("properties")
        if properties is not None:
            for key, item in value.items():
                if key not in properties:
                    errors.append(f"{path}.{key}: unknown field")
                else:
                    errors += validate(item, properties[key], f"{path}.{key}", int_enums=int_enums)
        elif "additionalProperties" in schema:
            for key, item in value.items():
                errors += validate(item, schema["additionalProperties"], f"{path}.{key}",
                                   int_enums=int_enums)
        return errors
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: expected array"]
        for index, item in enumerate(value):
            errors += validate(item, schema["items"], f"{path}[{index}]", int_enums=int_enums)
        return errors
    if kind == "string":
        if "enum" in schema:
            if int_enums and isinstance(value, int) and not isinstance(value, bool):
                return [] if value >= 0 else [f"{path}: negative enum number"]
            return [] if value in schema["enum"] else [f"{path}: {value!r} not in enum"]
        if not isinstance(value, str):
            return [f"{path}: expected string, got {type(value).__name__}"]
        if schema.get("format") in ("int64", "uint64") and not re.fullmatch(r"-?\d+", value):
            return [f"{path}: {value!r} is not an int64 string"]
        return []
    if kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{path}: expected integer, got {type(value).__name__}"]
        if schema.get("format") == "int32" and not -(2**31) <= value < 2**31:
            return [f"{path}: {value} out of int32 range"]
        return []
    if kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected number"]
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: expected boolean"]
    if kind == "any":
        return []
    return [f"{path}: schema type {kind!r} not understood by this validator"]


def check(value: Any, schema_name: str, *, int_enums: bool = False) -> None:
    errors = validate(value, {"$ref": schema_name}, int_enums=int_enums)
    assert errors == [], errors


@pytest.fixture(scope="module")
def sandbox() -> Iterator[GA4Sandbox]:
    state = GA4State()
    state.load_company(generate_company(contacts=120, seed=9, now=NOW, days=30))
    with GA4Sandbox(state, now=lambda: NOW) as sandbox:
        yield sandbox


def post(sandbox: GA4Sandbox, body: Any, *, property_id: str = "123456789",
         alt: str = "") -> tuple[int, Any]:
    query = f"?$alt={alt}" if alt else ""
    request = urllib.request.Request(
        f"{sandbox.url}/v1beta/properties/{property_id}:runReport{query}",
        data=json.dumps(body).encode(), headers={"Content-Type": "application/json"},
        method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


FULL_REQUEST = {
    "dimensions": [{"name": "customUser:ga_client_id"}, {"name": "dateHourMinute"},
                   {"name": "sessionSource"}, {"name": "sessionMedium"}],
    "metrics": [{"name": "sessions"}, {"name": "engagedSessions"}, {"name": "keyEvents"}],
    "dateRanges": [{"startDate": "28daysAgo", "endDate": "today"}],
    "dimensionFilter": {"notExpression": {"filter": {
        "fieldName": "sessionMedium",
        "stringFilter": {"matchType": "EXACT", "value": "(none)"}}}},
    "orderBys": [{"dimension": {"dimensionName": "dateHourMinute", "orderType": "ALPHANUMERIC"}}],
    "limit": "50", "offset": "10", "returnPropertyQuota": True,
}


def test_the_validator_rejects_what_the_spec_forbids() -> None:
    assert validate({"limit": 5}, {"$ref": "RunReportRequest"})  # int64 must be a string
    assert validate({"bogus": True}, {"$ref": "RunReportRequest"})
    assert validate({"rowCount": "3"}, {"$ref": "RunReportResponse"})
    assert validate({"metricHeaders": [{"type": "TYPE_MONEY"}]}, {"$ref": "RunReportResponse"})
    assert validate(FULL_REQUEST, {"$ref": "RunReportRequest"}) == []


def test_sdk_requests_match_the_spec(sandbox: GA4Sandbox) -> None:
    bodies: list[Any] = []

    def record(request: Request) -> Response | None:
        bodies.append(request.json())
        return None

    sandbox.server.fault_hooks.append(record)
    try:
        client = BetaAnalyticsDataClient(credentials=AnonymousCredentials(), transport="rest",
                                         client_options=ClientOptions(api_endpoint=sandbox.url))
        client.run_report(RunReportRequest(
            property="properties/123456789",
            dimensions=[Dimension(name="date"), Dimension(name="sessionSource")],
            metrics=[Metric(name="sessions")],
            date_ranges=[DateRange(start_date="7daysAgo", end_date="yesterday")],
            dimension_filter=FilterExpression(filter=Filter(
                field_name="sessionSource", string_filter=Filter.StringFilter(
                    value="google", match_type=Filter.StringFilter.MatchType.CONTAINS))),
            order_bys=[OrderBy(dimension=OrderBy.DimensionOrderBy(
                dimension_name="date", order_type=OrderBy.DimensionOrderBy.OrderType.NUMERIC))],
            limit=20, offset=5, return_property_quota=True,
        ))
    finally:
        sandbox.server.fault_hooks.remove(record)
    assert len(bodies) == 1
    check(bodies[0], "RunReportRequest", int_enums=True)  # the SDK asks for numeric enums


def test_responses_match_the_spec(sandbox: GA4Sandbox) -> None:
    check(FULL_REQUEST, "RunReportRequest")
    status, body = post(sandbox, FULL_REQUEST)
    assert status == 200
    check(body, "RunReportResponse")
    assert body["kind"] == "analyticsData#runReport"
    assert isinstance(body["rowCount"], int) and len(body["rows"]) == 50
    assert {h["type"] for h in body["metricHeaders"]} == {"TYPE_INTEGER"}
    assert set(body["propertyQuota"]) == set(SCHEMAS["PropertyQuota"]["properties"])
    assert body["metadata"] == {"currencyCode": "USD", "timeZone": "America/New_York"}
    status, numeric = post(sandbox, FULL_REQUEST, alt="json;enum-encoding=int")
    check(numeric, "RunReportResponse", int_enums=True)
    assert {h["type"] for h in numeric["metricHeaders"]} == {1}


def test_cost_and_empty_reports_match_the_spec(sandbox: GA4Sandbox) -> None:
    cost = {"dimensions": [{"name": "date"}, {"name": "sessionDefaultChannelGroup"}],
            "metrics": [{"name": "advertiserAdCost"}, {"name": "sessions"}],
            "dateRanges": [{"startDate": "7daysAgo", "endDate": "yesterday"},
                           {"startDate": "14daysAgo", "endDate": "8daysAgo", "name": "prior"}]}
    status, body = post(sandbox, cost)
    assert status == 200
    check(body, "RunReportResponse")
    assert [h["name"] for h in body["dimensionHeaders"]][-1] == "dateRange"
    assert {r["dimensionValues"][-1]["value"] for r in body["rows"]} == {"date_range_0", "prior"}
    empty = {"metrics": [{"name": "sessions"}],
             "dateRanges": [{"startDate": "2019-01-01", "endDate": "2019-01-31"}]}
    status, body = post(sandbox, empty)
    assert status == 200 and "rows" not in body and "rowCount" not in body
    check(body, "RunReportResponse")


@pytest.mark.parametrize(("body", "property_id", "code", "status"), [
    ({"metrics": [{"name": "sessions"}], "dateRanges": [{"startDate": "today", "endDate": "today"}],
      "dimensions": [{"name": "nope"}]}, "123456789", 400, "INVALID_ARGUMENT"),
    ({"metrics": [{"name": "sessions"}], "dateRanges": [{"startDate": "today", "endDate": "today"}],
      "surprise": 1}, "123456789", 400, "INVALID_ARGUMENT"),
    ({"metrics": [{"name": "sessions"}]}, "123456789", 400, "INVALID_ARGUMENT"),
    ({"metrics": [{"name": "sessions"}], "dateRanges": [{"startDate": "today", "endDate": "today"}]},
     "42", 403, "PERMISSION_DENIED"),
    ({"metrics": [{"name": "sessions"}], "dateRanges": [{"startDate": "today", "endDate": "today"}]},
     "abc", 400, "INVALID_ARGUMENT"),
])
def test_errors_use_googles_error_shape(
    sandbox: GA4Sandbox, body: Any, property_id: str, code: int, status: str,
) -> None:
    got_code, got = post(sandbox, body, property_id=property_id)
    assert got_code == code
    assert set(got) == {"error"} and set(got["error"]) == {"code", "message", "status"}
    assert got["error"]["code"] == code and got["error"]["status"] == status in RPC_STATUSES
    assert isinstance(got["error"]["message"], str) and got["error"]["message"]
