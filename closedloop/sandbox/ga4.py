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
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from closedloop.sandbox.ga4_metadata import metadata_handler
from closedloop.sandbox.ga4_report import (
    COST_METRICS,
    METRIC_TYPE_NUMBERS,
    METRIC_TYPES,
    ReportError,
    ReportQuery,
    Row,
    aggregate,
    invalid,
    metric_text,
    parse_request,
)
from closedloop.sandbox.ga4_state import GA4State
from closedloop.sandbox.server import Request, Response, Router, SandboxServer

__all__ = ["GA4Sandbox", "GA4State"]  # GA4State lives in ga4_state; callers build both together

QUOTA_URL = "https://developers.google.com/analytics/devguides/reporting/data/v1/quotas"
PROPERTY_ID_URL = "https://developers.google.com/analytics/devguides/reporting/data/v1/property-id"
_QUOTA_DAY_ZONE = ZoneInfo("America/Los_Angeles")
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
        router.add("GET", "/v1beta/properties/{propertyId}/metadata", metadata_handler(self.state))
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
                            "timeZone": self.state.time_zone, **self.state.report_metadata}
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
