"""The GA4 emulator driven by the real ``google.analytics.data_v1beta`` SDK over REST.

Over REST, google-api-core maps HTTP codes to exception classes: a 400 arrives as ``BadRequest``
(the parent of ``InvalidArgument``; the google.rpc status is in the JSON body), 403 as
``Forbidden`` and 429 as ``TooManyRequests``, exactly as with the real service.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.types import (
    DateRange,
    Dimension,
    Filter,
    FilterExpression,
    FilterExpressionList,
    Metric,
    OrderBy,
    RunReportRequest,
    RunReportResponse,
)
from google.api_core.client_options import ClientOptions
from google.api_core.exceptions import BadRequest, Forbidden, TooManyRequests
from google.auth.credentials import AnonymousCredentials

from closedloop.sandbox.company import Company
from closedloop.sandbox.ga4 import GA4Sandbox, GA4State
from closedloop.sandbox.generator import generate_company

# 02:30 UTC is still the previous evening in New York: "today" for the property is May 31.
NOW = datetime(2025, 6, 1, 2, 30, tzinfo=UTC)
ZONE = ZoneInfo("America/New_York")
CLIENT_DIM = "customUser:ga_client_id"
SESSION_DIMS = [CLIENT_DIM, "dateHourMinute", "sessionSource", "sessionMedium",
                "sessionCampaignName", "landingPage"]
PROPERTY = "properties/123456789"


@pytest.fixture(scope="module")
def company() -> Company:
    return generate_company(contacts=250, seed=5, now=NOW, days=40)


@pytest.fixture(scope="module")
def state(company: Company) -> GA4State:
    state = GA4State()
    state.load_company(company)
    return state


@pytest.fixture
def sandbox(state: GA4State) -> Iterator[GA4Sandbox]:
    with GA4Sandbox(state, now=lambda: NOW) as sandbox:
        yield sandbox


def client_for(sandbox: GA4Sandbox) -> BetaAnalyticsDataClient:
    return BetaAnalyticsDataClient(credentials=AnonymousCredentials(), transport="rest",
                                   client_options=ClientOptions(api_endpoint=sandbox.url))


@pytest.fixture
def client(sandbox: GA4Sandbox) -> BetaAnalyticsDataClient:
    return client_for(sandbox)


def report(client: BetaAnalyticsDataClient, dims: list[str], metrics: list[str],
           start: str = "90daysAgo", end: str = "today", **kwargs: Any) -> RunReportResponse:
    return client.run_report(RunReportRequest(
        property=PROPERTY, dimensions=[Dimension(name=d) for d in dims],
        metrics=[Metric(name=m) for m in metrics],
        date_ranges=[DateRange(start_date=start, end_date=end)], **kwargs,
    ))


def local_day(moment: datetime) -> date:
    return moment.astimezone(ZONE).date()


def values(response: RunReportResponse) -> list[tuple[list[str], list[str]]]:
    return [([v.value for v in r.dimension_values], [v.value for v in r.metric_values])
            for r in response.rows]


def test_paging_returns_every_row_once_and_row_count_matches(
    client: BetaAnalyticsDataClient, company: Company,
) -> None:
    seen: list[tuple[str, ...]] = []
    per_row: Counter[tuple[str, ...]] = Counter()
    sessions = 0
    offset, pages = 0, 0
    while True:
        response = report(client, SESSION_DIMS, ["sessions", "engagedSessions", "keyEvents"],
                          limit=97, offset=offset,
                          order_bys=[OrderBy(dimension=OrderBy.DimensionOrderBy(dimension_name=d))
                                     for d in SESSION_DIMS[:2]])
        rows = values(response)
        assert len(rows) <= 97
        seen.extend(tuple(d) for d, _ in rows)
        per_row.update({tuple(d): int(m[0]) for d, m in rows})
        sessions += sum(int(m[0]) for _, m in rows)
        offset += len(rows)
        pages += 1
        if offset >= response.row_count:
            break
    assert pages > 3
    assert len(seen) == len(set(seen)) == response.row_count
    assert sessions == len(company.sessions)
    expected = Counter((s.client_id, s.started_at.astimezone(ZONE).strftime("%Y%m%d%H%M"),
                        s.source, s.medium, s.campaign, s.landing_page) for s in company.sessions)
    assert per_row == expected
    assert [k[:2] for k in seen] == sorted(k[:2] for k in seen)
    past_the_end = report(client, SESSION_DIMS, ["sessions"], limit=10, offset=offset + 5)
    assert past_the_end.rows == [] and past_the_end.row_count == offset


def test_default_limit_is_ten_thousand_and_over_the_cap_is_served() -> None:
    big = generate_company(contacts=1800, seed=2, now=NOW, days=40)
    state = GA4State()
    state.load_company(big)
    assert len(big.sessions) > 10_000
    with GA4Sandbox(state, now=lambda: NOW) as sandbox:
        client = client_for(sandbox)
        default = report(client, [CLIENT_DIM, "dateHourMinute"], ["sessions"])
        assert len(default.rows) == 10_000 < default.row_count
        everything = report(client, [CLIENT_DIM, "dateHourMinute"], ["sessions"], limit=400_000)
        assert len(everything.rows) == everything.row_count == default.row_count


def test_dates_are_days_in_the_property_time_zone(
    client: BetaAnalyticsDataClient, company: Company,
) -> None:
    today = local_day(NOW)
    assert today == date(2025, 5, 31)
    response = report(client, ["date"], ["sessions"], start="yesterday", end="today")
    got = {d[0]: int(m[0]) for d, m in values(response)}
    expected = Counter(local_day(s.started_at).strftime("%Y%m%d") for s in company.sessions
                       if local_day(s.started_at) >= today - timedelta(days=1))
    assert got == dict(expected)
    assert "20250601" not in got
    explicit = report(client, ["date"], ["sessions"], start="2025-05-30", end="2025-05-31")
    assert values(explicit) == values(response)
    week = report(client, ["date"], ["sessions"], start="6daysAgo", end="today")
    assert {d[0] for d, _ in values(week)} <= {
        (today - timedelta(days=n)).strftime("%Y%m%d") for n in range(7)}


def test_rows_are_grouped_by_the_requested_dimensions(
    client: BetaAnalyticsDataClient, company: Company,
) -> None:
    response = report(client, ["sessionSource", "sessionMedium"],
                      ["sessions", "engagedSessions", "keyEvents"])
    got = {tuple(d): [int(x) for x in m] for d, m in values(response)}
    expected: dict[tuple[str, str], list[int]] = {}
    for s in company.sessions:
        total = expected.setdefault((s.source, s.medium), [0, 0, 0])
        total[0] += 1
        total[1] += s.engaged_sessions
        total[2] += int(s.key_events)
    assert got == {k: v for k, v in expected.items()}
    assert response.row_count == len(expected)


def test_dimension_filters(client: BetaAnalyticsDataClient, company: Company) -> None:
    def string_filter(field: str, value: str, match: int) -> FilterExpression:
        return FilterExpression(filter=Filter(field_name=field, string_filter=Filter.StringFilter(
            value=value, match_type=match)))

    cpc = report(client, ["sessionSource"], ["sessions"], dimension_filter=string_filter(
        "sessionMedium", "CPC", Filter.StringFilter.MatchType.EXACT))
    assert sum(int(m[0]) for _, m in values(cpc)) == sum(
        s.medium.lower() == "cpc" for s in company.sessions)
    both = report(client, ["sessionSource"], ["sessions"], dimension_filter=FilterExpression(
        and_group=FilterExpressionList(expressions=[
            string_filter("sessionMedium", "cpc", Filter.StringFilter.MatchType.EXACT),
            string_filter("sessionSource", "goo", Filter.StringFilter.MatchType.BEGINS_WITH),
        ])))
    assert values(both) == [(["google"], [str(sum(
        s.medium.lower() == "cpc" and s.source.lower().startswith("goo")
        for s in company.sessions))])]


def test_order_by_metric_descending(client: BetaAnalyticsDataClient) -> None:
    response = report(client, ["sessionDefaultChannelGroup"], ["sessions"], order_bys=[
        OrderBy(metric=OrderBy.MetricOrderBy(metric_name="sessions"), desc=True)])
    counts = [int(m[0]) for _, m in values(response)]
    assert len(counts) > 3 and counts == sorted(counts, reverse=True)


def test_ad_cost_comes_from_spend_by_day_and_campaign(
    client: BetaAnalyticsDataClient, company: Company,
) -> None:
    response = report(client, ["date", "sessionCampaignName"], ["advertiserAdCost", "sessions"],
                      start="2025-05-20", end="2025-05-31", limit=100_000)
    assert response.metric_headers[0].type_.name == "TYPE_CURRENCY"
    got = {tuple(d): float(m[0]) for d, m in values(response) if float(m[0])}
    expected: dict[tuple[str, str], float] = {}
    for item in company.spend:
        if date(2025, 5, 20) <= item.day <= date(2025, 5, 31):
            key = (item.day.strftime("%Y%m%d"), item.campaign)
            expected[key] = expected.get(key, 0.0) + item.cost
    assert got.keys() == expected.keys()
    assert all(abs(got[k] - expected[k]) < 0.01 for k in expected)
    with pytest.raises(BadRequest, match="incompatible"):
        report(client, [CLIENT_DIM], ["advertiserAdCost"])


def test_property_quota_decreases_with_use(client: BetaAnalyticsDataClient) -> None:
    small = report(client, ["date"], ["sessions"], return_property_quota=True, limit=3)
    large = report(client, SESSION_DIMS, ["sessions"], return_property_quota=True, limit=2500)
    assert small.property_quota.tokens_per_hour.consumed == 1
    assert large.property_quota.tokens_per_hour.consumed == 1 + len(large.rows) // 1000 > 1
    assert (large.property_quota.tokens_per_day.remaining
            == small.property_quota.tokens_per_day.remaining - large.property_quota.tokens_per_day.consumed)
    assert large.property_quota.tokens_per_hour.remaining < small.property_quota.tokens_per_hour.remaining
    assert large.property_quota.concurrent_requests.remaining == 10
    assert not report(client, ["date"], ["sessions"]).property_quota


def test_exhausted_tokens_give_429(state: GA4State) -> None:
    with GA4Sandbox(state, tokens_per_hour=3, tokens_per_project_per_hour=3,
                    now=lambda: NOW) as sandbox:
        client = client_for(sandbox)
        for _ in range(3):
            report(client, ["date"], ["sessions"], limit=5)
        with pytest.raises(TooManyRequests) as caught:
            report(client, ["date"], ["sessions"], limit=5)
        body = caught.value.response.json()["error"]
        assert body["code"] == 429 and body["status"] == "RESOURCE_EXHAUSTED"
        assert "tokens per hour" in body["message"]
        assert sandbox.calls_by_endpoint() == {"POST /v1beta/properties/{propertyId}:runReport": 4}


def test_the_hourly_bucket_refills_in_the_next_hour(state: GA4State) -> None:
    clock = [NOW]
    with GA4Sandbox(state, tokens_per_hour=1, tokens_per_project_per_hour=1,
                    now=lambda: clock[0]) as sandbox:
        client = client_for(sandbox)
        report(client, ["date"], ["sessions"], limit=5)
        with pytest.raises(TooManyRequests):
            report(client, ["date"], ["sessions"], limit=5)
        clock[0] = NOW + timedelta(hours=1)
        assert report(client, ["date"], ["sessions"], limit=5).rows


def test_a_project_gets_35_percent_of_the_hourly_tokens(state: GA4State) -> None:
    with GA4Sandbox(state, tokens_per_hour=10, now=lambda: NOW) as sandbox:
        client = client_for(sandbox)
        first = report(client, ["date"], ["sessions"], limit=5, return_property_quota=True)
        assert first.property_quota.tokens_per_project_per_hour.remaining == 2
        report(client, ["date"], ["sessions"], limit=5)
        report(client, ["date"], ["sessions"], limit=5)
        with pytest.raises(TooManyRequests, match="for a project per hour"):
            report(client, ["date"], ["sessions"], limit=5)


def test_too_many_concurrent_requests_give_429(state: GA4State) -> None:
    with GA4Sandbox(state, concurrent=1, latency=0.4, now=lambda: NOW) as sandbox:
        outcomes: list[str] = []

        def call() -> None:
            try:
                report(client_for(sandbox), ["date"], ["sessions"], limit=5)
                outcomes.append("ok")
            except TooManyRequests:
                outcomes.append("429")

        threads = [threading.Thread(target=call) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["429", "ok"]


def test_bad_requests_are_invalid_argument(client: BetaAnalyticsDataClient) -> None:
    with pytest.raises(BadRequest) as caught:
        report(client, ["sessionFoo"], ["sessions"])
    assert caught.value.response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "sessionFoo is not a valid dimension" in caught.value.message
    with pytest.raises(BadRequest, match="not a valid metric"):
        report(client, ["date"], ["bounceRateX"])
    with pytest.raises(BadRequest, match="startDate"):
        report(client, ["date"], ["sessions"], start="last week")
    with pytest.raises(BadRequest, match="after endDate"):
        report(client, ["date"], ["sessions"], start="today", end="3daysAgo")
    with pytest.raises(BadRequest, match="limit"):
        report(client, ["date"], ["sessions"], limit=-5)


def test_unknown_property_is_permission_denied(client: BetaAnalyticsDataClient) -> None:
    with pytest.raises(Forbidden) as caught:
        client.run_report(RunReportRequest(
            property="properties/999", metrics=[Metric(name="sessions")],
            date_ranges=[DateRange(start_date="7daysAgo", end_date="today")]))
    assert caught.value.response.json()["error"]["status"] == "PERMISSION_DENIED"
