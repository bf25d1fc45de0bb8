"""Bulk upserts that work the same on SQLite and PostgreSQL (INSERT ... ON CONFLICT), and inserts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from itertools import chain
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Connection, Table, bindparam, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

_CHUNK_ROWS = 10_000
# Where a value cut to its column's size ends, so a reader sees it was cut.
TRUNCATION_MARK = "\u2026"
# ``Session.info`` key of the count of values cut (and key rows left out) by ``fit_to_columns``.
OVERSIZED = "closedloop.oversized"
# SQLite before 3.32 allowed 999 variables a statement; staying under it costs nothing here.
_SQLITE_VARIABLES = 999


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
    key_of = itemgetter(*key)
    unique = fit_to_columns(session, table, list({key_of(r): r for r in rows}.values()), key=key)
    if not unique:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    columns = list(unique[0].keys())
    to_update = [c for c in (update if update is not None else columns) if c not in key]
    stmt = insert(table)
    if to_update:
        stmt = stmt.on_conflict_do_update(index_elements=list(key), set_={c: stmt.excluded[c] for c in to_update})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
    values = stmt.values({c: bindparam(c) for c in columns})
    if _driver_executemany(session.connection(), table, values, columns, unique):
        return len(unique)
    # executemany with plain parameter rows: compiling a multi-row VALUES clause costs far more.
    for start in range(0, len(unique), _CHUNK_ROWS):
        session.execute(stmt, unique[start : start + _CHUNK_ROWS])
    return len(unique)


def fit_to_columns(
    session: Session, table: Table, rows: list[dict[str, Any]], *, key: Sequence[str]
) -> list[dict[str, Any]]:
    """The one rule for text longer than its column, the same on SQLite and PostgreSQL.

    PostgreSQL refuses such a value (and with it the batch, and every later run that pulls the
    record again); SQLite stores it whole.  Here, with the sizes read from the table's metadata:
    a value of a non-key column is cut to the column's size, its last character replaced by
    ``TRUNCATION_MARK``; a row whose *key* does not fit is left out, since a cut key could
    merge two records.  Either is counted in ``session.info[OVERSIZED]`` ("table.column" ->
    count), which the run record shows as warnings.
    """
    sized = _sized_columns(table, rows[0].keys())
    if not sized:
        return rows
    counts: Counter[str] = session.info.setdefault(OVERSIZED, Counter())
    for name, size in sized:
        if max((len(v) for v in map(itemgetter(name), rows) if v.__class__ is str), default=0) <= size:
            continue  # the common case: one pass over the column, nothing to change
        is_key = name in key
        kept = []
        for row in rows:
            value = row[name]
            if not isinstance(value, str) or len(value) <= size:
                kept.append(row)
                continue
            counts[f"{table.name}.{name}{' (key: row left out)' if is_key else ''}"] += 1
            if not is_key:
                kept.append({**row, name: value[: size - 1] + TRUNCATION_MARK})
        rows = kept
        if not rows:
            return rows
    return rows


def _sized_columns(table: Table, names: Iterable[str]) -> list[tuple[str, int]]:
    out = []
    for name in names:
        length = getattr(table.c[name].type, "length", None)
        if isinstance(length, int) and length > 0:
            out.append((name, length))
    return out


def insert_rows(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Plain inserts (no conflict handling) by the same driver path as ``upsert``."""
    if not rows:
        return
    columns = list(rows[0].keys())
    stmt = insert(table).values({c: bindparam(c) for c in columns})
    if not _driver_executemany(connection, table, stmt, columns, rows):
        connection.execute(insert(table), list(rows))


def _driver_executemany(
    connection: Connection, table: Table, stmt: Any, columns: Sequence[str], rows: Sequence[dict[str, Any]]
) -> bool:
    """Hand the rows straight to the driver's executemany; False if the statement needs more.

    SQLAlchemy's per-row parameter processing costs several microseconds a row, which was most
    of the rebuild's time with millions of credit rows; the statement is compiled once instead
    and each value goes through its column type's own bind processor (dates to naive UTC, JSON
    to text), exactly what SQLAlchemy would apply.  Columns the rows leave to their defaults
    need SQLAlchemy to fill them: that is refused here.
    """
    dialect = connection.dialect
    compiled = stmt.compile(dialect=dialect)
    if not set(compiled.binds) <= set(columns):
        return False
    processors = {name: table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns}
    converted = {
        name: _quick_empty(process) if isinstance(table.c[name].type, JSON) else process
        for name, process in processors.items()
        if process is not None
    }
    order = list(compiled.positiontup) if dialect.positional and compiled.positiontup else None
    names = order if order is not None else list(columns)
    for start in range(0, len(rows), _CHUNK_ROWS):
        chunk = rows[start : start + _CHUNK_ROWS]
        # Column by column: only the columns whose type converts (dates, JSON) go through
        # Python a value at a time; the others are gathered and zipped into rows in C.
        by_column = [
            map(converted[name], map(itemgetter(name), chunk)) if name in converted else map(itemgetter(name), chunk)
            for name in names
        ]
        if order is not None:
            params: list[Any] = list(zip(*by_column, strict=True))
            if dialect.name == "sqlite" and _many_rows_a_statement(connection, compiled.string, len(names), params):
                continue
        else:
            params = [dict(zip(names, values, strict=True)) for values in zip(*by_column, strict=True)]
        connection.exec_driver_sql(compiled.string, params)
    return True


def _quick_empty(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A JSON column's bind processor that answers an empty dict without encoding it: most
    sessions carry no click ids, and encoding ``{}`` half a million times was seconds of a pull."""
    empty = process({})

    def quick(value: Any) -> Any:
        return empty if value == {} and isinstance(value, dict) else process(value)

    return quick


def _many_rows_a_statement(connection: Any, sql: str, width: int, params: list[Any]) -> bool:
    """Run ``sql`` with its VALUES group repeated, so one statement step writes many rows.

    sqlite3 releases the GIL around every step of an executemany: a row at a time, a thread
    writing while another computes waits for the GIL again after every row (hundreds of
    milliseconds for a few hundred rows).  A statement of many rows hands it over once per
    statement.  False (nothing run) if the statement's shape is not the one expected.
    """
    group = "(" + ", ".join(["?"] * width) + ")"
    marker = f"VALUES {group}"
    if sql.count(marker) != 1 or sql.count("?") != width:
        return False
    per_statement = _SQLITE_VARIABLES // width
    whole = len(params) - len(params) % per_statement
    if whole:
        many = sql.replace(marker, "VALUES " + ", ".join([group] * per_statement))
        flat = [tuple(chain.from_iterable(params[at : at + per_statement])) for at in range(0, whole, per_statement)]
        connection.exec_driver_sql(many, flat if len(flat) > 1 else flat[0])
    # The rest a row a time: a statement text per tail length would fill sqlite3's statement
    # cache with large programs, a few hundred kilobytes each, on every pooled connection.
    if whole < len(params):
        connection.exec_driver_sql(sql, params[whole:])
    return True


def shallow_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as a row: unlike ``dataclasses.asdict`` it does not deep-copy every value."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}
