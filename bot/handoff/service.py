"""The handoff service: routing a ticket to the merchant, then (SLA) the agents' forum topic; relaying
messages both ways exactly once with an id map; agent commands and actions; close, Rasa resume and CSAT.

Telegram-free: it talks to the outside through the ports of ``bot.handoff.ports``. State that must survive a
restart is in SQL (tickets, relay map, audit); the buyer → ticket lookup is cached in the live store (Redis).
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.handoff.cards import first_post, render_card, split_summary
from bot.handoff.hours import BusinessHours
from bot.handoff.masking import mask_number, mask_text
from bot.handoff.ports import (
    Actor,
    AssistantControl,
    ChatUnreachable,
    CopyUnavailable,
    Keyboard,
    LiveState,
    Messenger,
    Platform,
    TopicGone,
    TopicsUnavailable,
    Transcripts,
)
from bot.handoff.replies import CannedReplies
from bot.handoff.texts import BUTTONS, buyer_text, staff_text
from bot.i18n import Language
from integrations.platform.errors import PlatformError
from integrations.platform.models import EscalationState, Order
from integrations.rasa.errors import RasaError
from integrations.storage.handoff import ACTIVE_STATES, HandoffRepository, HandoffTicket, RelayClaim
from integrations.storage.repositories import LoggedMessage

log = logging.getLogger(__name__)

LIVE_TTL = 14 * 24 * 3600
NONE_TTL = 3600
NONE = "-"
END_PAYLOAD = "/handoff_end"
"""Payload of the buyer's "end the handoff" button (goes through the bot's payload codec)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class HandoffSettings:
    agents_chat_id: int | None
    merchant_sla: timedelta = timedelta(minutes=10)
    hours: BusinessHours = field(default_factory=lambda: BusinessHours.parse("00:00-24:00", "Asia/Shanghai"))
    minutes_per_ticket: float = 5.0
    staff_first_names: bool = False
    """Show the buyer a staff member's first name next to their role ("平台客服 小李"); never a username."""
    replies: CannedReplies = field(default_factory=CannedReplies.load)


TOPIC_MARKS = {"merchant": "🟡", "queued": "🆕", "assigned": "💬", "resolved": "✅", "closed": "☑️"}
"""Topic name prefix per ticket state, so a busy agents' forum stays navigable (icons need custom emoji)."""


def topic_name(ticket: HandoffTicket, state: str | None = None, outcome: str = "") -> str:
    mark = TOPIC_MARKS.get(state or ticket.state, "")
    name = f"{mark} {ticket.ticket_id} · {ticket.order_id or '无订单'}" + (f" · {outcome}" if outcome else "")
    return name.strip()[:128]


@dataclass(frozen=True, slots=True)
class BuyerRef:
    user_id: int
    chat_id: int
    language: Language


@dataclass(frozen=True, slots=True)
class Notice:
    """Something to tell the buyer right after the assistant's own reply."""

    text: str
    end_button: bool = False


def _language(value: str) -> Language:
    return "en" if value == "en" else "zh"


def _agents_keyboard(ticket_id: str) -> Keyboard:
    return [
        [(BUTTONS["take"], f"ho:take:{ticket_id}"), (BUTTONS["restore"], f"ho:rst:{ticket_id}")],
        [(BUTTONS["fix"], f"ho:fix:{ticket_id}"), (BUTTONS["refund"], f"ho:ref:{ticket_id}")],
        [(BUTTONS["close"], f"ho:close:{ticket_id}")],
    ]


def _merchant_keyboard(ticket_id: str) -> Keyboard:
    return [
        [(BUTTONS["accept"], f"ho:acc:{ticket_id}"), (BUTTONS["restore"], f"ho:rst:{ticket_id}")],
        [(BUTTONS["fix"], f"ho:fix:{ticket_id}"), (BUTTONS["refund"], f"ho:ref:{ticket_id}")],
        [(BUTTONS["pass"], f"ho:pass:{ticket_id}"), (BUTTONS["close"], f"ho:close:{ticket_id}")],
    ]


