"""Relay of a buyer's message to the assistant (Rasa), with every message logged and no silent failure."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.i18n import Language, text
from integrations.rasa import BotReply, RasaBadResponse, RasaUnavailable
from integrations.storage.repositories import ConversationLog, LoggedMessage

log = logging.getLogger(__name__)


class Assistant(Protocol):
    async def send(self, sender_id: str, text: str, metadata: Mapping[str, Any]) -> list[BotReply]: ...


@dataclass(frozen=True, slots=True)
class BuyerMessage:
    chat_id: int
    user_id: int
    text: str
    language: Language
    kind: str = "text"  # text | callback | command
    message_id: int | None = None
    update_id: int | None = None

    @property
    def sender_id(self) -> str:
        """One Rasa conversation per Telegram user."""
        return f"tg-{self.user_id}"

    def metadata(self) -> dict[str, Any]:
        return {
            "telegram_user_id": self.user_id,
            "chat_id": self.chat_id,
            "language": self.language,
            "message_id": self.message_id,
            "channel": "telegram",
        }


class ConversationService:
    def __init__(self, assistant: Assistant, conversation_log: ConversationLog) -> None:
        self._assistant = assistant
        self._log = conversation_log

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
        try:
            replies = await self._assistant.send(message.sender_id, message.text, message.metadata())
        except RasaUnavailable as exc:
            log.warning("assistant unavailable for chat %s: %s", message.chat_id, exc)
            return [BotReply(text=text("assistant_unavailable", message.language))]
        except RasaBadResponse as exc:
            log.error("assistant gave a bad reply for chat %s: %s", message.chat_id, exc)
            return [BotReply(text=text("assistant_confused", message.language))]
        if not replies:
            log.warning("assistant gave no reply for chat %s", message.chat_id)
            return [BotReply(text=text("assistant_confused", message.language))]
        return replies
