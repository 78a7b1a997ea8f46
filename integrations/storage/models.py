"""ORM models of the bot's own database. Every change here needs an Alembic revision."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class ChatMessage(Base):
    """One message of a conversation, as the buyer sent it or as the bot answered."""

    __tablename__ = "chat_messages"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    direction: Mapped[str] = mapped_column(String(8), nullable=False)  # "in" | "out"
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # text | callback | photo | …
    text: Mapped[str] = mapped_column(Text, nullable=False, default="")
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    update_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)

    __table_args__ = (Index("ix_chat_messages_chat_created", "chat_id", "created_at"),)


class CancellationOutcome(Base):
    """What came of one cancellation request: saved (kept/fixed), cancelled with a tag, or escalated."""

    __tablename__ = "cancellation_outcomes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(64), nullable=False)
    buyer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    order_id: Mapped[str] = mapped_column(String(32), nullable=False)
    reason_tag: Mapped[str] = mapped_column(String(32), nullable=False)
    outcome: Mapped[str] = mapped_column(
        String(16), nullable=False
    )  # saved | cancelled | escalated | restored
    detail: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    # dimensions of the operators' numbers (0004): the order's merchant and product kind, the buyer's language,
    # and whether the one save offer was made before this outcome
    merchant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    product_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    offered: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)

    __table_args__ = (
        Index("ix_cancellation_outcomes_order", "order_id"),
        Index("ix_cancellation_outcomes_created", "created_at"),
        Index("ix_cancellation_outcomes_merchant_created", "merchant_id", "created_at"),
    )


class Conversation(Base):
    """One buyer conversation: a chat's messages with no silence longer than ``CONVERSATION_GAP``.

    Started by a buyer message; the bot's replies extend it. Kept by ``ConversationLog.append``.
    """

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_message_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    messages_in: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    messages_out: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    __table_args__ = (
        Index("ix_conversations_started", "started_at"),
        Index("ix_conversations_chat_last", "chat_id", "last_message_at"),
    )
