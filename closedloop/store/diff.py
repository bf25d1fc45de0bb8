"""Replace a scope of derived rows by diffing: only inserted, changed or removed rows are written.

Derived tables (touchpoints, conversions, credits) are recomputed in full from raw data; the
diff keeps the database writes, and the reported "changed" counts, proportional to real change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import DateTime, Float, Numeric, Table, TypeDecorator, delete, select, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from closedloop.store.engine import plain_rows
from closedloop.store.upsert import upsert


@dataclass(slots=True)
class DiffCounts:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.deleted

    def add(self, other: DiffCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.deleted += other.deleted


def _comparable(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, datetime):
        return value.timestamp()
    return value


def _needs_normalising(column_type: TypeEngine[Any]) -> bool:
    """Floats (rounding noise) and datetimes (naive or aware): every other value compares as read."""
    impl = column_type.impl if isinstance(column_type, TypeDecorator) else column_type
    return isinstance(impl, Float | Numeric | DateTime)


def replace_scope(
    session: Session,
    table: Table,
    *,
    scope_column: str,
    scope_values: Sequence[Any],
    rows: Sequence[dict[str, Any]],
    key: Sequence[str],
) -> DiffCounts:
    """Make the rows of ``table`` whose ``scope_column`` is in ``scope_values`` equal ``rows``.

    Every run diffs every derived row (millions of credits), so a row is compared as read
    first, and only when that differs with its float and datetime columns normalised.
    """
    counts = DiffCounts()
    if not scope_values and not rows:
        return counts
    columns = list(rows[0].keys()) if rows else [c.name for c in table.columns]
    normalised = [i for i, c in enumerate(columns) if _needs_normalising(table.c[c].type)]
    key_at = [columns.index(k) for k in key]

    def comparable(values: Sequence[Any]) -> tuple[Any, ...]:
        out = list(values)
        for i in normalised:
            out[i] = _comparable(out[i])
        return tuple(out)

    existing: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for start in range(0, len(scope_values), 5000):
        chunk = list(scope_values[start : start + 5000])
        query = select(*(table.c[c] for c in columns)).where(table.c[scope_column].in_(chunk))
        # Fetched a few thousand rows a call, not a call a row (nor all at once).
        for part in plain_rows(session, query).partitions(2000):
            for found in part:
                existing[tuple(found[i] for i in key_at)] = tuple(found)
    wanted = {tuple(r[k] for k in key): r for r in rows}
    values_of = itemgetter(*columns)
    to_write: list[dict[str, Any]] = []
    for k, row in wanted.items():
        before = existing.get(k)
        if before is None:
            counts.inserted += 1
            to_write.append(row)
        else:
            current = values_of(row) if len(columns) > 1 else (row[columns[0]],)
            if before != current and comparable(before) != comparable(current):
                counts.updated += 1
                to_write.append(row)
    removed = [k for k in existing if k not in wanted]
    counts.deleted = len(removed)
    for start in range(0, len(removed), 2000):
        chunk = removed[start : start + 2000]
        if len(key) == 1:
            session.execute(delete(table).where(table.c[key[0]].in_([k[0] for k in chunk])))
        else:
            session.execute(delete(table).where(tuple_(*(table.c[k] for k in key)).in_(chunk)))
    upsert(session, table, to_write, key=key)
    return counts
