"""The fingerprint of the config the derived tables (touchpoints, conversions, credits) were
last rebuilt with, kept beside the cursors (``sync_cursors``, stream ``closedloop.rebuild``).

Written in the rebuild's last transaction; read by ``report``/``roi`` and the dry run to tell
whether stored credits follow the current YAML (``config.fingerprint.derivation_fingerprint``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from closedloop.config.fingerprint import derivation_fingerprint
from closedloop.config.models import Config
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


@dataclass(frozen=True, slots=True)
class CreditsBasis:
    """Which config the stored credits come from, against the YAML being read now."""

    stored: str | None  # the last rebuild's fingerprint; None: never rebuilt (or before fingerprints)
    current: str

    @property
    def current_matches(self) -> bool:
        return self.stored == self.current

    def warning(self) -> str | None:
        """One line for the reader when sessions (channelled by today's YAML) and credits differ."""
        if self.current_matches:
            return None
        origin = "an unknown config" if self.stored is None else f"another config ({self.stored})"
        return (
            f"Credits in the store come from {origin}, not this YAML ({self.current}): channels and credits "
            "may disagree. Run `closedloop run --no-pull` to rebuild them."
        )

    def as_dict(self) -> dict[str, Any]:
        return {"stored": self.stored, "current": self.current, "current_matches": self.current_matches}


def credits_basis(engine: Engine, config: Config) -> CreditsBasis:
    """``rebuilt_with`` against ``derivation_fingerprint(config)``: what ``report``/``roi`` tell the reader."""
    with Session(engine) as session:
        return CreditsBasis(rebuilt_with(session), derivation_fingerprint(config))
