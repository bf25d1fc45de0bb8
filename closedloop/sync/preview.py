"""``closedloop writeback --dry-run``: what a run would write, computed without changing the store.

A preview that rebuilt the store's touchpoints and credits with the config it was given left a
later real run nothing to change (and a report reading credits of a config never run).  So the
store is left byte-for-byte as it was:

- stored credits already come from this config (the fingerprint the last rebuild recorded
  matches): the changes are planned from them, which only reads;
- otherwise, on SQLite, the store is copied (SQLite's online backup) into a temporary file, and
  the rebuild and the plan run on the copy, which is then deleted;
- otherwise, on PostgreSQL, the rebuild and the plan run inside one transaction that is then
  rolled back (``store.rollback.rolled_back``: PostgreSQL's DDL and DML are transactional);
- otherwise (an in-memory SQLite store, which has no file to copy) the changes are planned from
  the stored credits, and the preview says they come from another config, so the reader knows
  to run ``closedloop run --no-pull`` first.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from closedloop.config.fingerprint import derivation_fingerprint
from closedloop.config.models import Config
from closedloop.store.engine import make_engine
from closedloop.store.rebuilt import rebuilt_with
from closedloop.store.rollback import rolled_back
from closedloop.sync.derive import rebuild
from closedloop.sync.writeback import dry_run
from closedloop.sync.writeback_state import PropertyChange


@dataclass(frozen=True, slots=True)
class Preview:
    changes: Sequence[PropertyChange]
    # "stored": planned from credits of this config; "copy": rebuilt on a copy of the store;
    # "rollback": rebuilt in a PostgreSQL transaction rolled back afterwards;
    # "stale": planned from credits of another config (no copy possible).
    basis: str
    stored_fingerprint: str | None
    config_fingerprint: str


def preview_changes(engine: Engine, config: Config, *, progress: Callable[[str], None] | None = None) -> Preview:
    wanted = derivation_fingerprint(config)
    with Session(engine) as session:
        stored = rebuilt_with(session)
    if stored == wanted:
        return Preview(dry_run(engine, config), "stored", stored, wanted)
    if engine.dialect.name == "postgresql":
        with rolled_back(engine) as pinned:
            rebuild(pinned, config, progress=progress)
            undone = list(dry_run(pinned, config))  # read before the rollback undoes the rebuild
        return Preview(undone, "rollback", stored, wanted)
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return Preview(dry_run(engine, config), "stale", stored, wanted)
    with tempfile.TemporaryDirectory(prefix="closedloop-preview-") as scratch:
        copy_path = Path(scratch) / "preview.db"
        _backup(engine, copy_path)
        copy = make_engine(f"sqlite:///{copy_path}")
        try:
            rebuild(copy, config, progress=progress)
            changes = dry_run(copy, config)
        finally:
            copy.dispose()
    return Preview(changes, "copy", stored, wanted)


def _backup(engine: Engine, target: Path) -> None:
    """SQLite's online backup: a consistent copy while other connections may read or write."""
    source = engine.raw_connection()
    try:
        raw = source.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        with sqlite3.connect(target) as dest:
            raw.backup(dest)
        dest.close()
    finally:
        source.close()
