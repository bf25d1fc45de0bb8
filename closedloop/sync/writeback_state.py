"""What closedloop wrote, is writing, and failed to write, per CRM property.

Every value is marked in flight before its batch is sent and confirmed (or failed) after.  A
crash between the two leaves the mark; the next run reads those properties back from the CRM
and counts a value already there as written, so a restart never sends the same value twice.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlmodel import Session, col

from closedloop.connectors.base import CRMWriter, ObjectType, WriteResult
from closedloop.store import models as m
from closedloop.store.engine import session_scope
from closedloop.store.models import table
from closedloop.store.upsert import upsert

KEY = ("object_type", "object_id", "property")


@dataclass(frozen=True, slots=True)
class PropertyChange:
    object_type: ObjectType
    object_id: str
    property: str
    old: str | None
    new: str


@dataclass(slots=True)
class WritebackStats:
    properties_created: list[str] = field(default_factory=list)
    objects_written: int = 0
    properties_written: int = 0
    records_failed: int = 0
    records_given_up: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    by_property: dict[str, int] = field(default_factory=dict)
    reconciled: int = 0  # values found already written after a crash, not sent again
    # Values with no write-back state that the CRM already held as computed (read with the
    # pull): a first run on a portal that has values sends only the real differences.
    already_right: int = 0


def mark_in_flight(engine: Engine, changes: Sequence[PropertyChange]) -> None:
    rows = [
        # ``attempts`` only for a new row (the update touches in_flight_value alone): a row that
        # names every column goes to the driver in one statement.
        {
            "object_type": c.object_type,
            "object_id": c.object_id,
            "property": c.property,
            "in_flight_value": c.new,
            "attempts": 0,
        }
        for c in changes
    ]
    with session_scope(engine) as session:
        upsert(session, table(m.WritebackState), rows, key=KEY, update=["in_flight_value"])


def record_outcome(
    engine: Engine,
    result: WriteResult,
    changes_by_object: dict[tuple[ObjectType, str], list[PropertyChange]],
    *,
    now: datetime,
    stats: WritebackStats,
) -> None:
    rows: list[dict[str, Any]] = []
    for written in result.written:
        stats.objects_written += 1
        for change in changes_by_object.pop((written.object_type, written.object_id), []):
            stats.properties_written += 1
            name = f"{change.object_type}.{change.property}"
            stats.by_property[name] = stats.by_property.get(name, 0) + 1
            rows.append(_written_row(change.object_type, change.object_id, change.property, change.new, now))
    with session_scope(engine) as session:
        upsert(session, table(m.WritebackState), rows, key=KEY)
        for failure in result.failed:
            stats.records_failed += 1
            if len(stats.failures) < 50:
                stats.failures.append(
                    {"object": f"{failure.object_type}/{failure.object_id}", "reason": failure.reason}
                )
            for change in changes_by_object.pop((failure.object_type, failure.object_id), []):
                _record_failure(session, change, failure.reason)


class OutcomeLog:
    """Outcomes of sent batches, recorded in one transaction per ``every`` batches, by a thread
    of its own: a send goes on to its next batch instead of waiting for the store.

    Until recorded, a sent value stays marked in flight: a crash in between loses nothing, as
    the next run reads marked values back before planning.  Leaving the ``with`` block records
    the rest and raises the first recording error.
    """

    def __init__(self, engine: Engine, *, now: datetime, stats: WritebackStats, every: int = 10) -> None:
        self._engine, self._now, self._stats, self._every = engine, now, stats, every
        self._lock = threading.Lock()
        self._result = WriteResult()
        self._changes: dict[tuple[ObjectType, str], list[PropertyChange]] = {}
        self._batches = 0
        self._recorder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="record")
        self._recording: list[Future[None]] = []

    def add(self, result: WriteResult, changes_by_object: dict[tuple[ObjectType, str], list[PropertyChange]]) -> None:
        with self._lock:
            self._result.extend(result)
            self._changes.update(changes_by_object)
            self._batches += 1
            if self._batches >= self._every:
                self._hand_over()
            done: list[Future[None]] = []
            running: list[Future[None]] = []
            for future in self._recording:  # one look each: a future may finish in between
                (done if future.done() else running).append(future)
            self._recording = running
        for future in done:
            future.result()  # a recording error surfaces in the send that comes next

    def _hand_over(self) -> None:
        if self._batches:
            result, changes = self._result, self._changes
            self._recording.append(
                self._recorder.submit(record_outcome, self._engine, result, changes, now=self._now, stats=self._stats)
            )
        self._result, self._changes, self._batches = WriteResult(), {}, 0

    def __enter__(self) -> OutcomeLog:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        with self._lock:
            self._hand_over()
            recording = self._recording
            self._recording = []
        self._recorder.shutdown(wait=True)
        for future in recording:
            error = future.exception()
            if error is not None and exc_type is None:  # else the error on its way out is reported
                raise error


def clear_in_flight(engine: Engine, changes: Sequence[PropertyChange]) -> None:
    """Unmark values that were marked in flight but never sent."""
    by_object: dict[tuple[str, str], list[str]] = defaultdict(list)
    for c in changes:
        by_object[(c.object_type, c.object_id)].append(c.property)
    if not by_object:
        return
    state = table(m.WritebackState)
    with session_scope(engine) as session:
        for (object_type, object_id), properties in by_object.items():
            session.execute(
                update(state)
                .where(
                    state.c.object_type == object_type,
                    state.c.object_id == object_id,
                    state.c.property.in_(properties),
                )
                .values(in_flight_value=None)
            )


def _written_row(object_type: str, object_id: str, prop: str, value: str, now: datetime) -> dict[str, Any]:
    return {
        "object_type": object_type,
        "object_id": object_id,
        "property": prop,
        "value": value,
        "written_at": now,
        "in_flight_value": None,
        "pending_value": None,
        "attempts": 0,
        "last_error": None,
    }


def _record_failure(session: Session, change: PropertyChange, reason: str) -> None:
    row = session.get(m.WritebackState, (change.object_type, change.object_id, change.property))
    if row is None:
        row = m.WritebackState(object_type=change.object_type, object_id=change.object_id, property=change.property)
        session.add(row)
    if row.pending_value != change.new:
        row.attempts = 0  # a new value gets its own attempts
    row.in_flight_value = None
    row.pending_value = change.new
    row.attempts = (row.attempts or 0) + 1
    row.last_error = reason[:1000]


def reconcile_in_flight(engine: Engine, writer: CRMWriter, *, now: datetime) -> int:
    """After a crash: values the CRM already holds count as written; the rest are re-planned."""
    in_flight: dict[ObjectType, dict[str, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    with Session(engine) as session:
        for object_type, object_id, prop, value in session.execute(
            select(
                col(m.WritebackState.object_type),
                col(m.WritebackState.object_id),
                col(m.WritebackState.property),
                col(m.WritebackState.in_flight_value),
            ).where(col(m.WritebackState.in_flight_value).is_not(None))
        ):
            in_flight[object_type][object_id][prop] = value
    confirmed: list[dict[str, Any]] = []
    for object_type, objects in in_flight.items():
        properties = sorted({p for props in objects.values() for p in props})
        current = writer.read_properties(object_type, list(objects), properties)
        for object_id, props in objects.items():
            for prop, value in props.items():
                if (current.get(object_id) or {}).get(prop) == value:
                    confirmed.append(_written_row(object_type, object_id, prop, value, now))
    with session_scope(engine) as session:
        upsert(session, table(m.WritebackState), confirmed, key=KEY)
        session.execute(
            update(m.WritebackState)
            .where(col(m.WritebackState.in_flight_value).is_not(None))
            .values(in_flight_value=None)
        )
    return len(confirmed)


def count_given_up(engine: Engine, max_attempts: int) -> int:
    with Session(engine) as session:
        rows = session.execute(
            select(col(m.WritebackState.object_id)).where(col(m.WritebackState.attempts) >= max_attempts)
        ).all()
    return len(rows)
