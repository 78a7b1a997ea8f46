"""What the handoff service needs from the outside world, as protocols (no Telegram types here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from integrations.platform.models import Escalation, EscalationState, Merchant, Order, RefundRequest
from integrations.storage.models import ChatMessage
from integrations.storage.repositories import LoggedMessage

Button = tuple[str, str]
"""(title, callback data)."""

Keyboard = Sequence[Sequence[Button]]


class TopicGone(Exception):
    """The forum topic no longer exists (someone deleted it)."""


class ChatUnreachable(Exception):
    """The chat does not exist, or refuses the bot (kicked, blocked)."""


class CopyUnavailable(Exception):
    """copyMessage is missing or refused for this message: send its text instead."""


class TopicsUnavailable(Exception):
    """The chat takes no forum topics (not a forum, topics off in a private chat, or the Bot API lacks them)."""


class Messenger(Protocol):
    """Sends on behalf of the bot (every send goes through the bot, so the outbox paces it)."""

    async def send_text(
        self,
        chat_id: int,
        text: str,
        *,
        thread_id: int | None = None,
        reply_to: int | None = None,
        buttons: Keyboard | None = None,
    ) -> int:
        """Send HTML ``text``; the new message id."""

    async def copy(
        self,
        to_chat: int,
        from_chat: int,
        message_id: int,
        *,
        thread_id: int | None = None,
        reply_to: int | None = None,
    ) -> int:
        """Copy a message (text, photo, document...) without a "forwarded" header; the copy's id."""

    async def create_topic(self, chat_id: int, name: str) -> int:
        """Create a forum topic (a forum supergroup, or a private chat with topics); its message_thread_id.
        Raises TopicsUnavailable (fall back to reply threading) or ChatUnreachable."""

    async def edit_topic(self, chat_id: int, thread_id: int, name: str) -> bool:
        """Rename a topic; False when that is not possible here (never raises)."""

    async def close_topic(self, chat_id: int, thread_id: int) -> bool:
        """Close a topic; False when that is not possible here (never raises)."""

    async def reopen_topic(self, chat_id: int, thread_id: int) -> bool:
        """Reopen a closed topic; False when that is not possible here (never raises)."""

    async def set_buttons(self, chat_id: int, message_id: int, buttons: Keyboard | None) -> None:
        """Replace (or, with None, remove) the inline keyboard of a message; failures are ignored."""


class Platform(Protocol):
    """The part of ``integrations.platform.client.PlatformClient`` the handoff uses."""

    async def get_escalation(self, escalation_id: str) -> Escalation: ...

    async def get_order(self, buyer_id: str, order_id: str) -> Order: ...

    async def get_merchant(self, merchant_id: str) -> Merchant: ...

    async def redeem_merchant_link_token(
        self, token: str, telegram_chat_id: int, *, idempotency_key: str | None = None
    ) -> Merchant: ...

    async def update_escalation(
        self, escalation_id: str, state: EscalationState, *, idempotency_key: str | None = None
    ) -> Escalation: ...

    async def submit_csat(
        self, escalation_id: str, score: int, *, idempotency_key: str | None = None
    ) -> Escalation: ...

    async def restore_order(
        self, buyer_id: str, order_id: str, *, idempotency_key: str | None = None
    ) -> Order: ...

    async def fix_recharge_target(
        self,
        buyer_id: str,
        order_id: str,
        *,
        account: str | None = None,
        region: str | None = None,
        idempotency_key: str | None = None,
    ) -> Order: ...

    async def request_refund(
        self, buyer_id: str, order_id: str, reason: str, *, idempotency_key: str | None = None
    ) -> RefundRequest: ...


class AssistantControl(Protocol):
    """Pause/resume the assistant (Rasa) for one conversation."""

    async def pause(self, sender_id: str) -> None: ...

    async def resume(self, sender_id: str) -> None: ...


class LiveState(Protocol):
    """Small key-value store: Redis in production (``bot.kv``)."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl_seconds: int) -> None: ...


class Transcripts(Protocol):
    """The conversation log (``integrations.storage.repositories.ConversationLog``)."""

    async def transcript(self, chat_id: int, limit: int = 100) -> list[ChatMessage]: ...

    async def append(self, message: LoggedMessage) -> None: ...


@dataclass(frozen=True, slots=True)
class Actor:
    """A person acting on a ticket from a chat (agent in the agents' group, or merchant staff)."""

    user_id: int
    name: str
    chat_id: int
