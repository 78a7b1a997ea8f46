"""The outbox against the local Bot API double: pacing, retries, blocked chats, fallbacks, shutdown."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
)
from aiogram.methods import EditMessageText, SendMessage, SendPhoto, SendSticker
from aiogram.types import Message
from pydantic import ValidationError

from bot.outbox import (
    ChatKey,
    Outbox,
    OutboxClosed,
    SlidingWindow,
    TokenBucket,
    plain_text_variant,
    strip_telegram_html,
)
from tests.botapi_double import ApiCall, BotAPIDouble, FloodLimits
from tests.support.mocked_bot import RecordingSession, make_bot

pytestmark = pytest.mark.timeout(30)

FAST: dict[str, Any] = {
    "global_rate": 1000.0,
    "private_interval": 0.01,
    "private_burst": 1,
    "group_per_minute": 1000,
    "group_period": 1.0,
    "backoff_base": 0.02,
    "backoff_max": 0.1,
}


@pytest.fixture
async def double() -> AsyncIterator[BotAPIDouble]:
    async with BotAPIDouble() as server:
        yield server


def make_http_bot(double: BotAPIDouble) -> Bot:
    """Like production: the real aiohttp session, HTML as the default parse mode."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(double.base_url))
    return Bot(double.token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


@pytest.fixture
async def bot(double: BotAPIDouble) -> AsyncIterator[Bot]:
    telegram_bot = make_http_bot(double)
    yield telegram_bot
    await telegram_bot.session.close()


@asynccontextmanager
async def running(bot: Bot, **overrides: Any) -> AsyncIterator[Outbox]:
    outbox = Outbox(bot, **{**FAST, **overrides})
    await outbox.start()
    try:
        yield outbox
    finally:
        await outbox.stop(timeout=1.0)


def texts(double: BotAPIDouble, chat_id: int) -> list[str]:
    return [message.get("text") or message.get("caption") or "" for message in double.bot_messages(chat_id)]


def attempts(double: BotAPIDouble, chat_id: int) -> list[ApiCall]:
    return double.calls_to("sendMessage", chat_id=chat_id)


# ------------------------------------------------------------------------------------------------- pacing


async def test_private_chat_gets_one_message_per_interval_and_chats_run_in_parallel(
    double: BotAPIDouble, bot: Bot
) -> None:
    double.enable_flood_control(FloodLimits(per_chat=(1, 0.2), per_group=None, global_=None))
    first, second = double.create_user("甲"), double.create_user("乙")
    started = time.monotonic()
    async with running(bot, private_interval=0.2) as outbox:
        for index in range(6):
            outbox.submit(SendMessage(chat_id=first.id, text=f"a{index}"))
            outbox.submit(SendMessage(chat_id=second.id, text=f"b{index}"))
        assert await outbox.drain(10)
    elapsed = time.monotonic() - started
    assert texts(double, first.id) == [f"a{i}" for i in range(6)]
    assert texts(double, second.id) == [f"b{i}" for i in range(6)]
    assert double.max_messages_in_window(first.id, window=0.2) == 1
    assert double.max_messages_in_window(second.id, window=0.2) == 1
    assert double.flood_violations == []
    assert elapsed >= 1.0  # 5 intervals per chat
    first_calls, second_calls = attempts(double, first.id), attempts(double, second.id)
    assert first_calls[-1].at > second_calls[0].at and second_calls[-1].at > first_calls[0].at  # side by side


async def test_private_burst_then_one_per_interval(double: BotAPIDouble, bot: Bot) -> None:
    user = double.create_user()
    async with running(bot, private_interval=0.3, private_burst=3) as outbox:
        for index in range(6):
            outbox.submit(SendMessage(chat_id=user.id, text=str(index)))
        assert await outbox.drain(5)
    times = [call.at for call in attempts(double, user.id)]
    assert times[2] - times[0] < 0.15  # the burst goes at once
    # a token bucket as Telegram sees it: within any w seconds at most burst + w / interval messages
    assert double.max_messages_in_window(user.id, window=0.29) <= 3
    assert double.max_messages_in_window(user.id, window=0.59) <= 4
    assert times[5] - times[0] >= 0.85
    assert texts(double, user.id) == [str(i) for i in range(6)]


async def test_group_gets_at_most_n_messages_per_period(double: BotAPIDouble, bot: Bot) -> None:
    group = double.create_supergroup("客服工作台", is_forum=False)
    started = time.monotonic()
    async with running(bot, group_per_minute=3, group_period=1.0) as outbox:
        for index in range(7):
            outbox.submit(SendMessage(chat_id=group.id, text=f"g{index}"))
        assert await outbox.drain(5)
    assert time.monotonic() - started >= 1.9  # 3 now, 3 after 1 s, 1 after 2 s
    assert double.max_messages_in_window(group.id, window=1.0) == 3
    assert texts(double, group.id) == [f"g{i}" for i in range(7)]


async def test_global_rate_is_respected_across_chats(double: BotAPIDouble, bot: Bot) -> None:
    users = [double.create_user(f"u{i}") for i in range(40)]
    async with running(bot, global_rate=20.0) as outbox:
        for user in users:
            outbox.submit(SendMessage(chat_id=user.id, text="通知"))
        assert await outbox.drain(5)
    assert double.max_messages_in_window(None, window=1.0) <= 20
    assert len(double.calls_to("sendMessage", ok=True)) == 40


# ------------------------------------------------------------------------------------------------ retries


async def test_retry_after_waits_for_that_chat_only_and_keeps_its_order(
    double: BotAPIDouble, bot: Bot
) -> None:
    slow, other = double.create_user("被限流"), double.create_user("别人")
    double.fail_next("sendMessage", 429, retry_after=1)
    async with running(bot) as outbox:
        sends = [outbox.send(SendMessage(chat_id=slow.id, text=f"a{i}")) for i in range(5)]
        await double.wait_for_call("sendMessage")  # the 429
        for index in range(3):
            outbox.submit(SendMessage(chat_id=other.id, text=f"b{index}"))
        messages = await asyncio.gather(*sends)
        assert await outbox.drain(5)
        stats = outbox.stats()
    calls = attempts(double, slow.id)
    assert calls[0].status == 429
    assert [call.params["text"] for call in calls] == ["a0", "a0", "a1", "a2", "a3", "a4"]
    assert calls[1].at - calls[0].at >= 0.95
    assert [message.text for message in messages] == [f"a{i}" for i in range(5)]
    assert texts(double, slow.id) == [f"a{i}" for i in range(5)]
    assert texts(double, other.id) == ["b0", "b1", "b2"]
    assert attempts(double, other.id)[-1].at < calls[1].at  # the other chat was not held back
    assert (stats.retry_after_waits, stats.sent, stats.pending) == (1, 8, 0)


async def test_many_chats_throttled_at_once_pause_everyone(double: BotAPIDouble, bot: Bot) -> None:
    users = [double.create_user(f"u{i}") for i in range(3)]
    late = double.create_user("late")
    double.fail_next("sendMessage", 429, retry_after=1, count=3)
    async with running(bot, global_retry_after_chats=3) as outbox:
        for user in users:
            outbox.submit(SendMessage(chat_id=user.id, text="hi"))
        for _ in users:
            third_429 = await double.wait_for_call("sendMessage")
        outbox.submit(SendMessage(chat_id=late.id, text="late"))
        assert await outbox.drain(5)
    [late_call] = attempts(double, late.id)
    assert late_call.ok
    assert late_call.at - third_429.at >= 0.9
    assert all(texts(double, user.id) == ["hi"] for user in users)


async def test_network_and_server_errors_are_retried_with_backoff(double: BotAPIDouble, bot: Bot) -> None:
    user = double.create_user()
    double.disconnect_next("sendMessage")
    double.fail_next("sendMessage", 502, count=2, description="Bad Gateway")
    double.fail_next("sendMessage", 500)
    async with running(bot) as outbox:
        sent = await asyncio.gather(
            *(outbox.send(SendMessage(chat_id=user.id, text=f"m{i}")) for i in range(4))
        )
        stats = outbox.stats()
    assert [message.text for message in sent] == ["m0", "m1", "m2", "m3"]
    assert texts(double, user.id) == ["m0", "m1", "m2", "m3"]
    assert len(double.calls_to("sendMessage", ok=True)) == 4
    assert (stats.retried, stats.sent, stats.failed) == (4, 4, 0)


# ------------------------------------------------------------------------------------- blocked, bad input


async def test_blocked_buyer_is_marked_and_their_queue_dropped(double: BotAPIDouble, bot: Bot) -> None:
    blocked_chats: list[ChatKey] = []

    async def on_blocked(chat_id: ChatKey) -> None:
        await asyncio.sleep(0.05)  # e.g. a database write: stop() lets it finish
        blocked_chats.append(chat_id)

    gone, staying = double.create_user("走了"), double.create_user("还在")
    double.user_blocks_bot(gone)
    async with running(bot, on_blocked=on_blocked, private_interval=0.05) as outbox:
        first = outbox.send(SendMessage(chat_id=gone.id, text="1"))
        queued = [outbox.send(SendMessage(chat_id=gone.id, text="q")) for _ in range(2)]
        for _ in range(2):
            outbox.submit(SendMessage(chat_id=gone.id, text="fire and forget"))
        outbox.submit(SendMessage(chat_id=staying.id, text="still here"))
        with pytest.raises(TelegramForbiddenError):
            await first
        for task in queued:
            with pytest.raises(TelegramForbiddenError):
                await task
        assert await outbox.drain(5)
        stats = outbox.stats()
        with pytest.raises(TelegramForbiddenError):  # a later message: one attempt, no retry loop
            await outbox.send(SendMessage(chat_id=gone.id, text="later"))
    assert blocked_chats == [gone.id, gone.id]
    assert len(attempts(double, gone.id)) == 2
    assert (stats.dropped_blocked, stats.pending, stats.retried) == (5, 0, 0)
    assert texts(double, staying.id) == ["still here"]


async def test_unparsable_html_is_resent_once_as_plain_text(double: BotAPIDouble, bot: Bot) -> None:
    user = double.create_user()
    async with running(bot) as outbox:
        sent = await outbox.send(SendMessage(chat_id=user.id, text="<b>订单 KM1</b> 价格 <5元 &amp; 已发货"))
        edited = await outbox.send(
            EditMessageText(chat_id=user.id, message_id=sent.message_id, text="<i>已到账", parse_mode="HTML")
        )
        stats = outbox.stats()
    assert sent.text == "订单 KM1 价格 <5元 & 已发货"
    assert isinstance(edited, Message) and edited.text == "已到账"
    first, second = attempts(double, user.id)
    assert first.status == 400 and "can't parse entities" in first.response["description"]
    assert second.ok and "parse_mode" not in second.params
    assert stats.plain_text_fallbacks == 2


async def test_other_bad_requests_are_not_retried(double: BotAPIDouble, bot: Bot) -> None:
    user = double.create_user()
    async with running(bot) as outbox:
        with pytest.raises(TelegramBadRequest, match="too long"):
            await outbox.send(SendMessage(chat_id=user.id, text="长" * 5000))
        await outbox.send(SendMessage(chat_id=user.id, text="next one still goes"))
        stats = outbox.stats()
    assert len(attempts(double, user.id)) == 2
    assert texts(double, user.id) == ["next one still goes"]
    assert (stats.failed, stats.retried, stats.sent) == (1, 0, 1)


# ------------------------------------------------------------------------------------------------ shutdown


async def test_stop_delivers_everything_queued_first(double: BotAPIDouble, bot: Bot) -> None:
    users = [double.create_user(f"u{i}") for i in range(3)]
    outbox = Outbox(bot, **{**FAST, "private_interval": 0.05})
    for index in range(10):  # queued before start: delivered once started
        for user in users:
            outbox.submit(SendMessage(chat_id=user.id, text=str(index)))
    await outbox.start()
    assert outbox.stats().pending == 30
    await outbox.stop(timeout=5.0)
    assert all(texts(double, user.id) == [str(i) for i in range(10)] for user in users)
    stats = outbox.stats()
    assert (stats.sent, stats.pending, stats.abandoned) == (30, 0, 0)
    with pytest.raises(OutboxClosed):
        outbox.submit(SendMessage(chat_id=users[0].id, text="too late"))


async def test_drain_timeout_reports_and_stop_accounts_for_the_rest(double: BotAPIDouble, bot: Bot) -> None:
    user = double.create_user()
    outbox = Outbox(bot, **{**FAST, "private_interval": 0.5})
    await outbox.start()
    sends = [outbox.send(SendMessage(chat_id=user.id, text=str(i))) for i in range(4)]
    assert not await outbox.drain(0.2)
    await outbox.stop(timeout=0.0)
    results = await asyncio.gather(*sends, return_exceptions=True)
    assert isinstance(results[0], Message)
    assert all(isinstance(result, OutboxClosed) for result in results[1:])
    assert outbox.stats().abandoned == 3
    assert texts(double, user.id) == ["0"]


# ----------------------------------------------------------------------------------------- the big number


async def test_300_messages_over_20_chats_arrive_exactly_once_in_order_despite_faults(
    double: BotAPIDouble, bot: Bot
) -> None:
    rng = random.Random(7)
    users = [double.create_user(f"买家{i}") for i in range(20)]
    expected: dict[int, list[str]] = {user.id: [] for user in users}
    double.fail_next("sendMessage", 502, count=5)
    double.disconnect_next("sendMessage", count=5)
    double.fail_next("sendMessage", 429, retry_after=1, count=2)
    async with running(bot, global_rate=200.0, private_interval=0.02) as outbox:
        waiting = []
        for index in range(300):
            user = rng.choice(users)
            text = f"{user.id}:{len(expected[user.id])}"
            expected[user.id].append(text)
            method = SendMessage(chat_id=user.id, text=text)
            if index % 3 == 0:
                waiting.append(outbox.send(method))
            else:
                outbox.submit(method)
        assert await outbox.drain(15)
        results = await asyncio.gather(*waiting)
        stats = outbox.stats()
    for user in users:
        assert texts(double, user.id) == expected[user.id]
        assert double.max_messages_in_window(user.id, window=0.02) == 1
    assert len(double.calls_to("sendMessage", ok=True)) == 300
    assert len({(m.chat.id, m.message_id) for m in results}) == len(results) == 100
    assert double.max_messages_in_window(None, window=1.0) <= 200
    assert (stats.sent, stats.pending, stats.failed, stats.dropped_blocked) == (300, 0, 0, 0)
    assert stats.retried == 12 and stats.retry_after_waits == 2


# ------------------------------------------------------------------------------------- request middleware


async def test_request_middleware_routes_plain_bot_calls_through_the_outbox(double: BotAPIDouble) -> None:
    telegram_bot = make_http_bot(double)
    outbox = Outbox(telegram_bot, **FAST)
    telegram_bot.session.middleware(outbox.request_middleware())
    await outbox.start()
    try:
        user = double.create_user()
        double.fail_next("sendMessage", 502)
        sent = await asyncio.gather(*(telegram_bot.send_message(user.id, f"r{i}") for i in range(5)))
        assert [message.text for message in sent] == [f"r{i}" for i in range(5)]  # the 502 was absorbed
        await telegram_bot.get_me()  # not queued
        direct = await outbox.send(SendMessage(chat_id=user.id, text="via send"))  # no re-queueing loop
        assert direct.text == "via send"
        stats = outbox.stats()
        assert (stats.sent, stats.retried) == (6, 1)
        assert texts(double, user.id) == [*(f"r{i}" for i in range(5)), "via send"]
    finally:
        await outbox.stop()
        await telegram_bot.session.close()


# ------------------------------------------------------------------------------------------ small pieces


def test_token_bucket_allows_a_burst_then_paces() -> None:
    bucket = TokenBucket(interval=1.0, burst=3, now=0.0)
    for _ in range(3):
        assert bucket.delay(0.0) == 0.0
        bucket.take(0.0)
    assert bucket.delay(0.0) == pytest.approx(1.0)
    assert bucket.delay(0.4) == pytest.approx(0.6)
    assert bucket.delay(1.0) == 0.0
    bucket.take(1.0)
    bucket.empty(1.5)
    assert bucket.delay(1.5) == pytest.approx(1.0)
    assert bucket.is_full(10.0)


def test_sliding_window_counts_like_telegram() -> None:
    window = SlidingWindow(limit=2, period=10.0)
    window.record(0.0)
    window.record(1.0)
    assert window.delay(5.0) == pytest.approx(5.0)
    assert window.delay(10.0) == 0.0
    assert not window.is_idle(10.5)
    assert window.is_idle(11.0)


def test_plain_text_variant_resolves_the_default_parse_mode() -> None:
    html_bot = Bot("42:TEST", default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    plain = plain_text_variant(SendMessage(chat_id=1, text="<b>a</b> &lt;b&gt; <3"), html_bot)
    assert isinstance(plain, SendMessage)
    assert (plain.text, plain.parse_mode) == ("a <b> <3", None)
    photo = plain_text_variant(SendPhoto(chat_id=1, photo="x", caption="<i>c", parse_mode="HTML"), html_bot)
    assert isinstance(photo, SendPhoto) and photo.caption == "c"
    markdown = plain_text_variant(SendMessage(chat_id=1, text="*a", parse_mode="MarkdownV2"), html_bot)
    assert isinstance(markdown, SendMessage) and markdown.text == "*a"
    assert plain_text_variant(SendSticker(chat_id=1, sticker="s"), html_bot) is None
    assert strip_telegram_html('<a href="https://x.y">链接</a> a<b') == "链接 a<b"


async def test_idle_chats_are_forgotten() -> None:
    telegram_bot, _ = make_bot()
    now = [0.0]
    outbox = Outbox(telegram_bot, global_rate=0.0, private_interval=0.0, clock=lambda: now[0])
    await outbox.start()
    for chat_id in range(1, 51):
        outbox.submit(SendMessage(chat_id=chat_id, text="hi"))
    assert await outbox.drain(5)
    assert outbox.stats().tracked_chats == 50
    now[0] = 10.0
    outbox.submit(SendMessage(chat_id=999, text="hi"))
    assert await outbox.drain(5)
    assert outbox.stats().tracked_chats == 1
    await outbox.stop()


class ScriptedSession(RecordingSession):
    """Raises the given errors on the first requests, then answers like RecordingSession."""

    def __init__(self, errors: list[Exception]) -> None:
        super().__init__()
        self.errors = errors
        self.attempted: list[Any] = []

    async def make_request(self, bot: Bot, method: Any, timeout: int | None = None) -> Any:
        self.attempted.append(method)
        if self.errors:
            raise self.errors.pop(0)
        return await super().make_request(bot, method, timeout)


def decode_error(readable: bool) -> ClientDecodeError:
    original: Exception
    if readable:
        try:
            Message.model_validate({"message_id": "not a message"})
        except ValidationError as error:
            original = error
    else:
        original = ValueError("Expecting value: <html>502 Bad Gateway</html>")
    return ClientDecodeError("Failed to decode object", original, {})


async def scripted(errors: list[Exception]) -> tuple[Outbox, ScriptedSession]:
    session = ScriptedSession(errors)
    outbox = Outbox(Bot("42:TEST", session=session), **FAST)
    await outbox.start()
    return outbox, session


async def test_undecodable_proxy_page_is_retried_but_an_odd_success_is_not_repeated() -> None:
    outbox, session = await scripted([decode_error(readable=False)])
    message = await outbox.send(SendMessage(chat_id=5, text="到账了"))
    assert message.text == "到账了" and len(session.attempted) == 2
    await outbox.stop()

    outbox, session = await scripted([decode_error(readable=True)])
    with pytest.raises(ClientDecodeError):
        await outbox.send(SendMessage(chat_id=5, text="到账了"))
    assert len(session.attempted) == 1  # Telegram probably has it: sending again would double it
    assert outbox.stats().failed == 1
    await outbox.stop()


async def test_group_upgraded_to_supergroup_gets_the_message_at_its_new_id() -> None:
    outbox, session = await scripted(
        [TelegramMigrateToChat(SendMessage(chat_id=-5, text="x"), "migrated", migrate_to_chat_id=-1005)]
    )
    outbox.submit(SendMessage(chat_id=-5, text="工单更新"))
    assert await outbox.drain(2)
    assert [request.chat_id for request in session.attempted] == [-5, -1005]
    await outbox.stop()
