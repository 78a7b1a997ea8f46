"""human handoff: tickets, relay map, audit log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "handoff_tickets",
        sa.Column("ticket_id", sa.String(64), primary_key=True),
        sa.Column("order_id", sa.String(32), nullable=True),
        sa.Column("buyer_id", sa.String(64), nullable=False),
        sa.Column("buyer_user_id", sa.BigInteger(), nullable=False),
        sa.Column("buyer_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.String(64), nullable=True),
        sa.Column("merchant_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("route", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("agents_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("topic_id", sa.BigInteger(), nullable=True),
        sa.Column("card_message_id", sa.BigInteger(), nullable=True),
        sa.Column("sla_deadline", _WHEN, nullable=True),
        sa.Column("assignee_id", sa.BigInteger(), nullable=True),
        sa.Column("assignee_name", sa.String(128), nullable=True),
        sa.Column("csat", sa.Integer(), nullable=True),
        sa.Column("csat_at", _WHEN, nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.Column("resolved_at", _WHEN, nullable=True),
    )
    op.create_index("ix_handoff_tickets_buyer_state", "handoff_tickets", ["buyer_user_id", "state"])
    op.create_index("ix_handoff_tickets_topic", "handoff_tickets", ["agents_chat_id", "topic_id"])
    op.create_index("ix_handoff_tickets_state_deadline", "handoff_tickets", ["state", "sla_deadline"])
    op.create_table(
        "handoff_relay",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("ticket_id", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("src_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("src_message_id", sa.BigInteger(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("dst_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("dst_thread_id", sa.BigInteger(), nullable=True),
        sa.Column("dst_message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.UniqueConstraint(
            "src_chat_id", "src_message_id", "revision", "dst_chat_id", name="uq_handoff_relay_source"
        ),
    )
    op.create_index("ix_handoff_relay_dst", "handoff_relay", ["dst_chat_id", "dst_message_id"])
    op.create_index("ix_handoff_relay_ticket", "handoff_relay", ["ticket_id"])
    op.create_table(
        "handoff_audit",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("ticket_id", sa.String(64), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_name", sa.String(128), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
    )
    op.create_index("ix_handoff_audit_ticket", "handoff_audit", ["ticket_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_handoff_audit_ticket", table_name="handoff_audit")
    op.drop_table("handoff_audit")
    op.drop_index("ix_handoff_relay_ticket", table_name="handoff_relay")
    op.drop_index("ix_handoff_relay_dst", table_name="handoff_relay")
    op.drop_table("handoff_relay")
    op.drop_index("ix_handoff_tickets_state_deadline", table_name="handoff_tickets")
    op.drop_index("ix_handoff_tickets_topic", table_name="handoff_tickets")
    op.drop_index("ix_handoff_tickets_buyer_state", table_name="handoff_tickets")
    op.drop_table("handoff_tickets")
