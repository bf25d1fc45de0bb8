"""Engine and session factory; the schema is created and upgraded by alembic, never by create_all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, Result, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, create_engine

from closedloop.errors import StoreError
from closedloop.store import gate

_MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url``; a URL that names no usable database is a ``StoreError``."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError("the store URL cannot be parsed (expected dialect://user@host/database)") from None
    try:
        return _create(url, parsed, echo=echo)
    except ArgumentError as exc:  # an unknown dialect or driver (NoSuchModuleError is one)
        raise StoreError(f"the store at {where(parsed)} cannot be used: {_reason(exc, parsed)}") from None


def _create(url: str, parsed: URL, *, echo: bool) -> Engine:
    if parsed.get_backend_name() == "sqlite":
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
    """Bring the schema to the newest revision; safe to call on every start.

    A store that cannot be reached or written (refused connection, wrong password, read-only
    file) is a ``StoreError`` naming the scheme and host, so the user sees one line to act on.
    """
    with store_errors(engine.url, "opened or migrated"):
        command.upgrade(alembic_config(engine), "head")


@contextmanager
def store_errors(url: URL, doing: str = "opened") -> Iterator[None]:
    """Turn SQLAlchemy's ``OperationalError`` inside the block into a ``StoreError``.

    The message names the URL's scheme and host and the driver's first line of complaint,
    with the password struck out should a driver ever echo it; never the full URL.
    """
    try:
        yield
    except OperationalError as exc:
        raise StoreError(f"the store at {where(url)} cannot be {doing}: {_reason(exc, url)}") from exc


def where(url: URL) -> str:
    """``postgresql+psycopg://db.internal:5432`` or ``sqlite:///path``: what a message may show."""
    if url.get_backend_name() == "sqlite":
        return f"{url.drivername}:///{url.database or ':memory:'}"
    port = f":{url.port}" if url.port else ""
    return f"{url.drivername}://{url.host or 'localhost'}{port}"


def _reason(exc: BaseException, url: URL) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    reason = lines[0] if lines else type(orig).__name__
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return reason[:300]


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
