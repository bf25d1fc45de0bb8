"""ParallelSender: bounded concurrency, errors after every send finished, stop requests honoured."""

from __future__ import annotations

import threading
import time

import pytest

from closedloop.sync.interrupt import Interrupted
from closedloop.sync.sender import ParallelSender


def test_never_more_than_parallel_sends_run_at_once() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()
    done: list[int] = []

    def send(i: int) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01)
        with lock:
            running -= 1
            done.append(i)

    with ParallelSender(3) as sender:
        for i in range(20):
            sender.submit(lambda i=i: send(i))
    assert sorted(done) == list(range(20))
    assert 1 < peak <= 3


def test_a_failed_send_is_raised_and_the_others_still_finish() -> None:
    finished: list[int] = []

    def ok(i: int) -> None:
        time.sleep(0.02)
        finished.append(i)

    def bad() -> None:
        raise RuntimeError("token refused")

    with pytest.raises(RuntimeError, match="token refused"), ParallelSender(2) as sender:
        sender.submit(lambda: ok(1))
        sender.submit(bad)
        sender.submit(lambda: ok(2))
        sender.submit(lambda: ok(3))
    assert 1 in finished  # in flight when the error surfaced: finished, not abandoned


def test_a_stop_request_is_honoured_before_the_next_send() -> None:
    sent: list[int] = []
    stop = threading.Event()
    with (
        pytest.raises(Interrupted, match="after 2 batches"),
        ParallelSender(2, should_stop=stop.is_set, describe=lambda: f"after {len(sent)} batches") as sender,
    ):
        for i in range(10):
            sender.submit(lambda i=i: sent.append(i))
            if i == 1:
                sender.drain()
                stop.set()
    assert sent == [0, 1]
