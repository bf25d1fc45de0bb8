"""Write-back batches with a few calls in flight at once.

One call at a time, each batch waits for its own round trip and its bookkeeping (marking
values in flight, recording the outcome) before the next may leave, which keeps a 10-calls-
a-second budget at about eight.  With two or three in flight the limiter, not the round
trip, sets the pace.  Batches are independent (each object is in exactly one), so their
order does not matter; every batch is marked in flight before it is sent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from types import TracebackType

from closedloop.sync.interrupt import Interrupted, ShouldStop, never

Send = Callable[[], None]


class ParallelSender:
    """``submit`` blocks while ``parallel`` sends are running; errors surface on the next call.

    Leaving the ``with`` block waits for every send in flight, so no batch is left between
    "marked in flight" and "recorded" by this process unless the process itself dies.
    """

    def __init__(self, parallel: int, *, should_stop: ShouldStop = never, describe: Callable[[], str] = str) -> None:
        self._parallel = max(1, parallel)
        self._pool = ThreadPoolExecutor(max_workers=self._parallel, thread_name_prefix="writeback")
        self._running: deque[Future[None]] = deque()
        self._should_stop = should_stop
        self._describe = describe

    def submit(self, send: Send) -> None:
        while len(self._running) >= self._parallel:
            self._running.popleft().result()
        if self._should_stop():
            raise Interrupted(f"stopped during the write-back {self._describe()}")
        self._running.append(self._pool.submit(send))

    def drain(self) -> None:
        """Wait for every send; the first error is raised after all have finished."""
        first: BaseException | None = None
        while self._running:
            try:
                self._running.popleft().result()
            except BaseException as exc:  # collected; the other sends still finish their bookkeeping
                first = first or exc
        if first is not None:
            raise first

    def __enter__(self) -> ParallelSender:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                self.drain()
            else:
                with suppress(BaseException):  # the error already propagating is the one to report
                    self.drain()
        finally:
            self._pool.shutdown(wait=True)
