"""Work on a PostgreSQL store that is undone afterwards: one transaction, rolled back.

``writeback --dry-run`` must compute what a rebuild with another config would write, and
leave the store exactly as it was.  SQLite gets a copy of its file; a PostgreSQL store cannot
be copied cheaply, but PostgreSQL has transactional DDL and DML.  So the rebuild runs on an
engine that holds one connection of the store, on which a commit is not a commit: every
session and connection of the rebuild shares that one open transaction (each sees what the
others wrote), and leaving ``rolled_back`` rolls all of it back.  Other readers of the store
never see any of it (READ COMMITTED), and locks taken last only until the rollback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import StaticPool


def _nothing(_dbapi_connection: Any) -> None:
    """A commit, rollback or close of the scratch engine: it stays in the one transaction."""


@contextmanager
def rolled_back(engine: Engine) -> Iterator[Engine]:
    """An engine on one connection of ``engine`` whose every write is rolled back on leaving.

    Use it from one thread at a time (it is one connection).  A failed statement aborts the
    transaction, so the work fails as a whole rather than going on with half of it.
    """
    if engine.dialect.name != "postgresql":
        raise ValueError(f"rolled_back needs PostgreSQL's transactional DDL, not {engine.dialect.name}")
    fairy = engine.raw_connection()
    try:
        real = fairy.driver_connection
        scratch = create_engine(engine.url, poolclass=StaticPool, creator=lambda: real)
        # The engine's sessions end their transactions, the pool resets the connection it gets
        # back and closes it on dispose: through this dialect none of that reaches the database.
        for hook in ("do_commit", "do_rollback", "do_close"):
            setattr(scratch.dialect, hook, _nothing)
        try:
            yield scratch
        finally:
            scratch.dispose()
            real.rollback()  # type: ignore[union-attr]
    finally:
        fairy.close()
