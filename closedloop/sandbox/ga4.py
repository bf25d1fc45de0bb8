"""The GA4 Data API emulator: ``POST /v1beta/properties/{id}:runReport`` on 127.0.0.1.

Driven by the unmodified SDK::

    BetaAnalyticsDataClient(credentials=AnonymousCredentials(), transport="rest",
                            client_options=ClientOptions(api_endpoint=sandbox.url))

``sandbox.url`` is ``http://127.0.0.1:PORT``; the REST transport keeps an explicit ``http://``
scheme, so no other tweak is needed.

What is emulated, because the connector depends on it: ``limit``/``offset`` paging over a
stable order with ``rowCount``; the 10,000 default and 250,000 cap on rows; dates in the
property's time zone with GA4's relative date syntax; GROUP BY the requested dimensions;
dimension filters and order bys; property token quotas, reported with ``returnPropertyQuota``
and enforced with 429 RESOURCE_EXHAUSTED; errors in Google's ``{"error": {...}}`` shape.

Token cost of one request is ``1 + rows_returned // 1000``: like GA4 it grows with the size of
the answer, and a small report costs one token.  Hourly buckets are UTC hours; the daily
bucket is the Pacific-time day, when GA4 resets daily quotas.  A request whose cost exceeds
what is left is refused and consumes nothing.
"""

from __future__ import annotations

import contextlib
import gc
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from closedloop.sandbox.company import Company, SyntheticSession, SyntheticSpend
from closedloop.sandbox.ga4_report import (
    COST_METRICS,
    METRIC_TYPE_NUMBERS,
    METRIC_TYPES,
    SESSION_DIMENSIONS,
    FactTable,
    ReportError,
    ReportQuery,
    Row,
    aggregate,
    invalid,
    metric_text,
    parse_request,
)
from closedloop.sandbox.server import Request, Response, Router, SandboxServer

QUOTA_URL = "https://developers.google.com/analytics/devguides/reporting/data/v1/quotas"
PROPERTY_ID_URL = "https://developers.google.com/analytics/devguides/reporting/data/v1/property-id"
_QUOTA_DAY_ZONE = ZoneInfo("America/Los_Angeles")
_SEARCH_ENGINES = frozenset({"google", "bing", "yahoo", "baidu", "duckduckgo", "ecosia", "yandex"})
_SOCIAL_SITES = frozenset({"facebook", "fb", "m.facebook.com", "facebook.com", "l.facebook.com",
                           "linkedin", "linkedin.com", "lnkd.in", "t.co", "twitter", "x.com",
                           "instagram", "reddit", "reddit.com", "youtube"})
_CACHE_SIZE = 16


class _GCPause:
    """Hold off the cyclic GC while reports allocate their rows.

    A loaded company is millions of live objects; a report allocates hundreds of thousands of
    short-lived tuples, and every full collection they trigger walks the whole heap (measured:
    2-4x slower pages).  The rows hold no cycles, so nothing is lost by waiting; the last
    request to leave turns the collector back on if it was on.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._was_enabled = False

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._was_enabled:
                    gc.enable()


_GC_PAUSE = _GCPause()


def default_channel_group(source: str, medium: str) -> str:
    """A compact version of GA4's default channel group rules (first match wins)."""
    source, medium = source.strip().lower(), medium.strip().lower()
    if source == "(direct)" and medium in ("(none)", "(not set)"):
        return "Direct"
    paid = medium.startswith("paid") or "cp" in medium or medium in ("ppc", "retargeting")
    if paid and source in _SEARCH_ENGINES:
        return "Paid Search"
    if paid and source in _SOCIAL_SITES:
        return "Paid Social"
    if paid:
        return "Paid Other"
    if medium == "organic" or source in _SEARCH_ENGINES:
        return "Organic Search"
    if source in _SOCIAL_SITES or medium in ("social", "social-network", "social-media", "sm"):
        return "Organic Social"
    if medium in ("email", "e-mail", "e_mail", "e mail") or source in ("email", "e-mail"):
        return "Email"
    if medium == "referral":
        return "Referral"
    if medium in ("display", "banner", "expandable", "interstitial", "cpm"):
        return "Display"
    return "Unassigned"


