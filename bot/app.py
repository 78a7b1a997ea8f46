"""Builds the dispatcher and the bot's services from already-made clients (no I/O here)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiogram import Dispatcher, Router
from aiogram.fsm.storage.base import BaseStorage

from bot.handoff.conversation import HandoffAwareConversation
from bot.handoff.routers import handoff_router
from bot.handoff.service import HandoffService
from bot.kv import MemoryKeyValueStore, RedisKeyValueStore
from bot.middlewares import on_error
from bot.ordering import DeduplicateUpdates, FloodControl, SerializePerChat, install_outermost
from bot.payloads import PayloadCodec
from bot.routers.buyer import buyer_router
from bot.services.attachments import AttachmentService
from bot.services.binding import BindingService
from bot.services.conversation import Assistant, ConversationService
from bot.services.escalation import PlatformEscalator
from bot.services.pending import PendingStore
from bot.services.preferences import LanguagePreferences
from integrations.platform.client import PlatformClient
from integrations.storage.repositories import ConversationLog

KeyValue = MemoryKeyValueStore | RedisKeyValueStore


@dataclass(frozen=True, slots=True)
class BotServices:
    conversation: ConversationService
    codec: PayloadCodec
    conversation_log: ConversationLog
    preferences: LanguagePreferences
    binding: BindingService
    attachments: AttachmentService
    kv: KeyValue
    platform: PlatformClient
    handoff: HandoffService | None = None


def build_services(
    assistant: Assistant,
    conversation_log: ConversationLog,
    kv: KeyValue,
    platform: PlatformClient,
    pending: PendingStore | None = None,
    handoff: HandoffService | None = None,
    actions_healthy: Callable[[], Awaitable[bool]] | None = None,
) -> BotServices:
    escalator = PlatformEscalator(platform)
    conversation = (
        ConversationService(assistant, conversation_log, pending, escalator, actions_healthy=actions_healthy)
        if handoff is None
        else HandoffAwareConversation(
            handoff, assistant, conversation_log, pending, escalator, actions_healthy=actions_healthy
        )
    )
    return BotServices(
        conversation=conversation,
        codec=PayloadCodec(kv),
        conversation_log=conversation_log,
        preferences=LanguagePreferences(kv),
        binding=BindingService(platform),
        attachments=AttachmentService(conversation_log),
        kv=kv,
        platform=platform,
        handoff=handoff,
    )


def build_dispatcher(storage: BaseStorage, services: BotServices, first: Sequence[Router] = ()) -> Dispatcher:
    """Routers, the update-order middlewares, and dependencies handed to handlers as keyword arguments.

    ``first``: routers that see updates before the handoff and buyer routers (the terminal demo's ``/demo``).
    """
    dispatcher = Dispatcher(
        storage=storage,
        conversation=services.conversation,
        codec=services.codec,
        conversation_log=services.conversation_log,
        preferences=services.preferences,
        binding=services.binding,
        attachments=services.attachments,
        handoff=services.handoff,
    )
    # each update once, one chat at a time and in order, floods slowed down rather than dropped
    install_outermost(
        dispatcher, SerializePerChat(), DeduplicateUpdates(services.kv), FloodControl(limit=10, window=10.0)
    )
    dispatcher.errors.register(on_error)
    for router in first:
        dispatcher.include_router(router)
    if services.handoff is not None:  # before the buyer router: it takes buyers held by a human
        dispatcher.include_router(handoff_router())
    dispatcher.include_router(buyer_router())
    return dispatcher
