"""Client-side pacing for HubSpot, GA4 and Salesforce, so that 429s are the exception.

Every limiter implements the ``Limiter`` protocol of ``calls.py``: ``acquire`` blocks until a
call may go out, ``observe`` learns from the answer.  Clocks and sleeps are injected so tests
can cross windows without waiting.

A rolling window on the server counts a call at the instant it *admits* it, which we never
see: it lies somewhere between our ``acquire`` and our ``observe``.  So a call holds its slot
from ``acquire`` and is stamped with the time of its answer; once that stamp has left the
window, the server's own stamp (earlier) has certainly left it too.  That is exact under any
latency jitter, with no time margin, and costs only a slot held for one round trip.

Budgets that refill over hours or a day (HubSpot's daily limit, GA4's daily tokens,
Salesforce's allocation) are never waited for: the limiter raises ``BudgetExhaustedError``
(fatal for the stream) and the next scheduled run carries on from its cursors.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from closedloop.connectors.errors import FatalAPIError

Clock = Callable[[], float]
Sleep = Callable[[float], None]

# Published limits per tier: calls per 10 s, calls per day.
HUBSPOT_TIERS: dict[str, tuple[int, int]] = {
    "free": (100, 250_000),
    "starter": (100, 250_000),
    "professional": (190, 650_000),
    "enterprise": (190, 1_000_000),
    "capacity_pack": (250, 1_000_000),
}
HUBSPOT_SEARCH_PER_SECOND = 5
_POLL_S = 0.005  # how often to look again while every slot is held by a call in flight
_DAY_S = 86_400.0
_SEARCH_READY_S = 1.0  # a search caller that stopped asking this long ago has gone away
_SEARCH_ACTIVE_S = 2.0  # searches asked this recently are a stream still running


class BudgetExhaustedError(FatalAPIError):
    """A daily (or longer) budget is spent; waiting inside a run would not help."""


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """HTTP header names are case-insensitive; SDKs hand them over in any case."""
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _int_header(headers: Mapping[str, str] | None, name: str) -> int | None:
    value = header(headers, name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class RollingWindow:
    """At most ``limit`` calls in any ``window_s``; not thread-safe, its owner locks."""

    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a rolling window needs limit >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self.in_flight = 0
        self._answered: deque[float] = deque()

    def used(self, now: float) -> int:
        while self._answered and self._answered[0] <= now - self.window_s:
            self._answered.popleft()
        return len(self._answered) + self.in_flight

    def wait_s(self, now: float, *, reserve: int = 0) -> float:
        """0 when a call may start now, else how long until one may (leaving ``reserve`` slots)."""
        excess = self.used(now) + reserve - self.limit  # >= 0 means full
        if excess < 0:
            return 0.0
        if excess >= len(self._answered):
            return _POLL_S  # only calls in flight hold the window; their answers will free it
        return max(_POLL_S, self._answered[excess] + self.window_s - now)

    def take(self) -> None:
        self.in_flight += 1

    def release(self, now: float) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self._answered.append(now)
        self.used(now)  # drop what left the window: a window nobody asks about must not grow

    def pad(self, calls: int, now: float) -> None:
        """Count calls we did not make (another app on the same account) as answered now."""
        self._answered.extend([now] * calls)


class _Pending(threading.local):
    """The windows this thread's call in flight holds, released when its answer comes."""

    def __init__(self) -> None:
        self.windows: list[RollingWindow] = []
        self.burst_used: int | None = None  # the burst window as it stood when the call left


