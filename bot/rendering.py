"""Turn the assistant's replies into Telegram messages: HTML-escaped text, inline keyboards, split texts."""

from __future__ import annotations

import html
from dataclasses import dataclass

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.payloads import PayloadCodec
from integrations.rasa import BotButton, BotReply

TELEGRAM_TEXT_LIMIT = 4096
BUTTONS_PER_ROW = 2
LONG_TITLE = 14


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    text: str
    keyboard: InlineKeyboardMarkup | None = None


def split_text(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Split at paragraph, then line, then hard boundaries so that no part exceeds ``limit``."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n\n", 0, limit)
        if cut <= 0:
            cut = rest.rfind("\n", 0, limit)
        if cut <= 0:
            cut = rest.rfind(" ", 0, limit)
        if cut <= 0:
            cut = _safe_hard_cut(rest, limit)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ")
    if rest:
        parts.append(rest)
    return parts


def _safe_hard_cut(text: str, limit: int) -> int:
    """Never cut inside an HTML entity such as ``&amp;``."""
    amp = text.rfind("&", max(0, limit - 10), limit)
    if amp != -1 and text.find(";", amp, limit) == -1:
        return amp
    return limit


async def keyboard_for(buttons: list[BotButton], codec: PayloadCodec) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    row: list[InlineKeyboardButton] = []
    for button in buttons:
        item = InlineKeyboardButton(text=button.title[:64], callback_data=await codec.encode(button.payload))
        if len(button.title) > LONG_TITLE:
            if row:
                rows.append(row)
                row = []
            rows.append([item])
            continue
        row.append(item)
        if len(row) == BUTTONS_PER_ROW:
            rows.append(row)
            row = []
    if row:
        rows.append(row)
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def render_reply(reply: BotReply, codec: PayloadCodec) -> list[OutgoingMessage]:
    """One assistant reply → one or more Telegram messages; the keyboard rides on the last part."""
    body = html.escape(reply.text or "", quote=False)
    if reply.image:
        body = f"{body}\n{html.escape(reply.image, quote=False)}".strip()
    keyboard = await keyboard_for(reply.buttons, codec)
    if not body and keyboard is not None:
        body = "👇"
    parts = split_text(body) if body else []
    messages = [OutgoingMessage(text=part) for part in parts]
    if messages and keyboard is not None:
        messages[-1] = OutgoingMessage(text=messages[-1].text, keyboard=keyboard)
    return messages
