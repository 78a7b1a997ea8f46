"""Restoring a mistakenly cancelled order: eligible ones after a confirmation, the others explained."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rasa_sdk import Action

from integrations.platform import PlatformClient
from sandbox.testing import SandboxAdmin
from tests.actions.conftest import Clock
from tests.actions.support import Chat, button, only, titles

Actions = dict[str, Action]
NewChat = Callable[..., Chat]

CONFIRM = {
    "zh": "订单 KM20261127003（中国移动 话费 100 元，¥99.50）于 11:55 取消，12:25 前可以恢复。"
    "恢复后会重新扣款并继续充值，确认恢复吗？",
    "en": "Order KM20261127003 (中国移动 话费 100 元, ¥99.50) was cancelled at 11:55 and can be restored until "
    "12:25. Restoring charges it again and continues the recharge. Restore it?",
}
RESTORED = {
    "zh": "✅ 订单 KM20261127003 已恢复，状态：已付款，等待处理。承诺到账：12:10 前（话费充值 10 分钟内），还剩约 10 分钟。",
    "en": "✅ Order KM20261127003 is restored, now paid, waiting to be processed. "
    "Promised by 12:10 (phone top-up: within 10 min), about 10 min left.",
}


async def ask_to_restore(chat: Chat, actions: Actions) -> None:
    """'I cancelled by mistake': the form offers the cancelled orders; the buyer taps the only one."""
    chat.say("刚才点错取消了" if chat.language == "zh" else "cancelled by mistake, undo pls", "restore_order")
    chat.activate("restore_form")
    await chat.run(actions["validate_restore_form"])
    assert chat.slots["requested_slot"] == "order_id"
    pick = only(await chat.run(actions["action_ask_restore_form_order_id"]))
    assert [b["payload"] for b in pick["buttons"]] == ['/inform{"order_id":"KM20261127003"}']
    chat.press(pick["buttons"][0])
    await chat.run(actions["validate_restore_form"])


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_an_eligible_order_is_restored_after_the_buyer_confirms(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient, language: str
) -> None:
    chat = new_chat(language)
    await ask_to_restore(chat, actions_by_name)
    assert chat.slots["order_id"] == "KM20261127003"
    assert chat.slots["requested_slot"] == "restore_confirm"
    confirm = only(await chat.run(actions_by_name["action_ask_restore_confirm"]))
    assert confirm["text"] == CONFIRM[language]
    assert [b["payload"] for b in confirm["buttons"]] == ["/affirm", "/deny"]

    chat.press(button(confirm, "确认恢复" if language == "zh" else "Yes, restore it"))
    await chat.run(actions_by_name["validate_restore_form"])
    assert chat.slots["restore_confirm"] is True
    assert chat.active_loop is None

    reply = only(await chat.run(actions_by_name["action_submit_restore"]))
    assert reply["text"] == RESTORED[language]
    order = await platform.get_order("B1001", "KM20261127003")
    assert order.state == "paid"
    assert chat.returned_slots() == {
        "order_id": None,
        "order_problem": None,
        "restore_confirm": None,
        "current_order_id": "KM20261127003",
    }


@pytest.mark.parametrize(
    ("language", "expected"),
    [("zh", "好的，订单 KM20261127003 保持取消状态。"), ("en", "OK, order KM20261127003 stays cancelled.")],
    ids=["zh", "en"],
)
async def test_declining_keeps_the_order_cancelled(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient, language: str, expected: str
) -> None:
    chat = new_chat(language)
    await ask_to_restore(chat, actions_by_name)
    confirm = only(await chat.run(actions_by_name["action_ask_restore_confirm"]))
    chat.press(button(confirm, titles(confirm)[1]))
    await chat.run(actions_by_name["validate_restore_form"])
    assert chat.slots["restore_confirm"] is False
    assert only(await chat.run(actions_by_name["action_submit_restore"]))["text"] == expected
    assert (await platform.get_order("B1001", "KM20261127003")).state == "cancelled"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("zh", "订单 KM20261127001 当前状态是「充值处理中」，不是已取消的订单，不需要恢复。"),
        ("en", "Order KM20261127001 is being processed, not cancelled - nothing to restore."),
    ],
    ids=["zh", "en"],
)
async def test_an_order_that_is_not_cancelled_is_explained(
    actions_by_name: Actions, new_chat: NewChat, language: str, expected: str
) -> None:
    chat = new_chat(language)
    chat.say(
        "恢复 KM20261127001", "restore_order", entities=[{"entity": "order_id", "value": "KM20261127001"}]
    )
    chat.activate("restore_form")
    reply = only(await chat.run(actions_by_name["validate_restore_form"]))
    assert reply["text"] == expected
    assert reply["buttons"] == []
    assert chat.slots["order_problem"] == "not_eligible"
    assert chat.active_loop is None
    assert await chat.run(actions_by_name["action_submit_restore"]) == []


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "zh",
            "订单 KM20261127003 已超过恢复期限（12:25 截止），无法恢复了。可以重新下单，或转人工看看有没有办法。",
        ),
        (
            "en",
            "Order KM20261127003 is past its restore window (ended 12:25). You can place it again, or ask a person.",
        ),
    ],
    ids=["zh", "en"],
)
async def test_an_order_past_its_restore_window_is_explained_with_a_human_offer(
    actions_by_name: Actions,
    new_chat: NewChat,
    platform: PlatformClient,
    clock: Clock,
    language: str,
    expected: str,
) -> None:
    clock.advance(26 * 60)  # the window closed at 12:25
    chat = new_chat(language, slots={"current_order_id": "KM20261127003"})
    chat.say("帮我恢复订单", "restore_order")
    chat.activate("restore_form")
    reply = only(await chat.run(actions_by_name["validate_restore_form"]))
    assert reply["text"] == expected
    assert [b["payload"] for b in reply["buttons"]] == ["/human_handoff"]
    assert chat.active_loop is None
    assert (await platform.get_order("B1001", "KM20261127003")).state == "cancelled"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("zh", "订单 KM20261127003 没能恢复：商品库存不足，暂时无法恢复订单。"),
        ("en", "Order KM20261127003 could not be restored: out of stock"),
    ],
    ids=["zh", "en"],
)
async def test_stock_gone_since_the_cancellation_is_explained_with_a_human_offer(
    actions_by_name: Actions,
    new_chat: NewChat,
    admin: SandboxAdmin,
    platform: PlatformClient,
    language: str,
    expected: str,
) -> None:
    chat = new_chat(language)
    await ask_to_restore(chat, actions_by_name)
    confirm = only(await chat.run(actions_by_name["action_ask_restore_confirm"]))
    await admin.upsert_product(
        sku="CM-100",
        kind="phone_topup",
        name="中国移动 话费 100 元",
        merchant_id="M02",
        price="99.50",
        carrier="中国移动",
        stock=0,
    )
    chat.press(confirm["buttons"][0])
    await chat.run(actions_by_name["validate_restore_form"])
    reply = only(await chat.run(actions_by_name["action_submit_restore"]))
    assert reply["text"] == expected
    assert [b["payload"] for b in reply["buttons"]] == ["/human_handoff"]
    assert (await platform.get_order("B1001", "KM20261127003")).state == "cancelled"
