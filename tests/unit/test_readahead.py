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

    assert list(read_ahead(produce(), depth=2, name="producer")) == list(range(50))
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

    items = read_ahead(produce(), depth=1)
    assert next(items) == 0
    items.close()
    assert closed.is_set()
    # One item consumed, at most one waiting in the hand-off and one being offered.
    assert len(produced) <= 3


def test_an_empty_source_ends_at_once() -> None:
    assert list(read_ahead(iter([]))) == []
