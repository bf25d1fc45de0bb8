"""The stop signal a run honours between batches (SIGTERM in `closedloop serve`)."""

from __future__ import annotations

from collections.abc import Callable

ShouldStop = Callable[[], bool]


def never() -> bool:
    return False


class Interrupted(Exception):
    """A stop was requested; the batch in flight was finished and recorded, nothing after it started."""
