"""Thin handlers of the handoff: the buyer's side while a human holds the conversation, the agents' forum
supergroup, merchants' chats, and the CSAT buttons. Logic lives in ``HandoffService``."""

from __future__ import annotations

import contextlib
import html
from typing import Any

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, CommandStart, Filter
from aiogram.types import CallbackQuery, InaccessibleMessage, Message, TelegramObject, User

from bot.handoff.ports import Actor
from bot.handoff.service import END_PAYLOAD, HandoffService
from bot.handoff.texts import buyer_text, staff_text
from bot.i18n import Language, language_from_telegram
from bot.payloads import PayloadCodec
from integrations.storage.handoff import HandoffTicket

STAFF_COMMANDS = (
    "take",
    "release",
    "close",
    "reopen",
    "note",
    "order",
    "fix",
    "restore",
    "refund",
    "pass",
    "t",
)
BUYER_PASSTHROUGH = ("lang", "help")


def _language(user: User | None) -> Language:
    return language_from_telegram(user.language_code if user else None)


def _actor(user: User | None, chat_id: int) -> Actor:
    if user is None:
        return Actor(0, "?", chat_id)
    name = user.full_name or (f"@{user.username}" if user.username else str(user.id))
    return Actor(user.id, name, chat_id)


class BuyerInHandoff(Filter):
    """Private chat of a buyer whose conversation a human holds; hands the ticket to the handler."""

    async def __call__(
        self, event: TelegramObject, handoff: HandoffService | None = None, **_: Any
    ) -> bool | dict[str, Any]:
        user = getattr(event, "from_user", None)
        if handoff is None or user is None:
            return False
        ticket = await handoff.active_for_buyer(user.id)
        return {"ticket": ticket} if ticket is not None else False


class InAgentsChat(Filter):
    async def __call__(self, event: TelegramObject, handoff: HandoffService | None = None, **_: Any) -> bool:
        chat = (
            event.message.chat
            if isinstance(event, CallbackQuery) and event.message
            else getattr(event, "chat", None)
        )
        return handoff is not None and chat is not None and handoff.is_agents_chat(chat.id)


# ---------------------------------------------------------------------------------------------- buyers


async def on_buyer_message(message: Message, ticket: HandoffTicket, handoff: HandoffService) -> None:
    reply_to = message.reply_to_message.message_id if message.reply_to_message else None
    kind = "text" if message.text else str(message.content_type)
    await handoff.from_buyer(ticket, message.message_id, reply_to=reply_to, text=_content(message), kind=kind)


async def on_buyer_edit(edited_message: Message, ticket: HandoffTicket, handoff: HandoffService) -> None:
    revision = edited_message.edit_date or 1
    content = edited_message.text or edited_message.caption or ""
    await handoff.from_buyer(
        ticket, edited_message.message_id, edit_revision=int(revision), edited_text=content
    )


async def on_buyer_end(message: Message, handoff: HandoffService) -> None:
    assert message.from_user is not None
    ticket = await handoff.active_for_buyer(message.from_user.id)
    if ticket is None:
        await message.answer(buyer_text("not_in_handoff", _language(message.from_user)))
        return
    await handoff.close(ticket, None)


async def on_buyer_human_again(message: Message) -> None:
    await message.answer(buyer_text("already_human", _language(message.from_user)))


async def on_buyer_button(
    query: CallbackQuery, ticket: HandoffTicket, handoff: HandoffService, codec: PayloadCodec
) -> None:
    payload = await codec.decode(query.data or "")
    if payload != END_PAYLOAD:
        await query.answer(buyer_text("button_busy", _language(query.from_user)))
        return
    await query.answer()
    if query.message is not None and not isinstance(query.message, InaccessibleMessage):
        with contextlib.suppress(TelegramBadRequest):
            await query.message.edit_reply_markup(reply_markup=None)
    await handoff.close(ticket, None)


