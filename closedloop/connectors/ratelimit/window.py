"""A rolling window of calls, counted exactly whatever the latency.

A rolling window on the server counts a call at the instant it *admits* it, which we never
see: it lies somewhere between our ``acquire`` and our ``observe``.  So a call holds its slot
from ``acquire`` and is stamped with the time of its answer; once that stamp has left the
window, the server's own stamp (earlier) has certainly left it too.  That is exact under any
latency jitter, with no time margin, and costs only a slot held for one round trip.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]
Sleep = Callable[[float], None]

POLL_S = 0.005  # how often to look again while every slot is held by a call in flight


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
            return POLL_S  # only calls in flight hold the window; their answers will free it
        return max(POLL_S, self._answered[excess] + self.window_s - now)

    def take(self) -> None:
        self.in_flight += 1

    def release(self, now: float) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self._answered.append(now)
        self.used(now)  # drop what left the window: a window nobody asks about must not grow

    def pad(self, calls: int, now: float) -> None:
        """Count calls we did not make (another app on the same account) as answered now."""
        self._answered.extend([now] * calls)
