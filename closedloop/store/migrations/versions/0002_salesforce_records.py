"""Salesforce records: a deal's primary person (OpportunityContactRole.IsPrimary) and offline
touches (campaign responses), which the rebuild channels like web sessions.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import closedloop.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deal_contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("is_primary", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "offline_touches",
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("contact_id", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", closedloop.store.types.UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(length=512), nullable=False),
        sa.Column("medium", sa.String(length=512), nullable=False),
        sa.Column("campaign", sa.String(length=512), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("offline_touches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_offline_touches_contact_id"), ["contact_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("offline_touches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_offline_touches_contact_id"))
    op.drop_table("offline_touches")
    with op.batch_alter_table("deal_contacts", schema=None) as batch_op:
        batch_op.drop_column("is_primary")