async def on_csat(query: CallbackQuery, handoff: HandoffService) -> None:
    _, ticket_id, score = (query.data or "::").split(":", 2)
    language = await handoff.rate(ticket_id, query.from_user.id, int(score) if score.isdigit() else 0)
    if language is None:
        await query.answer()
        return
    await query.answer(buyer_text("thanks", language, score=score))
    if query.message is not None and not isinstance(query.message, InaccessibleMessage):
        with contextlib.suppress(TelegramBadRequest):
            await query.message.edit_text(
                f"{html.escape(query.message.text or '')}\n\n{buyer_text('thanks', language, score=score)}",
                reply_markup=None,
            )


# ---------------------------------------------------------------------------------------------- staff


class MerchantPrivateChat(Filter):
    """A merchant's private chat with the bot (linked with the platform's ``m-…`` deep link)."""

    async def __call__(self, event: TelegramObject, handoff: HandoffService | None = None, **_: Any) -> bool:
        chat = getattr(event, "chat", None)
        return handoff is not None and chat is not None and await handoff.is_merchant_chat(chat.id)


def _where(message: Message) -> tuple[int | None, int | None]:
    """(topic, replied-to message) of a staff message; a forum's topic root is not a real reply."""
    thread = message.message_thread_id if message.is_topic_message else None
    reply = message.reply_to_message
    reply_to = reply.message_id if reply is not None and not reply.forum_topic_created else None
    if thread is not None and reply_to == thread:
        reply_to = None
    return thread, reply_to


async def _staff_ticket(message: Message, handoff: HandoffService) -> HandoffTicket | None:
    """The ticket a staff message is about: the topic's, the one replied to, or the chat's only one."""
    thread, reply_to = _where(message)
    ticket, why = await handoff.ticket_for_staff(message.chat.id, thread, reply_to)
    if ticket is None and why is not None:
        await message.reply(staff_text(why))
    elif ticket is None and message.chat.type == ChatType.PRIVATE:
        await message.reply(staff_text("no_ticket_here"))
    return ticket


def _request_id(message: Message) -> str:
    return f"m{message.chat.id}:{message.message_id}"


async def on_staff_command(message: Message, command: CommandObject, handoff: HandoffService) -> None:
    ticket = await _staff_ticket(message, handoff)
    if ticket is None:
        return
    actor = _actor(message.from_user, message.chat.id)
    if not handoff.may_act(ticket, actor.chat_id):
        await message.reply(staff_text("not_yours"))
        return
    args = (command.args or "").strip()
    name = command.command.lower()
    answer: str | None
    if name == "take":
        answer = await handoff.take(ticket, actor)
    elif name == "release":
        answer = await handoff.release(ticket, actor)
    elif name == "close":
        answer = await handoff.close(ticket, actor)
    elif name == "reopen":
        answer = await handoff.reopen(ticket, actor)
    elif name == "note":
        answer = await handoff.note(ticket, actor, args)
    elif name == "order":
        answer = await handoff.order_card(ticket, actor)
    elif name == "pass":
        answer = await handoff.pass_to_platform(ticket, actor)
    elif name == "t":
        answer = await handoff.canned(ticket, actor, args)
    else:
        answer = await handoff.platform_action(ticket, actor, name, args, request_id=_request_id(message))
    if answer:
        await message.reply(answer)


def _content(message: Message) -> str:
    return message.text or message.caption or f"[{message.content_type}]"


async def on_staff_message(message: Message, handoff: HandoffService) -> None:
    if (message.text or "").startswith("/"):
        return  # other bots' or unknown commands are never relayed
    if message.forum_topic_created or message.forum_topic_edited or message.forum_topic_closed:
        return  # service messages
    if message.forum_topic_reopened:
        return
    ticket = await _staff_ticket(message, handoff)
    if ticket is None:
        return
    actor = _actor(message.from_user, message.chat.id)
    _, reply_to = _where(message)
    if not ticket.active:
        await message.reply(staff_text("ticket_closed", ticket=ticket.ticket_id))
        return
    if not handoff.may_act(ticket, actor.chat_id):
        await message.reply(staff_text("not_yours"))
        return
    await handoff.from_human(
        ticket, actor, message.message_id, reply_to=reply_to, text=message.text or message.caption
    )


