"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "buyers",
        sa.Column("buyer_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("buyer_id", name=op.f("pk_buyers")),
    )
    op.create_table(
        "events",
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=True),
        sa.Column("escalation_id", sa.String(length=32), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_order_id"), "events", ["order_id"], unique=False)
    op.create_index("ix_events_type_occurred", "events", ["type", "occurred_at"], unique=False)
    op.create_table(
        "idempotency_records",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_records")),
    )
    op.create_table(
        "merchants",
        sa.Column("merchant_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("telegram_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("support_hours", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", name=op.f("pk_merchants")),
    )
    op.create_table(
        "webhook_subscriptions",
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("subscription_id", name=op.f("pk_webhook_subscriptions")),
    )
    op.create_table(
        "link_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("buyer_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_by", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["buyer_id"], ["buyers.buyer_id"], name=op.f("fk_link_tokens_buyer_id_buyers")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_link_tokens")),
    )
    op.create_index(op.f("ix_link_tokens_buyer_id"), "link_tokens", ["buyer_id"], unique=False)
    op.create_table(
        "products",
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("carrier", sa.String(length=16), nullable=True),
        sa.Column("merchant_id", sa.String(length=32), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.merchant_id"], name=op.f("fk_products_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_products")),
    )
    op.create_table(
        "telegram_links",
        sa.Column("telegram_user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("buyer_id", sa.String(length=32), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["buyer_id"], ["buyers.buyer_id"], name=op.f("fk_telegram_links_buyer_id_buyers")
        ),
        sa.PrimaryKeyConstraint("telegram_user_id", name=op.f("pk_telegram_links")),
    )
    op.create_index(op.f("ix_telegram_links_buyer_id"), "telegram_links", ["buyer_id"], unique=False)
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.event_id"], name=op.f("fk_webhook_deliveries_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscriptions.subscription_id"],
            name=op.f("fk_webhook_deliveries_subscription_id_webhook_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("event_id", "subscription_id", name=op.f("uq_webhook_deliveries_event_id")),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"], unique=False
    )
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("buyer_id", sa.String(length=32), nullable=False),
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payment_submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payment_stalled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processing_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("restored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("promised_minutes", sa.Integer(), nullable=True),
        sa.Column("promised_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_tag", sa.String(length=32), nullable=True),
        sa.Column("cancel_by", sa.String(length=16), nullable=True),
        sa.Column("cancel_note", sa.String(length=500), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("restorable_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state_before_cancel", sa.String(length=20), nullable=True),
        sa.Column("refund_reason", sa.String(length=16), nullable=True),
        sa.Column("card_secret", sa.String(length=64), nullable=True),
        sa.Column("sim_outcome", sa.String(length=16), nullable=False),
        sa.Column("sim_response_seconds", sa.Integer(), nullable=False),
        sa.Column("sim_fulfil_seconds", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["buyer_id"], ["buyers.buyer_id"], name=op.f("fk_orders_buyer_id_buyers")),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.merchant_id"], name=op.f("fk_orders_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(["sku"], ["products.sku"], name=op.f("fk_orders_sku_products")),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_orders")),
    )
    op.create_index("ix_orders_buyer_created", "orders", ["buyer_id", "created_at"], unique=False)
    op.create_index("ix_orders_merchant_created", "orders", ["merchant_id", "created_at"], unique=False)
    op.create_index("ix_orders_state", "orders", ["state"], unique=False)
    op.create_table(
        "escalations",
        sa.Column("escalation_id", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=True),
        sa.Column("buyer_id", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("csat", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["buyer_id"], ["buyers.buyer_id"], name=op.f("fk_escalations_buyer_id_buyers")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.merchant_id"], name=op.f("fk_escalations_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.order_id"], name=op.f("fk_escalations_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("escalation_id", name=op.f("pk_escalations")),
    )
    op.create_index(op.f("ix_escalations_buyer_id"), "escalations", ["buyer_id"], unique=False)
    op.create_index(op.f("ix_escalations_order_id"), "escalations", ["order_id"], unique=False)
    op.create_index(op.f("ix_escalations_state"), "escalations", ["state"], unique=False)
    op.create_table(
        "order_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("field", sa.String(length=16), nullable=False),
        sa.Column("old", sa.String(length=128), nullable=True),
        sa.Column("new", sa.String(length=128), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.order_id"], name=op.f("fk_order_audit_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_audit")),
    )
    op.create_index(op.f("ix_order_audit_order_id"), "order_audit", ["order_id"], unique=False)
    op.create_table(
        "refund_requests",
        sa.Column("refund_request_id", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("buyer_id", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["buyer_id"], ["buyers.buyer_id"], name=op.f("fk_refund_requests_buyer_id_buyers")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.order_id"], name=op.f("fk_refund_requests_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("refund_request_id", name=op.f("pk_refund_requests")),
    )
    op.create_index(op.f("ix_refund_requests_order_id"), "refund_requests", ["order_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_refund_requests_order_id"), table_name="refund_requests")
    op.drop_table("refund_requests")
    op.drop_index(op.f("ix_order_audit_order_id"), table_name="order_audit")
    op.drop_table("order_audit")
    op.drop_index(op.f("ix_escalations_state"), table_name="escalations")
    op.drop_index(op.f("ix_escalations_order_id"), table_name="escalations")
    op.drop_index(op.f("ix_escalations_buyer_id"), table_name="escalations")
    op.drop_table("escalations")
    op.drop_index("ix_orders_state", table_name="orders")
    op.drop_index("ix_orders_merchant_created", table_name="orders")
    op.drop_index("ix_orders_buyer_created", table_name="orders")
    op.drop_table("orders")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index(op.f("ix_telegram_links_buyer_id"), table_name="telegram_links")
    op.drop_table("telegram_links")
    op.drop_table("products")
    op.drop_index(op.f("ix_link_tokens_buyer_id"), table_name="link_tokens")
    op.drop_table("link_tokens")
    op.drop_table("webhook_subscriptions")
    op.drop_table("merchants")
    op.drop_table("idempotency_records")
    op.drop_index("ix_events_type_occurred", table_name="events")
    op.drop_index(op.f("ix_events_order_id"), table_name="events")
    op.drop_table("events")
    op.drop_table("buyers")
