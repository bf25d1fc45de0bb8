"""Deal currency: the deal's ISO 4217 code and the CRM's own amount in its home currency, so
deals in several currencies are credited in one reporting currency instead of summed raw.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("currency", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("amount_home", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.drop_column("amount_home")
        batch_op.drop_column("currency")
