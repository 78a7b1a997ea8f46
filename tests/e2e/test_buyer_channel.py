"""Buyer-side Telegram features through the Bot API protocol: deep-link binding, /lang, attachments,
unsupported content, the command menu in both languages."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.platform.client import PlatformClient
from tests.botapi_double import BotAPIDouble
from tests.e2e.conftest import SANDBOX_API_KEY, Stack
from tests.support.processes import ManagedProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


def is_new(message: dict[str, Any]) -> bool:
    return "edit_date" not in message


def platform(stack: Stack) -> PlatformClient:
    return PlatformClient(f"http://127.0.0.1:{stack.env['SANDBOX_PORT']}", SANDBOX_API_KEY)


async def test_deep_link_binds_the_buyer_and_their_orders_become_visible(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    async with platform(stack) as client:
        token = await client.issue_link_token("B1003")
        [order] = await client.list_orders("B1003", limit=1)
    user = telegram.create_user("老客户小王", language_code="zh-hans")

    telegram.user_sends_text(user, f"订单 {order.order_id} 怎么样了")
    before = await telegram.wait_for_bot_message(user.id, predicate=is_new, timeout=60)
    assert "还没有绑定" in before["text"], before["text"]  # not linked: explains how, shows nothing

    telegram.user_sends_text(user, f"/start {token.token}")
    linked = await telegram.wait_for_bot_message(user.id, predicate=is_new, timeout=60)
    assert "绑定成功" in linked["text"]
    telegram.user_sends_text(user, f"订单 {order.order_id} 怎么样了")
    after = await telegram.wait_for_bot_message(
        user.id, predicate=lambda m: is_new(m) and order.order_id in m.get("text", ""), timeout=60
    )
    assert "已到账" in after["text"]

    other = telegram.create_user("别人", language_code="zh-hans")
    telegram.user_sends_text(other, f"/start {token.token}")  # a used token is refused
    refused = await telegram.wait_for_bot_message(other.id, predicate=is_new, timeout=60)
    assert "用过" in refused["text"]


async def test_lang_switches_the_answers_to_english(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    user = telegram.create_user("切换语言", language_code="zh-hans")
    telegram.user_sends_text(user, "/lang")
    menu = await telegram.wait_for_bot_message(user.id, predicate=is_new, timeout=60)
    english = next(
        b for row in menu["reply_markup"]["inline_keyboard"] for b in row if b["text"] == "English"
    )
    callback = telegram.user_presses_button(user, menu, english["callback_data"])
    await telegram.wait_for_bot_message(user.id, timeout=60)
    assert telegram.callback_answered(callback)
    telegram.user_sends_text(user, "你好")
    reply = await telegram.wait_for_bot_message(user.id, predicate=is_new, timeout=60)
    assert "order assistant" in reply["text"], reply["text"]


async def test_a_screenshot_is_kept_and_a_sticker_gets_a_hint(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    user = telegram.create_user("发截图", language_code="zh-hans")
    telegram.user_sends_photo(user)
    kept = await telegram.wait_for_bot_message(user.id, predicate=is_new, timeout=60)
    assert "已保存" in kept["text"]
    telegram.user_sends_message(
        user,
        {
            "sticker": {
                "file_id": "st1",
                "file_unique_id": "st1u",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        },
    )
    hint = await telegram.wait_for_bot_message(user.id, predicate=is_new, timeout=60)
    assert "文字" in hint["text"]


async def test_the_command_menu_is_set_in_both_languages(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    calls = telegram.calls_to("setMyCommands")
    languages = {call.params.get("language_code") or "" for call in calls}
    assert {"", "zh"} <= languages
    english = next(call for call in calls if not call.params.get("language_code"))
    assert "orders" in str(english.params["commands"])
