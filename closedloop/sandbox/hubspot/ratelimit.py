"""HubSpot's rate limits: a rolling burst window, a daily allowance, search's own per-second cap.

The clock is injected so tests can cross a window without sleeping.  Refused calls are not
counted, so a client that backs off recovers as it would against HubSpot.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

DAY_SECONDS = 86_400.0


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    policy: str  # "" when allowed; TEN_SECONDLY_ROLLING, DAILY or SECONDLY when refused
    headers: dict[str, str]


class RateLimiter:
    def __init__(
        self,
        *,
        burst_limit: int,
        burst_window_s: float,
        daily_limit: int,
        search_per_second: int,
        clock: Callable[[], float],
    ) -> None:
        if burst_limit < 1 or daily_limit < 1 or search_per_second < 1 or burst_window_s <= 0:
            raise ValueError("rate limits must be positive")
        self.burst_limit = burst_limit
        self.burst_window_s = burst_window_s
        self.daily_limit = daily_limit
        self.search_per_second = search_per_second
        self.clock = clock
        self._lock = threading.Lock()
        self._burst: deque[float] = deque()
        self._search: deque[float] = deque()
        self._day_started = clock()
        self._daily_used = 0

    def admit(self, *, search: bool) -> Verdict:
        """Count one call if it is allowed; the headers describe the state after it."""
        with self._lock:
            now = self.clock()
            if now - self._day_started >= DAY_SECONDS:
                self._day_started, self._daily_used = now, 0
            _expire(self._burst, now - self.burst_window_s)
            _expire(self._search, now - 1.0)
            if self._daily_used >= self.daily_limit:
                return Verdict(False, "DAILY", self._headers())
            if len(self._burst) >= self.burst_limit:
                return Verdict(False, "TEN_SECONDLY_ROLLING", self._headers())
            if search and len(self._search) >= self.search_per_second:
                return Verdict(False, "SECONDLY", {})
            self._burst.append(now)
            self._daily_used += 1
            if search:
                self._search.append(now)
            return Verdict(True, "", self._headers())

    def _headers(self) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily_limit - self._daily_used)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.burst_window_s * 1000)),
            "X-HubSpot-RateLimit-Max": str(self.burst_limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.burst_limit - len(self._burst))),
        }


def _expire(stamps: deque[float], before: float) -> None:
    while stamps and stamps[0] <= before:
        stamps.popleft()
