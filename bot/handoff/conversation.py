"""The conversation service, aware of handoffs: when the assistant's replies carry the escalation note
(``{"handoff": {"escalation_id": ..., "order_id": ...}}``), the conversation goes to a human and the buyer
is told, right after the assistant's own words, where they stand (merchant, queue place, office hours)."""

from __future__ import annotations

import logging
from typing import Any

from bot.handoff.service import END_PAYLOAD, BuyerRef, HandoffService
from bot.i18n import Language
from bot.services.conversation import BuyerMessage, ConversationService
from bot.services.pending import PendingMessage
from integrations.rasa import BotButton, BotReply

log = logging.getLogger(__name__)

END_BUTTON: dict[Language, str] = {"zh": "结束人工服务", "en": "End the handoff"}


def handoff_note(reply: BotReply) -> tuple[str, str | None] | None:
    """(escalation id, order id) of the assistant's machine-readable handoff note, if this is one."""
    data: Any = (reply.custom or {}).get("handoff")
    if not isinstance(data, dict) or not data.get("escalation_id"):
        return None
    order_id = data.get("order_id")
    return str(data["escalation_id"]), str(order_id) if order_id else None


class HandoffAwareConversation(ConversationService):
    def __init__(self, handoff: HandoffService, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handoff = handoff

    async def handle(self, message: BuyerMessage) -> list[BotReply]:
        replies = await super().handle(message)
        out: list[BotReply] = []
        for reply in replies:
            out.append(reply)
            note = handoff_note(reply)
            if note is None:
                continue
            try:
                notice = await self._handoff.start(
                    BuyerRef(message.user_id, message.chat_id, message.language), note[0], note[1]
                )
            except Exception:
                log.exception("handoff of %s could not start", note[0])
                continue
            if notice is not None:
                buttons = (
                    [BotButton(title=END_BUTTON[message.language], payload=END_PAYLOAD)]
                    if notice.end_button
                    else []
                )
                out.append(BotReply(text=notice.text, buttons=buttons))
        return out

    async def on_handed_over(self, first: PendingMessage, ticket: str) -> list[BotReply]:
        """The assistant stayed down and ``ticket`` was opened: a person takes the conversation, like any
        escalation (merchant first, then agents); the waiting messages are its transcript."""
        try:
            notice = await self._handoff.start(
                BuyerRef(first.user_id, first.chat_id, first.language), ticket, None
            )
        except Exception:
            log.exception("handoff of %s (assistant down) could not start", ticket)
            return []
        if notice is None:
            return []
        buttons = (
            [BotButton(title=END_BUTTON[first.language], payload=END_PAYLOAD)] if notice.end_button else []
        )
        return [BotReply(text=notice.text, buttons=buttons)]
