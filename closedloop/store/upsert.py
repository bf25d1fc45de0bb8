"""Bulk upserts that work the same on SQLite and PostgreSQL (INSERT ... ON CONFLICT)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import Float, Integer, String, Table, bindparam
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
    if _needs_no_conversion(table, columns) and _driver_executemany(
        session, stmt.values({c: bindparam(c) for c in columns}), columns, unique
    ):
        return len(unique)
    # executemany with plain parameter rows: compiling a multi-row VALUES clause costs far more.
    for start in range(0, len(unique), _CHUNK_ROWS):
        session.execute(stmt, unique[start : start + _CHUNK_ROWS])
    return len(unique)


_PLAIN_TYPES = (String, Integer, Float)  # drivers take str, int and float values as they are


def _needs_no_conversion(table: Table, columns: Sequence[str]) -> bool:
    """True when every value goes to the driver as it is (no JSON, no dates, no time zones)."""
    return all(isinstance(table.c[c].type, _PLAIN_TYPES) for c in columns)


def _driver_executemany(session: Session, stmt: Any, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> bool:
    """Hand the rows straight to the driver's executemany; False if the statement needs more.

    SQLAlchemy's per-row parameter processing costs several microseconds a row, which is most of
    the time when millions of credit rows are written; the statement is compiled once instead.
    Columns the rows leave to their defaults need SQLAlchemy to fill them: that is refused here.
    """
    connection = session.connection()
    compiled = stmt.compile(dialect=connection.dialect)
    if not set(compiled.binds) <= set(columns):
        return False
    positional = connection.dialect.positional
    order = compiled.positiontup if positional else None
    for start in range(0, len(rows), _CHUNK_ROWS):
        chunk = rows[start : start + _CHUNK_ROWS]
        if order is not None:
            params: list[Any] = [tuple(row[name] for name in order) for row in chunk]
        else:
            params = [{name: row[name] for name in columns} for row in chunk]
        connection.exec_driver_sql(compiled.string, params)
    return True


def shallow_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as a row: unlike ``dataclasses.asdict`` it does not deep-copy every value."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}
