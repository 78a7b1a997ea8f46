"""Builds the dispatcher and the bot's services from already-made clients (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass

from aiogram import Dispatcher
from aiogram.fsm.storage.base import BaseStorage

from bot.middlewares import on_error
from bot.payloads import PayloadCodec
from bot.routers.buyer import buyer_router
from bot.services.conversation import Assistant, ConversationService
from integrations.storage.repositories import ConversationLog


@dataclass(frozen=True, slots=True)
class BotServices:
    conversation: ConversationService
    codec: PayloadCodec
    conversation_log: ConversationLog


def build_services(
    assistant: Assistant, conversation_log: ConversationLog, codec: PayloadCodec
) -> BotServices:
    return BotServices(
        conversation=ConversationService(assistant, conversation_log),
        codec=codec,
        conversation_log=conversation_log,
    )


def build_dispatcher(storage: BaseStorage, services: BotServices) -> Dispatcher:
    """Routers plus dependencies handed to handlers as keyword arguments."""
    dispatcher = Dispatcher(
        storage=storage,
        conversation=services.conversation,
        codec=services.codec,
        conversation_log=services.conversation_log,
    )
    dispatcher.errors.register(on_error)
    dispatcher.include_router(buyer_router())
    return dispatcher
