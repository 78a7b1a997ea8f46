"""A refund request is answered by the order's state: nothing to refund, the guarantee, waiting or cancelling,
a delivered order's human check, or a refund request filed on the platform."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from rasa_sdk import Action

from integrations.platform import PlatformClient
from sandbox.testing import SandboxAdmin
from tests.actions.conftest import Clock
from tests.actions.support import Chat, only

Actions = dict[str, Action]
NewChat = Callable[..., Chat]


async def ask_refund(chat: Chat, actions: Actions, order_id: str) -> dict[str, object]:
    chat.say(f"{order_id} 我要退款", "request_refund", entities=[{"entity": "order_id", "value": order_id}])
    chat.activate("refund_form")
    assert await chat.run(actions["validate_refund_form"]) == []
    assert chat.active_loop is None
    return only(await chat.run(actions["action_submit_refund"]))


@pytest.mark.parametrize(
    ("order_id", "text", "payloads"),
    [
        (
            "KM20261127005",
            "订单 KM20261127005 还没付款，不需要退款；不想要的话直接取消即可。",
            ["/cancel_order"],
        ),
        (
            "KM20261127001",
            "订单 KM20261127001 还在处理中（承诺到账：12:03 前（游戏点卡 5 分钟内），还剩约 3 分钟。）。"
            "两种选择：继续等待——超时会自动全额退款；或者取消订单，款项原路退回。",
            ["/keep_order", "/cancel_order"],
        ),
        (
            "KM20261127002",
            "订单 KM20261127002 已到账，虚拟商品到账后不支持直接退款。如果实际没收到或有问题，请转人工，我们会核实后处理。",
            ["/human_handoff"],
        ),
        ("KM20261127003", "订单 KM20261127003 已经退款（已取消），¥99.50 已原路退回。", []),
    ],
    ids=["unpaid", "in-progress", "delivered", "cancelled"],
)
async def test_a_refund_request_is_answered_by_the_orders_state(
    actions_by_name: Actions,
    new_chat: NewChat,
    platform: PlatformClient,
    order_id: str,
    text: str,
    payloads: list[str],
) -> None:
    before = (await platform.get_order("B1001", order_id)).state
    reply = await ask_refund(new_chat(), actions_by_name, order_id)
    assert reply["text"] == text
    assert [b["payload"] for b in reply["buttons"]] == payloads  # type: ignore[attr-defined]
    assert (await platform.get_order("B1001", order_id)).state == before  # answered, nothing changed


async def test_an_overdue_order_is_shown_with_its_automatic_refund(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    chat = new_chat("en")
    chat.say(
        "KM20261127004 refund now",
        "request_refund",
        entities=[{"entity": "order_id", "value": "KM20261127004"}],
    )
    chat.activate("refund_form")
    await chat.run(actions_by_name["validate_refund_form"])
    reply, ticket, _ = await chat.run(actions_by_name["action_submit_refund"])
    # the automatic refund was due at 11:25 and it is 12:00: late, said so, and a person follows it up
    assert reply["text"] == (
        "Order KM20261127004 (中国联通 话费 50 元)\nStatus: being processed\n"
        "Promised by 11:20 (phone top-up: within 10 min) - now 40 min late.\n"
        "The refund for order KM20261127004 was due by 11:25 and is late - that should not happen. I've asked a "
        "person to follow up; your ¥49.80 refund gets priority."
    )
    assert ticket["text"].startswith("A person is on the way")


async def test_a_failed_order_gets_a_refund_request_on_the_platform(
    actions_by_name: Actions, new_chat: NewChat, admin: SandboxAdmin, platform: PlatformClient, clock: Clock
) -> None:
    created = await admin.create_order(
        buyer_id="B1001",
        sku="WZRY-60",
        account="2876543210",
        region="安卓QQ区",
        state="processing",
        outcome="fail",
        response_seconds=0,
        fulfil_seconds=30,
    )
    order_id = str(created["order_id"])
    clock.advance(60)
    await admin.tick()
    assert (await platform.get_order("B1001", order_id)).state == "failed"

    reply = await ask_refund(new_chat("en"), actions_by_name, order_id)
    found = re.fullmatch(
        rf"Refund requested for order {order_id} \(no\. (\S+), approved\); it goes back to your payment method "
        r"once approved\.",
        str(reply["text"]),
    )
    assert found, reply["text"]
    assert (await platform.get_order("B1001", order_id)).state == "refunded"


async def test_a_refund_before_delivery_that_says_why_goes_to_the_cancel_form(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    """ "取消 KM…，退款，手机号填错了" was answered "wait or cancel": the wrong account was never offered a fix."""
    chat = new_chat()
    chat.say(
        "取消KM20261127001，退款，账号填错了",
        "request_refund",
        entities=[
            {"entity": "order_id", "value": "KM20261127001"},
            {"entity": "cancel_reason", "value": "wrong_account"},
        ],
    )
    chat.activate("refund_form")
    await chat.run(actions_by_name["validate_refund_form"])
    assert await chat.run(actions_by_name["action_submit_refund"]) == []  # the cancel form speaks next
    assert {"event": "followup", "name": "cancel_form"} in [
        {"event": e.get("event"), "name": e.get("name")} for e in chat.returned
    ]
    assert (await platform.get_order("B1001", "KM20261127001")).state == "processing"
