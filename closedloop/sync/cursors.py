"""Cursors live in the store beside the data (like dlt's state), committed with each batch."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from closedloop.store.models import SyncCursor


def load_cursor(session: Session, stream: str) -> dict[str, Any] | None:
    row = session.get(SyncCursor, stream)
    return dict(row.state) if row is not None else None
