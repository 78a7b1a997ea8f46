"""Repositories: the only code that writes SQL for the bot's tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations.hygiene import clean_text
from integrations.privacy import mask_personal_data
from integrations.storage.models import CancellationOutcome, ChatMessage, Conversation, utcnow

CONVERSATION_GAP = timedelta(minutes=30)
"""A buyer message after this much silence in the chat starts a new conversation."""

# what the log keeps of an attachment is its Telegram file reference, not words a buyer typed
_UNMASKED_KINDS = frozenset({"photo", "document"})


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    chat_id: int
    direction: str
    kind: str
    text: str
    telegram_user_id: int | None = None
    telegram_message_id: int | None = None
    update_id: int | None = None
    language: str | None = None
    at: datetime | None = None  # when it happened (now unless replaying history)


class ConversationLog:
    """Append-only log of every buyer and bot message, kept for humans: texts are cleaned (no NUL, no lone
    surrogates) and personal data is masked (card secrets, phone and account numbers); the platform keeps
    the real values in its orders."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def append(self, message: LoggedMessage) -> None:
        """Log the message and keep the chat's current conversation row (the operators' denominator)."""
        at = message.at or utcnow()
        async with self._sessions.begin() as session:
            await _touch_conversation(session, message, at)
            session.add(
                ChatMessage(
                    chat_id=message.chat_id,
                    telegram_user_id=message.telegram_user_id,
                    direction=message.direction,
                    kind=message.kind,
                    text=stored_text(message.kind, message.text),
                    telegram_message_id=message.telegram_message_id,
                    update_id=message.update_id,
                    language=message.language,
                    created_at=at,
                )
            )

    async def purge_before(self, cutoff: datetime, batch: int = 5_000) -> int:
        """Delete messages older than ``cutoff`` (the retention setting), in batches; how many went."""
        removed = 0
        while True:
            async with self._sessions.begin() as session:
                ids = (
                    await session.scalars(
                        select(ChatMessage.id).where(ChatMessage.created_at < cutoff).limit(batch)
                    )
                ).all()
                if not ids:
                    return removed
                await session.execute(delete(ChatMessage).where(ChatMessage.id.in_(ids)))
            removed += len(ids)

    async def transcript(self, chat_id: int, limit: int = 100) -> list[ChatMessage]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ChatMessage)
                .where(ChatMessage.chat_id == chat_id)
                .order_by(ChatMessage.id.desc())
                .limit(limit)
            )
            return list(reversed(rows.all()))


def stored_text(kind: str, text: str) -> str:
    cleaned = clean_text(text, None)
    return cleaned if kind in _UNMASKED_KINDS else mask_personal_data(cleaned)


async def _touch_conversation(session: AsyncSession, message: LoggedMessage, at: datetime) -> None:
    current = await session.scalar(
        select(Conversation)
        .where(Conversation.chat_id == message.chat_id, Conversation.last_message_at >= at - CONVERSATION_GAP)
        .order_by(Conversation.last_message_at.desc())
        .limit(1)
    )
    inbound = message.direction == "in"
    if current is not None:
        counter = Conversation.messages_in if inbound else Conversation.messages_out
        values: dict[str, object] = {"last_message_at": at, counter.key: counter + 1}
        if current.language is None and message.language:
            values["language"] = message.language
        await session.execute(update(Conversation).where(Conversation.id == current.id).values(**values))
    elif inbound:
        session.add(
            Conversation(
                chat_id=message.chat_id,
                started_at=at,
                last_message_at=at,
                language=message.language,
                messages_in=1,
                messages_out=0,
            )
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    conversation_id: str
    order_id: str
    reason_tag: str
    outcome: str  # saved | cancelled | escalated | restored
    detail: str = ""
    buyer_id: str | None = None
    merchant_id: str | None = None
    product_kind: str | None = None
    language: str | None = None
    offered: bool = False  # the one save offer was made before this outcome
    at: datetime | None = None


class CancellationOutcomes:
    """Every cancellation request's outcome, for the 'fewer needless cancellations' numbers."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(self, outcome: Outcome) -> None:
        async with self._sessions.begin() as session:
            session.add(
                CancellationOutcome(
                    conversation_id=outcome.conversation_id,
                    buyer_id=outcome.buyer_id,
                    order_id=outcome.order_id,
                    reason_tag=outcome.reason_tag,
                    outcome=outcome.outcome,
                    detail=outcome.detail,
                    merchant_id=outcome.merchant_id,
                    product_kind=outcome.product_kind,
                    language=outcome.language,
                    offered=outcome.offered,
                    created_at=outcome.at or utcnow(),
                )
            )

    async def for_order(self, order_id: str) -> list[CancellationOutcome]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(CancellationOutcome)
                .where(CancellationOutcome.order_id == order_id)
                .order_by(CancellationOutcome.id)
            )
            return list(rows.all())
