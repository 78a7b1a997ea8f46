"""Durable intake and outbox on the real Redis, through the local Bot API double: an update is acknowledged
only once stored, a crash mid-processing hands it to the next owner, which processes it once, in order,
without sending a reply twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.methods import SendMessage
from aiogram.types import Message, Update
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.app import build_dispatcher, build_services
from bot.intake import IntakeEntry, IntakeWorker, MemoryIntakeStore, RedisIntakeStore
from bot.journal import DurableOutbox, JournalRecord, RedisJournal, method_json, send_scope
from bot.kv import MemoryKeyValueStore, RedisKeyValueStore
from bot.ordering import DeduplicateUpdates, install_outermost
from bot.outbox import Outbox
from bot.receiving import Poller, WebhookReceiver
from integrations.rasa import BotReply
from tests.botapi_double import BotAPIDouble

pytestmark = pytest.mark.timeout(60)

REDIS_URL = "redis://127.0.0.1:6379/6"
SECRET = "intake-webhook-secret-0123456789"


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture
async def double() -> AsyncIterator[BotAPIDouble]:
    async with BotAPIDouble() as server:
        yield server


def update(update_id: int, text: str, chat_id: int = 501) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "买家"},
            "text": text,
        },
    }


class Node:
    """One bot replica: bot + durable outbox + outbox + a tiny dispatcher + the intake worker."""

    def __init__(self, double: BotAPIDouble, redis: Redis, *, block_first: set[str] | None = None) -> None:
        session = AiohttpSession(api=TelegramAPIServer.from_base(double.base_url))
        self.bot = Bot(double.token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
        self.store = RedisIntakeStore(redis, partitions=4)
        self.durable = DurableOutbox(RedisJournal(redis), partitions=4)
        self.outbox = Outbox(self.bot, private_interval=0.0, backoff_base=0.02, backoff_max=0.1)
        session.middleware(self.durable.request_middleware())
        session.middleware(self.outbox.request_middleware())
        self.block_first = block_first or set()
        self.handled: list[tuple[int, bool]] = []
        self.dispatcher = Dispatcher()
        install_outermost(self.dispatcher, DeduplicateUpdates(RedisKeyValueStore(redis, prefix="kmtest:")))
        self.dispatcher.message.register(self.on_text, F.text)
        self.worker = IntakeWorker(
            self.store, self.process, lease_seconds=1.0, on_acquire=self.take_over, read_block_ms=100
        )
        self.task: asyncio.Task[None] | None = None

    async def on_text(self, message: Message, bot: Bot) -> None:
        assert message.text is not None
        await bot.send_message(message.chat.id, f"{message.text}:a")
        if message.text in self.block_first:
            self.block_first.discard(message.text)
            await asyncio.Event().wait()  # the process dies here
        await bot.send_message(message.chat.id, f"{message.text}:b")

    async def process(self, entry: IntakeEntry) -> None:
        self.handled.append((entry.update_id, entry.redelivered))
        parsed = Update.model_validate(entry.update, context={"bot": self.bot})
        with send_scope(f"u:{entry.update_id}", entry.partition):
            await self.dispatcher.feed_update(self.bot, parsed, intake_redelivery=entry.redelivered)

    async def take_over(self, partition: int) -> None:
        await self.durable.replay(self.bot, partition)

    async def start(self) -> Node:
        await self.outbox.start()
        self.task = asyncio.create_task(self.worker.run())
        return self

    async def crash(self) -> None:
        """Die like a killed process: no hand-back, no lease release, nothing acknowledged."""
        doomed = [t for t in asyncio.all_tasks() if self.worker.owner in t.get_name()]
        if self.task is not None:
            doomed.append(self.task)
        for task in doomed:
            task.cancel()
        await asyncio.gather(*doomed, return_exceptions=True)
        await self.outbox.stop(timeout=0.1)
        await self.bot.session.close()

    async def stop(self) -> None:
        await self.worker.stop(timeout=2.0)
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.outbox.stop(timeout=2.0)
        await self.bot.session.close()


def texts(double: BotAPIDouble, chat_id: int) -> list[str]:
    return [m.get("text", "") for m in double.bot_messages(chat_id)]


async def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_killed_mid_processing_the_update_is_redelivered_once_and_replies_are_not_doubled(
    double: BotAPIDouble, redis: Redis
) -> None:
    user = double.create_user("买家", language_code="zh-hans")
    first = await Node(double, redis, block_first={"one"}).start()
    poller = Poller(first.bot, first.store, polling_timeout=1)
    polling = asyncio.create_task(poller.run())
    double.user_sends_text(user, "one")
    double.user_sends_text(user, "two")
    await wait_until(lambda: poller.stored == 2 and texts(double, user.id) == ["one:a"])
    poller.stop()
    await polling
    await first.crash()

    second = await Node(double, redis).start()  # takes the partition over once the dead lease expires
    try:
        await wait_until(lambda: len(texts(double, user.id)) >= 4)
        await asyncio.sleep(0.5)  # anything sent late would be a duplicate
        assert texts(double, user.id) == ["one:a", "one:b", "two:a", "two:b"]
        assert second.handled[0][1] is True  # "one" came back as a redelivery
        assert [u for u, _ in second.handled] == [first.handled[0][0], first.handled[0][0] + 1]
        assert second.durable.stats.skipped_as_sent == 1  # "one:a" was not sent again
        assert await redis.xlen(second.store.stream(user.id % 4)) == 0  # acknowledged and removed
    finally:
        await second.stop()


async def test_a_redelivered_update_is_stored_once(redis: Redis) -> None:
    store = RedisIntakeStore(redis, partitions=4)
    assert await store.put(update(1, "hi")) is True
    assert await store.put(update(1, "hi")) is False
    assert await redis.xlen(store.stream(501 % 4)) == 1


async def test_stop_hands_back_what_is_not_finished_and_the_next_owner_processes_it(
    double: BotAPIDouble, redis: Redis
) -> None:
    user = double.create_user("买家", language_code="zh-hans")
    first = await Node(double, redis, block_first={"slow"}).start()
    await first.store.put(update(10, "slow", chat_id=user.id))
    await wait_until(lambda: texts(double, user.id) == ["slow:a"])
    await first.stop()  # graceful: the blocked update is handed back, the lease released at once
    second = await Node(double, redis).start()
    try:
        await wait_until(lambda: texts(double, user.id) == ["slow:a", "slow:b"], timeout=5)
    finally:
        await second.stop()


async def test_a_message_journaled_by_a_dead_process_is_sent_once_on_take_over(
    double: BotAPIDouble, redis: Redis
) -> None:
    user = double.create_user("买家", language_code="zh-hans")
    journal = RedisJournal(redis)
    method = SendMessage(chat_id=user.id, text="<b>已为您查询</b>")
    await journal.record(
        JournalRecord("u:7:x:0", "queued", 1, str(user.id), "SendMessage", method_json(method))
    )
    node = Node(double, redis)
    await node.outbox.start()
    try:
        assert await node.durable.replay(node.bot, 1) == 1
        assert await node.durable.replay(node.bot, 1) == 0
        assert texts(double, user.id) == ["已为您查询"]
        assert (await journal.lookup("u:7:x:0")).state == "sent"  # type: ignore[union-attr]
    finally:
        await node.outbox.stop(timeout=1.0)
        await node.bot.session.close()


async def test_processing_that_hits_a_store_outage_is_retried_not_acknowledged() -> None:
    store = MemoryIntakeStore(partitions=2)
    attempts: list[bool] = []

    async def process(entry: IntakeEntry) -> None:
        attempts.append(entry.redelivered)
        if len(attempts) < 3:
            raise RedisConnectionError("Connection refused")

    worker = IntakeWorker(store, process, lease_seconds=0.3, read_block_ms=50)
    await store.put(update(1, "hi"))
    task = asyncio.create_task(worker.run())
    try:
        await wait_until(lambda: worker.processed == 1, timeout=10)
        assert attempts == [False, True, True]
        assert await store.recover(1, worker.owner) == []  # acknowledged once it succeeded
    finally:
        await worker.stop(timeout=1.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class FlakyStore(MemoryIntakeStore):
    def __init__(self, failures: int) -> None:
        super().__init__(partitions=2)
        self.failures = failures
        self.stored_at: float | None = None

    async def put(self, update: Mapping[str, Any]) -> bool:
        if self.failures > 0:
            self.failures -= 1
            raise RedisConnectionError("Connection refused")
        self.stored_at = asyncio.get_running_loop().time()
        return await super().put(update)


async def test_polling_moves_the_offset_only_past_stored_updates(double: BotAPIDouble) -> None:
    user = double.create_user("买家", language_code="zh-hans")
    store = FlakyStore(failures=3)
    session = AiohttpSession(api=TelegramAPIServer.from_base(double.base_url))
    bot = Bot(double.token, session=session)
    poller = Poller(bot, store, polling_timeout=1)
    sent = double.user_sends_text(user, "在吗")
    task = asyncio.create_task(poller.run())
    try:
        await wait_until(lambda: poller.stored == 1, timeout=10)
        update_id = double.update_log[-1]["update_id"]
        confirming = [c for c in double.calls_to("getUpdates") if (c.params.get("offset") or 0) > update_id]
        await wait_until(lambda: bool(double.calls_to("getUpdates")) and store.stored_at is not None)
        assert store.failures == 0
        assert all(c.at >= store.stored_at for c in confirming)  # type: ignore[operator]
        [entry] = await store.read([0, 1], "x", 10, 10)
        assert entry.update["message"]["text"] == sent["text"]
    finally:
        poller.stop()
        await task
        await session.close()


async def test_webhook_answers_200_only_once_stored() -> None:
    down = RedisIntakeStore(Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2), partitions=2)
    up = MemoryIntakeStore(partitions=2)
    for store, expected in ((up, 200), (down, 503)):
        receiver = WebhookReceiver(store, SECRET)
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        async with TestClient(TestServer(app)) as client:
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            response = await client.post("/hook", json=update(5, "hi"), headers=headers)
            assert response.status == expected
            again = await client.post("/hook", json=update(5, "hi"), headers=headers)
            assert again.status == expected
            wrong = await client.post(
                "/hook", json=update(6, "hi"), headers={"X-Telegram-Bot-Api-Secret-Token": "x"}
            )
            assert wrong.status == 401
            garbled = await client.post("/hook", data=b"{not json", headers=headers)
            assert garbled.status == 400
            receiver.stop()
            stopping = await client.post("/hook", json=update(7, "hi"), headers=headers)
            assert stopping.status == 503
    assert len(await up.read([0, 1], "x", 10, 10)) == 1  # stored once despite the redelivery


async def test_a_store_outage_during_processing_is_not_answered_with_a_false_notice(tmp_path: Path) -> None:
    """The dispatcher lets the outage through (the intake retries later) instead of saying "saved"."""

    class DownAssistant:
        async def send(self, sender_id: str, text: str, metadata: Mapping[str, Any]) -> list[BotReply]:
            raise RedisConnectionError("Connection refused")

    from aiogram.fsm.storage.memory import MemoryStorage

    from integrations.storage.db import make_engine, make_sessionmaker, upgrade_to_head
    from integrations.storage.repositories import ConversationLog
    from tests.bot.test_dispatcher import platform_stub
    from tests.support.mocked_bot import buyer, make_bot

    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await upgrade_to_head(url)
    bot, session = make_bot()
    services = build_services(
        DownAssistant(),
        ConversationLog(make_sessionmaker(make_engine(url))),
        MemoryKeyValueStore(),
        platform_stub(),
    )
    dispatcher = build_dispatcher(MemoryStorage(), services)
    user = buyer()
    message = Message(
        message_id=1,
        date=datetime.now(UTC),
        chat={"id": user.id, "type": "private"},  # type: ignore[arg-type]
        from_user=user,
        text="我的订单到哪了",
    )
    with pytest.raises(RedisConnectionError):
        await dispatcher.feed_update(bot, Update(update_id=1, message=message))
    assert session.sent() == []


async def test_two_replicas_share_one_telegram_budget(redis: Redis) -> None:
    """Two processes of one token together stay within the bot-wide rate (here 5 per 0.5 s)."""
    from bot.journal import RedisRateBudget

    replicas = [RedisRateBudget(redis, 42, rate=10.0, period=0.5) for _ in range(2)]
    loop = asyncio.get_running_loop()
    started = loop.time()
    times: list[float] = []

    async def send(budget: RedisRateBudget) -> None:
        for _ in range(5):
            await budget.acquire()
            times.append(loop.time() - started)

    await asyncio.gather(*(send(budget) for budget in replicas))
    assert len(times) == 10
    assert sorted(times)[5] >= 0.45  # the 6th send waited for the window shared by both replicas


def test_postgres_recovering_after_a_crash_counts_as_an_outage() -> None:
    """Found by make chaos: asyncpg's "not yet accepting connections" came wrapped in a bare DBAPIError."""
    from asyncpg.exceptions import CannotConnectNowError
    from sqlalchemy.exc import DBAPIError

    from bot.outage import is_outage

    cause = CannotConnectNowError("the database system is not yet accepting connections")
    wrapped = DBAPIError("connect", None, cause)
    wrapped.__cause__ = cause
    assert is_outage(wrapped)
    assert not is_outage(ValueError("a bug"))


def test_a_method_with_nested_bot_defaults_is_journalled_and_replays_with_them() -> None:
    """A staff reply copied to the buyer as a reply (``ReplyParameters.quote_parse_mode`` is a ``Default``)
    failed to serialise, so the relay to the buyer was lost."""
    from aiogram.client.default import Default
    from aiogram.methods import CopyMessage
    from aiogram.types import ReplyParameters

    from bot.journal import method_from_json

    method = CopyMessage(
        chat_id=1, from_chat_id=2, message_id=3, reply_parameters=ReplyParameters(message_id=5)
    )
    data = method_json(method)
    assert "quote_parse_mode" not in data and "parse_mode" not in data
    replayed = method_from_json("CopyMessage", data)
    assert isinstance(replayed, CopyMessage) and replayed.reply_parameters is not None
    assert replayed.reply_parameters.message_id == 5
    assert isinstance(replayed.reply_parameters.quote_parse_mode, Default)
