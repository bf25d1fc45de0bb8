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
def store(tmp_path: Path) -> Iterator[tuple[Engine, Config, Path]]:
    company = generate_company(contacts=120, seed=5, now=NOW)
    with start_sandbox(company, now=NOW, burst_limit=100_000) as sandbox:
        path = tmp_path / "dry.db"
        url = f"sqlite:///{path}"
        engine = open_store(url)
        yield engine, sandbox.config(store_url=url), path
        engine.dispose()


def run(engine: Engine, config: Config, *, pull: bool = True) -> RunReport:
    connectors = build_connectors(config, sleep=lambda _s: None)
    return run_once(engine=engine, config=config, sources=connectors.sources, writer=connectors.writer,
                    log=connectors.log, now=NOW, pull=pull)


def test_a_dry_run_with_a_new_config_changes_no_table_and_previews_what_the_real_run_writes(
    store: tuple[Engine, Config, Path],
) -> None:
    engine, config, path = store
    assert run(engine, config).status == "ok"
    changed = config.model_copy(update={"mapping": GOOGLE_ADS})
    before, file_before = dump(engine), path.read_bytes()
    preview = preview_changes(engine, changed)
    assert preview.basis == "copy"
    assert preview.changes, "the new rule must change something"
    assert dump(engine) == before
    assert path.read_bytes() == file_before
    # The real run afterwards still has every previewed change to make, and no other.
    report = run(engine, changed, pull=False)
    assert report.writeback is not None
    assert report.writeback.properties_written == len(preview.changes)


def test_a_dry_run_of_the_config_the_credits_came_from_reads_them_as_stored(
    store: tuple[Engine, Config, Path],
) -> None:
    engine, config, _ = store
    assert run(engine, config).status == "ok"
    before = dump(engine)
    preview = preview_changes(engine, config)
    assert preview.basis == "stored" and preview.stored_fingerprint == preview.config_fingerprint
    assert list(preview.changes) == []  # the run wrote everything already
    assert dump(engine) == before
