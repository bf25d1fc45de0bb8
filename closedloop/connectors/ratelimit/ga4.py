"""GA4's limits: concurrent requests, and tokens per hour and per day read from ``propertyQuota``."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from closedloop.connectors.ratelimit.window import POLL_S, Clock, Sleep
from closedloop.errors import BudgetExhaustedError


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
            return POLL_S
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
        return max(wait, POLL_S)

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
