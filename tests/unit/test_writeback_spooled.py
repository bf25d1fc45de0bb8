"""A spooled call's outcomes are recorded as they are read back, a bounded number at a time.

A Bulk job's outcome comes back from disk much faster than the store records it; handed to a
queue, every record of the job was held at once.  ``_send_spooled`` must record each ``every``
chunks before reading more, so what it holds is bounded whatever the job's size.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from closedloop.connectors.base import PropertyUpdate, WriteResult
from closedloop.sync.writeback import _send_spooled
from closedloop.sync.writeback_state import PropertyChange


def test_outcomes_are_recorded_every_ten_chunks_before_more_are_read() -> None:
    read = 0
    recorded: list[tuple[int, int, int]] = []  # (chunks read so far, records, changes) at each recording

    def call() -> Iterator[tuple[list[PropertyUpdate], WriteResult]]:
        nonlocal read
        for c in range(35):
            updates = [PropertyUpdate("contacts", f"00Q{c:05d}{i:03d}", {"a_x": "1", "a_y": ""}) for i in range(4)]
            read += 1
            yield updates, WriteResult(written=updates[1:], failed=[])

    def record(result: WriteResult, changes: dict[tuple[str, str], list[PropertyChange]]) -> None:
        recorded.append((read, len(result.written), sum(len(v) for v in changes.values())))
        assert all(c.new in ("1", "") and c.property in ("a_x", "a_y") for v in changes.values() for c in v)

    _send_spooled(call, record, threading.Lock())  # type: ignore[arg-type]
    assert recorded == [(10, 30, 80), (20, 30, 80), (30, 30, 80), (35, 15, 40)]
