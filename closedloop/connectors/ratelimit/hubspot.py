"""HubSpot's limits: the ten-second burst window, search's per-second cap, the daily limit.

Published per tier in ``HUBSPOT_TIERS``; the answers' ``X-HubSpot-RateLimit-*`` headers
override them as they arrive.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping

from closedloop.connectors.ratelimit.headers import int_header
from closedloop.connectors.ratelimit.window import POLL_S, Clock, RollingWindow, Sleep
from closedloop.errors import BudgetExhaustedError

# Published limits per tier: calls per 10 s, calls per day.
HUBSPOT_TIERS: dict[str, tuple[int, int]] = {
    "free": (100, 250_000),
    "starter": (100, 250_000),
    "professional": (190, 650_000),
    "enterprise": (190, 1_000_000),
    "capacity_pack": (250, 1_000_000),
}
HUBSPOT_SEARCH_PER_SECOND = 5
_DAY_S = 86_400.0
_SEARCH_READY_S = 1.0  # a search caller that stopped asking this long ago has gone away
_SEARCH_ACTIVE_S = 2.0  # searches asked this recently are a stream still running


class _Pending(threading.local):
    """The windows this thread's call in flight holds, released when its answer comes."""

    def __init__(self) -> None:
        self.windows: list[RollingWindow] = []
        self.burst_used: int | None = None  # the burst window as it stood when the call left


class HubSpotLimiter:
    """HubSpot's ten-second burst window, search's per-second cap, and the daily limit.

    The burst window is the private app's own (100 or 190 per 10 s per app) and is counted
    exactly (see ``ratelimit.window``), so by default all of it is used; ``burst_margin``
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
                        wait = max(wait, min(self.others.wait_s(now), max(POLL_S, until_quiet)))
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
        limit = int_header(headers, "X-HubSpot-RateLimit-Max")
        interval_ms = int_header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
        remaining = int_header(headers, "X-HubSpot-RateLimit-Remaining")
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
        daily = int_header(headers, "X-HubSpot-RateLimit-Daily")
        daily_remaining = int_header(headers, "X-HubSpot-RateLimit-Daily-Remaining")
        if daily is not None and daily > 0:
            self.daily_limit = daily
        if daily_remaining is not None:
            self.daily_used = max(0, self.daily_limit - daily_remaining)
