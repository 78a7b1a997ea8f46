"""Human handoff tables and their repository: tickets, the relay map (message ids both ways), the audit log.

A ticket row is the bot's side of a platform escalation: who holds the conversation (the merchant's chat or
the agents' forum topic), the merchant SLA deadline, the assignee and the buyer's CSAT. The relay map is
also the "exactly once" guard: a message is claimed (unique source message, revision and destination)
before it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from integrations.storage.models import Base, utcnow

ACTIVE_STATES = ("merchant", "queued", "assigned")
"""merchant: waiting in/handled by the merchant's chat; queued: in the agents' group, nobody took it;
assigned: an agent (or the merchant) answered or took it. Then resolved (CSAT asked) and closed (rated)."""


class HandoffTicket(Base):
    __tablename__ = "handoff_tickets"

    ticket_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    buyer_id: Mapped[str] = mapped_column(String(64), nullable=False)
    buyer_user_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    buyer_chat_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    language: Mapped[str] = mapped_column(String(8), nullable=False, default="zh")
    reason: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    summary: Mapped[str] = mapped_column(Text, nullable=False, default="")
    merchant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    merchant_chat_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    merchant_topic_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """The ticket's topic in the merchant's chat (private chat with topics), else None: reply threading."""
    accuses_merchant: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    """The buyer accuses the order's merchant: platform agents only, never that merchant."""
    route: Mapped[str] = mapped_column(String(16), nullable=False, default="agents")  # merchant | agents
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    agents_chat_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    topic_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    card_message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """The card in the merchant's chat."""
    agents_card_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """The card in the agents' group (first post of the topic, or a plain message where topics fail)."""
    sla_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    assignee_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    assignee_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    csat: Mapped[int | None] = mapped_column(Integer, nullable=True)
    csat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        Index("ix_handoff_tickets_buyer_state", "buyer_user_id", "state"),
        Index("ix_handoff_tickets_merchant_topic", "merchant_chat_id", "merchant_topic_id"),
        Index("ix_handoff_tickets_topic", "agents_chat_id", "topic_id"),
        Index("ix_handoff_tickets_state_deadline", "state", "sla_deadline"),
    )

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


class HandoffRelay(Base):
    """One relayed message: source (chat, message, revision) → destination (chat, thread, message)."""

    __tablename__ = "handoff_relay"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(64), nullable=False)
    direction: Mapped[str] = mapped_column(String(16), nullable=False)  # to_human | to_buyer
    src_chat_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    src_message_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    revision: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)  # edit_date of an edit
    dst_chat_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    dst_thread_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    dst_message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)

    __table_args__ = (
        UniqueConstraint(
            "src_chat_id", "src_message_id", "revision", "dst_chat_id", name="uq_handoff_relay_source"
        ),
        Index("ix_handoff_relay_dst", "dst_chat_id", "dst_message_id"),
        Index("ix_handoff_relay_ticket", "ticket_id"),
    )


class HandoffAudit(Base):
    """Who did what on a ticket (take, release, close, restore, refund, note, routing...)."""

    __tablename__ = "handoff_audit"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(64), nullable=False)
    actor_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    actor_name: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    chat_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)

    __table_args__ = (Index("ix_handoff_audit_ticket", "ticket_id", "id"),)


class HandoffMerchantChat(Base):
    """A merchant's Telegram chat linked through the platform's deep link (a private chat with the bot, or a
    group); ``topics`` remembers whether that chat takes forum topics (``yes``/``no``, unknown until tried)."""

    __tablename__ = "handoff_merchant_chats"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    topics: Mapped[str] = mapped_column(String(8), nullable=False, default="unknown")
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


@dataclass(frozen=True, slots=True)
class RelayClaim:
    ticket_id: str
    direction: str
    src_chat_id: int
    src_message_id: int
    dst_chat_id: int
    dst_thread_id: int | None = None
    revision: int = 0


