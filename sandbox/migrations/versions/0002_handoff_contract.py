"""escalations say whether they accuse the merchant; merchants link their Telegram chat with a token

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("escalations") as batch:
        batch.add_column(
            sa.Column("accuses_merchant", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "merchant_link_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_by", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.merchant_id"],
            name=op.f("fk_merchant_link_tokens_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_merchant_link_tokens")),
    )
    op.create_index(
        op.f("ix_merchant_link_tokens_merchant_id"), "merchant_link_tokens", ["merchant_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_merchant_link_tokens_merchant_id"), table_name="merchant_link_tokens")
    op.drop_table("merchant_link_tokens")
    with op.batch_alter_table("escalations") as batch:
        batch.drop_column("accuses_merchant")
