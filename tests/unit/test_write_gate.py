"""The store's write gate: turns in arrival order, re-entered by its holder, never lost."""

from __future__ import annotations

import threading
import time

from closedloop.store.gate import WriteGate


def _queued(gate: WriteGate, n: int) -> None:
    deadline = time.monotonic() + 5
    while len(gate._waiting) < n:  # the test waits until each thread has taken its place in line
        assert time.monotonic() < deadline, "a thread never queued"
        time.sleep(0.001)


def test_turns_go_in_arrival_order_even_against_a_holder_that_asks_again_at_once() -> None:
    """SQLite's own lock lets a thread that commits and begins again win over a sleeping
    waiter every time; here the waiter that came first goes first."""
    gate = WriteGate()
    order: list[str] = []

    def take(name: str) -> None:
        with gate:
            order.append(name)

    gate.__enter__()
    threads = []
    for i, name in enumerate(("first", "second")):
        thread = threading.Thread(target=take, args=(name,))
        thread.start()
        _queued(gate, i + 1)
        threads.append(thread)
    gate.__exit__(None, None, None)
    take("holder again")  # queues behind both
    for thread in threads:
        thread.join(5)
    assert order == ["first", "second", "holder again"]


def test_the_holder_may_enter_again_and_frees_the_gate_on_its_last_exit() -> None:
    gate = WriteGate()
    with gate, gate:
        pass
    got = threading.Event()
    thread = threading.Thread(target=lambda: (gate.__enter__(), got.set()))
    thread.start()
    assert got.wait(5), "the gate stayed held after nested scopes ended"
    thread.join(5)


class Stop(Exception):
    pass


class InterruptedTurn(threading.Event):
    """A wait cut short, as a signal or KeyboardInterrupt would cut it."""

    def wait(self, timeout: float | None = None) -> bool:
        raise Stop


def test_a_waiter_interrupted_in_line_does_not_stall_the_ones_behind() -> None:
    gate = WriteGate()
    gate.__enter__()
    gate._turn = InterruptedTurn  # type: ignore[assignment]
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            with gate:
                pass
        except Stop as exc:
            errors.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    thread.join(5)
    assert len(errors) == 1 and not gate._waiting
    gate._turn = threading.Event  # type: ignore[assignment]
    gate.__exit__(None, None, None)
    taken = threading.Event()
    other = threading.Thread(target=lambda: (gate.__enter__(), taken.set()))
    other.start()
    assert taken.wait(5), "the interrupted waiter's turn was never passed on"
    other.join(5)