class HandoffService:
    def __init__(
        self,
        repository: HandoffRepository,
        platform: Platform,
        assistant: AssistantControl,
        live: LiveState,
        transcripts: Transcripts,
        settings: HandoffSettings,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._repo = repository
        self._platform = platform
        self._assistant = assistant
        self._live = live
        self._transcripts = transcripts
        self.settings = settings
        self._clock = clock
        self._messenger: Messenger | None = None

    # ------------------------------------------------------------------ wiring and lookups

    def attach(self, messenger: Messenger) -> None:
        """Handoffs start only once a messenger is attached (not in the terminal chat)."""
        self._messenger = messenger

    @property
    def enabled(self) -> bool:
        return self._messenger is not None

    @property
    def messenger(self) -> Messenger:
        if self._messenger is None:
            raise RuntimeError("HandoffService.attach(messenger) was not called")
        return self._messenger

    @property
    def repository(self) -> HandoffRepository:
        return self._repo

    def is_agents_chat(self, chat_id: int) -> bool:
        return self.settings.agents_chat_id is not None and chat_id == self.settings.agents_chat_id

    async def active_for_buyer(self, user_id: int) -> HandoffTicket | None:
        """The buyer's ticket while a human holds the conversation (cached in the live store)."""
        key = f"handoff:buyer:{user_id}"
        cached = await self._live.get(key)
        if cached == NONE:
            return None
        ticket = await self._repo.get(cached) if cached else await self._repo.active_for_buyer(user_id)
        if ticket is None or not ticket.active:
            await self._live.set(key, NONE, NONE_TTL)
            return None
        if cached is None:
            await self._live.set(key, ticket.ticket_id, LIVE_TTL)
        return ticket

    async def _set_live(self, user_id: int, ticket_id: str | None) -> None:
        key = f"handoff:buyer:{user_id}"
        await self._live.set(key, ticket_id or NONE, LIVE_TTL if ticket_id else NONE_TTL)

    async def is_merchant_chat(self, chat_id: int) -> bool:
        """A merchant's private chat with the bot (linked through the platform), cached in the live store."""
        key = f"handoff:merchant-chat:{chat_id}"
        cached = await self._live.get(key)
        if cached is not None:
            return cached == "1"
        known = await self._repo.merchant_chat(chat_id) is not None
        await self._live.set(key, "1" if known else "0", NONE_TTL)
        return known

    def holds(self, ticket: HandoffTicket, chat_id: int) -> bool:
        if ticket.route == "merchant":
            return ticket.merchant_chat_id == chat_id
        return ticket.agents_chat_id == chat_id

    @staticmethod
    def topic_in(ticket: HandoffTicket, chat_id: int) -> int | None:
        """The ticket's topic in that chat (agents' forum or the merchant's chat), if it has one."""
        if ticket.agents_chat_id == chat_id and ticket.topic_id is not None:
            return ticket.topic_id
        if ticket.merchant_chat_id == chat_id:
            return ticket.merchant_topic_id
        return None

    async def ticket_for_staff(
        self, chat_id: int, thread_id: int | None, reply_to: int | None
    ) -> tuple[HandoffTicket | None, str | None]:
        """The ticket a staff message is about: its topic's; else the one replied to (a relayed message or a
        card); else the chat's only open ticket without a topic. (ticket, None) or (None, staff text key)."""
        if thread_id:
            return await self._repo.by_any_topic(chat_id, thread_id), None
        if reply_to is not None:
            relay = await self._repo.by_destination(chat_id, reply_to)
            ticket = await self._repo.get(relay.ticket_id) if relay is not None else None
            if ticket is None:
                for candidate in await self._repo.active_held_in(chat_id):
                    if reply_to in (candidate.card_message_id, candidate.agents_card_id):
                        ticket = candidate
            if ticket is not None:
                if ticket.active and not self.may_act(ticket, chat_id):
                    return None, "not_yours"
                return ticket, None
        threadless = [
            t for t in await self._repo.active_held_in(chat_id) if self.topic_in(t, chat_id) is None
        ]
        if len(threadless) == 1:
            return threadless[0], None
        return None, ("reply_needed" if threadless else None)

    def may_act(self, ticket: HandoffTicket, chat_id: int) -> bool:
        """Only the ticket's holder may act: its merchant chat (while routed there) or the agents' group."""
        if ticket.route == "merchant":
            return ticket.merchant_chat_id == chat_id or self.is_agents_chat(chat_id)
        return self.is_agents_chat(chat_id) and ticket.agents_chat_id == chat_id

    # ------------------------------------------------------------------ escalation and routing

    async def start(self, buyer: BuyerRef, escalation_id: str, order_id: str | None) -> Notice | None:
        """The assistant opened ``escalation_id``: take the conversation to a human. Idempotent."""
        if not self.enabled:
            return None
        existing = await self._repo.get(escalation_id)
        if existing is not None:
            return await self._asked_again(existing) if existing.active else None
        current = await self.active_for_buyer(buyer.user_id)
        if current is not None:
            return Notice(buyer_text("already_human", buyer.language), end_button=True)
        try:
            escalation = await self._platform.get_escalation(escalation_id)
        except PlatformError as exc:
            log.error("handoff of %s not started: escalation unreadable: %s", escalation_id, exc)
            return None
        merchant_chat: int | None = None
        merchant_name = ""
        if escalation.merchant_id:
            try:
                merchant = await self._platform.get_merchant(escalation.merchant_id)
                merchant_chat, merchant_name = merchant.telegram_chat_id, merchant.name
                if merchant_chat is not None and merchant_chat > 0:  # a private chat: staff, not a buyer
                    await self._repo.ensure_merchant_chat(merchant_chat, merchant.merchant_id, merchant.name)
                    await self._live.set(f"handoff:merchant-chat:{merchant_chat}", "1", NONE_TTL)
            except PlatformError as exc:
                log.warning("merchant %s unreadable: %s", escalation.merchant_id, exc)
        accuses = escalation.accuses_merchant
        if (merchant_chat is None or accuses) and self.settings.agents_chat_id is None:
            log.warning("handoff of %s not started: no merchant chat and no AGENTS_CHAT_ID", escalation_id)
            return None
        ticket, created = await self._repo.create(
            HandoffTicket(
                ticket_id=escalation_id,
                order_id=order_id or escalation.order_id,
                buyer_id=escalation.buyer_id,
                buyer_user_id=buyer.user_id,
                buyer_chat_id=buyer.chat_id,
                language=buyer.language,
                reason=escalation.reason,
                summary=escalation.summary,
                merchant_id=escalation.merchant_id,
                merchant_chat_id=merchant_chat,
                accuses_merchant=accuses,
                route="agents",
                state="queued",
                created_at=self._clock(),
                updated_at=self._clock(),
            )
        )
        if not created:
            return await self.buyer_notice(ticket) if ticket.active else None
        await self._set_live(buyer.user_id, ticket.ticket_id)
        await self._pause(ticket)
        await self._repo.audit(ticket.ticket_id, "escalated", detail=escalation.reason)
        order = await self._order(ticket)
        routed = False
        if merchant_chat is not None and not accuses:
            routed = await self._route_to_merchant(ticket, order, merchant_name)
        if not routed:
            why = (
                "accuses_merchant"
                if accuses
                else "no_merchant"
                if merchant_chat is None
                else "merchant_unreachable"
            )
            await self._route_to_agents(ticket, order, why)
        if accuses and merchant_chat is not None:  # told that and why, never the complaint itself
            await self._tell(
                merchant_chat,
                staff_text("kept_from_merchant", ticket=ticket.ticket_id, order=ticket.order_id or "-"),
            )
        fresh = await self._repo.get(ticket.ticket_id)
        return await self.buyer_notice(fresh or ticket)

    async def _asked_again(self, ticket: HandoffTicket) -> Notice:
        """The assistant handed over again while this ticket is open (one open ticket per buyer and order):
        the new request is added to it; an accusation of the merchant takes the ticket from the merchant."""
        try:
            escalation = await self._platform.get_escalation(ticket.ticket_id)
        except PlatformError as exc:
            log.warning("escalation %s unreadable: %s", ticket.ticket_id, exc)
            return await self.buyer_notice(ticket)
        if escalation.summary == ticket.summary and escalation.accuses_merchant == ticket.accuses_merchant:
            return await self.buyer_notice(ticket)  # the same request again (a redelivered reply)
        added = escalation.summary.rpartition("\n---\n")[2] if escalation.summary != ticket.summary else ""
        await self._repo.update(
            ticket.ticket_id,
            summary=escalation.summary,
            accuses_merchant=ticket.accuses_merchant or escalation.accuses_merchant,
        )
        await self._repo.audit(ticket.ticket_id, "request_added", detail=mask_text(added)[:500])
        taken = escalation.accuses_merchant and not ticket.accuses_merchant and ticket.route == "merchant"
        if taken and await self._repo.transition(ticket.ticket_id, ("merchant", "assigned"), state="queued"):
            await self._repo.audit(ticket.ticket_id, "taken_from_merchant", detail="accuses_merchant")
            await self._pass_to_agents(ticket, "accuses_merchant", tell_buyer=False)
        fresh = await self._repo.get(ticket.ticket_id) or ticket
        holder = self._human_chat(fresh)
        if holder is not None and added:
            asked, _ = split_summary(added)
            text = html.escape(mask_text(" / ".join(asked[-3:]) or added)[:600], quote=False)
            await self._tell_holder(
                fresh, holder, staff_text("request_added", ticket=fresh.ticket_id, text=text)
            )
        notice = await self.buyer_notice(fresh)
        head = buyer_text("request_added", _language(fresh.language), ticket=fresh.ticket_id)
        return Notice(f"{head}\n{notice.text}", end_button=True)

    async def buyer_notice(self, ticket: HandoffTicket) -> Notice:
        language = _language(ticket.language)
        now = self._clock()
        if ticket.route == "merchant" and ticket.state == "merchant":
            minutes = max(1, round(self.settings.merchant_sla.total_seconds() / 60))
            head = buyer_text("to_merchant", language, merchant=ticket.merchant_id or "-", minutes=minutes)
        elif ticket.state == "queued" and not self.settings.hours.is_open(now):
            when = self.settings.hours.next_open(now).strftime("%m-%d %H:%M")
            if not await self._repo.audit_has(ticket.ticket_id, "queued_offline"):
                await self._repo.audit(ticket.ticket_id, "queued_offline", detail=when)
            head = buyer_text("offline", language, hours=self.settings.hours.label(), when=when)
        elif ticket.state == "queued":
            position = await self._repo.queue_position(ticket)
            wait = max(1, math.ceil(position * self.settings.minutes_per_ticket))
            head = buyer_text("queued", language, position=position, wait=wait)
        else:
            head = buyer_text("taken", language, name=self._role_in(ticket, ticket.assignee_name))
        return Notice(f"{head}\n{buyer_text('while_human', language)}", end_button=True)

    async def _order(self, ticket: HandoffTicket) -> Order | None:
        if not ticket.order_id:
            return None
        try:
            return await self._platform.get_order(ticket.buyer_id, ticket.order_id)
        except PlatformError as exc:
            log.warning("order %s of ticket %s unreadable: %s", ticket.order_id, ticket.ticket_id, exc)
            return None

    async def _route_to_merchant(self, ticket: HandoffTicket, order: Order | None, name: str) -> bool:
        chat = ticket.merchant_chat_id
        assert chat is not None
        minutes = max(1, round(self.settings.merchant_sla.total_seconds() / 60))
        try:
            topic = await self._merchant_topic(chat, ticket)
            how = "在本话题直接发消息" if topic is not None else "直接「回复」本消息"
            holder = f"请在 {minutes} 分钟内回复（{how}即可发给买家），超时将转平台客服。/t 快捷回复"
            card_id = await self.messenger.send_text(
                chat,
                await self._card(ticket, order, holder),
                thread_id=topic,
                buttons=_merchant_keyboard(ticket.ticket_id),
            )
        except (ChatUnreachable, TopicGone) as exc:
            log.warning("merchant chat of ticket %s unreachable: %s", ticket.ticket_id, exc)
            return False
        await self._repo.update(
            ticket.ticket_id,
            route="merchant",
            state="merchant",
            merchant_topic_id=topic,
            card_message_id=card_id,
            sla_deadline=self._clock() + self.settings.merchant_sla,
        )
        await self._platform_state(ticket.ticket_id, "merchant_notified")
        await self._repo.audit(
            ticket.ticket_id, "routed_merchant", chat_id=ticket.merchant_chat_id, detail=name
        )
        return True

    async def _route_to_agents(self, ticket: HandoffTicket, order: Order | None, why: str) -> HandoffTicket:
        """Into the agents' group: a topic (reused while open) whose first post is the card + transcript."""
        agents = self.settings.agents_chat_id
        if agents is None:
            log.warning("ticket %s cannot go to agents: AGENTS_CHAT_ID is not set", ticket.ticket_id)
            return ticket
        await self._repo.update(
            ticket.ticket_id, route="agents", state="queued", agents_chat_id=agents, sla_deadline=None
        )
        fresh = await self._repo.get(ticket.ticket_id)
        assert fresh is not None
        if fresh.agents_card_id is None or fresh.agents_chat_id != agents:
            fresh = await self._open_topic(fresh, order)
        elif fresh.topic_id is not None:
            await self._sync_topic(fresh)
        await self._repo.audit(ticket.ticket_id, "routed_agents", chat_id=agents, detail=why)
        return fresh

    async def _card(self, ticket: HandoffTicket, order: Order | None, holder: str) -> str:
        """The first post: order card, the bot transcript and this buyer's earlier handoffs of this order."""
        if order is None:
            order = await self._order(ticket)
        transcript = await self._transcripts.transcript(ticket.buyer_chat_id, 30)
        earlier = await self._repo.history(ticket.buyer_user_id, ticket.order_id, ticket.ticket_id)
        return first_post(ticket, order, transcript, holder, earlier=earlier)

    async def _open_topic(self, ticket: HandoffTicket, order: Order | None) -> HandoffTicket:
        """The ticket's topic in the agents' group with the card as first post; where topics fail (not a
        forum, a Bot API without them) the card is a plain message and staff answer by replying to it."""
        agents = self.settings.agents_chat_id
        assert agents is not None
        topic_id: int | None = None
        try:
            topic_id = await self.messenger.create_topic(agents, topic_name(ticket, "queued"))
        except TopicsUnavailable as exc:
            log.warning(
                "no topic for ticket %s in the agents' group (%s); reply threading", ticket.ticket_id, exc
            )
        if topic_id is None:
            holder = "「回复」本消息或买家的消息即可发给买家；/take 接手 · /note 内部备注 · /t 快捷回复 · /close 结束"
        else:
            holder = "回复本话题即可发给买家；/take 接手 · /note 内部备注 · /order 刷新订单 · /t 快捷回复 · /close 结束"
        card_id = await self.messenger.send_text(
            agents,
            await self._card(ticket, order, holder),
            thread_id=topic_id,
            buttons=_agents_keyboard(ticket.ticket_id),
        )
        updated = await self._repo.update(
            ticket.ticket_id, agents_chat_id=agents, topic_id=topic_id, agents_card_id=card_id
        )
        assert updated is not None
        return updated

    async def _to_topic(
        self, ticket: HandoffTicket, send: Callable[[int | None], Awaitable[int]]
    ) -> tuple[int | None, int, HandoffTicket]:
        """Send into the ticket's topic (or, without topics, the agents' group); a deleted topic is recreated
        (with its first post) and the send repeated. (thread id, message id, ticket)."""
        if ticket.agents_card_id is None:
            ticket = await self._open_topic(ticket, None)
        try:
            return ticket.topic_id, await send(ticket.topic_id), ticket
        except TopicGone:
            log.info("topic %s of ticket %s was deleted; recreating it", ticket.topic_id, ticket.ticket_id)
            ticket = await self._open_topic(ticket, None)
            await self._repo.audit(ticket.ticket_id, "topic_recreated", chat_id=ticket.agents_chat_id)
            return ticket.topic_id, await send(ticket.topic_id), ticket

    async def _merchant_topic(self, chat_id: int, ticket: HandoffTicket) -> int | None:
        """A topic for the ticket in a merchant's private chat (Bot API topics in private chats), None where
        the chat has none: then the card and relayed messages are threaded by replies, as in groups."""
        if chat_id < 0:
            return None  # merchant groups keep reply threading
        known = await self._repo.merchant_chat(chat_id)
        if known is not None and known.topics == "no":
            return None
        try:
            topic = await self.messenger.create_topic(chat_id, topic_name(ticket, "merchant"))
        except TopicsUnavailable as exc:
            log.info("merchant chat %s takes no topics (%s): reply threading", chat_id, exc)
            await self._repo.set_merchant_topics(chat_id, "no")
            return None
        if known is None or known.topics != "yes":
            await self._repo.set_merchant_topics(chat_id, "yes")
        return topic

    async def _sync_topic(self, ticket: HandoffTicket, outcome: str = "") -> None:
        """Topic names follow the ticket's state (agents' forum and merchant's chat); best effort."""
        for chat, thread in (
            (ticket.agents_chat_id, ticket.topic_id),
            (ticket.merchant_chat_id, ticket.merchant_topic_id),
        ):
            if chat is not None and thread is not None:
                state = ticket.state
                if chat == ticket.merchant_chat_id and ticket.route == "agents" and ticket.active:
                    state, outcome_here = "closed", "已转平台"
                else:
                    outcome_here = outcome
                await self.messenger.edit_topic(chat, thread, topic_name(ticket, state, outcome_here))

    async def _close_topics(self, ticket: HandoffTicket, outcome: str) -> None:
        await self._sync_topic(ticket, outcome)
        for chat, thread in (
            (ticket.agents_chat_id, ticket.topic_id),
            (ticket.merchant_chat_id, ticket.merchant_topic_id),
        ):
            if chat is not None and thread is not None:
                await self.messenger.close_topic(chat, thread)

    async def expire_merchant_slas(self) -> int:
        """Tickets the merchant left unanswered past the SLA go to the agents; how many moved."""
        if not self.enabled:
            return 0
        moved = 0
        for ticket in await self._repo.merchant_overdue(self._clock()):
            if not await self._repo.transition(
                ticket.ticket_id, ("merchant",), state="queued", sla_deadline=None
            ):
                continue  # answered, closed or moved meanwhile
            await self._pass_to_agents(ticket, "sla_expired")
            moved += 1
        return moved

    async def _pass_to_agents(self, ticket: HandoffTicket, why: str, *, tell_buyer: bool = True) -> None:
        minutes = max(1, round(self.settings.merchant_sla.total_seconds() / 60))
        reason = staff_text(why, minutes=minutes)
        fresh = await self._route_to_agents(ticket, None, why)
        if ticket.merchant_chat_id is not None:
            await self._tell_holder(
                ticket, ticket.merchant_chat_id, staff_text("passed", ticket=ticket.ticket_id, why=reason)
            )
            if ticket.card_message_id is not None:
                await self.messenger.set_buttons(ticket.merchant_chat_id, ticket.card_message_id, None)
            if ticket.merchant_topic_id is not None:
                await self._sync_topic(fresh)
                await self.messenger.close_topic(ticket.merchant_chat_id, ticket.merchant_topic_id)
        if not tell_buyer:
            return
        language = _language(ticket.language)
        notice = await self.buyer_notice(fresh)
        prefix = buyer_text("sla_passed", language) + "\n" if why == "sla_expired" else ""
        await self._tell(ticket.buyer_chat_id, prefix + notice.text)

    async def run_sla_timer(self, interval: float = 2.0) -> None:
        """Forever: move overdue merchant tickets to the agents (deadlines are in SQL: restarts lose none)."""
        while True:
            try:
                await self.expire_merchant_slas()
                await self.wake_after_hours()
            except Exception:
                log.exception("merchant SLA / business hours check failed")
            await asyncio.sleep(interval)

    # ------------------------------------------------------------------ relay

    def _human_chat(self, ticket: HandoffTicket) -> int | None:
        return ticket.merchant_chat_id if ticket.route == "merchant" else ticket.agents_chat_id

    async def from_buyer(
        self,
        ticket: HandoffTicket,
        message_id: int,
        *,
        reply_to: int | None = None,
        edit_revision: int = 0,
        edited_text: str | None = None,
        text: str | None = None,
        kind: str = "text",
    ) -> bool:
        """Relay one buyer message (or an edit of one) to whoever holds the ticket; False for a duplicate.
        ``text`` (the message's text or caption) goes into the conversation log."""
        destination = self._human_chat(ticket)
        if destination is None:
            return False
        claim = await self._repo.claim_relay(
            RelayClaim(
                ticket.ticket_id,
                "to_human",
                ticket.buyer_chat_id,
                message_id,
                destination,
                revision=edit_revision,
            )
        )
        if claim is None:
            log.info("buyer message %s of ticket %s already relayed", message_id, ticket.ticket_id)
            return False
        try:
            if edit_revision:
                original = await self._repo.by_source(ticket.buyer_chat_id, message_id, destination)
                body = staff_text("edited_by_buyer", text=html.escape(edited_text or "", quote=False))
                anchor = original.dst_message_id if original is not None else None

                async def send(thread: int | None) -> int:
                    return await self.messenger.send_text(
                        destination, body, thread_id=thread, reply_to=anchor
                    )
            else:
                anchor = await self._map_reply(ticket.buyer_chat_id, reply_to, destination)

                async def send(thread: int | None) -> int:
                    try:
                        return await self.messenger.copy(
                            destination, ticket.buyer_chat_id, message_id, thread_id=thread, reply_to=anchor
                        )
                    except CopyUnavailable as exc:
                        log.info(
                            "copy of buyer message %s unavailable (%s): sending its text", message_id, exc
                        )
                        body = staff_text("from_buyer", text=html.escape(text or f"[{kind}]", quote=False))
                        return await self.messenger.send_text(
                            destination, body, thread_id=thread, reply_to=anchor
                        )

            thread: int | None = None
            if ticket.route == "merchant":
                try:
                    thread = ticket.merchant_topic_id
                    try:
                        sent = await send(thread)
                    except TopicGone:  # the merchant deleted the topic: reply threading from now on
                        await self._repo.update(ticket.ticket_id, merchant_topic_id=None)
                        thread, sent = None, await send(None)
                except ChatUnreachable:
                    await self._repo.transition(ticket.ticket_id, ("merchant", "assigned"), state="queued")
                    ticket = await self._route_to_agents(ticket, None, "merchant_unreachable")
                    await self._repo.release_relay(claim)
                    return await self.from_buyer(
                        ticket,
                        message_id,
                        reply_to=reply_to,
                        edit_revision=edit_revision,
                        edited_text=edited_text,
                        text=text,
                        kind=kind,
                    )
            else:
                thread, sent, ticket = await self._to_topic(ticket, send)
        except BaseException:
            await self._repo.release_relay(claim)
            raise
        await self._repo.complete_relay(claim, sent, thread)
        await self._log(
            ticket,
            "in",
            edited_text if edit_revision else text,
            "edit" if edit_revision else kind,
            message_id=message_id,
            user_id=ticket.buyer_user_id,
        )
        return True

    async def from_human(
        self,
        ticket: HandoffTicket,
        actor: Actor,
        message_id: int,
        *,
        reply_to: int | None = None,
        edit_revision: int = 0,
        edited_text: str | None = None,
        text: str | None = None,
    ) -> bool:
        """Relay a merchant's or agent's message to the buyer (a copy: no forward header, no account); the
        first one also takes the ticket and tells the buyer who (a role) joined."""
        if not ticket.active or not self.may_act(ticket, actor.chat_id):
            return False
        claim = await self._repo.claim_relay(
            RelayClaim(
                ticket.ticket_id,
                "to_buyer",
                actor.chat_id,
                message_id,
                ticket.buyer_chat_id,
                revision=edit_revision,
            )
        )
        if claim is None:
            return False
        if ticket.state in ("merchant", "queued"):
            await self._assign(ticket, actor, announce=True)
        try:
            if edit_revision:
                original = await self._repo.by_source(actor.chat_id, message_id, ticket.buyer_chat_id)
                body = staff_text("edited_by_human", text=html.escape(edited_text or "", quote=False))
                sent = await self.messenger.send_text(
                    ticket.buyer_chat_id, body, reply_to=original.dst_message_id if original else None
                )
            else:
                anchor = await self._map_reply(actor.chat_id, reply_to, ticket.buyer_chat_id)
                try:
                    sent = await self.messenger.copy(
                        ticket.buyer_chat_id, actor.chat_id, message_id, reply_to=anchor
                    )
                except CopyUnavailable as exc:
                    if not text:
                        raise
                    log.info("copy of staff message %s unavailable (%s): sending its text", message_id, exc)
                    sent = await self.messenger.send_text(
                        ticket.buyer_chat_id, html.escape(text, quote=False), reply_to=anchor
                    )
        except BaseException:
            await self._repo.release_relay(claim)
            raise
        await self._repo.complete_relay(claim, sent, None)
        await self._log(
            ticket,
            "out",
            edited_text if edit_revision else text,
            "human_edit" if edit_revision else "human",
            message_id=sent,
            user_id=actor.user_id,
        )
        return True

    async def _map_reply(self, src_chat: int, reply_to: int | None, dst_chat: int) -> int | None:
        """The message in ``dst_chat`` that corresponds to the one replied to in ``src_chat``."""
        if reply_to is None:
            return None
        copied = await self._repo.by_destination(src_chat, reply_to)
        if copied is not None and copied.src_chat_id == dst_chat:
            return copied.src_message_id
        original = await self._repo.by_source(src_chat, reply_to, dst_chat)
        return original.dst_message_id if original is not None else None

    # ------------------------------------------------------------------ commands and actions

    def role(self, ticket: HandoffTicket, actor_name: str | None = None) -> tuple[str, str]:
        """(zh, en) of how the buyer sees the person: a role, plus a first name if configured; never a
        username or a phone number."""
        merchant = ticket.route == "merchant"
        zh, en = ("商家客服", "Seller support") if merchant else ("平台客服", "Platform support")
        if self.settings.staff_first_names and actor_name:
            first = first_name(actor_name)
            if first:
                zh, en = f"{zh} {first}", f"{en} {first}"
        return html.escape(zh, quote=False), html.escape(en, quote=False)

    def _role_in(self, ticket: HandoffTicket, actor_name: str | None = None) -> str:
        zh, en = self.role(ticket, actor_name)
        return en if _language(ticket.language) == "en" else zh

    async def _assign(self, ticket: HandoffTicket, actor: Actor, *, announce: bool) -> bool:
        fresh = await self._repo.get(ticket.ticket_id) or ticket
        if fresh.state == "assigned" and fresh.assignee_id == actor.user_id:
            return False  # already theirs (a repeated /take or button press)
        done = await self._repo.transition(
            ticket.ticket_id,
            ("merchant", "queued", "assigned"),
            state="assigned",
            assignee_id=actor.user_id,
            assignee_name=actor.name,
            sla_deadline=None,
        )
        if not done:
            return False
        await self._repo.audit(
            ticket.ticket_id, "take", actor_id=actor.user_id, actor_name=actor.name, chat_id=actor.chat_id
        )
        if fresh.route == "agents":
            await self._platform_state(ticket.ticket_id, "agent_assigned")
        assigned = await self._repo.get(ticket.ticket_id)
        if assigned is not None and assigned.route == "agents" and assigned.topic_id is not None:
            await self._sync_topic(assigned)
        if announce:
            language = _language(ticket.language)
            await self._tell(
                ticket.buyer_chat_id, buyer_text("taken", language, name=self._role_in(fresh, actor.name))
            )
        return True

    async def take(self, ticket: HandoffTicket, actor: Actor) -> str:
        if not ticket.active:
            return staff_text("ticket_closed", ticket=ticket.ticket_id)
        if not await self._assign(ticket, actor, announce=True):
            return staff_text("already_yours", ticket=ticket.ticket_id)
        return staff_text("accepted", name=html.escape(actor.name), ticket=ticket.ticket_id)

    async def release(self, ticket: HandoffTicket, actor: Actor) -> str:
        if not ticket.active:
            return staff_text("ticket_closed", ticket=ticket.ticket_id)
        state = "queued" if ticket.route == "agents" else "merchant"
        await self._repo.update(ticket.ticket_id, state=state, assignee_id=None, assignee_name=None)
        await self._repo.audit(
            ticket.ticket_id, "release", actor_id=actor.user_id, actor_name=actor.name, chat_id=actor.chat_id
        )
        fresh = await self._repo.get(ticket.ticket_id)
        if fresh is not None and fresh.topic_id is not None and fresh.route == "agents":
            await self._sync_topic(fresh)
        await self._tell(ticket.buyer_chat_id, buyer_text("released", _language(ticket.language)))
        return staff_text("released", name=html.escape(actor.name), ticket=ticket.ticket_id)

    async def note(self, ticket: HandoffTicket, actor: Actor, text: str) -> str:
        if not text.strip():
            return staff_text("note_usage")
        await self._repo.audit(
            ticket.ticket_id,
            "note",
            actor_id=actor.user_id,
            actor_name=actor.name,
            chat_id=actor.chat_id,
            detail=text,
        )
        return staff_text("note_saved")

    async def order_card(self, ticket: HandoffTicket, actor: Actor | None = None) -> str:
        if actor is not None:
            await self._repo.audit(
                ticket.ticket_id,
                "order",
                actor_id=actor.user_id,
                actor_name=actor.name,
                chat_id=actor.chat_id,
            )
        return render_card(ticket, await self._order(ticket))

    async def canned(self, ticket: HandoffTicket, actor: Actor, name: str) -> str | None:
        """``/t`` lists the canned replies; ``/t <name>`` sends one to the buyer in their language."""
        replies = self.settings.replies
        if not name.strip():
            return replies.listing()
        reply = replies.get(name)
        if reply is None:
            return staff_text("no_template", name=html.escape(name.strip())) + "\n" + replies.listing()
        if not ticket.active:
            return staff_text("ticket_closed", ticket=ticket.ticket_id)
        if ticket.state in ("merchant", "queued"):
            await self._assign(ticket, actor, announce=True)
        text = reply.text(_language(ticket.language))
        sent = await self.messenger.send_text(ticket.buyer_chat_id, text)
        await self._repo.audit(
            ticket.ticket_id,
            "template",
            actor_id=actor.user_id,
            actor_name=actor.name,
            chat_id=actor.chat_id,
            detail=reply.name,
        )
        await self._log(ticket, "out", text, "human", message_id=sent, user_id=actor.user_id)
        return staff_text("template_sent", name=html.escape(reply.title))

    async def pass_to_platform(self, ticket: HandoffTicket, actor: Actor) -> str | None:
        if ticket.route != "merchant" or not ticket.active:
            return staff_text("not_yours")
        if not await self._repo.transition(ticket.ticket_id, ("merchant", "assigned"), state="queued"):
            return staff_text("ticket_closed", ticket=ticket.ticket_id)
        await self._repo.audit(
            ticket.ticket_id, "pass", actor_id=actor.user_id, actor_name=actor.name, chat_id=actor.chat_id
        )
        await self._pass_to_agents(ticket, "passed_by_merchant")
        return None

    async def close(self, ticket: HandoffTicket, actor: Actor | None) -> str:
        """Resolve: the assistant resumes and the buyer is asked for a 1–5 rating; topics closed."""
        done = await self._repo.transition(
            ticket.ticket_id, ACTIVE_STATES, state="resolved", resolved_at=self._clock(), sla_deadline=None
        )
        if not done:
            return staff_text("ticket_closed", ticket=ticket.ticket_id)
        await self._set_live(ticket.buyer_user_id, None)
        await self._resume(ticket)
        await self._platform_state(ticket.ticket_id, "resolved")
        await self._repo.audit(
            ticket.ticket_id,
            "close",
            actor_id=actor.user_id if actor else ticket.buyer_user_id,
            actor_name=actor.name if actor else "buyer",
            chat_id=actor.chat_id if actor else ticket.buyer_chat_id,
        )
        language = _language(ticket.language)
        await self.messenger.send_text(
            ticket.buyer_chat_id,
            buyer_text("ended", language),
            buttons=[[(str(score), f"csat:{ticket.ticket_id}:{score}") for score in range(1, 6)]],
        )
        note = (
            staff_text("closed_by_buyer", ticket=ticket.ticket_id)
            if actor is None
            else staff_text("closed", name=html.escape(actor.name), ticket=ticket.ticket_id)
        )
        for chat_id in (
            ticket.merchant_chat_id if ticket.route == "merchant" else None,
            ticket.agents_chat_id,
        ):
            if chat_id is not None and (actor is None or chat_id != actor.chat_id):
                await self._tell_holder(ticket, chat_id, note)
        fresh = await self._repo.get(ticket.ticket_id)
        if fresh is not None:
            await self._close_topics(fresh, "买家结束" if actor is None else "已解决")
        return note

    async def reopen(self, ticket: HandoffTicket, actor: Actor) -> str:
        """``/reopen`` in a closed ticket's topic or chat: the same person takes the buyer back, the topic
        reopens and the assistant pauses again (the buyer is told)."""
        if ticket.active:
            return staff_text("still_open", ticket=ticket.ticket_id)
        current = await self.active_for_buyer(ticket.buyer_user_id)
        if current is not None:
            return staff_text("buyer_busy", ticket=current.ticket_id)
        if not await self._repo.transition(
            ticket.ticket_id,
            ("resolved", "closed"),
            state="assigned",
            assignee_id=actor.user_id,
            assignee_name=actor.name,
            resolved_at=None,
        ):
            return staff_text("ticket_closed", ticket=ticket.ticket_id)
        await self._repo.audit(
            ticket.ticket_id, "reopen", actor_id=actor.user_id, actor_name=actor.name, chat_id=actor.chat_id
        )
        await self._set_live(ticket.buyer_user_id, ticket.ticket_id)
        fresh = await self._repo.get(ticket.ticket_id)
        assert fresh is not None
        await self._pause(fresh)
        for chat, thread in (
            (fresh.agents_chat_id, fresh.topic_id),
            (fresh.merchant_chat_id, fresh.merchant_topic_id),
        ):
            if chat is not None and thread is not None and self.holds(fresh, chat):
                await self.messenger.reopen_topic(chat, thread)
        await self._sync_topic(fresh)
        language = _language(fresh.language)
        await self._tell(
            fresh.buyer_chat_id,
            buyer_text("reopened", language, name=self._role_in(fresh, actor.name), ticket=fresh.ticket_id)
            + "\n"
            + buyer_text("while_human", language),
        )
        return staff_text("reopened", name=html.escape(actor.name), ticket=fresh.ticket_id)

    async def rate(self, ticket_id: str, user_id: int, score: int) -> Language | None:
        """Store the buyer's rating and send it to the platform; the buyer's language, or None if refused."""
        ticket = await self._repo.get(ticket_id)
        if ticket is None or ticket.buyer_user_id != user_id or not 1 <= score <= 5 or ticket.active:
            return None
        await self._repo.update(ticket_id, csat=score, csat_at=self._clock(), state="closed")
        await self._repo.audit(ticket_id, "csat", actor_id=user_id, actor_name="buyer", detail=str(score))
        try:
            await self._platform.submit_csat(
                ticket_id, score, idempotency_key=f"handoff-csat:{ticket_id}:{score}"
            )
        except PlatformError as exc:
            log.error("CSAT of %s not sent to the platform: %s", ticket_id, exc)
        await self._platform_state(ticket_id, "closed")
        holder = ticket.agents_chat_id if ticket.route == "agents" else ticket.merchant_chat_id
        if holder is not None:
            await self._tell_holder(ticket, holder, staff_text("csat", ticket=ticket_id, score=score))
        rated = await self._repo.get(ticket_id)
        if rated is not None:
            await self._sync_topic(rated, f"{score}★")
        return _language(ticket.language)

    async def platform_action(
        self, ticket: HandoffTicket, actor: Actor, action: str, argument: str = "", *, request_id: str = ""
    ) -> str:
        """restore / fix / refund on the platform, logged with who did it; the staff-facing result.

        The idempotency key is per staff request (``request_id``: the command message or button press), so a
        redelivered update does it once and a later, separate request is a new action."""
        if ticket.order_id is None:
            return staff_text("no_order")
        if not ticket.active:
            return staff_text("ticket_closed", ticket=ticket.ticket_id)
        language = _language(ticket.language)
        name = html.escape(actor.name)
        request = request_id or hashlib.sha256(argument.encode()).hexdigest()[:16]
        key = f"handoff:{ticket.ticket_id}:{action}:{request}"[:200]
        try:
            if action == "restore":
                order = await self._platform.restore_order(
                    ticket.buyer_id, ticket.order_id, idempotency_key=key
                )
                result = staff_text("restored", name=name, order=order.order_id, state=order.state)
                buyer = buyer_text("restored", language, order=order.order_id)
            elif action == "fix":
                account, _, region = argument.strip().partition(" ")
                if not account:
                    return staff_text("fix_usage")
                order = await self._platform.fix_recharge_target(
                    ticket.buyer_id,
                    ticket.order_id,
                    account=account,
                    region=region.strip() or None,
                    idempotency_key=key,
                )
                target = order.recharge_target
                shown = " ".join(filter(None, [target.account, target.region]))
                result = staff_text(
                    "fixed", name=name, order=order.order_id, target=html.escape(mask_text(shown))
                )
                buyer = buyer_text("fixed", language, order=order.order_id, target=html.escape(shown))
            elif action == "refund":
                refund = await self._platform.request_refund(
                    ticket.buyer_id,
                    ticket.order_id,
                    f"handoff {ticket.ticket_id}: refund by {'merchant' if ticket.route == 'merchant' else 'agent'}",
                    idempotency_key=key,
                )
                result = staff_text("refund_requested", name=name, order=ticket.order_id, state=refund.state)
                buyer = buyer_text(
                    "refunded" if refund.state == "approved" else "refund_requested",
                    language,
                    order=ticket.order_id,
                )
            else:
                raise ValueError(f"unknown action {action}")
        except PlatformError as exc:
            await self._repo.audit(
                ticket.ticket_id,
                f"{action}_failed",
                actor_id=actor.user_id,
                actor_name=actor.name,
                chat_id=actor.chat_id,
                detail=f"{exc.code}: {exc}"[:500],
            )
            return staff_text("action_failed", action=action, error=html.escape(str(exc)[:200]))
        await self._repo.audit(
            ticket.ticket_id,
            action,
            actor_id=actor.user_id,
            actor_name=actor.name,
            chat_id=actor.chat_id,
            detail=f"{mask_text(argument)} key={key}".strip(),
        )
        await self._tell(ticket.buyer_chat_id, buyer)
        await self._log(ticket, "out", buyer, "human", message_id=None, user_id=actor.user_id)
        return result

    async def wake_after_hours(self) -> int:
        """When business hours begin, tickets queued while agents were offline are picked up: the agents
        get a reminder in each topic and the buyer is told that agents are back. How many were woken."""
        if not self.enabled or not self.settings.hours.is_open(self._clock()):
            return 0
        woken = 0
        for ticket in await self._repo.queued_agents():
            if not await self._repo.audit_has(ticket.ticket_id, "queued_offline"):
                continue
            if await self._repo.audit_has(ticket.ticket_id, "woken"):
                continue
            await self._repo.audit(ticket.ticket_id, "woken")
            if ticket.agents_chat_id is not None:
                await self._tell_holder(
                    ticket, ticket.agents_chat_id, staff_text("woken", ticket=ticket.ticket_id)
                )
            notice = await self.buyer_notice(ticket)
            await self._tell(
                ticket.buyer_chat_id,
                buyer_text("hours_begun", _language(ticket.language)) + "\n" + notice.text,
            )
            woken += 1
        return woken

    async def link_merchant(self, token: str, chat_id: int) -> tuple[bool, str]:
        """``/start m-…``: link this chat (a merchant's private chat with the bot, or their group) to the
        merchant of the platform's one-time token. (linked, staff text)."""
        try:
            merchant = await self._platform.redeem_merchant_link_token(
                token, chat_id, idempotency_key=f"merchant-link:{token}:{chat_id}"
            )
        except PlatformError as exc:
            log.info(
                "merchant link for chat %s refused: %s", chat_id, exc.code if hasattr(exc, "code") else exc
            )
            return False, staff_text(
                "link_failed", error=html.escape(getattr(exc, "message", "") or str(exc))
            )
        await self._repo.link_merchant_chat(chat_id, merchant.merchant_id, merchant.name)
        await self._live.set(f"handoff:merchant-chat:{chat_id}", "1" if chat_id > 0 else "0", NONE_TTL)
        where = (
            "每个工单在这里单独开一个话题"
            if chat_id > 0
            else "工单卡片会发到本群，「回复」卡片或买家消息即可回复"
        )
        return True, staff_text("linked", name=html.escape(merchant.name), where=where)

    async def _log(
        self,
        ticket: HandoffTicket,
        direction: str,
        text: str | None,
        kind: str,
        *,
        message_id: int | None,
        user_id: int | None,
    ) -> None:
        """One conversation record: what people said goes into the conversation log too (best effort)."""
        try:
            await self._transcripts.append(
                LoggedMessage(
                    chat_id=ticket.buyer_chat_id,
                    direction=direction,
                    kind=kind,
                    text=text or f"[{kind}]",
                    telegram_user_id=user_id,
                    telegram_message_id=message_id,
                    language=ticket.language,
                )
            )
        except Exception:
            log.exception("handoff message of ticket %s not logged", ticket.ticket_id)

    # ------------------------------------------------------------------ helpers

    async def _tell(self, chat_id: int, text: str) -> None:
        try:
            await self.messenger.send_text(chat_id, text)
        except (ChatUnreachable, TopicGone) as exc:
            log.warning("could not tell chat %s: %s", chat_id, exc)

    async def _tell_holder(self, ticket: HandoffTicket, chat_id: int, text: str) -> None:
        """A short note in the ticket's topic (agents) or in the merchant's chat."""
        thread = self.topic_in(ticket, chat_id)
        if thread is not None:
            try:
                await self.messenger.send_text(chat_id, text, thread_id=thread)
                return
            except (ChatUnreachable, TopicGone) as exc:
                log.warning("could not post in topic of %s: %s", ticket.ticket_id, exc)
                if self.is_agents_chat(chat_id):
                    return
        await self._tell(chat_id, text)

    async def _pause(self, ticket: HandoffTicket) -> None:
        try:
            await self._assistant.pause(f"tg-{ticket.buyer_user_id}")
        except RasaError as exc:
            log.warning("could not pause the assistant for ticket %s: %s", ticket.ticket_id, exc)

    async def _resume(self, ticket: HandoffTicket) -> None:
        try:
            await self._assistant.resume(f"tg-{ticket.buyer_user_id}")
        except RasaError as exc:
            log.error("could not resume the assistant for ticket %s: %s", ticket.ticket_id, exc)

    async def _platform_state(self, ticket_id: str, state: EscalationState) -> None:
        try:
            await self._platform.update_escalation(
                ticket_id, state, idempotency_key=f"handoff:{ticket_id}:{state}"
            )
        except PlatformError as exc:
            log.warning("escalation %s not moved to %s: %s", ticket_id, state, exc)


def first_name(name: str) -> str:
    """The first word of a display name, unless it looks like a username, a phone number or an id."""
    first = name.strip().split(" ")[0] if name.strip() else ""
    if not first or first.startswith("@") or sum(ch.isdigit() for ch in first) >= 3:
        return ""
    return first[:16]


__all__ = [
    "END_PAYLOAD",
    "BuyerRef",
    "HandoffService",
    "HandoffSettings",
    "Notice",
    "first_name",
    "mask_number",
    "topic_name",
    "utc_now",
]
