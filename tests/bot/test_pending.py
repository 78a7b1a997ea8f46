"""Messages the assistant could not answer are kept in order and answered later, or handed to a person."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.services.conversation import BuyerMessage, ConversationService
from bot.services.pending import MemoryPendingStore, PendingStore, RedisPendingStore
from integrations.rasa import BotReply, RasaUnavailable
from integrations.storage.db import make_engine, make_sessionmaker, upgrade_to_head
from integrations.storage.repositories import ConversationLog


class SwitchableAssistant:
    """Down until ``up`` is set; then it echoes."""

    def __init__(self) -> None:
        self.up = False
        self.seen: list[str] = []

    async def send(self, sender_id: str, text: str, metadata: Mapping[str, Any]) -> list[BotReply]:
        if not self.up:
            raise RasaUnavailable("connection refused")
        self.seen.append(text)
        return [BotReply(text=f"answer to {text}")]


class RecordingEscalator:
    def __init__(self) -> None:
        self.tickets: list[tuple[int, str, str]] = []

    async def escalate(self, user_id: int, reason: str, summary: str) -> str | None:
        self.tickets.append((user_id, reason, summary))
        return "E42"


@pytest.fixture
async def conversation_log(tmp_path: Path) -> ConversationLog:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await upgrade_to_head(url)
    return ConversationLog(make_sessionmaker(make_engine(url)))


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, redis: Redis) -> PendingStore:
    return (
        MemoryPendingStore()
        if request.param == "memory"
        else RedisPendingStore(redis, prefix="test:pending:")
    )


def message(text: str, chat_id: int = 7) -> BuyerMessage:
    return BuyerMessage(chat_id=chat_id, user_id=chat_id, text=text, language="zh")


async def test_messages_are_kept_in_order_and_answered_when_the_assistant_returns(
    conversation_log: ConversationLog, store: PendingStore
) -> None:
    assistant = SwitchableAssistant()
    service = ConversationService(assistant, conversation_log, store)
    first = await service.handle(message("我的订单到哪了"))
    second = await service.handle(message("KM20261127001"))
    other_chat = await service.handle(message("在吗", chat_id=8))
    assert "暂时无法回复" in (first[0].text or "")
    assert second == []  # one notice per outage: the buyer was told with the first kept message
    assert "暂时无法回复" in (other_chat[0].text or "")

    delivered: list[tuple[int, str]] = []

    async def deliver(chat_id: int, replies: list[BotReply]) -> None:
        delivered.extend((chat_id, reply.text or "") for reply in replies)

    assert await service.retry_pending(deliver) == 0  # still down: nothing lost, nothing sent
    assert delivered == []
    assistant.up = True
    assert await service.retry_pending(deliver) == 3
    assert assistant.seen == ["我的订单到哪了", "KM20261127001", "在吗"]
    assert delivered == [
        (7, "answer to 我的订单到哪了"),
        (7, "answer to KM20261127001"),
        (8, "answer to 在吗"),
    ]
    assert await service.retry_pending(deliver) == 0  # answered exactly once


async def test_a_long_outage_hands_the_buyer_to_a_person(
    conversation_log: ConversationLog, store: PendingStore
) -> None:
    escalator = RecordingEscalator()
    service = ConversationService(
        SwitchableAssistant(), conversation_log, store, escalator, handoff_after_seconds=0
    )
    await service.handle(message("充值账号填错了"))
    await service.handle(message("13800138000"))
    delivered: list[str] = []

    async def deliver(chat_id: int, replies: list[BotReply]) -> None:
        delivered.extend(reply.text or "" for reply in replies)

    assert await service.retry_pending(deliver) == 2
    assert escalator.tickets == [(7, "assistant_unavailable", "充值账号填错了\n13800138000")]
    assert len(delivered) == 1 and "E42" in delivered[0]
    assert await store.chats() == []


class SilentAssistant:
    async def send(self, sender_id: str, text: str, metadata: Mapping[str, Any]) -> list[BotReply]:
        return []


@pytest.mark.parametrize(("actions_up", "queued"), [(True, False), (False, True)])
async def test_an_empty_reply_queues_only_when_the_action_server_is_down(
    conversation_log: ConversationLog, actions_up: bool, queued: bool
) -> None:
    async def healthy() -> bool:
        return actions_up

    store = MemoryPendingStore()
    service = ConversationService(SilentAssistant(), conversation_log, store, actions_healthy=healthy)
    [reply] = await service.handle(message("？？"))
    assert await store.has_pending(7) is queued
    assert ("暂时无法回复" in (reply.text or "")) is queued
    # a silent turn never blocks the chat: the next message is asked, not queued behind
    if not queued:
        [next_reply] = await service.handle(message("在吗"))
        assert "按顺序" not in (next_reply.text or "")
