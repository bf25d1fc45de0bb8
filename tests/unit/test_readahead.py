"""read_ahead: order, errors, early close (the producer stops and its generator is closed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from closedloop.sync.readahead import read_ahead


def test_items_arrive_in_order_and_are_produced_in_another_thread() -> None:
    threads: list[str] = []

    def produce() -> Iterator[int]:
        for i in range(50):
            threads.append(threading.current_thread().name)
            yield i

    assert list(read_ahead(produce(), budget=2, name="producer")) == list(range(50))
    assert set(threads) == {"producer"}


def test_an_error_of_the_producer_is_raised_after_the_items_before_it() -> None:
    def produce() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("page 3 unreadable")

    seen: list[int] = []
    with pytest.raises(ValueError, match="page 3 unreadable"):
        for item in read_ahead(produce()):
            seen.append(item)
    assert seen == [1, 2]


def test_closing_early_stops_the_producer_within_depth_and_closes_its_generator() -> None:
    produced: list[int] = []
    closed = threading.Event()

    def produce() -> Iterator[int]:
        try:
            for i in range(1_000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    items = read_ahead(produce(), budget=1)
    assert next(items) == 0
    items.close()
    assert closed.is_set()
    # One item consumed, at most one waiting in the hand-off and one being offered.
    assert len(produced) <= 3


def test_an_empty_source_ends_at_once() -> None:
    assert list(read_ahead(iter([]))) == []


def test_the_budget_counts_weight_and_a_heavy_item_still_passes_alone() -> None:
    """Small pages run far ahead within the budget; a page heavier than it waits for an empty buffer."""
    produced: list[int] = []
    pages = [1, 1, 1, 1, 10, 1]

    def produce() -> Iterator[int]:
        for i, size in enumerate(pages):
            produced.append(i)
            yield size

    items = read_ahead(produce(), budget=4, weigh=lambda size: size)
    assert next(items) == 1  # the consumer holds page 0; pages 1-4 may be read ahead
    pause = threading.Event()
    for _ in range(200):
        if len(produced) >= 5:
            break
        pause.wait(0.01)
    pause.wait(0.05)  # room for a wrongly admitted page to show up
    # Pages 1-3 (weight 3) are buffered and page 4 (weight 10) is fetched but must wait: the
    # buffer is not empty and 3 + 10 exceeds the budget; page 5 is not fetched yet.
    assert produced == [0, 1, 2, 3, 4]
    assert list(items) == [1, 1, 1, 10, 1]
