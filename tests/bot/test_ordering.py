"""Update middlewares: per-chat order under concurrency, each update once, floods slowed but never dropped."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.dispatcher.middlewares.error import ErrorsMiddleware
from aiogram.dispatcher.middlewares.user_context import UserContextMiddleware
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import Chat, ErrorEvent, Message, Update
from redis.asyncio import Redis

from bot.kv import MemoryKeyValueStore, RedisKeyValueStore
from bot.ordering import (
    FLOOD_NOTICE,
    DeduplicateUpdates,
    FloodControl,
    SerializePerChat,
    conversation_key,
    install_outermost,
)
from tests.botapi_double import BotAPIDouble, FakeUser
from tests.support.mocked_bot import buyer, make_bot

pytestmark = pytest.mark.timeout(30)

REDIS_URL = "redis://127.0.0.1:6379/11"


@pytest_asyncio.fixture
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


@asynccontextmanager
async def polling(double: BotAPIDouble, dispatcher: Dispatcher) -> AsyncIterator[Bot]:
    """The dispatcher polls the double like production (each update its own task)."""
    bot = Bot(double.token, session=AiohttpSession(api=TelegramAPIServer.from_base(double.base_url)))
    task = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False, polling_timeout=1)
    )
    try:
        yield bot
    finally:
        await dispatcher.stop_polling()
        await task
        await bot.session.close()


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.01)


def text_update(update_id: int, chat_id: int, text: str, *, chat_type: str = "private") -> Update:
    user = buyer(user_id=chat_id if chat_id > 0 else 10001)
    return Update(
        update_id=update_id,
        message=Message(
            message_id=update_id,
            date=datetime.now(UTC),
            chat=Chat(id=chat_id, type=chat_type),
            from_user=user,
            text=text,
        ),
    )


def edit_update(update_id: int, text: str, edit_date: int = 1_700_000_000) -> Update:
    user = buyer()
    return Update(
        update_id=update_id,
        edited_message=Message(
            message_id=5,
            date=datetime.now(UTC),
            edit_date=edit_date,
            chat=Chat(id=user.id, type="private"),
            from_user=user,
            text=text,
        ),
    )


# ------------------------------------------------------------------------------------------ serialization


async def test_each_chat_is_processed_in_order_one_at_a_time_while_chats_run_in_parallel(
    double: BotAPIDouble, redis: Redis
) -> None:
    """Production pipeline: polling, Redis FSM storage, Redis dedupe, handlers that take random time."""
    rng = random.Random(3)
    processed: dict[int, list[str]] = {}
    running: dict[int, int] = {}
    overlap = {"chats": 0, "same_chat": 0}

    async def on_text(message: Message) -> None:
        chat_id = message.chat.id
        running[chat_id] = running.get(chat_id, 0) + 1
        overlap["same_chat"] = max(overlap["same_chat"], running[chat_id])
        overlap["chats"] = max(overlap["chats"], sum(1 for count in running.values() if count))
        await asyncio.sleep(rng.uniform(0, 0.03))
        processed.setdefault(chat_id, []).append(message.text or "")
        running[chat_id] -= 1

    serialize, dedupe = SerializePerChat(), DeduplicateUpdates(RedisKeyValueStore(redis))
    dispatcher = Dispatcher(storage=RedisStorage(redis))
    dispatcher.message.register(on_text, F.text)
    install_outermost(dispatcher, serialize, dedupe)
    users = [double.create_user(f"买家{i}") for i in range(10)]
    sent: dict[int, list[str]] = {user.id: [] for user in users}
    for index in range(100):
        user = rng.choice(users)
        text = f"{index}"
        sent[user.id].append(text)
        double.user_sends_text(user, text)
    async with polling(double, dispatcher):
        await wait_until(lambda: sum(map(len, processed.values())) == 100)
        double.inject_raw_update(double.update_log[0])  # Telegram redelivers an update
        first_user = users[0]
        double.user_sends_text(first_user, "sentinel")
        sent[first_user.id].append("sentinel")
        await wait_until(lambda: processed.get(first_user.id, [])[-1:] == ["sentinel"])
    assert processed == {chat_id: texts for chat_id, texts in sent.items() if texts}
    assert overlap["same_chat"] == 1
    assert overlap["chats"] > 1
    assert dedupe.skipped == 1
    assert serialize.active_chats == 0  # no lock left behind


async def test_without_serialization_a_fast_second_message_overtakes_the_first() -> None:
    """Why the middleware exists, and that it does not hold other chats back."""

    async def run(serialize: bool) -> list[str]:
        finished: list[str] = []

        async def on_text(message: Message) -> None:
            await asyncio.sleep(0.1 if message.text == "where is my order" else 0)
            finished.append(f"{message.chat.id}:{message.text}")

        dispatcher = Dispatcher()
        dispatcher.message.register(on_text)
        if serialize:
            install_outermost(dispatcher, SerializePerChat())
        bot, _ = make_bot()
        updates = [
            text_update(1, 1, "where is my order"),
            text_update(2, 1, "KM20261127001"),
            text_update(3, 2, "hello"),
        ]
        await asyncio.gather(*(dispatcher.feed_update(bot, update) for update in updates))
        return finished

    assert await run(serialize=False) == ["1:KM20261127001", "2:hello", "1:where is my order"]
    assert await run(serialize=True) == ["2:hello", "1:where is my order", "1:KM20261127001"]


async def test_a_failing_handler_releases_the_chat() -> None:
    seen: list[str] = []
    errors: list[str] = []

    async def on_text(message: Message) -> None:
        if message.text == "boom":
            raise RuntimeError("handler failed")
        seen.append(message.text or "")

    async def on_error(event: ErrorEvent) -> bool:
        errors.append(str(event.exception))
        return True

    serialize = SerializePerChat()
    dispatcher = Dispatcher()
    dispatcher.message.register(on_text)
    dispatcher.errors.register(on_error)
    install_outermost(dispatcher, serialize)
    bot, _ = make_bot()
    await asyncio.gather(
        dispatcher.feed_update(bot, text_update(1, 1, "boom")),
        dispatcher.feed_update(bot, text_update(2, 1, "after")),
    )
    assert (seen, errors, serialize.active_chats) == (["after"], ["handler failed"], 0)


def test_install_outermost_puts_ours_in_front_of_aiogram_builtins() -> None:
    dispatcher = Dispatcher()
    serialize, dedupe = SerializePerChat(), DeduplicateUpdates(MemoryKeyValueStore())
    install_outermost(dispatcher, serialize, dedupe)
    kinds = [type(middleware) for middleware in dispatcher.update.outer_middleware]
    assert kinds == [
        SerializePerChat,
        DeduplicateUpdates,
        ErrorsMiddleware,
        UserContextMiddleware,
        FSMContextMiddleware,
    ]


def test_forum_topics_are_separate_conversations() -> None:
    user = buyer()
    topic_message = Message(
        message_id=9,
        date=datetime.now(UTC),
        chat=Chat(id=-100123, type="supergroup", is_forum=True),
        from_user=user,
        message_thread_id=77,
        is_topic_message=True,
        text="agent reply",
    )
    assert conversation_key(Update(update_id=1, message=topic_message)) == (-100123, 77)
    assert conversation_key(text_update(2, 5, "hi")) == (5, 0)


# --------------------------------------------------------------------------------------------- dedupe


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, redis: Redis) -> MemoryKeyValueStore | RedisKeyValueStore:
    return MemoryKeyValueStore() if request.param == "memory" else RedisKeyValueStore(redis)


def counting_dispatcher(
    dedupe: DeduplicateUpdates,
) -> tuple[Dispatcher, list[str]]:
    handled: list[str] = []

    async def on_message(message: Message) -> None:
        handled.append(message.text or "")

    dispatcher = Dispatcher()
    dispatcher.message.register(on_message)
    dispatcher.edited_message.register(on_message)
    install_outermost(dispatcher, SerializePerChat(), dedupe)
    return dispatcher, handled


async def test_redelivered_update_is_processed_once(store: MemoryKeyValueStore | RedisKeyValueStore) -> None:
    dedupe = DeduplicateUpdates(store)
    dispatcher, handled = counting_dispatcher(dedupe)
    bot, _ = make_bot()
    update = text_update(41, 1, "我的订单到哪了")
    await asyncio.gather(*(dispatcher.feed_update(bot, update) for _ in range(3)))  # concurrent copies
    await dispatcher.feed_update(bot, update)  # and a late one
    await dispatcher.feed_update(bot, text_update(42, 1, "还有一条"))
    assert handled == ["我的订单到哪了", "还有一条"]
    assert dedupe.skipped == 3


async def test_an_edit_reported_twice_is_handled_once(
    store: MemoryKeyValueStore | RedisKeyValueStore,
) -> None:
    dedupe = DeduplicateUpdates(store)
    dispatcher, handled = counting_dispatcher(dedupe)
    bot, _ = make_bot()
    await dispatcher.feed_update(bot, edit_update(50, "账号改成 123456"))
    await dispatcher.feed_update(bot, edit_update(51, "账号改成 123456"))  # same edit, new update_id
    await dispatcher.feed_update(bot, edit_update(52, "账号改成 654321"))  # a real second edit
    assert handled == ["账号改成 123456", "账号改成 654321"]


async def test_edit_through_the_double_is_handled_once(double: BotAPIDouble) -> None:
    handled: list[str] = []

    async def on_edit(message: Message) -> None:
        handled.append(f"edit:{message.text}")

    async def on_message(message: Message) -> None:
        handled.append(message.text or "")

    dispatcher = Dispatcher()
    dispatcher.message.register(on_message)
    dispatcher.edited_message.register(on_edit)
    install_outermost(dispatcher, SerializePerChat(), DeduplicateUpdates(MemoryKeyValueStore()))
    user = double.create_user()
    original = double.user_sends_text(user, "区服: 1区")
    async with polling(double, dispatcher):
        await wait_until(lambda: handled == ["区服: 1区"])
        edited = double.user_edits_message(user, original["message_id"], "区服: 2区")
        double.inject_raw_update({"edited_message": edited})  # Telegram reports the same edit again
        double.user_sends_text(user, "done")
        await wait_until(lambda: handled[-1:] == ["done"])
    assert handled == ["区服: 1区", "edit:区服: 2区", "done"]


async def test_dedupe_store_outage_never_silences_the_bot() -> None:
    class BrokenStore:
        async def set_if_absent(self, key: str, value: str, ttl_seconds: int) -> bool:
            raise ConnectionError("redis is down")

    dispatcher, handled = counting_dispatcher(DeduplicateUpdates(BrokenStore()))
    bot, _ = make_bot()
    await dispatcher.feed_update(bot, text_update(60, 1, "在吗"))
    assert handled == ["在吗"]


# --------------------------------------------------------------------------------------------- flood


async def test_flood_gets_one_notice_per_episode_and_every_message_later_in_order(
    double: BotAPIDouble,
) -> None:
    processed: dict[int, list[tuple[float, str]]] = {}

    async def on_text(message: Message) -> None:
        processed.setdefault(message.chat.id, []).append((time.monotonic(), message.text or ""))

    flood = FloodControl(limit=3, window=0.4)
    dispatcher = Dispatcher()
    dispatcher.message.register(on_text, F.text)
    install_outermost(dispatcher, SerializePerChat(), DeduplicateUpdates(MemoryKeyValueStore()), flood)
    chinese = double.create_user("小明", language_code="zh-hans")
    english = double.create_user("Tom", language_code="en")

    def burst(user: FakeUser, tag: str) -> list[str]:
        texts = [f"{tag}{i}" for i in range(8)]
        for text in texts:
            double.user_sends_text(user, text)
        return texts

    def texts_of(user: FakeUser) -> list[str]:
        return [text for _, text in processed.get(user.id, [])]

    def notices(user: FakeUser) -> list[str]:
        return [message["text"] for message in double.bot_messages(user.id)]

    async with polling(double, dispatcher):
        first = burst(chinese, "a")
        english_texts = burst(english, "e")
        await wait_until(lambda: len(texts_of(chinese)) == 8 and len(texts_of(english)) == 8)
        await asyncio.sleep(0.5)  # calm for a window: the episode is over
        second = burst(chinese, "b")
        await wait_until(lambda: len(texts_of(chinese)) == 16)
    assert texts_of(chinese) == first + second
    assert texts_of(english) == english_texts
    assert notices(chinese) == [FLOOD_NOTICE["zh"], FLOOD_NOTICE["zh"]]  # one per episode
    assert notices(english) == [FLOOD_NOTICE["en"]]
    times = [moment for moment, _ in processed[chinese.id][:8]]
    assert times[7] - times[0] >= 0.75  # 3 now, 3 after 0.4 s, 2 after 0.8 s
    assert flood.notices == 3
    assert flood.delayed >= 6  # at least a3 and a6 of each burst (others may wait in SerializePerChat)


async def test_flood_control_leaves_groups_and_button_presses_alone() -> None:
    sleeps: list[float] = []

    async def no_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def fail_if_called(bot: Bot, chat_id: int, text: str) -> None:
        raise AssertionError("no notice expected")

    flood = FloodControl(limit=1, window=60, sleep=no_sleep, send_notice=fail_if_called)
    dispatcher, handled = counting_dispatcher(DeduplicateUpdates(MemoryKeyValueStore()))
    install_outermost(dispatcher, flood)
    bot, _ = make_bot()
    for update_id in range(1, 4):
        await dispatcher.feed_update(
            bot, text_update(update_id, -100777, f"g{update_id}", chat_type="supergroup")
        )
    assert handled == ["g1", "g2", "g3"]
    assert sleeps == []


async def test_flood_state_is_forgotten_when_users_calm_down() -> None:
    now = [0.0]
    sent: list[tuple[int, str]] = []

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    async def record_notice(bot: Bot, chat_id: int, text: str) -> None:
        sent.append((chat_id, text))

    flood = FloodControl(
        limit=2, window=10, clock=lambda: now[0], sleep=fake_sleep, send_notice=record_notice
    )
    handled: list[str] = []

    async def handler(event: Any, data: dict[str, Any]) -> None:
        handled.append(event.message.text)

    bot, _ = make_bot()
    for update_id in range(1, 5):
        await flood(handler, text_update(update_id, 7, f"m{update_id}"), {"bot": bot})
    assert handled == ["m1", "m2", "m3", "m4"]
    assert now[0] == pytest.approx(10.0)  # m3 waited for a slot; m4 found one free
    assert sent == [(7, FLOOD_NOTICE["zh"])]
    assert flood.tracked_users == 1
    now[0] += 30
    await flood(handler, text_update(9, 8, "other user"), {"bot": bot})
    assert flood.tracked_users == 1  # user 7 forgotten, user 8 tracked
