"""``closedloop forget`` as a user runs it: one person leaves every table, and the command says how much went."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, String, func, select
from sqlmodel import SQLModel

from closedloop.connectors.hashing import hash_email
from closedloop.sandbox.company import Company, SyntheticContact
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import start_sandbox
from closedloop.store import models as m
from closedloop.store.engine import open_store
from closedloop.sync.factory import build_connectors
from closedloop.sync.pipeline import run_once

pytestmark = pytest.mark.slow
NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


@dataclass
class World:
    company: Company
    engine: Engine
    config: Path


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    company = generate_company(contacts=120, seed=5, now=NOW, days=60)
    with start_sandbox(company, now=NOW, burst_limit=100_000) as sandbox:
        config = sandbox.config(store_url=store_url)
        connectors = build_connectors(config, sleep=lambda _s: None)
        engine = open_store(store_url)
        report = run_once(engine=engine, config=config, sources=connectors.sources,
                          writer=connectors.writer, log=connectors.log, now=NOW)
    assert report.status == "ok", report.errors
    path = tmp_path / "closedloop.yaml"
    path.write_text(f"version: 1\nstore:\n  url: {store_url}\n"
                    "hubspot:\n  base_url: http://127.0.0.1:9\n  access_token: ${FORGET_TEST_TOKEN}\n")
    yield World(company, engine, path)
    engine.dispose()


def forget(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FORGET_TEST_TOKEN": "unused", "COLUMNS": "200"}  # CLOSEDLOOP_HASH_KEY: conftest's
    return subprocess.run([sys.executable, "-m", "closedloop", "forget", "--config", str(world.config), *args],
                          capture_output=True, text=True, timeout=120, env=env, check=False)


def mentions(engine: Engine, ids: set[str], texts: set[str]) -> list[tuple[str, str]]:
    """(table, column) of every cell in every table equal to one of ``ids`` or containing one of ``texts``."""
    found: list[tuple[str, str]] = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            columns = list(table.columns)
            for row in conn.execute(select(*columns)):
                for column, value in zip(columns, row, strict=True):
                    if not isinstance(value, str | dict | list):
                        continue
                    text = value if isinstance(value, str) else json.dumps(value)
                    in_json = isinstance(value, dict | list) and any(f'"{i}"' in text for i in ids)
                    if text in ids or in_json or any(t in text for t in texts):
                        found.append((table.name, column.name))
    return found


def _count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(m.table(model))).scalar_one())


def _person_with_sessions(world: World) -> SyntheticContact:
    with world.engine.connect() as conn:
        owners = set(conn.execute(select(m.table(m.Touchpoint).c.contact_id)
                                  .where(m.table(m.Touchpoint).c.is_offline.is_(False))).scalars())
    return next(c for c in world.company.contacts if c.id in owners and c.ga_client_ids)


def test_forget_by_email_removes_every_row_that_names_the_person(world: World) -> None:
    person = _person_with_sessions(world)
    ids, texts = {person.id}, {hash_email(person.email), person.email, *person.ga_client_ids}
    assert mentions(world.engine, ids, texts), "the person is in the store before"
    before = {model: _count(world.engine, model) for model in (m.Contact, m.Touchpoint, m.WebSession)}
    done = forget(world, "--email", person.email.upper(), "--json")  # the same person whatever the case
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["contact_ids"] == [person.id]
    removed = out["removed"]
    assert removed["contacts"] == 1 and removed["contact_identities"] >= 1 + len(person.ga_client_ids)
    assert removed["web_sessions"] >= 1 and removed["touchpoints"] >= 1
    assert out["total"] == sum(removed.values())
    for model, table in ((m.Contact, "contacts"), (m.Touchpoint, "touchpoints"), (m.WebSession, "web_sessions")):
        assert _count(world.engine, model) == before[model] - removed[table]  # it counts what it removed
    assert mentions(world.engine, ids, texts) == []
    assert person.email not in done.stdout + done.stderr


def test_forget_by_contact_id_prints_a_table_and_a_second_time_finds_nobody(world: World) -> None:
    person = _person_with_sessions(world)
    done = forget(world, "--contact-id", person.id)
    assert done.returncode == 0, done.stderr
    assert f"Forgot contact(s) {person.id}" in done.stdout and "contacts" in done.stdout
    assert "next run pulls them back" in done.stdout
    assert mentions(world.engine, {person.id}, {hash_email(person.email), *person.ga_client_ids}) == []
    again = forget(world, "--contact-id", person.id, "--json")
    assert json.loads(again.stdout)["removed"] == {}


def test_forget_needs_a_person(world: World) -> None:
    done = forget(world)
    assert done.returncode == 2 and "--email" in done.stderr
    assert forget(world, "--email", "not-an-address").returncode == 2


def test_string_id_columns_are_scanned(world: World) -> None:
    """The scan above must see id columns (SQLModel's AutoString is not a String subclass)."""
    person = _person_with_sessions(world)
    assert ("contacts", "id") in mentions(world.engine, {person.id}, set())
    assert any(isinstance(getattr(c.type, "impl", c.type), String) for c in m.table(m.Contact).columns)
