"""Bulk upserts that work the same on SQLite and PostgreSQL (INSERT ... ON CONFLICT)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

_CHUNK_ROWS = 10_000


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str],
    update: Sequence[str] | None = None,
) -> int:
    """Insert rows, or update the given columns (default: all non-key) where the key exists."""
    if not rows:
        return 0
    # One statement per distinct key: PostgreSQL refuses two rows for one key in one INSERT.
    unique = list({tuple(r[k] for k in key): r for r in rows}.values())
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    columns = list(unique[0].keys())
    to_update = [c for c in (update if update is not None else columns) if c not in key]
    stmt = insert(table)
    if to_update:
        stmt = stmt.on_conflict_do_update(index_elements=list(key), set_={c: stmt.excluded[c] for c in to_update})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
    # executemany with plain parameter rows: compiling a multi-row VALUES clause costs far more.
    for start in range(0, len(unique), _CHUNK_ROWS):
        session.execute(stmt, unique[start : start + _CHUNK_ROWS])
    return len(unique)


def shallow_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as a row: unlike ``dataclasses.asdict`` it does not deep-copy every value."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}
