"""cancellation outcomes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cancellation_outcomes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("buyer_id", sa.String(64), nullable=True),
        sa.Column("order_id", sa.String(32), nullable=False),
        sa.Column("reason_tag", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_cancellation_outcomes_order", "cancellation_outcomes", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_cancellation_outcomes_order", table_name="cancellation_outcomes")
    op.drop_table("cancellation_outcomes")
