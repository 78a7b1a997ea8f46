"""A buyer asks "where is my order?" on Telegram; the answer crosses every process of the stack."""

from __future__ import annotations

import time
from datetime import datetime

import httpx
import pytest

from actions.texts import clock
from tests.botapi_double import BotAPIDouble, FakeUser
from tests.e2e.conftest import SANDBOX_API_KEY, Stack
from tests.support.processes import ManagedProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

ORDER_ID = "KM20261127001"
DEMO_TELEGRAM_USER = 10001  # linked to buyer B1001 by the sandbox's seed


async def sandbox_order(stack: Stack, buyer_id: str, order_id: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.env['SANDBOX_PORT']}") as client:
        response = await client.get(
            f"/v1/buyers/{buyer_id}/orders/{order_id}", headers={"X-API-Key": SANDBOX_API_KEY}
        )
    response.raise_for_status()
    data = response.json()
    assert isinstance(data, dict)
    return data


def demo_buyer(telegram: BotAPIDouble) -> FakeUser:
    try:
        return telegram.user(DEMO_TELEGRAM_USER)
    except Exception:
        return telegram.create_user("演示买家", user_id=DEMO_TELEGRAM_USER, language_code="zh-hans")


def assert_all_running(stack: Stack, bot: ManagedProcess) -> None:
    for process in [*stack.processes, bot]:
        process.assert_running()


async def test_where_is_my_order_is_answered_with_the_sandbox_order(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    assert_all_running(stack, bot)
    order = await sandbox_order(stack, "B1001", ORDER_ID)
    assert order["state"] == "processing"
    promised_by = datetime.fromisoformat(str(order["promised_by"]))

    buyer = demo_buyer(telegram)
    started = time.monotonic()
    telegram.user_sends_text(buyer, f"我的订单 {ORDER_ID} 到哪了?")
    reply = await telegram.wait_for_bot_message(buyer.id, timeout=60)
    latency = time.monotonic() - started
    print(f"\ne2e reply latency: {latency * 1000:.0f} ms")

    text = reply["text"]
    assert ORDER_ID in text
    assert "充值处理中" in text, text  # the order's state, as the sandbox has it
    assert clock(promised_by, "Asia/Shanghai", "zh") in text, text  # its promised arrival time
    assert "5 分钟" in text  # the game-card SLA
    titles = [b["text"] for row in reply["reply_markup"]["inline_keyboard"] for b in row]
    assert "转人工" in titles
    assert_all_running(stack, bot)


async def test_english_buyer_gets_english(stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess) -> None:
    english = telegram.create_user("Demo EN", language_code="en")
    # the English user is not linked: the bot explains how to link, in English
    telegram.user_sends_text(english, f"where is my order {ORDER_ID}?")
    reply = await telegram.wait_for_bot_message(english.id, timeout=60)
    assert "not linked" in reply["text"], reply["text"]


async def test_another_buyers_order_is_not_shown(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    buyer = demo_buyer(telegram)
    telegram.user_sends_text(buyer, "帮我查下订单 KM20261127101 怎么样了")  # B1002's order
    reply = await telegram.wait_for_bot_message(buyer.id, timeout=60)
    text = reply["text"]
    # "not found" (possibly offering the buyer's own look-alike KM20261127001), never the other buyer's order
    assert "没找到「KM20261127101」" in text or "没有在您的账号下找到订单 KM20261127101" in text, text
    assert not any(secret in text for secret in ("上海电信", "13300001111", "话费", "已付款")), text
    offered = [
        b["callback_data"]
        for row in (reply.get("reply_markup") or {}).get("inline_keyboard", [])
        for b in row
    ]
    assert not any("KM20261127101" in data for data in offered), offered


async def test_without_order_id_the_bot_offers_recent_orders(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    buyer = demo_buyer(telegram)
    telegram.user_sends_text(buyer, "/orders")
    menu = await telegram.wait_for_bot_message(buyer.id, timeout=60)
    buttons = [b for row in menu["reply_markup"]["inline_keyboard"] for b in row]
    target = next(b for b in buttons if ORDER_ID in b["text"])
    callback_id = telegram.user_presses_button(buyer, menu, target["callback_data"])
    reply = await telegram.wait_for_bot_message(
        buyer.id, predicate=lambda m: "状态" in m.get("text", ""), timeout=60
    )
    assert telegram.callback_answered(callback_id)
    assert ORDER_ID in reply["text"]


async def test_reply_depends_on_the_action_server(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    """With the action server stopped the order cannot be answered; the buyer still gets a polite reply."""
    buyer = demo_buyer(telegram)
    readyz = f"http://127.0.0.1:{stack.env['BOT_HTTP_PORT']}/readyz"
    async with httpx.AsyncClient() as client:
        assert (await client.get(readyz)).status_code == 200
    stack.actions.stop()
    try:
        async with httpx.AsyncClient() as client:
            not_ready = await client.get(readyz)
        assert not_ready.status_code == 503
        assert not_ready.json()["waiting_for"] == ["actions"]
        telegram.user_sends_text(buyer, f"订单 {ORDER_ID} 到了吗")
        reply = await telegram.wait_for_bot_message(buyer.id, timeout=60)
        assert "充值处理中" not in reply["text"]
        assert "Traceback" not in reply["text"]
    finally:
        stack.actions.start()
        stack.actions.wait_healthy()
