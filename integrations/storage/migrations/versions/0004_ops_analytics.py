"""operators' numbers: conversations, cancellation dimensions, indexes for the /ops queries

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("started_at", _WHEN, nullable=False),
        sa.Column("last_message_at", _WHEN, nullable=False),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("messages_in", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("messages_out", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_conversations_started", "conversations", ["started_at"])
    op.create_index("ix_conversations_chat_last", "conversations", ["chat_id", "last_message_at"])
    with op.batch_alter_table("cancellation_outcomes") as batch:
        batch.add_column(sa.Column("merchant_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("product_kind", sa.String(16), nullable=True))
        batch.add_column(sa.Column("language", sa.String(8), nullable=True))
        batch.add_column(sa.Column("offered", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index("ix_cancellation_outcomes_created", "cancellation_outcomes", ["created_at"])
    op.create_index(
        "ix_cancellation_outcomes_merchant_created", "cancellation_outcomes", ["merchant_id", "created_at"]
    )
    op.create_index("ix_handoff_tickets_created", "handoff_tickets", ["created_at"])
    op.create_index("ix_handoff_tickets_chat_created", "handoff_tickets", ["buyer_chat_id", "created_at"])
    op.create_index(
        "ix_handoff_relay_ticket_direction", "handoff_relay", ["ticket_id", "direction", "created_at"]
    )
    op.create_index("ix_handoff_audit_action_ticket", "handoff_audit", ["action", "ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_handoff_audit_action_ticket", table_name="handoff_audit")
    op.drop_index("ix_handoff_relay_ticket_direction", table_name="handoff_relay")
    op.drop_index("ix_handoff_tickets_chat_created", table_name="handoff_tickets")
    op.drop_index("ix_handoff_tickets_created", table_name="handoff_tickets")
    op.drop_index("ix_cancellation_outcomes_merchant_created", table_name="cancellation_outcomes")
    op.drop_index("ix_cancellation_outcomes_created", table_name="cancellation_outcomes")
    with op.batch_alter_table("cancellation_outcomes") as batch:
        batch.drop_column("offered")
        batch.drop_column("language")
        batch.drop_column("product_kind")
        batch.drop_column("merchant_id")
    op.drop_index("ix_conversations_chat_last", table_name="conversations")
    op.drop_index("ix_conversations_started", table_name="conversations")
    op.drop_table("conversations")
