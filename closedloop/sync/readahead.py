"""Fetch a stream's next batches while the current one is being stored.

A batch comes from the network (mostly waiting) and goes into the store (CPU and disk).  One
after the other, each waits for the other; a producer thread that runs the source's generator
ahead overlaps them.  How far ahead is a budget of records, not of batches: a contacts page is
200 records and a GA4 page 50,000, and a stream of small pages must keep calling while another
stream's large batch holds the store (SQLite has one writer), or its rate-limited calls are lost
for good.  Cursors still move only when the consumer commits a batch, so a crash re-fetches what
was read ahead, which upserts make harmless.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()
_POLL_S = 0.1


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _one(_item: object) -> int:
    return 1


def read_ahead(
    items: Iterator[T],
    *,
    budget: int = 1,
    weigh: Callable[[T], int] = _one,
    name: str = "read-ahead",
) -> Generator[T, None, None]:
    """``items``, produced in a thread while their buffered weight stays within ``budget``.

    An item is always taken when nothing is buffered, so one heavier than the budget still
    passes (alone).  The producer's errors are re-raised here, after the items before them.
    Closing this generator early (an interrupt, an error while storing) stops the producer
    after the item it is fetching, and closes ``items`` in the producer's own thread.
    """
    buffered: deque[tuple[object, int]] = deque()
    weight = 0
    changed = threading.Condition()
    stopped = threading.Event()

    def offer(item: object, cost: int) -> bool:
        nonlocal weight
        with changed:
            while buffered and weight + cost > budget and not stopped.is_set():
                changed.wait(_POLL_S)
            if stopped.is_set():
                return False
            buffered.append((item, cost))
            weight += cost
            changed.notify_all()
            return True

    def produce() -> None:
        try:
            for item in items:
                if not offer(item, max(0, weigh(item))):
                    break
            else:
                offer(_DONE, 0)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            offer(_Failed(exc), 0)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def take() -> object:
        nonlocal weight
        with changed:
            while not buffered:
                changed.wait()
            item, cost = buffered.popleft()
            weight -= cost
            changed.notify_all()
            return item

    producer = threading.Thread(target=produce, name=name, daemon=True)
    producer.start()
    try:
        while True:
            item = take()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stopped.set()
        with changed:
            changed.notify_all()
        producer.join()
