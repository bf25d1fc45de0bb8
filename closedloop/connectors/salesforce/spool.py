"""A run's changes on their way to Salesforce, with few of them in memory.

Whether an object's changes go as one Bulk 2.0 job is known only once it has more than
``bulk_threshold`` of them, and the write-back plans 100,000 people's changes over minutes.
Held as objects until the last was planned (and the CSV built from them in memory, several
times over inside simple-salesforce), they made the full-size bench peak at 852 MB.  So an
object's changes are held in memory only up to the threshold; past it they go to a file, one
JSON line per record, and so do all that follow.  At the end, objects still under the threshold
are packed into collections calls as ``calls_for`` packs them, and each spilled object becomes
a CSV file uploaded as one Bulk 2.0 job, whose outcome is read back from the file a chunk at a
time.  The calls made are exactly those ``calls_for`` would choose.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from closedloop.connectors.base import PropertyUpdate, WriteResult
from closedloop.connectors.salesforce.fields import sobject_of

if TYPE_CHECKING:
    from closedloop.connectors.salesforce.writer import SalesforceWriter

# One call's outcome, a chunk of its records at a time (a Bulk job's may be 100,000 records).
Outcomes = Iterator[tuple[list[PropertyUpdate], WriteResult]]
SpooledCall = Callable[[], Outcomes]
# Records per outcome chunk read back from a spilled file: a collections call's worth, so the
# write-back records a Bulk job's outcome in transactions no larger than for other calls
# (ten chunks each: 1,000-record chunks made 66,000-row upserts, three jobs at once).
READ_BACK = 200


class Spill:
    """One object's changes on disk (JSON lines) and the union of the fields they set."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self.fields: dict[str, None] = {}  # ordered set: the Bulk CSV's columns
        self._file: IO[str] | None = path.open("w", encoding="utf-8")

    def write(self, update: PropertyUpdate, fields: list[str]) -> None:
        assert self._file is not None, "spill already closed"
        self._file.write(json.dumps([update.object_type, update.object_id, update.properties]) + "\n")
        self.fields.update(dict.fromkeys(fields))
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def read(self, size: int = READ_BACK) -> Iterator[list[PropertyUpdate]]:
        self.close()
        chunk: list[PropertyUpdate] = []
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                object_type, object_id, properties = json.loads(line)
                chunk.append(PropertyUpdate(object_type, object_id, properties))
                if len(chunk) >= size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk


class BulkSpool:
    """Collects a run's updates (``add``), then hands out the calls to send them (``calls``).

    Use as a context manager: leaving it removes the files.  ``unsent`` is what was added and
    not yet handed out as a call (the write-back unmarks it when a run stops early).
    """

    def __init__(self, writer: SalesforceWriter, *, threshold: int, batch_size: int) -> None:
        self._writer, self._threshold, self._batch_size = writer, threshold, batch_size
        self._dir = tempfile.TemporaryDirectory(prefix="closedloop-bulk-")
        self._held: dict[str, list[PropertyUpdate]] = {}
        self._spilled: dict[str, Spill] = {}
        self._packed: list[list[PropertyUpdate]] = []

    def add(self, update: PropertyUpdate) -> None:
        sobject = "" if self._writer.refusal(update) else sobject_of(update.object_id) or ""
        spill = self._spilled.get(sobject)
        if spill is not None:
            spill.write(update, self._writer.field_names(update))
            return
        held = self._held.setdefault(sobject, [])
        held.append(update)
        if sobject and len(held) > self._threshold:
            spill = self._spilled[sobject] = Spill(Path(self._dir.name) / f"{sobject}.jsonl")
            for kept in held:
                spill.write(kept, self._writer.field_names(kept))
            del self._held[sobject]

    def held(self) -> int:
        """Updates held in memory (at most ``threshold`` + 1 per object, plus refused ones)."""
        return sum(len(items) for items in self._held.values())

    def calls(self) -> Iterator[SpooledCall]:
        """One call per spilled object (its Bulk 2.0 job), then the rest packed for collections.

        A call counts as sent once the consumer asks for the next one: one it never took (the
        run stopped) is still ``unsent``.
        """
        from closedloop.connectors.salesforce.writer import pack

        for sobject in sorted(self._spilled):
            spill = self._spilled[sobject]
            spill.close()
            yield lambda sobject=sobject, spill=spill: self._writer.write_spill(sobject, spill)  # type: ignore[misc]
            del self._spilled[sobject]
        self._packed = pack([u for sobject in sorted(self._held) for u in self._held[sobject]], self._batch_size)
        self._held = {}
        while self._packed:
            batch = self._packed[0]
            yield lambda batch=batch: iter([(batch, self._writer.write(batch))])  # type: ignore[misc]
            self._packed.pop(0)

    def unsent(self) -> Iterator[PropertyUpdate]:
        for items in [*self._held.values(), *self._packed]:
            yield from items
        for spill in self._spilled.values():
            for chunk in spill.read():
                yield from chunk

    def close(self) -> None:
        """Remove the files (what was not sent is gone: ``unsent`` first, if it matters)."""
        for spill in self._spilled.values():
            spill.close()
        self._spilled, self._held, self._packed = {}, {}, []
        self._dir.cleanup()

    def __enter__(self) -> BulkSpool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