class HandoffRepository:
    """The only code that writes SQL for handoff tables. Rows are returned detached (plain reads)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # ------------------------------------------------------------------ tickets

    async def create(self, ticket: HandoffTicket) -> tuple[HandoffTicket, bool]:
        """Insert ``ticket`` unless one with its id exists; (the stored ticket, whether it was created)."""
        try:
            async with self._sessions.begin() as session:
                session.add(ticket)
            return ticket, True
        except IntegrityError:
            existing = await self.get(ticket.ticket_id)
            assert existing is not None
            return existing, False

    async def get(self, ticket_id: str) -> HandoffTicket | None:
        async with self._sessions() as session:
            return await session.get(HandoffTicket, ticket_id)

    async def update(self, ticket_id: str, **fields: Any) -> HandoffTicket | None:
        fields.setdefault("updated_at", utcnow())
        async with self._sessions.begin() as session:
            await session.execute(
                update(HandoffTicket).where(HandoffTicket.ticket_id == ticket_id).values(**fields)
            )
        return await self.get(ticket_id)

    async def transition(self, ticket_id: str, from_states: tuple[str, ...], **fields: Any) -> bool:
        """Update only when the ticket is in one of ``from_states`` (a compare-and-set); True if it was."""
        fields.setdefault("updated_at", utcnow())
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(HandoffTicket)
                .where(HandoffTicket.ticket_id == ticket_id, HandoffTicket.state.in_(from_states))
                .values(**fields)
            )
        return bool(getattr(result, "rowcount", 0))

    async def active_for_buyer(self, buyer_user_id: int) -> HandoffTicket | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(HandoffTicket)
                .where(HandoffTicket.buyer_user_id == buyer_user_id, HandoffTicket.state.in_(ACTIVE_STATES))
                .order_by(HandoffTicket.created_at.desc())
                .limit(1)
            )

    async def by_topic(self, agents_chat_id: int, topic_id: int) -> HandoffTicket | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(HandoffTicket)
                .where(HandoffTicket.agents_chat_id == agents_chat_id, HandoffTicket.topic_id == topic_id)
                .order_by(HandoffTicket.created_at.desc())
                .limit(1)
            )

    async def by_any_topic(self, chat_id: int, topic_id: int) -> HandoffTicket | None:
        """The ticket whose topic (agents' group or merchant's chat) this is."""
        return await self.by_topic(chat_id, topic_id) or await self.by_merchant_topic(chat_id, topic_id)

    async def active_held_in(self, chat_id: int) -> list[HandoffTicket]:
        """Open tickets a chat holds: the merchant's (routed there) or the agents' group's."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(HandoffTicket)
                .where(
                    HandoffTicket.state.in_(ACTIVE_STATES),
                    or_(
                        and_(HandoffTicket.route == "merchant", HandoffTicket.merchant_chat_id == chat_id),
                        and_(HandoffTicket.route == "agents", HandoffTicket.agents_chat_id == chat_id),
                    ),
                )
                .order_by(HandoffTicket.created_at)
            )
            return list(rows.all())

    async def queued_agents(self) -> list[HandoffTicket]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(HandoffTicket)
                .where(HandoffTicket.route == "agents", HandoffTicket.state == "queued")
                .order_by(HandoffTicket.created_at)
            )
            return list(rows.all())

    async def active_for_merchant_chat(self, chat_id: int) -> list[HandoffTicket]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(HandoffTicket)
                .where(
                    HandoffTicket.merchant_chat_id == chat_id,
                    HandoffTicket.route == "merchant",
                    HandoffTicket.state.in_(ACTIVE_STATES),
                )
                .order_by(HandoffTicket.created_at)
            )
            return list(rows.all())

    async def by_merchant_topic(self, chat_id: int, topic_id: int) -> HandoffTicket | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(HandoffTicket)
                .where(HandoffTicket.merchant_chat_id == chat_id, HandoffTicket.merchant_topic_id == topic_id)
                .order_by(HandoffTicket.created_at.desc())
                .limit(1)
            )

    async def history(self, buyer_user_id: int, order_id: str | None, before: str) -> list[HandoffTicket]:
        """Earlier tickets of this buyer about this order (or without one), oldest first."""
        async with self._sessions() as session:
            same_order = (
                HandoffTicket.order_id.is_(None) if order_id is None else HandoffTicket.order_id == order_id
            )
            rows = await session.scalars(
                select(HandoffTicket)
                .where(
                    HandoffTicket.buyer_user_id == buyer_user_id,
                    same_order,
                    HandoffTicket.ticket_id != before,
                )
                .order_by(HandoffTicket.created_at)
            )
            return list(rows.all())

    # ------------------------------------------------------------------ merchant chats

    async def link_merchant_chat(self, chat_id: int, merchant_id: str, name: str) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(HandoffMerchantChat, chat_id)
            if row is None:
                session.add(HandoffMerchantChat(chat_id=chat_id, merchant_id=merchant_id, name=name[:128]))
            else:
                row.merchant_id, row.name, row.linked_at = merchant_id, name[:128], utcnow()
                row.topics = "unknown"  # try topics again after a new link

    async def ensure_merchant_chat(self, chat_id: int, merchant_id: str, name: str) -> None:
        """Remember a merchant chat the platform named (keeps what is known about its topics)."""
        try:
            async with self._sessions.begin() as session:
                if await session.get(HandoffMerchantChat, chat_id) is None:
                    session.add(
                        HandoffMerchantChat(chat_id=chat_id, merchant_id=merchant_id, name=name[:128])
                    )
        except IntegrityError:
            pass  # added concurrently

    async def merchant_chat(self, chat_id: int) -> HandoffMerchantChat | None:
        async with self._sessions() as session:
            return await session.get(HandoffMerchantChat, chat_id)

    async def set_merchant_topics(self, chat_id: int, topics: str) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(HandoffMerchantChat, chat_id)
            if row is None:
                session.add(HandoffMerchantChat(chat_id=chat_id, merchant_id="", topics=topics))
            else:
                row.topics = topics

    async def merchant_overdue(self, now: datetime) -> list[HandoffTicket]:
        """Tickets the merchant left unanswered past their SLA deadline."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(HandoffTicket)
                .where(
                    HandoffTicket.route == "merchant",
                    HandoffTicket.state == "merchant",
                    HandoffTicket.sla_deadline.is_not(None),
                    HandoffTicket.sla_deadline <= now,
                )
                .order_by(HandoffTicket.sla_deadline)
            )
            return list(rows.all())

    async def queue_position(self, ticket: HandoffTicket) -> int:
        """1 + tickets waiting for an agent that were queued before this one."""
        async with self._sessions() as session:
            ahead = await session.scalar(
                select(func.count())
                .select_from(HandoffTicket)
                .where(
                    HandoffTicket.route == "agents",
                    HandoffTicket.state == "queued",
                    HandoffTicket.created_at < ticket.created_at,
                )
            )
        return int(ahead or 0) + 1

    # ------------------------------------------------------------------ relay map

    async def claim_relay(self, claim: RelayClaim) -> int | None:
        """Reserve one delivery; its row id, or None when this message was already relayed there."""
        row = HandoffRelay(
            ticket_id=claim.ticket_id,
            direction=claim.direction,
            src_chat_id=claim.src_chat_id,
            src_message_id=claim.src_message_id,
            revision=claim.revision,
            dst_chat_id=claim.dst_chat_id,
            dst_thread_id=claim.dst_thread_id,
        )
        try:
            async with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError:
            return None
        return row.id

    async def complete_relay(self, relay_id: int, dst_message_id: int, dst_thread_id: int | None) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(HandoffRelay)
                .where(HandoffRelay.id == relay_id)
                .values(dst_message_id=dst_message_id, dst_thread_id=dst_thread_id)
            )

    async def release_relay(self, relay_id: int) -> None:
        """The send failed for good: forget the claim so a later attempt may deliver it."""
        async with self._sessions.begin() as session:
            row = await session.get(HandoffRelay, relay_id)
            if row is not None:
                await session.delete(row)

    async def by_destination(self, chat_id: int, message_id: int) -> HandoffRelay | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(HandoffRelay)
                .where(HandoffRelay.dst_chat_id == chat_id, HandoffRelay.dst_message_id == message_id)
                .limit(1)
            )

    async def by_source(self, chat_id: int, message_id: int, dst_chat_id: int) -> HandoffRelay | None:
        """The first delivery (revision 0 first) of a source message to ``dst_chat_id``."""
        async with self._sessions() as session:
            return await session.scalar(
                select(HandoffRelay)
                .where(
                    HandoffRelay.src_chat_id == chat_id,
                    HandoffRelay.src_message_id == message_id,
                    HandoffRelay.dst_chat_id == dst_chat_id,
                    HandoffRelay.dst_message_id.is_not(None),
                )
                .order_by(HandoffRelay.revision, HandoffRelay.id)
                .limit(1)
            )

    async def relays(self, ticket_id: str) -> list[HandoffRelay]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(HandoffRelay).where(HandoffRelay.ticket_id == ticket_id).order_by(HandoffRelay.id)
            )
            return list(rows.all())

    # ------------------------------------------------------------------ audit

    async def audit(
        self,
        ticket_id: str,
        action: str,
        *,
        actor_id: int | None = None,
        actor_name: str = "",
        chat_id: int | None = None,
        detail: str = "",
    ) -> None:
        async with self._sessions.begin() as session:
            session.add(
                HandoffAudit(
                    ticket_id=ticket_id,
                    action=action,
                    actor_id=actor_id,
                    actor_name=actor_name[:128],
                    chat_id=chat_id,
                    detail=detail,
                )
            )

    async def audit_has(self, ticket_id: str, action: str) -> bool:
        async with self._sessions() as session:
            found = await session.scalar(
                select(HandoffAudit.id)
                .where(HandoffAudit.ticket_id == ticket_id, HandoffAudit.action == action)
                .limit(1)
            )
        return found is not None

    async def audit_log(self, ticket_id: str) -> list[HandoffAudit]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(HandoffAudit).where(HandoffAudit.ticket_id == ticket_id).order_by(HandoffAudit.id)
            )
            return list(rows.all())
