"""A store that cannot be opened is one StoreError naming scheme and host, never the password."""

from __future__ import annotations

from pathlib import Path

import pytest

from closedloop.errors import StoreError
from closedloop.store.engine import make_engine, open_store

SECRET = "hunter2-not-for-logs"


def _closed_port() -> int:
    """A local port nothing listens on: bound, then released."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_postgres_names_scheme_host_and_port_not_the_password() -> None:
    port = _closed_port()
    with pytest.raises(StoreError) as caught:
        open_store(f"postgresql+psycopg://closedloop:{SECRET}@127.0.0.1:{port}/closedloop?connect_timeout=2")
    message = str(caught.value)
    assert f"postgresql+psycopg://127.0.0.1:{port}" in message
    assert "cannot be opened or migrated" in message
    assert SECRET not in message and "closedloop:" not in message
    assert "\n" not in message


def test_sqlite_file_in_a_missing_directory_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "no-such-dir" / "store.db"
    with pytest.raises(StoreError, match="unable to open database file") as caught:
        open_store(f"sqlite:///{path}")
    assert f"sqlite:///{path}" in str(caught.value)


def test_unparsable_url_does_not_echo_it() -> None:
    with pytest.raises(StoreError, match="cannot be parsed") as caught:
        make_engine(f"not a url with {SECRET}")
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_unknown_dialect_is_named() -> None:
    with pytest.raises(StoreError, match="nosuchdb") as caught:
        make_engine(f"nosuchdb://user:{SECRET}@db.example:5432/x")
    assert "db.example:5432" in str(caught.value) and SECRET not in str(caught.value)