class HubSpotLimiter:
    """HubSpot's ten-second burst window, search's per-second cap, and the daily limit.

    The burst window is the private app's own (100 or 190 per 10 s per app) and is counted
    exactly (see the module's docstring), so by default all of it is used; ``burst_margin``
    leaves a share unused where something else calls with the same app's token.  The daily
    limit is shared by every app of the account: ``margin`` leaves a share of it to them.

    Search counts toward the burst window as well (the sandbox counts it; HubSpot documents
    search's own per-token cap and sends no rate-limit headers on search answers, so whether it
    also draws on the burst window cannot be read off; counting it is the safe choice).

    While searches run, other calls get the burst window less search's share of it (5 a second
    for ten seconds: 50 of 100, at most half): search is the scarcer lane, and a stream of other
    calls that fills the window makes every search wait for a slot besides its own cap.  At
    100,000 contacts that was a pull of 140 s instead of 111 s, all of it searches waiting.
    """

    def __init__(
        self,
        *,
        burst_limit: int = 100,
        window_s: float = 10.0,
        daily_limit: int = 250_000,
        search_per_second: float = HUBSPOT_SEARCH_PER_SECOND,
        margin: float = 0.02,
        burst_margin: float = 0.0,
        search_counts_toward_burst: bool = True,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if not (0 <= margin < 1 and 0 <= burst_margin < 1):
            raise ValueError("margin and burst_margin are fractions in [0, 1)")
        self.margin = margin
        self.burst_margin = burst_margin
        self.search_counts_toward_burst = search_counts_toward_burst
        self.clock = clock
        self.sleep = sleep
        self.burst = RollingWindow(self._kept_burst(burst_limit), window_s)
        self.search = RollingWindow(max(1, math.floor(search_per_second)), 1.0)
        self.search_per_second = search_per_second
        self.others = RollingWindow(self._others_limit(), window_s)  # calls that are not searches
        self._search_asked_at: float | None = None
        self.daily_limit = daily_limit
        self.daily_used = 0
        self._day_started = clock()
        self._lock = threading.Lock()
        self._pending = _Pending()
        self._search_ready_at: float | None = None
        self.waited_s = 0.0
        self.calls = 0

    def _kept_burst(self, limit: int) -> int:
        return max(1, math.floor(limit * (1 - self.burst_margin)))

    @property
    def daily_budget(self) -> int:
        return max(1, math.floor(self.daily_limit * (1 - self.margin)))

    @staticmethod
    def is_search(endpoint: str) -> bool:
        return endpoint.startswith("POST ") and endpoint.rstrip("/").endswith("/search")

    def acquire(self, endpoint: str) -> None:
        search = self.is_search(endpoint)
        while True:
            with self._lock:
                now = self.clock()
                self._release_forgotten(now)
                if now - self._day_started >= _DAY_S:
                    self._day_started, self.daily_used = now, 0
                if self.daily_used >= self.daily_budget:
                    raise BudgetExhaustedError(
                        f"HubSpot daily budget spent ({self.daily_used:,} of {self.daily_limit:,} calls, "
                        f"margin {self.margin:.0%}); the next run resumes from the cursors",
                        endpoint=endpoint,
                    )
                windows = [self.search] if search else []
                if not search or self.search_counts_toward_burst:
                    windows.append(self.burst)
                if not search:
                    windows.append(self.others)
                if search:
                    self._search_asked_at = now
                    search_wait = self.search.wait_s(now)
                    burst_wait = self.burst.wait_s(now) if self.burst in windows else 0.0
                    if search_wait <= 0 < burst_wait:
                        self._search_ready_at = now  # blocked by the burst window alone: next in line
                    wait = max(search_wait, burst_wait)
                else:
                    wait = self.burst.wait_s(now, reserve=self._search_reserve(now))
                    if self._searching(now):
                        # Look again when the searches may have stopped, not only when a slot frees.
                        until_quiet = (self._search_asked_at or now) + _SEARCH_ACTIVE_S - now
                        wait = max(wait, min(self.others.wait_s(now), max(_POLL_S, until_quiet)))
                if wait <= 0:
                    if search:
                        self._search_ready_at = None
                    for window in windows:
                        window.take()
                    self._pending.windows = windows
                    self._pending.burst_used = self.burst.used(now)
                    self.daily_used += 1
                    self.calls += 1
                    return
                self.waited_s += wait
            self.sleep(wait)

    def _search_reserve(self, now: float) -> int:
        """One burst slot kept for a search call that waits only for it.

        Search has its own cap (5 a second) and shares the burst window with everything else;
        a slot that frees up goes to search first, because search is the scarcer lane: a pull
        of 100,000 contacts is 500 searches, 100 s at the cap, however fast the rest goes.
        """
        ready = self._search_ready_at
        return 1 if ready is not None and now - ready < _SEARCH_READY_S else 0

    def _searching(self, now: float) -> bool:
        asked = self._search_asked_at
        return self.search_counts_toward_burst and asked is not None and now - asked < _SEARCH_ACTIVE_S

    def _others_limit(self) -> int:
        """The burst window less what searches may take of it in a window (at most half)."""
        share = min(math.floor(self.search_per_second * self.burst.window_s), self.burst.limit // 2)
        return max(1, self.burst.limit - share)

    def _release_forgotten(self, now: float) -> None:
        """A call that ended without ``observe`` (an untranslated error) frees its slot now."""
        for window in self._pending.windows:
            window.release(now)
        self._pending.windows = []

    def observe(self, endpoint: str, headers: dict[str, str] | None) -> None:
        with self._lock:
            now = self.clock()
            counted = self._pending.burst_used
            self._pending.burst_used = None
            self._release_forgotten(now)
            self._resync(headers, now, counted)

    def _resync(self, headers: Mapping[str, str] | None, now: float, counted: int | None = None) -> None:
        """Adopt what the server says: its limits, and any usage we did not cause ourselves.

        The server counted its window when the call arrived; by the time the answer is read
        (later still when other threads hold the interpreter), calls have left our window that
        were in its count.  Usage is compared with our window as it stood when the call left
        (``counted``), or the gap is taken for another app's calls and the window padded with
        calls nobody made: at 100,000 contacts, 43 phantom calls in 40 s, each costing a
        search its slot.
        """
        limit = _int_header(headers, "X-HubSpot-RateLimit-Max")
        interval_ms = _int_header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
        remaining = _int_header(headers, "X-HubSpot-RateLimit-Remaining")
        if limit is not None and limit > 0:
            self.burst.limit = self._kept_burst(limit)
        if interval_ms is not None and interval_ms > 0:
            self.burst.window_s = interval_ms / 1000
        self.others.limit, self.others.window_s = self._others_limit(), self.burst.window_s  # follows the burst
        if remaining is not None:
            server_used = (limit if limit and limit > 0 else self.burst.limit) - remaining
            shortfall = server_used - (counted if counted is not None else self.burst.used(now))
            if shortfall > 0:
                self.burst.pad(shortfall, now)
        daily = _int_header(headers, "X-HubSpot-RateLimit-Daily")
        daily_remaining = _int_header(headers, "X-HubSpot-RateLimit-Daily-Remaining")
        if daily is not None and daily > 0:
            self.daily_limit = daily
        if daily_remaining is not None:
            self.daily_used = max(0, self.daily_limit - daily_remaining)


class GA4Limiter:
    """GA4's concurrent-request cap and token quotas, fed from ``propertyQuota``.

    Tokens per request vary with the report, so the next request is assumed to cost what the
    dearest recent one did.  When the hour's tokens run short it waits for the tokens it spent
    an hour ago to come back; the day's tokens running short ends the stream instead.
    """

    def __init__(
        self,
        *,
        max_concurrent: int = 10,
        tokens_per_hour: int = 40_000,
        tokens_per_day: int = 200_000,
        margin: float = 0.05,
        hour_s: float = 3600.0,
        max_wait_s: float = 3600.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if max_concurrent < 1 or not 0 <= margin < 1:
            raise ValueError("max_concurrent >= 1 and margin in [0, 1)")
        self.max_concurrent = max_concurrent
        self.hour_reserve = tokens_per_hour * margin
        self.day_reserve = tokens_per_day * margin
        self.hour_s = hour_s
        self.max_wait_s = max_wait_s
        self.clock = clock
        self.sleep = sleep
        self.hour_remaining: float | None = None  # unknown until the first propertyQuota
        self.day_remaining: float | None = None
        self.expected_cost = 0.0
        self._spent: deque[tuple[float, float]] = deque()  # (when, tokens) within the last hour
        self._in_flight = 0
        self._lock = threading.Lock()
        self.waited_s = 0.0

    def acquire(self, endpoint: str) -> None:
        while True:
            with self._lock:
                now = self.clock()
                wait = self._wait_s(now, endpoint)
                if wait <= 0:
                    self._in_flight += 1
                    if self.hour_remaining is not None:
                        self.hour_remaining -= self.expected_cost
                    if self.day_remaining is not None:
                        self.day_remaining -= self.expected_cost
                    return
                self.waited_s += wait
            self.sleep(wait)
            with self._lock:
                self._credit_returned_tokens(self.clock())

    def _wait_s(self, now: float, endpoint: str) -> float:
        if self.day_remaining is not None and self.day_remaining - self.expected_cost < self.day_reserve:
            raise BudgetExhaustedError(
                f"GA4 daily tokens spent ({self.day_remaining:,.0f} left, next request needs about "
                f"{self.expected_cost:,.0f}); the next run resumes from the cursors",
                endpoint=endpoint,
            )
        if self._in_flight >= self.max_concurrent:
            return _POLL_S
        if self.hour_remaining is None:
            return 0.0
        shortfall = self.expected_cost + self.hour_reserve - self.hour_remaining
        if shortfall <= 0:
            return 0.0
        wait = self._until_tokens_return(now, shortfall)
        if wait > self.max_wait_s:
            raise BudgetExhaustedError(
                f"GA4 hourly tokens spent; they return in {wait:,.0f} s, longer than the "
                f"{self.max_wait_s:,.0f} s this run may wait",
                endpoint=endpoint,
            )
        return max(wait, _POLL_S)

    def _until_tokens_return(self, now: float, shortfall: float) -> float:
        returned = 0.0
        for when, tokens in self._spent:
            returned += tokens
            if returned >= shortfall:
                return max(0.0, when + self.hour_s - now)
        return self.hour_s  # spent by someone else: after a whole hour all of it is back

    def _credit_returned_tokens(self, now: float) -> None:
        back = 0.0
        while self._spent and self._spent[0][0] <= now - self.hour_s:
            back += self._spent.popleft()[1]
        if self.hour_remaining is not None:
            if back:
                self.hour_remaining += back
            elif not self._spent and self.hour_remaining < self.expected_cost + self.hour_reserve:
                self.hour_remaining = None  # a full hour has passed: nothing we know of is still held

    def observe(self, endpoint: str, headers: dict[str, str] | None) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    def observe_quota(self, quota: Mapping[str, Any] | None) -> None:
        """Take ``propertyQuota`` (camelCase JSON or snake_case proto dict) from an answer."""
        if not quota:
            return
        hour = _quota_status(quota, "tokensPerHour", "tokens_per_hour")
        day = _quota_status(quota, "tokensPerDay", "tokens_per_day")
        with self._lock:
            now = self.clock()
            if hour is not None:
                consumed, remaining = hour
                self.hour_remaining = remaining
                if consumed > 0:
                    self._spent.append((now, consumed))
                    recent = [tokens for _, tokens in list(self._spent)[-5:]]
                    self.expected_cost = max(recent)
            if day is not None:
                self.day_remaining = day[1]


def _quota_status(quota: Mapping[str, Any], camel: str, snake: str) -> tuple[float, float] | None:
    status = quota.get(camel) or quota.get(snake)
    if not isinstance(status, Mapping):
        return None
    try:
        return float(status.get("consumed") or 0), float(status.get("remaining") or 0)
    except (TypeError, ValueError):
        return None


_API_USAGE = re.compile(r"(?:^|[\s,;])api-usage=(\d+)/(\d+)")


def parse_api_usage(value: str | None) -> tuple[int, int] | None:
    """``Sforce-Limit-Info: api-usage=25/15000`` -> (25, 15000); ``per-app-api-usage`` is ignored."""
    if not value:
        return None
    match = _API_USAGE.search(value)
    return (int(match.group(1)), int(match.group(2))) if match else None


class SalesforceLimiter:
    """Stay within a share of the org's rolling 24-hour API allocation.

    The org's allocation is shared with every other integration, so a reserve is left for
    them; the count comes from ``Sforce-Limit-Info`` on every answer, and calls in flight are
    counted until their answer arrives.
    """

    def __init__(
        self,
        *,
        allocation: int | None = None,
        reserve_fraction: float = 0.1,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if not 0 <= reserve_fraction < 1:
            raise ValueError("reserve_fraction is a fraction in [0, 1)")
        self.allocation = allocation
        self.reserve_fraction = reserve_fraction
        self.used = 0
        self.clock = clock
        self.sleep = sleep
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def budget(self) -> int | None:
        if self.allocation is None:
            return None
        return math.floor(self.allocation * (1 - self.reserve_fraction))

    def acquire(self, endpoint: str) -> None:
        with self._lock:
            budget = self.budget
            if budget is not None and self.used + self._in_flight >= budget:
                raise BudgetExhaustedError(
                    f"Salesforce API allocation nearly spent ({self.used:,} of {self.allocation:,} "
                    f"in the last 24 h; {self.reserve_fraction:.0%} is kept for other integrations)",
                    endpoint=endpoint,
                )
            self._in_flight += 1

    def observe(self, endpoint: str, headers: dict[str, str] | None) -> None:
        usage = parse_api_usage(header(headers, "Sforce-Limit-Info"))
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            if usage is not None:
                self.used, self.allocation = usage
            else:
                self.used += 1
