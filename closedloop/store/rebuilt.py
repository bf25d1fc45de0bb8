"""The fingerprint of the config the derived tables (touchpoints, conversions, credits) were
last rebuilt with, kept beside the cursors (``sync_cursors``, stream ``closedloop.rebuild``).

Written in the rebuild's last transaction; read by ``report``/``roi`` and the dry run to tell
whether stored credits follow the current YAML (``config.fingerprint.derivation_fingerprint``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from closedloop.store import models as m
from closedloop.store.models import table
from closedloop.store.upsert import upsert

STREAM = "closedloop.rebuild"


def record_rebuild(session: Session, fingerprint: str, *, now: datetime | None = None) -> None:
    at = now or datetime.now(UTC)
    upsert(
        session,
        table(m.SyncCursor),
        [{"stream": STREAM, "state": {"config_fingerprint": fingerprint, "at": at.isoformat()}, "updated_at": at}],
        key=("stream",),
    )


def rebuilt_with(session: Session) -> str | None:
    """The fingerprint of the last rebuild; None if the store was never rebuilt."""
    row = session.get(m.SyncCursor, STREAM)
    return None if row is None else (row.state or {}).get("config_fingerprint")
