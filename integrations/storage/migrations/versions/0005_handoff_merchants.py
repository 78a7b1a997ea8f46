"""handoff: merchants' own chats (private chats with topics), merchant topic per ticket, accusation flag

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("handoff_tickets") as batch:
        batch.add_column(sa.Column("merchant_topic_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("agents_card_id", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("accuses_merchant", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.create_index("ix_handoff_tickets_merchant_topic", ["merchant_chat_id", "merchant_topic_id"])
    op.create_table(
        "handoff_merchant_chats",
        sa.Column("chat_id", sa.BigInteger(), primary_key=True),
        sa.Column("merchant_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False, server_default=""),
        sa.Column("topics", sa.String(8), nullable=False, server_default="unknown"),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("handoff_merchant_chats")
    with op.batch_alter_table("handoff_tickets") as batch:
        batch.drop_index("ix_handoff_tickets_merchant_topic")
        batch.drop_column("accuses_merchant")
        batch.drop_column("agents_card_id")
        batch.drop_column("merchant_topic_id")
