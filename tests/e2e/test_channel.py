"""The Telegram side under stress, through the Bot API protocol: duplicated updates, 429s, webhook mode
with a wrong secret, and Rasa stopped mid-conversation."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.botapi_double import BotAPIDouble, FakeUser
from tests.e2e.conftest import Stack
from tests.support.processes import ManagedProcess, free_port, stack_service

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

ORDER_ID = "KM20261127001"
TELEGRAM_USER = 10001
WEBHOOK_SECRET = "e2e-webhook-secret-0123456789"


def buyer(telegram: BotAPIDouble) -> FakeUser:
    try:
        return telegram.user(TELEGRAM_USER)
    except Exception:
        return telegram.create_user("演示买家", user_id=TELEGRAM_USER, language_code="zh-hans")


def is_new(message: dict[str, Any]) -> bool:
    return "edit_date" not in message


async def test_a_redelivered_update_is_answered_once(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    user = buyer(telegram)
    sent = telegram.user_sends_text(user, "你好")
    await telegram.wait_for_bot_message(user.id, predicate=is_new, timeout=60)
    original = telegram.update_log[-1]
    assert original["message"]["message_id"] == sent["message_id"]
    telegram.inject_raw_update(original)  # Telegram redelivers the same update_id
    telegram.user_sends_text(user, "谢谢")  # a marker: its answer must be the next message
    reply = await telegram.wait_for_bot_message(user.id, predicate=is_new, timeout=60)
    assert "不客气" in reply["text"], f"the duplicate was answered again: {reply['text']!r}"


async def test_a_429_is_honoured_and_the_reply_still_arrives_once(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    user = buyer(telegram)
    telegram.fail_next("sendMessage", error_code=429, retry_after=1)
    started = time.monotonic()
    telegram.user_sends_text(user, f"订单 {ORDER_ID} 什么状态")
    reply = await telegram.wait_for_bot_message(user.id, predicate=is_new, timeout=60)
    assert ORDER_ID in reply["text"]
    assert time.monotonic() - started >= 1.0
    calls = telegram.calls_to("sendMessage", chat_id=user.id)
    refused = [c for c in calls if c.status == 429]
    assert refused, "the double did not refuse a sendMessage"
    retried = [c for c in calls if c.at > refused[-1].at and c.status == 200]
    assert retried and retried[0].at - refused[-1].at >= 0.95  # waited retry_after before retrying
    texts = [m["text"] for m in telegram.bot_messages(user.id) if is_new(m) and ORDER_ID in m.get("text", "")]
    assert len(texts) == len(set(texts)) or texts.count(reply["text"]) == 1


@pytest_asyncio.fixture(loop_scope="session")
async def webhook_bot(stack: Stack) -> AsyncIterator[tuple[BotAPIDouble, str]]:
    """A second bot process in webhook mode, with its own Bot API double."""
    async with BotAPIDouble() as double:
        port = free_port()
        url = f"http://127.0.0.1:{port}/telegram/webhook"
        env = {
            **stack.env,
            "TELEGRAM_BOT_TOKEN": double.token,
            "TELEGRAM_API_BASE": double.base_url,
            "BOT_MODE": "webhook",
            "WEBHOOK_URL": url,
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
            "BOT_HTTP_PORT": str(port),
            "REDIS_URL": "redis://127.0.0.1:6379/9",
        }
        from redis.asyncio import Redis

        redis = Redis.from_url(env["REDIS_URL"])
        await redis.flushdb()  # no dedupe keys from an earlier run of this test
        await redis.aclose()
        process = stack_service("bot", env)
        process.env.update(env)
        process.health_url = f"http://127.0.0.1:{port}/healthz"
        process.start()
        try:
            import asyncio

            await asyncio.to_thread(process.wait_healthy)
            await double.wait_for_call("setWebhook", timeout=30)
            yield double, url
        finally:
            process.stop()


async def test_webhook_mode_rejects_a_wrong_secret_and_serves_the_right_one(
    stack: Stack, webhook_bot: tuple[BotAPIDouble, str]
) -> None:
    double, url = webhook_bot
    assert double.webhook_info["url"] == url
    fake_update = {
        "update_id": 999_999,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": 1, "type": "private"},
            "from": {"id": 1, "is_bot": False, "first_name": "x"},
            "text": "hi",
        },
    }
    async with httpx.AsyncClient() as client:
        wrong = await client.post(url, json=fake_update, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
        missing = await client.post(url, json=fake_update)
    assert wrong.status_code == 401
    assert missing.status_code == 401
    user = double.create_user("网页买家", user_id=TELEGRAM_USER, language_code="zh-hans")
    double.user_sends_text(user, f"我的订单 {ORDER_ID} 到哪了")
    reply = await double.wait_for_bot_message(user.id, predicate=is_new, timeout=60)
    assert ORDER_ID in reply["text"]
    assert all(d.secret_token == WEBHOOK_SECRET for d in double.webhook_deliveries)
    assert double.bot_messages(1) == []  # the forged update was not processed


async def test_rasa_stopped_mid_conversation_the_message_is_answered_when_it_returns(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    user = buyer(telegram)
    stack.rasa.stop()
    try:
        telegram.user_sends_text(user, f"订单 {ORDER_ID} 到账了吗")
        notice = await telegram.wait_for_bot_message(user.id, predicate=is_new, timeout=60)
        assert "暂时无法回复" in notice["text"]
    finally:
        stack.rasa.start()
        import asyncio

        await asyncio.to_thread(stack.rasa.wait_healthy)
    answer = await telegram.wait_for_bot_message(user.id, predicate=is_new, timeout=120)
    assert ORDER_ID in answer["text"], answer["text"]
