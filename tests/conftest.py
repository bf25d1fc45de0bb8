"""Shared fixtures: a frozen clock, and a store on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from closedloop.store.engine import open_store

FROZEN_NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
POSTGRES_URL = os.environ.get("CLOSEDLOOP_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("CLOSEDLOOP_REQUIRE_POSTGRES") == "1"
# The email hash key of every test (and of the CLI processes they start): no key file is created in the checkout.
os.environ.setdefault("CLOSEDLOOP_HASH_KEY", "closedloop-tests-email-hash-key")


@pytest.fixture
def now() -> datetime:
    return FROZEN_NOW


@contextmanager
def fresh_store_url(backend: str, where: Path, *, prefix: str = "cl_test") -> Iterator[str]:
    """A SQLite file under ``where``, or a schema of its own in the test PostgreSQL, dropped after."""
    if backend == "sqlite":
        yield f"sqlite:///{where / 'store.db'}"
        return
    assert POSTGRES_URL, "the PostgreSQL store needs CLOSEDLOOP_TEST_POSTGRES_URL"
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated store: a SQLite file, or a schema of its own in the test PostgreSQL."""
    if request.param == "postgresql" and not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("CLOSEDLOOP_REQUIRE_POSTGRES=1 but CLOSEDLOOP_TEST_POSTGRES_URL is not set")
        pytest.skip("set CLOSEDLOOP_TEST_POSTGRES_URL=postgresql://user@host/db to run the PostgreSQL store tests")
    with fresh_store_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    eng = open_store(store_url)
    yield eng
    eng.dispose()
