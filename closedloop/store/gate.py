"""Write transactions of one process take turns on SQLite, in the order they asked.

SQLite has one writer at a time, and a connection that finds the write lock taken sleeps in
growing steps (up to 100 ms) before it looks again.  A thread that commits and at once begins
its next transaction nearly always wins against one that sleeps: while a GA4 page of 50,000
sessions went in slice after slice, the contacts stream (a page every 0.2 s) waited seconds to
commit each of its pages, its read-ahead filled, and its rate-limited searches stopped.  Here
the threads queue first, in arrival order, so each waits for at most the transactions ahead of
it; SQLite's own lock then only sees other processes.  PostgreSQL locks rows and needs none.
"""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType
from weakref import WeakKeyDictionary

from sqlalchemy import Engine

_GATES: WeakKeyDictionary[Engine, WriteGate] = WeakKeyDictionary()


class WriteGate:
    """A fair (first come, first served) lock that its holder may take again (nested scopes)."""

    _turn = threading.Event  # what a waiter waits on (a test puts an interrupted one here)

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._waiting: deque[tuple[int, threading.Event]] = deque()

    def __enter__(self) -> WriteGate:
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._depth += 1
                return self
            if self._owner is None and not self._waiting:
                self._owner, self._depth = me, 1
                return self
            turn = self._turn()
            self._waiting.append((me, turn))
        try:
            turn.wait()
        except BaseException:  # interrupted while queued: leave the queue, or pass the turn on
            with self._mutex:
                if self._owner == me:
                    self._hand_over()
                else:
                    self._waiting.remove((me, turn))
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._mutex:
            self._depth -= 1
            if self._depth == 0:
                self._hand_over()

    def _hand_over(self) -> None:
        """To the longest waiting thread, directly: no newcomer can slip in between."""
        if self._waiting:
            owner, turn = self._waiting.popleft()
            self._owner, self._depth = owner, 1
            turn.set()
        else:
            self._owner, self._depth = None, 0


def register(engine: Engine) -> None:
    _GATES[engine] = WriteGate()


def write_gate(engine: Engine) -> WriteGate | None:
    return _GATES.get(engine)
