"""Relay of a buyer's message to the assistant (Rasa), with every message logged and no silent failure.

When the assistant cannot answer (Rasa or the action server down), the message is kept in order with the
chat's other waiting messages and the buyer is told; ``retry_pending`` answers them when the assistant is
back, or hands the buyer to a person once they have waited past ``handoff_after_seconds``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.i18n import Language, text
from bot.journal import send_scope
from bot.services.pending import MemoryPendingStore, PendingMessage, PendingStore, now
from integrations.hygiene import for_rasa
from integrations.rasa import BotReply, RasaBadResponse, RasaUnavailable
from integrations.storage.repositories import ConversationLog, LoggedMessage

log = logging.getLogger(__name__)

Deliver = Callable[[int, list[BotReply]], Awaitable[None]]
# kinds whose text the bot itself made (``/greet`` for /start, signed button payloads): sent to Rasa as is
SENT_AS_INTENT = frozenset({"command", "callback"})


class Assistant(Protocol):
    async def send(self, sender_id: str, text: str, metadata: Mapping[str, Any]) -> list[BotReply]: ...


class Escalator(Protocol):
    async def escalate(self, user_id: int, reason: str, summary: str) -> str | None:
        """Open a ticket for a person; the ticket id, or None when it could not be opened."""


@dataclass(frozen=True, slots=True)
class BuyerMessage:
    chat_id: int
    user_id: int
    text: str
    language: Language
    kind: str = "text"  # text | callback | command | edit
    message_id: int | None = None
    update_id: int | None = None

    @property
    def sender_id(self) -> str:
        """One Rasa conversation per Telegram user."""
        return f"tg-{self.user_id}"

    @property
    def rasa_text(self) -> str:
        """What Rasa reads: our commands and button payloads are intents; what a buyer typed never is."""
        return self.text if self.kind in SENT_AS_INTENT else for_rasa(self.text)

    def metadata(self) -> dict[str, Any]:
        return {
            "telegram_user_id": self.user_id,
            "chat_id": self.chat_id,
            "language": self.language,
            "message_id": self.message_id,
            "channel": "telegram",
        }

    def pending(self) -> PendingMessage:
        return PendingMessage(
            self.chat_id, self.user_id, self.text, self.language, self.kind, self.message_id, queued_at=now()
        )

    @classmethod
    def from_pending(cls, item: PendingMessage) -> BuyerMessage:
        return cls(item.chat_id, item.user_id, item.text, item.language, item.kind, item.message_id)


class ConversationService:
    def __init__(
        self,
        assistant: Assistant,
        conversation_log: ConversationLog,
        pending: PendingStore | None = None,
        escalator: Escalator | None = None,
        handoff_after_seconds: float = 600.0,
        actions_healthy: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._assistant = assistant
        self._actions_healthy = actions_healthy
        self._log = conversation_log
        self._pending: PendingStore = pending or MemoryPendingStore()
        self._escalator = escalator
        self._handoff_after = handoff_after_seconds

    async def handle(self, message: BuyerMessage) -> list[BotReply]:
        """Log the message, ask the assistant, and always return something to say."""
        await self._log.append(
            LoggedMessage(
                chat_id=message.chat_id,
                telegram_user_id=message.user_id,
                direction="in",
                kind=message.kind,
                text=message.text,
                telegram_message_id=message.message_id,
                update_id=message.update_id,
                language=message.language,
            )
        )
        if await self._pending.has_pending(message.chat_id):
            # earlier messages are still waiting: keep the order, answer them together later. The buyer was
            # told so with the first kept message: one notice per outage, not one per message.
            await self._pending.push(message.pending())
            return []
        replies = await self._ask(message)
        if replies is None:
            await self._pending.push(message.pending())
            return [BotReply(text=text("assistant_unavailable", message.language))]
        return replies

    async def _ask(self, message: BuyerMessage) -> list[BotReply] | None:
        """The assistant's replies, or None when it could not answer (the message must be kept)."""
        try:
            replies = await self._assistant.send(message.sender_id, message.rasa_text, message.metadata())
        except RasaUnavailable as exc:
            log.warning("assistant unavailable for chat %s: %s", message.chat_id, exc)
            return None
        except RasaBadResponse as exc:
            log.error("assistant gave a bad reply for chat %s: %s", message.chat_id, exc)
            return [BotReply(text=text("assistant_confused", message.language))]
        if not replies:
            # Rasa answers nothing when the action server is down (keep the message and retry), but also when
            # a turn legitimately ends silently: then say so instead of blocking the chat behind it.
            if self._actions_healthy is not None and not await self._actions_healthy():
                log.warning("no reply for chat %s: the action server is down", message.chat_id)
                return None
            log.warning("assistant gave no reply for chat %s", message.chat_id)
            return [BotReply(text=text("assistant_confused", message.language))]
        return replies

    async def retry_pending(self, deliver: Deliver, owns: Callable[[int], bool] | None = None) -> int:
        """Answer waiting messages in order; returns how many were answered or handed over.

        ``owns`` limits this to the chats this replica is responsible for (its intake partitions).
        """
        done = 0
        for chat_id in await self._pending.chats():
            if owns is None or owns(chat_id):
                done += await self._retry_chat(chat_id, deliver)
        return done

    async def _retry_chat(self, chat_id: int, deliver: Deliver) -> int:
        done = 0
        while (item := await self._pending.peek(chat_id)) is not None:
            replies = await self._ask(BuyerMessage.from_pending(item))
            if replies is None:
                await self._pending.replace_head(chat_id, _attempted(item))
                if now() - item.queued_at >= self._handoff_after:
                    done += await self._hand_over(chat_id, item, deliver)
                return done
            # delivered (journaled under a key of this very message) before it leaves the store: a crash in
            # between answers it again under the same keys, which the durable outbox does not send twice
            with send_scope(f"p:{chat_id}:{item.queued_at!r}:{item.message_id}"):
                await deliver(chat_id, replies)
            await self._pending.pop(chat_id)
            done += 1
        return done

    async def _hand_over(self, chat_id: int, first: PendingMessage, deliver: Deliver) -> int:
        """The assistant stayed down too long: a person gets the waiting messages."""
        texts: list[str] = []
        while (item := await self._pending.peek(chat_id)) is not None:
            texts.append(item.text)
            await self._pending.pop(chat_id)
        ticket = None
        if self._escalator is not None:
            ticket = await self._escalator.escalate(first.user_id, "assistant_unavailable", "\n".join(texts))
        key = "handed_over" if ticket else "handed_over_no_ticket"
        replies = [BotReply(text=text(key, first.language).format(ticket=ticket or ""))]
        if ticket:
            replies += await self.on_handed_over(first, ticket)
        await deliver(chat_id, replies)
        return len(texts)

    async def on_handed_over(self, first: PendingMessage, ticket: str) -> list[BotReply]:
        """Hook: ``ticket`` was opened for the waiting messages; more to tell the buyer (handoff relay)."""
        return []


def _attempted(item: PendingMessage) -> PendingMessage:
    return PendingMessage(
        item.chat_id,
        item.user_id,
        item.text,
        item.language,
        item.kind,
        item.message_id,
        item.queued_at,
        item.attempts + 1,
    )
