"""Buyer flows end to end through the Bot API protocol: cancellation save (saved and cancelled), fixing the
recharge account, restoring a cancelled order. Each test makes its own order in the sandbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text as sql

from integrations.storage.db import make_engine
from tests.botapi_double import BotAPIDouble, FakeUser
from tests.e2e.conftest import SANDBOX_API_KEY, Stack
from tests.support.processes import ManagedProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

BUYER = "B1001"
TELEGRAM_USER = 10001
REPLY_TIMEOUT = 60.0


def sandbox(stack: Stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.env['SANDBOX_PORT']}", timeout=10)


async def new_order(stack: Stack, **fields: Any) -> dict[str, Any]:
    body = {"buyer_id": BUYER, "sku": "WZRY-60", "account": "2876543210", "region": "安卓QQ区"}
    body |= {"state": "processing", "fulfil_seconds": 3600, **fields}
    async with sandbox(stack) as client:
        response = await client.post("/admin/orders", json=body, headers={"X-Admin-Key": "sandbox-admin"})
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


async def get_order(stack: Stack, order_id: str) -> dict[str, Any]:
    async with sandbox(stack) as client:
        response = await client.get(
            f"/v1/buyers/{BUYER}/orders/{order_id}", headers={"X-API-Key": SANDBOX_API_KEY}
        )
    response.raise_for_status()
    order: dict[str, Any] = response.json()
    return order


def buyer(telegram: BotAPIDouble) -> FakeUser:
    try:
        return telegram.user(TELEGRAM_USER)
    except Exception:
        return telegram.create_user("演示买家", user_id=TELEGRAM_USER, language_code="zh-hans")


def has(*words: str) -> Callable[[dict[str, Any]], bool]:
    """A new bot message (not an edit of an earlier one) containing every word."""
    return lambda message: (
        "edit_date" not in message and all(word in (message.get("text") or "") for word in words)
    )


async def say(
    telegram: BotAPIDouble, user: FakeUser, text: str, expect: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    telegram.user_sends_text(user, text)
    return await telegram.wait_for_bot_message(user.id, predicate=expect, timeout=REPLY_TIMEOUT)


async def press(
    telegram: BotAPIDouble,
    user: FakeUser,
    menu: dict[str, Any],
    title: str,
    expect: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    buttons = [b for row in menu["reply_markup"]["inline_keyboard"] for b in row]
    button = next((b for b in buttons if b["text"] == title), None)
    assert button is not None, f"no button {title!r} in {[b['text'] for b in buttons]}"
    callback_id = telegram.user_presses_button(user, menu, button["callback_data"])
    reply = await telegram.wait_for_bot_message(user.id, predicate=expect, timeout=REPLY_TIMEOUT)
    assert telegram.callback_answered(callback_id)
    return reply


async def outcomes(stack: Stack, order_id: str) -> list[tuple[str, str, str]]:
    engine = make_engine(stack.env["DATABASE_URL"])
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                sql(
                    "SELECT reason_tag, outcome, detail FROM cancellation_outcomes WHERE order_id = :o ORDER BY id"
                ),
                {"o": order_id},
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        await engine.dispose()


async def test_cancellation_saved_by_fixing_the_account(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    order_id = (await new_order(stack))["order_id"]
    user = buyer(telegram)
    ask = await say(telegram, user, f"我要取消订单 {order_id}", has("为什么要取消", order_id))
    offer = await press(telegram, user, ask, "充值账号填错了", has("不用取消"))
    ask_account = await press(telegram, user, offer, "改充值账号", has("请发送正确的"))
    assert "2876543210" in ask_account["text"]  # the current account is shown
    confirm = await say(telegram, user, "2876500000", has("确认修改"))
    assert "2876543210" in confirm["text"] and "2876500000" in confirm["text"]
    await press(telegram, user, confirm, "确认修改", has("已修改", "2876500000"))

    order = await get_order(stack, order_id)
    assert order["state"] == "processing"  # saved, not cancelled
    assert order["recharge_target"]["account"] == "2876500000"
    assert await outcomes(stack, order_id) == [("wrong_account", "saved", "fix_account")]


async def test_cancellation_with_a_reason_that_is_not_saveable(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    order_id = (await new_order(stack))["order_id"]
    user = buyer(telegram)
    ask = await say(telegram, user, f"帮我取消订单{order_id}", has("为什么要取消", order_id))
    read_back = await press(telegram, user, ask, "别家更便宜", has("请确认：取消订单", order_id))
    # nothing is cancelled before the read-back is answered yes
    assert (await get_order(stack, order_id))["state"] != "cancelled"
    await press(telegram, user, read_back, "确认取消", has("已为您取消订单", order_id))

    order = await get_order(stack, order_id)
    assert order["state"] == "cancelled"
    assert order["cancel"]["tag"] == "found_cheaper"
    assert await outcomes(stack, order_id) == [("found_cheaper", "cancelled", "found_cheaper")]


async def test_fix_account_explains_an_invalid_value_and_asks_again(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    order_id = (await new_order(stack, sku="CM-100", account="13800138000", region="广东移动"))["order_id"]
    user = buyer(telegram)
    await say(telegram, user, f"充值手机号填错了 订单号{order_id}", has("请发送正确的", "13800138000"))
    await say(telegram, user, "1380013", has("不是有效的"))
    confirm = await say(telegram, user, "13900139000", has("确认修改"))
    await press(telegram, user, confirm, "确认修改", has("已修改", "13900139000"))
    assert (await get_order(stack, order_id))["recharge_target"]["account"] == "13900139000"


async def test_restore_a_mistakenly_cancelled_order(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    order_id = (await new_order(stack))["order_id"]
    async with sandbox(stack) as client:
        response = await client.post(
            f"/v1/buyers/{BUYER}/orders/{order_id}/cancel",
            json={"reason_tag": "user_mistake"},
            headers={"X-API-Key": SANDBOX_API_KEY},
        )
    assert response.status_code == 200, response.text
    user = buyer(telegram)
    confirm = await say(telegram, user, f"刚才点错取消了，帮我恢复订单 {order_id}", has("确认恢复吗"))
    await press(telegram, user, confirm, "确认恢复", has("已恢复", order_id))
    assert (await get_order(stack, order_id))["state"] != "cancelled"
