"""Repositories: the only code that writes SQL for the bot's tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations.hygiene import clean_text
from integrations.privacy import mask_personal_data
from integrations.storage.models import CancellationOutcome, ChatMessage

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


class ConversationLog:
    """Append-only log of every buyer and bot message, kept for humans: texts are cleaned (no NUL, no lone
    surrogates) and personal data is masked (card secrets, phone and account numbers); the platform keeps
    the real values in its orders."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def append(self, message: LoggedMessage) -> None:
        async with self._sessions.begin() as session:
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


@dataclass(frozen=True, slots=True)
class Outcome:
    conversation_id: str
    order_id: str
    reason_tag: str
    outcome: str  # saved | cancelled | escalated
    detail: str = ""
    buyer_id: str | None = None


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
