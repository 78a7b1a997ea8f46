"""Send rendered replies to a chat."""

from __future__ import annotations

from aiogram import Bot

from bot.payloads import PayloadCodec
from bot.rendering import render_reply
from integrations.rasa import BotReply


async def send_replies(bot: Bot, chat_id: int, replies: list[BotReply], codec: PayloadCodec) -> None:
    for reply in replies:
        for outgoing in await render_reply(reply, codec):
            await bot.send_message(chat_id, outgoing.text, reply_markup=outgoing.keyboard)
