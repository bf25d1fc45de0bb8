"""The Salesforce error table, the usage header and stop, field names and endpoint templates."""

from __future__ import annotations

import json

import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from closedloop.connectors.salesforce.client import endpoint_template
from closedloop.connectors.salesforce.errors import SessionExpired, translate
from closedloop.connectors.salesforce.fields import FieldNames, sobject_of
from closedloop.connectors.salesforce.usage import UsageMeter, parse_limit_info
from closedloop.errors import (
    AuthError,
    BudgetExhaustedError,
    FatalAPIError,
    MalformedResponseError,
    RateLimitedError,
    RetriableAPIError,
)

URL = "https://example.my.salesforce.com/services/data/v59.0/query/?q=SELECT+Id+FROM+Lead"


def body(code: str, message: str = "m", fields: list[str] | None = None) -> bytes:
    item: dict[str, object] = {"message": message, "errorCode": code}
    if fields:
        item["fields"] = fields
    return json.dumps([item]).encode()


@pytest.mark.parametrize(
    ("exc", "expected", "status"),
    [
        (SalesforceExpiredSession(URL, 401, "query", body("INVALID_SESSION_ID")), SessionExpired, 401),
        (SalesforceExpiredSession(URL, 401, "query", body("INVALID_AUTH_HEADER")), AuthError, 401),
        (SalesforceRefusedRequest(URL, 403, "query", body("REQUEST_LIMIT_EXCEEDED")), RateLimitedError, 403),
        (SalesforceRefusedRequest(URL, 403, "query", body("INSUFFICIENT_ACCESS")), FatalAPIError, 403),
        (SalesforceMalformedRequest(URL, 400, "query", body("MALFORMED_QUERY")), FatalAPIError, 400),
        (SalesforceMalformedRequest(URL, 400, "query", body("INVALID_FIELD", "No such column")), FatalAPIError, 400),
        (SalesforceResourceNotFound(URL, 404, "query", body("NOT_FOUND")), FatalAPIError, 404),
        (SalesforceGeneralError(URL, 500, "query", body("UNKNOWN_EXCEPTION")), RetriableAPIError, 500),
        (SalesforceGeneralError(URL, 503, "query", b"<html>down</html>"), RetriableAPIError, 503),
        (SalesforceGeneralError(URL, 429, "query", b""), RateLimitedError, 429),
    ],
)
def test_status_and_error_code_pick_the_class(exc: Exception, expected: type, status: int) -> None:
    ours = translate(exc, "GET query")
    assert type(ours) is expected
    assert ours is not None and ours.status == status and ours.endpoint == "GET query"


def test_invalid_field_names_the_field_and_never_the_url() -> None:
    exc = SalesforceMalformedRequest(URL, 400, "query", body("INVALID_FIELD", "No such column 'Foo__c'", ["Foo__c"]))
    ours = translate(exc, "GET query Lead")
    assert "INVALID_FIELD" in str(ours) and "Foo__c" in str(ours)
    assert "SELECT" not in str(ours)  # the query string (and any literal in it) stays out


def test_transport_failures_are_retriable_and_other_exceptions_are_not_ours() -> None:
    assert type(translate(requests.ConnectionError("reset"), "GET query")) is RetriableAPIError
    assert type(translate(requests.ReadTimeout("slow"), "GET query")) is RetriableAPIError
    assert type(translate(requests.exceptions.JSONDecodeError("x", "doc", 0), "GET query")) is MalformedResponseError
    assert translate(KeyError("x"), "GET query") is None


def test_sign_in_refusal_and_bulk_job_failure() -> None:
    ours = translate(SalesforceAuthenticationFailed("invalid_grant", "authentication failure"), "POST token")
    assert type(ours) is AuthError and "authentication failure" in str(ours)
    job = translate(SalesforceOperationError("Job failure. Response content: InvalidBatch"), "Bulk 2.0 update Lead")
    assert type(job) is FatalAPIError


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("api-usage=18/5000", (18, 5000)),
        ("api-usage=25/5000; per-app-api-usage=17/250(appName=sample)", (25, 5000)),
        ("per-app-api-usage=17/250(appName=x)", None),
        ("api-usage=5/0", None),
        ("garbage", None),
        (None, None),
    ],
)
def test_limit_info_header(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_limit_info(header) == expected


def test_usage_meter_stops_at_the_share_and_says_why() -> None:
    meter = UsageMeter(0.5)
    meter.check("GET query")  # nothing seen yet: no reason to stop
    meter.observe("api-usage=499/1000")
    meter.check("GET query")
    meter.observe("api-usage=480/1000")  # an earlier answer arriving late does not lower the figure
    meter.observe("api-usage=500/1000")
    with pytest.raises(BudgetExhaustedError) as caught:
        meter.check("GET query Lead")
    assert "500 of the org's 1,000" in str(caught.value) and "50%" in str(caught.value)
    figures = meter.figures()
    assert (figures.first_used, figures.last_used, figures.spent_by_run, figures.answers) == (499, 500, 1, 3)


def test_field_names_follow_the_template_and_overrides() -> None:
    names = FieldNames("closedloop_", "Closedloop_{name}__c", {"closedloop_journey": "CL_Path__c"})
    assert names.field("closedloop_first_touch_channel") == "Closedloop_First_Touch_Channel__c"
    assert names.field("closedloop_journey") == "CL_Path__c"
    with pytest.raises(ValueError, match="not a closedloop property"):
        names.field("Industry")


def test_objects_by_id_prefix() -> None:
    assert [sobject_of(i) for i in ("00Q5e000001AbCdEAK", "0035e000001AbCdEAK", "0065e000001AbCdEAK", "001x")] == [
        "Lead",
        "Contact",
        "Opportunity",
        None,
    ]


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("get", URL, "GET query"),
        ("GET", "https://h/services/data/v59.0/query/01gRO0000016PIAYA2-2000", "GET query/{id}"),
        ("PUT", "https://h/services/data/v59.0/jobs/ingest/7505e000001AbCdEAK/batches", "PUT jobs/ingest/{id}/batches"),
        (
            "GET",
            "https://h/services/data/v59.0/sobjects/OpportunityContactRole/describe",
            "GET sobjects/OpportunityContactRole/describe",
        ),
        ("POST", "https://h/services/oauth2/token", "POST services/oauth2/token"),
    ],
)
def test_endpoint_templates_hide_ids_and_queries(method: str, url: str, expected: str) -> None:
    assert endpoint_template(method, url) == expected
