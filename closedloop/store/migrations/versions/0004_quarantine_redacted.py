"""Quarantine rows written before the privacy rules keep raw properties (emails included):
rewrite each payload to ids, field types and lengths, and strip email addresses from reasons.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from closedloop.store.redact import redact_payload, redact_reason

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

QUARANTINE = sa.table(
    "quarantine", sa.column("id", sa.Integer), sa.column("reason", sa.Text), sa.column("payload", sa.JSON)
)


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(QUARANTINE.c.id, QUARANTINE.c.reason, QUARANTINE.c.payload)).all()
    for row_id, reason, payload in rows:
        done = isinstance(payload, dict) and set(payload) == {"ids", "fields"}
        redacted = payload if done else redact_payload(payload)
        conn.execute(
            QUARANTINE.update()
            .where(QUARANTINE.c.id == row_id)
            .values(reason=redact_reason(reason or ""), payload=redacted)
        )


def downgrade() -> None:
    """The raw values are gone; nothing to restore."""
