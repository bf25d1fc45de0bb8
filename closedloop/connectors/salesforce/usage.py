"""The org's 24-hour API allocation, read from ``Sforce-Limit-Info`` on every answer.

Salesforce counts every REST, Bulk and Tooling call against one rolling daily allocation
shared by every integration of the org; past it, each call is refused with
REQUEST_LIMIT_EXCEEDED until the window rolls.  A run that spends the allocation breaks other
integrations, so the run stops itself first: before each call, if the last figure the org
reported is at or above ``share`` of the allocation, it raises BudgetExhaustedError.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from closedloop.errors import BudgetExhaustedError

_API_USAGE = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")


def parse_limit_info(header: str | None) -> tuple[int, int] | None:
    """``api-usage=N/M`` (used, allocation) from the header; None where it is absent or garbled."""
    if not header:
        return None
    match = _API_USAGE.search(header)
    if match is None:
        return None
    used, allocation = int(match.group(1)), int(match.group(2))
    return (used, allocation) if allocation > 0 else None


@dataclass(frozen=True, slots=True)
class UsageFigures:
    """What one run saw: the first and last figures, and how many answers carried one."""

    first_used: int | None
    last_used: int | None
    allocation: int | None
    answers: int

    @property
    def spent_by_run(self) -> int | None:
        """Calls the org counted while the run went on (other integrations included)."""
        if self.first_used is None or self.last_used is None:
            return None
        return max(0, self.last_used - self.first_used)

    def as_dict(self) -> dict[str, int | None]:
        return {
            "api_usage_first": self.first_used,
            "api_usage_last": self.last_used,
            "api_allocation": self.allocation,
            "api_usage_spent": self.spent_by_run,
            "answers_with_usage": self.answers,
        }


class UsageMeter:
    """Thread-safe record of the org's usage as reported, and the stop before the share is spent."""

    def __init__(self, share: float) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.share = share
        self._lock = threading.Lock()
        self._first: int | None = None
        self._last: int | None = None
        self._allocation: int | None = None
        self._answers = 0

    def observe(self, header: str | None) -> None:
        parsed = parse_limit_info(header)
        if parsed is None:
            return
        used, allocation = parsed
        with self._lock:
            if self._first is None:
                self._first = used
            # Answers of calls in parallel arrive out of order: the highest figure is the latest.
            self._last = used if self._last is None else max(self._last, used)
            self._allocation = allocation
            self._answers += 1

    def check(self, endpoint: str) -> None:
        """Raise before a call that would go past the configured share of the allocation."""
        with self._lock:
            used, allocation = self._last, self._allocation
        if used is None or allocation is None:
            return
        ceiling = int(allocation * self.share)
        if used >= ceiling:
            raise BudgetExhaustedError(
                f"Salesforce API usage is {used:,} of the org's {allocation:,} calls a day; the run stops "
                f"at {self.share:.0%} ({ceiling:,}) to leave the rest to other integrations "
                f"(salesforce.daily_usage_share). Next call would have been {endpoint}.",
                endpoint=endpoint,
            )

    def figures(self) -> UsageFigures:
        with self._lock:
            return UsageFigures(self._first, self._last, self._allocation, self._answers)
