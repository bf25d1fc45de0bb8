"""Engine and session factory; the schema is created and upgraded by alembic, never by create_all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, Result, event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, create_engine

from closedloop.store import gate

_MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        gate.register(engine)  # this process's write transactions take turns (see store.gate)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # WAL lets `closedloop report` read while a run writes; NORMAL sync is safe with WAL.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    # configparser interpolates "%": escape it (URL-encoded options such as search_path use it).
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe to call on every start."""
    command.upgrade(alembic_config(engine), "head")


def open_store(url: str) -> Engine:
    engine = make_engine(url)
    migrate(engine)
    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error.

    On SQLite, the transactions of this process's threads queue for their turn first.
    """
    with gate.write_gate(engine) or nullcontext(), Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def plain_rows(session: OrmSession, stmt: Any, *, stream: bool = False) -> Result[*tuple[Any, ...]]:
    """A column query's rows on the session's connection, past the ORM's result machinery,
    which costs microseconds a row over the rebuild's millions; ``stream`` fetches 10,000 at a time."""
    if stream:
        stmt = stmt.execution_options(yield_per=10_000)
    return session.connection().execute(stmt)
