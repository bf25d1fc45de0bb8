"""Fetch a stream's next batch while the current one is being stored.

A batch comes from the network (mostly waiting) and goes into the store (CPU and disk).  One
after the other, each waits for the other; a producer thread that runs the source's generator
a batch or two ahead overlaps them.  Cursors still move only when the consumer commits a
batch, so a crash re-fetches at most ``depth`` + 1 batches, which upserts make harmless.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()
_POLL_S = 0.1


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(items: Iterator[T], *, depth: int = 1, name: str = "read-ahead") -> Generator[T, None, None]:
    """``items``, produced in a thread up to ``depth`` ahead; its errors re-raised here, in order.

    Closing this generator early (an interrupt, an error while storing) stops the producer
    after the item it is fetching, and closes ``items`` in the producer's own thread.
    """
    handoff: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    stopped = threading.Event()

    def offer(item: object) -> bool:
        while not stopped.is_set():
            try:
                handoff.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    break
            else:
                offer(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            offer(_Failed(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name=name, daemon=True)
    producer.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stopped.set()
        producer.join()
