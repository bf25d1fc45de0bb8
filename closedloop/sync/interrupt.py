"""The stop signal a run honours between batches (SIGTERM in `closedloop serve`)."""

from __future__ import annotations

from collections.abc import Callable

from closedloop.errors import Interrupted

__all__ = ["Interrupted", "ShouldStop", "never"]

ShouldStop = Callable[[], bool]


def never() -> bool:
    return False