async def on_staff_edit(edited_message: Message, handoff: HandoffService) -> None:
    thread, reply_to = _where(edited_message)
    ticket, _ = await handoff.ticket_for_staff(edited_message.chat.id, thread, reply_to)
    if ticket is None or not ticket.active:
        return
    actor = _actor(edited_message.from_user, edited_message.chat.id)
    await handoff.from_human(
        ticket,
        actor,
        edited_message.message_id,
        edit_revision=int(edited_message.edit_date or 1),
        edited_text=edited_message.text or edited_message.caption or "",
    )


async def on_staff_button(query: CallbackQuery, handoff: HandoffService) -> None:
    _, action, ticket_id = (query.data or "::").split(":", 2)
    message = query.message
    ticket = await handoff.repository.get(ticket_id)
    if ticket is None or message is None or not handoff.may_act(ticket, message.chat.id):
        await query.answer(staff_text("not_yours"), show_alert=True)
        return
    await query.answer()
    actor = _actor(query.from_user, message.chat.id)
    answer: str | None
    if action in ("take", "acc"):
        answer = await handoff.take(ticket, actor)
    elif action == "close":
        answer = await handoff.close(ticket, actor)
    elif action == "pass":
        answer = await handoff.pass_to_platform(ticket, actor)
    elif action == "fix":
        answer = staff_text("fix_usage")
    elif action in ("rst", "ref"):
        answer = await handoff.platform_action(
            ticket, actor, "restore" if action == "rst" else "refund", request_id=f"cb{query.id}"
        )
    else:
        answer = None
    if answer:
        await handoff.messenger.send_text(
            message.chat.id,
            answer,
            thread_id=handoff.topic_in(ticket, message.chat.id),
            reply_to=message.message_id,
        )


async def on_merchant_link(message: Message, command: CommandObject, handoff: HandoffService) -> None:
    """``/start m-…`` (the platform's merchant deep link) in a private chat or a group."""
    _, text = await handoff.link_merchant((command.args or "").strip(), message.chat.id)
    await message.answer(text)


def handoff_router() -> Router:
    """Include before the buyer router: it takes buyers' updates while a human holds their conversation,
    merchants' private chats, and the staff side of groups."""
    router = Router(name="handoff")
    private = F.chat.type == ChatType.PRIVATE
    groups = F.chat.type.in_({ChatType.GROUP, ChatType.SUPERGROUP})

    router.callback_query.register(on_csat, F.data.startswith("csat:"))
    router.callback_query.register(on_staff_button, F.data.startswith("ho:"))
    router.message.register(on_merchant_link, CommandStart(deep_link=True, magic=F.args.startswith("m-")))

    router.message.register(on_staff_command, private, Command(*STAFF_COMMANDS), MerchantPrivateChat())
    router.message.register(on_staff_message, private, ~CommandStart(), MerchantPrivateChat())
    router.edited_message.register(on_staff_edit, private, MerchantPrivateChat())

    router.message.register(on_buyer_end, private, Command("end"))
    router.message.register(on_buyer_human_again, private, Command("human"), BuyerInHandoff())
    router.message.register(on_buyer_message, private, ~Command(*BUYER_PASSTHROUGH), BuyerInHandoff())
    router.edited_message.register(on_buyer_edit, private, BuyerInHandoff())
    router.callback_query.register(on_buyer_button, F.message.chat.type == ChatType.PRIVATE, BuyerInHandoff())

    router.message.register(on_staff_command, groups, Command(*STAFF_COMMANDS))
    router.message.register(on_staff_message, groups)
    router.edited_message.register(on_staff_edit, groups)
    return router
