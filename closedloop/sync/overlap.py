"""The rebuild and the write-back, overlapped.

A contact's closedloop properties depend only on its own touchpoints, so they can be written
as soon as the rebuild has committed them; deals' depend on their credits, which need every
journey, so they follow the deals' credits (computed before the contacts' own, the largest).
Write-back is paced by the CRM's rate limit (a thousand calls for 100,000 contacts is 100 s of
HubSpot's burst window) while the rebuild is paced by CPU: overlapped, the rebuild mostly
disappears inside the write-back's waiting.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from closedloop.config.models import Config
from closedloop.connectors.base import CRMWriter
from closedloop.sync.derive import RebuildStats, rebuild
from closedloop.sync.interrupt import Interrupted, ShouldStop, never
from closedloop.sync.writeback import WritebackStats, run_writeback

Clock = Callable[[], float]


class ContactHandoff:
    """Chunks of contact ids passed from the rebuild (one thread) to the write-back (another)."""

    _END = object()

    def __init__(self) -> None:
        self._queue: queue.Queue[object] = queue.Queue()
        self._lock = threading.Lock()
        self._finished = False

    def put(self, contact_ids: Sequence[str]) -> None:
        self._queue.put(list(contact_ids))

    def finish(self) -> None:
        """Every contact's touchpoints and every deal's credits are committed: deals may be read.

        Only the first call counts (the rebuild says it when deals are ready, and again at its end).
        """
        with self._lock:
            if self._finished:
                return
            self._finished = True
        self._queue.put(self._END)

    def abort(self, reason: str) -> None:
        self._queue.put(Interrupted(reason))

    def __iter__(self) -> Iterator[list[str]]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, Interrupted):
                raise item
            yield item  # type: ignore[misc]


@dataclass(slots=True)
class Overlapped:
    rebuild: RebuildStats
    writeback: WritebackStats
    rebuild_s: float  # both measured from the same start: they overlap
    writeback_s: float


def rebuild_and_write_back(
    engine: Engine,
    config: Config,
    writer: CRMWriter,
    *,
    now: datetime,
    clock: Clock,
    progress: Callable[[str], None],
    should_stop: ShouldStop = never,
    writeback_stats: WritebackStats | None = None,
) -> Overlapped:
    """Rebuild in this thread while another writes back; errors of either are raised here.

    If the rebuild fails before deals are ready, the write-back stops after its batches in
    flight (after, deals' values are final and still written); if the write-back fails, the
    rebuild still completes (its result stands) and the write-back's error follows.
    ``writeback_stats``, where given, is counted into as the write-back goes, so it holds what
    was written even when either part stops the run.
    """
    handoff = ContactHandoff()
    started = clock()
    finished: list[float] = []

    def deals_ready() -> None:
        progress("writing back deals")
        handoff.finish()

    def write_back() -> WritebackStats:
        try:
            return run_writeback(engine, config, writer, now=now, should_stop=should_stop, contact_chunks=handoff,
                                 stats=writeback_stats)
        finally:
            finished.append(clock())

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="writeback") as pool:
        pending = pool.submit(write_back)
        try:
            stats = rebuild(
                engine,
                config,
                progress=progress,
                on_touchpoints=handoff.put,
                on_deal_credits=deals_ready,
                should_stop=should_stop,
            )
        except BaseException as exc:
            handoff.abort(f"the rebuild stopped ({type(exc).__name__}), so deals are not written back")
            with suppress(BaseException):  # the rebuild's error is the one to report
                pending.result()
            raise
        rebuild_s = clock() - started
        handoff.finish()  # a no-op unless the rebuild never said deals were ready
        written = pending.result()
    return Overlapped(stats, written, rebuild_s, finished[0] - started)
