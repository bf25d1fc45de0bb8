"""The stop signal a run honours between batches: SIGTERM (and SIGINT) in `serve` and `run`.

A signal only sets a flag; the run checks it between batches (pull, rebuild chunks, write-back
batches), stores what it has, records itself ``interrupted`` and returns, so the process exits
0 and the next run resumes from the committed cursors.  A second SIGINT is a user who insists:
it raises KeyboardInterrupt as Python would.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from closedloop.errors import Interrupted

__all__ = ["Interrupted", "ShouldStop", "never", "stop_on_signals"]

ShouldStop = Callable[[], bool]


def never() -> bool:
    return False


@contextmanager
def stop_on_signals(
    on_signal: Callable[[str], None] | None = None, *, event: threading.Event | None = None
) -> Iterator[ShouldStop]:
    """SIGTERM/SIGINT set a stop flag while inside; yields the run's ``should_stop``.  The previous
    handlers are put back afterwards.  Call from the main thread (Python delivers signals there)."""
    stop = event or threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not stop.is_set() and on_signal is not None:
            on_signal(signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop.is_set
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
