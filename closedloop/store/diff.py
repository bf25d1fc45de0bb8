"""Replace a scope of derived rows by diffing: only inserted, changed or removed rows are written.

Derived tables (touchpoints, conversions, credits) are recomputed in full from raw data; the
diff keeps the database writes, and the reported "changed" counts, proportional to real change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, select, tuple_
from sqlalchemy.orm import Session

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


def replace_scope(
    session: Session,
    table: Table,
    *,
    scope_column: str,
    scope_values: Sequence[Any],
    rows: Sequence[dict[str, Any]],
    key: Sequence[str],
) -> DiffCounts:
    """Make the rows of ``table`` whose ``scope_column`` is in ``scope_values`` equal ``rows``."""
    counts = DiffCounts()
    if not scope_values and not rows:
        return counts
    columns = list(rows[0].keys()) if rows else [c.name for c in table.columns]
    existing: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for start in range(0, len(scope_values), 5000):
        chunk = list(scope_values[start : start + 5000])
        result = session.execute(select(*(table.c[c] for c in columns)).where(table.c[scope_column].in_(chunk)))
        for found in result:
            record = dict(zip(columns, found, strict=True))
            existing[tuple(record[k] for k in key)] = tuple(_comparable(record[c]) for c in columns)
    wanted = {tuple(r[k] for k in key): r for r in rows}
    to_write: list[dict[str, Any]] = []
    for k, row in wanted.items():
        before = existing.get(k)
        if before is None:
            counts.inserted += 1
            to_write.append(row)
        elif before != tuple(_comparable(row[c]) for c in columns):
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
