"""The fix form: a wrong recharge account or region corrected on the platform, read back before anything
changes, and explained when the value cannot be right."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rasa_sdk import Action

from integrations.platform import PlatformClient
from tests.actions.support import Chat, button, only, slot_event, titles

Actions = dict[str, Action]
NewChat = Callable[..., Chat]


async def start_fix(chat: Chat, actions: Actions, text: str, intent: str, order_id: str) -> str:
    """The buyer says the account (or region) is wrong about the order in context; returns the asked slot."""
    chat.slots["current_order_id"] = order_id
    chat.say(text, intent)
    chat.activate("fix_target_form")
    await chat.run(actions["validate_fix_target_form"])
    assert chat.slots["order_id"] == order_id
    return str(chat.slots["requested_slot"])


INVALID_PHONE = {
    "zh": "「1310000111」不是有效的充值手机号，手机号是 1 开头的 11 位数字。请重新发送。",
    "en": "'1310000111' is not a valid phone number: a mobile number is 11 digits starting with 1. Please send it again.",
}


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_an_invalid_account_is_explained_and_asked_again(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient, language: str
) -> None:
    chat = new_chat(language)
    asked = await start_fix(chat, actions_by_name, "手机号填错了", "wrong_account", "KM20261127004")
    assert asked == "account"
    ask = only(await chat.run(actions_by_name["action_ask_account"]))
    assert (
        ask["text"]
        == {
            "zh": "请发送正确的充值手机号（当前是 13100001111）。",
            "en": "Please send the correct phone number (now: 13100001111).",
        }[language]
    )

    chat.say("1310000111", "inform")  # one digit short
    reply = only(await chat.run(actions_by_name["validate_fix_target_form"]))
    assert reply["text"] == INVALID_PHONE[language]
    assert chat.returned_slots()["account"] is None
    assert chat.slots["requested_slot"] == "account"

    # written the way buyers paste numbers: country code, dashes
    chat.say("+86 131-2222-3333", "inform")
    assert await chat.run(actions_by_name["validate_fix_target_form"]) == []
    assert chat.slots["account"] == "13122223333"
    assert chat.slots["requested_slot"] == "fix_confirm"
    assert (await platform.get_order("B1001", "KM20261127004")).recharge_target.account == "13100001111"


READ_BACK = {
    "zh": "请核对：订单 KM20261127001 的游戏账号（UID/QQ号）\n从「2876543210」改为「3344556677」\n确认修改吗？",
    "en": "Please check: order KM20261127001, game account (UID or QQ number)\nfrom '2876543210' to '3344556677'\nChange it?",
}
FIXED = {
    "zh": "✅ 已修改：订单 KM20261127001 的游戏账号（UID/QQ号）现在是「3344556677」（原为「2876543210」），将按新信息充值。"
    "承诺到账：12:03 前（游戏点卡 5 分钟内），还剩约 3 分钟。",
    "en": "✅ Done: order KM20261127001 now has game account (UID or QQ number) '3344556677' (was '2876543210') and "
    "will be recharged to it. Promised by 12:03 (game card: within 5 min), about 3 min left.",
}


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_a_valid_account_is_read_back_and_confirming_changes_it_on_the_platform(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient, language: str
) -> None:
    chat = new_chat(language)
    assert await start_fix(chat, actions_by_name, "uid填错了", "wrong_account", "KM20261127001") == "account"
    chat.say("3344 5566 77", "inform")
    await chat.run(actions_by_name["validate_fix_target_form"])
    assert chat.slots["account"] == "3344556677"

    confirm = only(await chat.run(actions_by_name["action_ask_fix_confirm"]))
    assert confirm["text"] == READ_BACK[language]
    assert [b["payload"] for b in confirm["buttons"]] == ["/affirm", "/deny"]
    yes = "确认修改" if language == "zh" else "Yes, change it"
    assert titles(confirm)[0] == yes

    chat.press(button(confirm, yes))
    await chat.run(actions_by_name["validate_fix_target_form"])
    assert chat.slots["fix_confirm"] is True
    assert chat.active_loop is None

    reply = only(await chat.run(actions_by_name["action_submit_fix"]))
    assert reply["text"] == FIXED[language]
    order = await platform.get_order("B1001", "KM20261127001")
    assert order.recharge_target.account == "3344556677"
    changes = await platform.recharge_target_history("B1001", "KM20261127001")
    assert [(c.field, c.old, c.new) for c in changes] == [("account", "2876543210", "3344556677")]
    assert chat.returned_slots() == {
        "order_id": None,
        "order_problem": None,
        "fix_field": None,
        "account": None,
        "region": None,
        "fix_confirm": None,
        "cancel_reason": None,
        "cancel_decision": None,
        "cancel_confirm": None,
        "cancel_insisted": None,
        "flow_exit": None,
        "repair_unclear": None,
        "repair_prompt": None,
        "current_order_id": "KM20261127001",
    }


@pytest.mark.parametrize(
    ("language", "expected"),
    [("zh", "好的，没有修改订单 KM20261127001。"), ("en", "OK, order KM20261127001 was not changed.")],
    ids=["zh", "en"],
)
async def test_denying_the_read_back_changes_nothing(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient, language: str, expected: str
) -> None:
    chat = new_chat(language)
    await start_fix(chat, actions_by_name, "账号错了", "wrong_account", "KM20261127001")
    chat.say("3344556677", "inform", entities=[{"entity": "account", "value": "3344556677"}])
    await chat.run(actions_by_name["validate_fix_target_form"])
    confirm = only(await chat.run(actions_by_name["action_ask_fix_confirm"]))
    chat.press(button(confirm, "先不改" if language == "zh" else "No"))
    await chat.run(actions_by_name["validate_fix_target_form"])
    assert chat.slots["fix_confirm"] is False

    assert only(await chat.run(actions_by_name["action_submit_fix"]))["text"] == expected
    assert (await platform.get_order("B1001", "KM20261127001")).recharge_target.account == "2876543210"
    assert await platform.recharge_target_history("B1001", "KM20261127001") == []


async def test_a_region_is_asked_with_examples_and_fixed_as_the_platform_names_it(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    chat = new_chat()
    assert await start_fix(chat, actions_by_name, "区服选错了", "wrong_region", "KM20261127001") == "region"
    ask = only(await chat.run(actions_by_name["action_ask_region"]))
    assert (
        ask["text"]
        == "请发送正确的游戏区服（当前是 安卓QQ区），例如：安卓QQ区、安卓微信区、iOS QQ区、iOS微信区。"
    )
    chat.say("ios微信区", "inform")
    await chat.run(actions_by_name["validate_fix_target_form"])
    confirm = only(await chat.run(actions_by_name["action_ask_fix_confirm"]))
    assert (
        confirm["text"]
        == "请核对：订单 KM20261127001 的游戏区服\n从「安卓QQ区」改为「ios微信区」\n确认修改吗？"
    )
    chat.say("对", "affirm")
    await chat.run(actions_by_name["validate_fix_target_form"])
    reply = only(await chat.run(actions_by_name["action_submit_fix"]))
    assert reply["text"].startswith(
        "✅ 已修改：订单 KM20261127001 的游戏区服现在是「iOS微信区」（原为「安卓QQ区」），将按新信息充值。"
    )
    assert (await platform.get_order("B1001", "KM20261127001")).recharge_target.region == "iOS微信区"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("zh", "平台没有接受这个修改：区服/地区不正确，请从支持的区服中选择。"),
        ("en", "The platform refused the change: this region/server is not one the seller serves."),
    ],
    ids=["zh", "en"],
)
async def test_a_region_the_platform_refuses_is_explained_and_asked_again(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient, language: str, expected: str
) -> None:
    # a 联通 top-up cannot go to a 移动 area
    chat = new_chat(language)
    await start_fix(chat, actions_by_name, "地区选错了", "wrong_region", "KM20261127004")
    chat.say("广东移动", "inform", entities=[{"entity": "region", "value": "广东移动"}])
    await chat.run(actions_by_name["validate_fix_target_form"])
    chat.say("yes", "affirm")
    await chat.run(actions_by_name["validate_fix_target_form"])

    assert only(await chat.run(actions_by_name["action_submit_fix"]))["text"] == expected
    assert chat.returned == [
        slot_event("region", None),
        slot_event("fix_confirm", None),
        {"event": "followup", "timestamp": None, "name": "fix_target_form"},
    ]
    assert (await platform.get_order("B1001", "KM20261127004")).recharge_target.region == "北京联通"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "zh",
            "订单 KM20261127002 当前状态是「已到账」，充值信息已不能修改。如果实际没有到账，请点「转人工」，我们会核实处理。",
        ),
        (
            "en",
            "Order KM20261127002 is delivered; its recharge details can no longer be changed. If it did not actually "
            "arrive, tap 'Talk to a person' and we will check.",
        ),
    ],
    ids=["zh", "en"],
)
async def test_a_delivered_order_cannot_be_fixed_and_the_form_ends(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient, language: str, expected: str
) -> None:
    chat = new_chat(language)
    chat.say(
        "KM20261127002 账号填错了",
        "wrong_account",
        entities=[{"entity": "order_id", "value": "KM20261127002"}],
    )
    chat.activate("fix_target_form")
    reply = only(await chat.run(actions_by_name["validate_fix_target_form"]))
    assert reply["text"] == expected
    assert [b["payload"] for b in reply["buttons"]] == ["/human_handoff"]
    assert chat.active_loop is None
    assert await chat.run(actions_by_name["action_submit_fix"]) == []
    assert await platform.recharge_target_history("B1001", "KM20261127002") == []


async def test_a_stale_account_from_an_earlier_fix_is_not_taken_as_the_new_one(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    # e.g. taken from an earlier "my number 13999999999, where is my top-up?"
    chat = new_chat(slots={"account": "13999999999"})
    assert (
        await start_fix(chat, actions_by_name, "充值号码填错了", "wrong_account", "KM20261127004")
        == "account"
    )
    assert chat.slots["account"] is None
    assert chat.sent == []  # asked for afresh, without calling the dropped value invalid
    ask = only(await chat.run(actions_by_name["action_ask_account"]))
    assert ask["text"] == "请发送正确的充值手机号（当前是 13100001111）。"


async def test_a_new_account_in_the_first_message_is_taken_and_read_back(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    chat = new_chat("en", slots={"account": "13999999999"})
    chat.slots["current_order_id"] = "KM20261127004"
    chat.say(
        "wrong number!! should be 131 2222 3333",
        "wrong_account",
        entities=[{"entity": "account", "value": "131 2222 3333"}],
    )
    chat.activate("fix_target_form")
    assert await chat.run(actions_by_name["validate_fix_target_form"]) == []
    assert chat.slots["account"] == "13122223333"
    assert chat.slots["requested_slot"] == "fix_confirm"