class GA4State:
    """One GA4 property's data, indexed for reports: sessions and imported cost as fact tables."""

    def __init__(
        self, *, property_id: str = "123456789", time_zone: str = "America/New_York",
        client_id_dimension: str = "customUser:ga_client_id", currency_code: str = "USD",
    ) -> None:
        self.property_id = property_id
        self.time_zone = time_zone
        self.zone = ZoneInfo(time_zone)
        self.client_id_dimension = client_id_dimension
        self.currency_code = currency_code
        self.version = 0
        self.lock = threading.Lock()
        self.sessions = _session_table([], self.zone, client_id_dimension)
        self.spend = _spend_table([], client_id_dimension)

    @property
    def dimension_names(self) -> frozenset[str]:
        return frozenset((*SESSION_DIMENSIONS, self.client_id_dimension))

    def load_company(self, company: Company) -> None:
        """Serve this company's sessions and spend (replacing what was loaded before)."""
        sessions = _session_table(company.sessions, self.zone, self.client_id_dimension)
        spend = _spend_table(company.spend, self.client_id_dimension)
        with self.lock:
            self.sessions, self.spend = sessions, spend
            self.currency_code = company.currency_code
            self.version += 1

    def today(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()


def _session_table(sessions: list[SyntheticSession], zone: ZoneInfo, client_dim: str) -> FactTable:
    """Columns of session facts, sorted by local start; repeated strings are shared, not copied."""
    offsets: dict[int, timedelta] = {}
    minute_text: dict[datetime, tuple[str, str, str]] = {}
    interned: dict[str, str] = {}
    facts = []
    for s in sessions:
        hour = int(s.started_at.timestamp()) // 3600
        offset = offsets.get(hour)
        if offset is None:
            offset = offsets[hour] = s.started_at.astimezone(zone).utcoffset() or timedelta(0)
        local = (s.started_at.astimezone(UTC) + offset).replace(
            second=0, microsecond=0, tzinfo=None)
        texts = minute_text.get(local)
        if texts is None:
            day = f"{local.year:04d}{local.month:02d}{local.day:02d}"
            texts = minute_text[local] = (day, f"{day}{local.hour:02d}",
                                          f"{day}{local.hour:02d}{local.minute:02d}")
        facts.append((texts[2], s.client_id, texts, s))
    facts.sort(key=lambda f: (f[0], f[1]))
    columns: dict[str, list[str]] = {name: [] for name in (*SESSION_DIMENSIONS, client_dim)}
    metrics: dict[str, list[float]] = {name: [] for name in METRIC_TYPES}

    def share(text: str) -> str:
        return interned.setdefault(text, text)

    for _, client_id, (day, day_hour, day_minute), s in facts:
        columns["date"].append(day)
        columns["dateHour"].append(day_hour)
        columns["dateHourMinute"].append(day_minute)
        columns[client_dim].append(client_id)
        _append_source_columns(columns, share, s.source, s.medium, s.campaign,
                               google_ads="gclid=" in s.landing_query)
        columns["landingPage"].append(share(s.landing_page))
        columns["landingPagePlusQueryString"].append(
            f"{s.landing_page}?{s.landing_query}" if s.landing_query else share(s.landing_page))
        metrics["sessions"].append(1.0)
        metrics["engagedSessions"].append(float(s.engaged_sessions))
        metrics["keyEvents"].append(float(s.key_events))
        metrics["advertiserAdCost"].append(0.0)
    return FactTable(columns, metrics)


def _append_source_columns(
    columns: dict[str, list[str]], share: Callable[[str], str], source: str, medium: str,
    campaign: str, *, google_ads: bool,
) -> None:
    columns["sessionSource"].append(source)
    columns["sessionMedium"].append(medium)
    columns["sessionSourceMedium"].append(share(f"{source} / {medium}"))
    columns["sessionCampaignName"].append(campaign)
    columns["sessionDefaultChannelGroup"].append(share(default_channel_group(source, medium)))
    columns["sessionGoogleAdsCampaignName"].append(campaign if google_ads else "(not set)")


def _spend_table(spend: list[SyntheticSpend], client_dim: str) -> FactTable:
    """Imported cost: one fact per campaign and day; session-only dimensions are (not set)."""
    interned: dict[str, str] = {}
    columns: dict[str, list[str]] = {name: [] for name in (*SESSION_DIMENSIONS, client_dim)}
    metrics: dict[str, list[float]] = {name: [] for name in METRIC_TYPES}
    for item in sorted(spend, key=lambda x: (x.day, x.source, x.medium, x.campaign)):
        day = item.day.strftime("%Y%m%d")
        for name in ("dateHour", "dateHourMinute", "landingPage", "landingPagePlusQueryString",
                     client_dim):
            columns[name].append("(not set)")
        columns["date"].append(day)
        google_ads = item.source == "google" and item.medium == "cpc"
        _append_source_columns(columns, lambda t: interned.setdefault(t, t), item.source,
                               item.medium, item.campaign, google_ads=google_ads)
        for name in ("sessions", "engagedSessions", "keyEvents"):
            metrics[name].append(0.0)
        metrics["advertiserAdCost"].append(item.cost)
    return FactTable(columns, metrics)


@dataclass(slots=True)
class _QuotaUse:
    hour: tuple[Any, int] = (None, 0)
    day: tuple[Any, int] = (None, 0)


class GA4Sandbox:
    def __init__(
        self, state: GA4State | None = None, *, port: int = 0, latency: float = 0.0,
        tokens_per_day: int = 200_000, tokens_per_hour: int = 40_000, concurrent: int = 10,
        tokens_per_project_per_hour: int | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.state = state or GA4State()
        self.latency = latency  # slept inside the handler, so it holds a concurrency slot
        self.tokens_per_day = tokens_per_day
        self.tokens_per_hour = tokens_per_hour
        self.tokens_per_project_per_hour = (
            tokens_per_project_per_hour if tokens_per_project_per_hour is not None
            else int(tokens_per_hour * 0.35))
        self.concurrent = concurrent
        self.now = now
        self._lock = threading.Lock()
        self._in_flight = 0
        self._use = _QuotaUse()
        self._cache: OrderedDict[tuple[Any, ...], list[Row]] = OrderedDict()
        router = Router()
        router.add("POST", "/v1beta/properties/{propertyId}:runReport", self._run_report)
        self.server = SandboxServer(router, name="ga4", port=port)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> GA4Sandbox:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> GA4Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def calls_by_endpoint(self) -> dict[str, int]:
        return self.server.calls_by_endpoint()

    def tokens_used(self) -> tuple[int, int]:
        """Tokens consumed in the current (hour, day) windows."""
        now = self.now()
        hour_key, day_key = self._windows(now)
        with self._lock:
            return (self._use.hour[1] if self._use.hour[0] == hour_key else 0,
                    self._use.day[1] if self._use.day[0] == day_key else 0)

    # ---- the endpoint -----------------------------------------------------------------------

    def _run_report(self, request: Request, params: dict[str, str]) -> Response:
        with self._lock:
            if self._in_flight >= self.concurrent:
                return _error(ReportError(429, "RESOURCE_EXHAUSTED",
                                          "Exhausted concurrent requests quota for this property. "
                                          f"To learn more, see {QUOTA_URL}"))
            self._in_flight += 1
        try:
            if self.latency:
                time.sleep(self.latency)
            with _GC_PAUSE.held():
                response = self._answer(request, params["propertyId"])
                if isinstance(response.body, dict):
                    response.body = response.encode()  # encode while the collector waits
                return response
        except ReportError as exc:
            return _error(exc)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _answer(self, request: Request, property_id: str) -> Response:
        if not property_id.isdigit():
            raise invalid(f"Invalid property ID: {property_id}. A numeric Property ID is "
                          f"required. To learn more about Property ID, see {PROPERTY_ID_URL}.")
        state = self.state
        if property_id != state.property_id:
            raise ReportError(403, "PERMISSION_DENIED",
                              "User does not have sufficient permissions for this property. To "
                              f"learn more about Property ID, see {PROPERTY_ID_URL}.")
        try:
            body = json.loads(request.body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise invalid("Invalid JSON payload received. Unexpected token.") from None
        now = self.now()
        query = parse_request(body, today=state.today(now), dimension_names=state.dimension_names)
        rows = self._rows(query)
        page = rows[query.offset: query.offset + query.limit]
        quota = self._charge(1 + len(page) // 1000, now)
        as_numbers = "enum-encoding=int" in (request.arg("$alt") or "")
        return Response(200, self._body(query, page, len(rows), quota, as_numbers))

    def _rows(self, query: ReportQuery) -> list[Row]:
        state = self.state
        with state.lock:
            version, sessions, spend = state.version, state.sessions, state.spend
        key = (version, *query.cache_key())
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        tables = [sessions, spend] if COST_METRICS & set(query.metrics) else [sessions]
        rows = aggregate(query, tables)
        with self._lock:
            self._cache[key] = rows
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return rows

    # ---- quota ------------------------------------------------------------------------------

    @staticmethod
    def _windows(now: datetime) -> tuple[datetime, date]:
        utc = now.astimezone(UTC)
        pacific_day = now.astimezone(_QUOTA_DAY_ZONE).date()
        return utc.replace(minute=0, second=0, microsecond=0), pacific_day

    def _charge(self, cost: int, now: datetime) -> dict[str, Any]:
        hour_key, day_key = self._windows(now)
        with self._lock:
            hour_used = self._use.hour[1] if self._use.hour[0] == hour_key else 0
            day_used = self._use.day[1] if self._use.day[0] == day_key else 0
            limits = (
                (self.tokens_per_hour - hour_used, "Exhausted property tokens per hour for this "
                 "property. These quota tokens will return in under an hour."),
                (self.tokens_per_project_per_hour - hour_used, "Exhausted property tokens for a "
                 "project per hour. These quota tokens will return in under an hour."),
                (self.tokens_per_day - day_used, "Exhausted property tokens per day for this "
                 "property. These quota tokens will return after midnight Pacific Time."),
            )
            for remaining, message in limits:
                if remaining < cost:
                    raise ReportError(429, "RESOURCE_EXHAUSTED",
                                      f"{message} To learn more, see {QUOTA_URL}")
            hour_used += cost
            day_used += cost
            self._use.hour, self._use.day = (hour_key, hour_used), (day_key, day_used)
            free_slots = self.concurrent - self._in_flight + 1
        return {
            "tokensPerDay": _status(cost, self.tokens_per_day - day_used),
            "tokensPerHour": _status(cost, self.tokens_per_hour - hour_used),
            "concurrentRequests": _status(0, free_slots),
            "serverErrorsPerProjectPerHour": _status(0, 10),
            "potentiallyThresholdedRequestsPerHour": _status(0, 120),
            "tokensPerProjectPerHour": _status(cost, self.tokens_per_project_per_hour - hour_used),
        }

    # ---- response ---------------------------------------------------------------------------

    def _body(self, query: ReportQuery, page: list[Row], row_count: int,
              quota: dict[str, Any], as_numbers: bool) -> dict[str, Any]:
        types = [METRIC_TYPES[m] for m in query.metrics]
        body: dict[str, Any] = {}
        if query.dimensions:
            body["dimensionHeaders"] = [{"name": d} for d in query.dimensions]
        body["metricHeaders"] = [
            {"name": m, "type": METRIC_TYPE_NUMBERS[t] if as_numbers else t}
            for m, t in zip(query.metrics, types, strict=True)
        ]
        if page:
            body["rows"] = [
                {"dimensionValues": [{"value": v} for v in dims],
                 "metricValues": [{"value": metric_text(v, t)}
                                  for v, t in zip(mets, types, strict=True)]}
                for dims, mets in page
            ]
        if row_count:  # proto3 JSON leaves zero-valued fields out, as GA4 does
            body["rowCount"] = row_count
        body["metadata"] = {"currencyCode": query.currency_code or self.state.currency_code,
                            "timeZone": self.state.time_zone}
        if query.return_quota:
            body["propertyQuota"] = quota
        body["kind"] = "analyticsData#runReport"
        return body


def _status(consumed: int, remaining: int) -> dict[str, int]:
    out = {"remaining": max(0, remaining)}
    if consumed:
        out = {"consumed": consumed, **out}
    return out


def _error(exc: ReportError) -> Response:
    return Response(exc.code, exc.body())
