"""``writeback --dry-run`` leaves the store exactly as it was, and still previews the right changes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, select

from closedloop.config.mapping import MappingConfig
from closedloop.config.models import Config
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import start_sandbox
from closedloop.store.engine import open_store
from closedloop.sync.factory import build_connectors
from closedloop.sync.pipeline import RunReport, run_once
from closedloop.sync.preview import preview_changes

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
GOOGLE_ADS = MappingConfig.model_validate({"channel_rules": [
    {"name": "Google Ads", "channel": "Google Ads", "when": {"all": [
        {"field": "source", "equals": "google"}, {"field": "medium", "equals": "cpc"}]}}]})


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    meta = MetaData()
    meta.reflect(engine)
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for name, tbl in sorted(meta.tables.items()):
            order = list(tbl.primary_key.columns) or list(tbl.columns)
            out[name] = [tuple(row) for row in conn.execute(select(tbl).order_by(*order))]
    return out


@pytest.fixture
def store(store_url: str) -> Iterator[tuple[Engine, Config, Path | None]]:
    """A store on SQLite (with its file, compared byte for byte) or PostgreSQL (conftest's schema)."""
    company = generate_company(contacts=120, seed=5, now=NOW)
    with start_sandbox(company, now=NOW, burst_limit=100_000) as sandbox:
        engine = open_store(store_url)
        path = Path(engine.url.database or "") if engine.dialect.name == "sqlite" else None
        yield engine, sandbox.config(store_url=store_url), path
        engine.dispose()


def run(engine: Engine, config: Config, *, pull: bool = True) -> RunReport:
    connectors = build_connectors(config, sleep=lambda _s: None)
    return run_once(engine=engine, config=config, sources=connectors.sources, writer=connectors.writer,
                    log=connectors.log, now=NOW, pull=pull)


def test_a_dry_run_with_a_new_config_changes_no_table_and_previews_what_the_real_run_writes(
    store: tuple[Engine, Config, Path | None],
) -> None:
    engine, config, path = store
    assert run(engine, config).status == "ok"
    changed = config.model_copy(update={"mapping": GOOGLE_ADS})
    before, file_before = dump(engine), path.read_bytes() if path else b""
    preview = preview_changes(engine, changed)
    # SQLite: rebuilt on a copy of the file; PostgreSQL: in one transaction, rolled back.
    assert preview.basis == ("copy" if path else "rollback")
    assert preview.changes, "the new rule must change something"
    assert any(c.new and "Google Ads" in c.new for c in preview.changes)
    assert dump(engine) == before
    if path:
        assert path.read_bytes() == file_before
    # The real run afterwards still has every previewed change to make, and no other.
    report = run(engine, changed, pull=False)
    assert report.writeback is not None
    assert report.writeback.properties_written == len(preview.changes)


def test_a_dry_run_of_the_config_the_credits_came_from_reads_them_as_stored(
    store: tuple[Engine, Config, Path | None],
) -> None:
    engine, config, _ = store
    assert run(engine, config).status == "ok"
    before = dump(engine)
    preview = preview_changes(engine, config)
    assert preview.basis == "stored" and preview.stored_fingerprint == preview.config_fingerprint
    assert list(preview.changes) == []  # the run wrote everything already
    assert dump(engine) == before


def test_rolled_back_undoes_what_its_sessions_committed(store_url: str) -> None:
    from sqlalchemy import func

    from closedloop.store import models as m
    from closedloop.store.engine import session_scope
    from closedloop.store.rollback import rolled_back

    engine = open_store(store_url)
    try:
        if engine.dialect.name != "postgresql":
            with pytest.raises(ValueError), rolled_back(engine):
                pass
            return
        row = {"id": "c1", "created_at": NOW, "updated_at": NOW, "properties": {}}
        with rolled_back(engine) as pinned:
            with session_scope(pinned) as session:  # commits, as the rebuild's sessions do
                session.add(m.Contact(**row))
            with session_scope(pinned) as session:  # a later session sees it: one transaction
                assert session.execute(select(func.count()).select_from(m.Contact)).scalar_one() == 1
            with engine.connect() as other:  # nobody else does
                assert other.execute(select(func.count()).select_from(m.Contact)).scalar_one() == 0
        with engine.connect() as after:
            assert after.execute(select(func.count()).select_from(m.Contact)).scalar_one() == 0
    finally:
        engine.dispose()
