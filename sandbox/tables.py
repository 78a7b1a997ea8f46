"""ORM mapping of the sandbox database. The schema itself is created by Alembic (sandbox/migrations)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class Merchant(Base):
    __tablename__ = "merchants"

    merchant_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    telegram_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    support_hours: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class Buyer(Base):
    __tablename__ = "buyers"

    buyer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class Product(Base):
    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    carrier: Mapped[str | None] = mapped_column(String(16))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.merchant_id"))
    price_cents: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_buyer_created", "buyer_id", "created_at"),
        Index("ix_orders_merchant_created", "merchant_id", "created_at"),
        Index("ix_orders_state", "state"),
    )

    order_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(ForeignKey("buyers.buyer_id"))
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.merchant_id"))
    state: Mapped[str] = mapped_column(String(20))
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    account: Mapped[str] = mapped_column(String(128))
    region: Mapped[str | None] = mapped_column(String(32))

    created_at: Mapped[datetime]
    payment_submitted_at: Mapped[datetime | None]
    payment_stalled_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    processing_started_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    refunded_at: Mapped[datetime | None]
    restored_at: Mapped[datetime | None]
    promised_minutes: Mapped[int | None] = mapped_column(Integer)
    promised_by: Mapped[datetime | None]

    cancel_tag: Mapped[str | None] = mapped_column(String(32))
    cancel_by: Mapped[str | None] = mapped_column(String(16))
    cancel_note: Mapped[str | None] = mapped_column(String(500))
    cancelled_at: Mapped[datetime | None]
    restorable_until: Mapped[datetime | None]
    state_before_cancel: Mapped[str | None] = mapped_column(String(20))

    refund_reason: Mapped[str | None] = mapped_column(String(16))
    card_secret: Mapped[str | None] = mapped_column(String(64))

    sim_outcome: Mapped[str] = mapped_column(String(16))
    sim_response_seconds: Mapped[int] = mapped_column(Integer)
    sim_fulfil_seconds: Mapped[int] = mapped_column(Integer)

    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy declares it Any)


class OrderAudit(Base):
    """Every change to an order: recharge-target fields and state transitions, with who made it."""

    __tablename__ = "order_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.order_id"), index=True)
    field: Mapped[str] = mapped_column(String(16))
    old: Mapped[str | None] = mapped_column(String(128))
    new: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(16))


class TelegramLink(Base):
    __tablename__ = "telegram_links"

    telegram_user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    buyer_id: Mapped[str] = mapped_column(ForeignKey("buyers.buyer_id"), index=True)
    linked_at: Mapped[datetime]


class LinkToken(Base):
    """One-time binding tokens; only a SHA-256 of the token is stored."""

    __tablename__ = "link_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(ForeignKey("buyers.buyer_id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[int | None] = mapped_column(BigInteger)


class MerchantLinkToken(Base):
    """One-time tokens linking a merchant's Telegram chat (deep link); only a SHA-256 is stored."""

    __tablename__ = "merchant_link_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.merchant_id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[int | None] = mapped_column(BigInteger)


class Escalation(Base):
    __tablename__ = "escalations"

    escalation_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.order_id"), index=True)
    buyer_id: Mapped[str] = mapped_column(ForeignKey("buyers.buyer_id"), index=True)
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.merchant_id"))
    reason: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), index=True)
    csat: Mapped[int | None] = mapped_column(Integer)
    accuses_merchant: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy declares it Any)


class RefundRequest(Base):
    __tablename__ = "refund_requests"

    refund_request_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.order_id"), index=True)
    buyer_id: Mapped[str] = mapped_column(ForeignKey("buyers.buyer_id"))
    reason: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"

    subscription_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class Event(Base):
    """The outbox: one row per platform event, its JSON body frozen so every retry sends the same bytes."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_type_occurred", "type", "occurred_at"),)

    event_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]
    order_id: Mapped[str | None] = mapped_column(String(32), index=True)
    escalation_id: Mapped[str | None] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class WebhookDelivery(Base):
    """One event to one subscription; retried with exponential backoff until delivered or dead."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "subscription_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.event_id"))
    subscription_id: Mapped[str] = mapped_column(ForeignKey("webhook_subscriptions.subscription_id"))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None]


class IdempotencyRecord(Base):
    """The first response to an ``Idempotency-Key``, replayed for every repeat of the same request."""

    __tablename__ = "idempotency_records"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
