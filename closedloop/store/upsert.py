"""Bulk upserts that work the same on SQLite and PostgreSQL (INSERT ... ON CONFLICT)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

_CHUNK_PARAMS = 30_000  # below SQLite's 32,766 bound parameters and PostgreSQL's 65,535


def upsert(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], *, key: Sequence[str],
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
    per_chunk = max(1, _CHUNK_PARAMS // max(1, len(columns)))
    for start in range(0, len(unique), per_chunk):
        stmt = insert(table).values(unique[start:start + per_chunk])
        if to_update:
            stmt = stmt.on_conflict_do_update(
                index_elements=list(key), set_={c: stmt.excluded[c] for c in to_update},
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
        session.execute(stmt)
    return len(unique)
