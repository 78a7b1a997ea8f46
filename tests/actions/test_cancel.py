"""The cancel form: the reason asked, one save offer where the problem can be solved without cancelling, the
cancellation itself with the right tag, and every outcome recorded."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rasa_sdk import Action

from actions.base import ActionDeps
from integrations.platform import PlatformClient
from integrations.storage.db import make_engine, make_sessionmaker, upgrade_to_head
from integrations.storage.repositories import CancellationOutcomes
from tests.actions.conftest import build, outcome_rows
from tests.actions.support import Chat, Message, button, only, slot_event, titles

Actions = dict[str, Action]
NewChat = Callable[..., Chat]

REASON_TAGS = [
    "wrong_account",
    "wrong_region",
    "arrival_too_slow",
    "payment_problem",
    "user_mistake",
    "duplicate_order",
    "demand_changed",
    "found_cheaper",
    "unclear_description",
    "merchant_out_of_stock",
    "merchant_malicious",
    "other",
]
REASON_BUTTONS = {
    "zh": [
        "充值账号填错了",
        "区服/地区选错了",
        "到账太慢/怕不到账",
        "付款遇到问题",
        "下错单了",
        "重复下单",
        "不想要了",
        "别家更便宜",
        "商品描述不清楚",
        "商家说没货",
        "商家不诚信",
        "其他原因",
    ],
    "en": [
        "Wrong recharge account",
        "Wrong region or server",
        "Too slow / may not arrive",
        "Payment problem",
        "Ordered by mistake",
        "Duplicate order",
        "Don't need it now",
        "Found it cheaper",
        "Description unclear",
        "Seller out of stock",
        "Seller acting in bad faith",
        "Other reason",
    ],
}


async def start_cancel(chat: Chat, actions: Actions, order_id: str) -> Message:
    """'Cancel KM…': the form starts with the order and asks why."""
    text = f"取消订单 {order_id}" if chat.language == "zh" else f"cancel {order_id} pls"
    chat.say(text, "cancel_order", entities=[{"entity": "order_id", "value": order_id}])
    chat.activate("cancel_form")
    assert await chat.run(actions["validate_cancel_form"]) == []
    assert chat.slots["order_id"] == order_id
    assert chat.slots["requested_slot"] == "cancel_reason"
    return only(await chat.run(actions["action_ask_cancel_reason"]))


async def give_reason(chat: Chat, actions: Actions, ask: Message, label: str) -> Message | None:
    """Tap one of the reason buttons; returns the save offer when the form makes one (else the read-back)."""
    chat.press(button(ask, label))
    assert await chat.run(actions["validate_cancel_form"]) == []
    if chat.slots["requested_slot"] == "cancel_decision":
        return only(await chat.run(actions["action_ask_cancel_decision"]))
    assert chat.slots["requested_slot"] == "cancel_confirm"
    return None


READ_BACK_YES = {"zh": "确认取消", "en": "Yes, cancel it"}


async def confirm_cancel(chat: Chat, actions: Actions) -> Message:
    """The read-back ("确认取消订单 KM…（¥…）吗？") answered with its yes button; the form is then done."""
    assert chat.slots["requested_slot"] == "cancel_confirm"
    read_back = only(await chat.run(actions["action_ask_cancel_confirm"]))
    chat.press(button(read_back, READ_BACK_YES[chat.language]))
    assert await chat.run(actions["validate_cancel_form"]) == []
    assert chat.slots["cancel_confirm"] is True
    assert chat.active_loop is None
    return read_back


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_the_reason_is_asked_with_all_twelve_reasons_as_buttons(
    actions_by_name: Actions, new_chat: NewChat, language: str
) -> None:
    ask = await start_cancel(new_chat(language), actions_by_name, "KM20261127001")
    expected = {
        "zh": "可以告诉我为什么要取消订单 KM20261127001 吗？很多问题不用取消就能解决 👇",
        "en": "May I ask why you want to cancel order KM20261127001? Many problems can be fixed without cancelling 👇",
    }
    assert ask["text"] == expected[language]
    assert titles(ask) == REASON_BUTTONS[language]
    # a tap sends the tag itself, never the label through the NLU
    assert [b["payload"] for b in ask["buttons"]] == [
        '/inform{"cancel_reason":"' + tag + '"}' for tag in REASON_TAGS
    ]


async def test_the_order_in_context_is_used_without_asking(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    chat = new_chat(slots={"current_order_id": "KM20261127001"})
    chat.say("不想要了，取消吧", "cancel_order")
    chat.activate("cancel_form")
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["order_id"] == "KM20261127001"
    assert chat.slots["requested_slot"] == "cancel_reason"


# ---------------------------------------------------------------- reasons with a save offer


OFFER_FIX_ACCOUNT = {
    "zh": "账号填错不用取消订单哦！订单还没到账（充值处理中），我可以帮您直接把充值账号改成正确的，马上就能按新账号充值。"
    "改账号就行吗？（也可以直接发新账号给我）",
    "en": "No need to cancel for a wrong account! The order is not delivered yet (being processed), so I can change "
    "the recharge account right now. Fix it instead? (You can also just send me the new account.)",
}


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_wrong_account_is_offered_a_fix_instead_and_the_fix_form_follows(
    actions_by_name: Actions,
    new_chat: NewChat,
    platform: PlatformClient,
    outcomes: CancellationOutcomes,
    language: str,
) -> None:
    chat = new_chat(language)
    ask = await start_cancel(chat, actions_by_name, "KM20261127001")
    offer = await give_reason(chat, actions_by_name, ask, REASON_BUTTONS[language][0])
    assert chat.slots["cancel_reason"] == "wrong_account"
    assert offer is not None
    assert offer["text"] == OFFER_FIX_ACCOUNT[language]
    assert [b["payload"] for b in offer["buttons"]] == ["/wrong_account", "/cancel_order"]

    chat.press(offer["buttons"][0])  # "fix the account"
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["cancel_decision"] == "fix_account"
    assert chat.active_loop is None  # one offer, then the form is done

    assert await chat.run(actions_by_name["action_submit_cancel"]) == []
    assert chat.returned_slots() == {
        "cancel_reason": None,
        "cancel_decision": "fix_account",
        "fix_field": "account",
        "fix_confirm": None,
        "requested_slot": None,
    }
    assert chat.slots["order_id"] == "KM20261127001"  # kept for the fix form
    assert (await platform.get_order("B1001", "KM20261127001")).state == "processing"
    assert await outcome_rows(outcomes, "KM20261127001") == [
        ("wrong_account", "saved", "fix_account", "B1001")
    ]

    # the fix form takes over and asks for the new account of this order
    chat.activate("fix_target_form")
    await chat.run(actions_by_name["validate_fix_target_form"])
    assert chat.slots["requested_slot"] == "account"
    ask_account = only(await chat.run(actions_by_name["action_ask_account"]))
    assert (
        ask_account["text"]
        == {
            "zh": "请发送正确的游戏账号（UID/QQ号）（当前是 2876543210）。",
            "en": "Please send the correct game account (UID or QQ number) (now: 2876543210).",
        }[language]
    )


async def test_a_new_account_typed_in_answer_to_the_offer_goes_straight_to_the_read_back(
    actions_by_name: Actions, new_chat: NewChat, outcomes: CancellationOutcomes
) -> None:
    chat = new_chat("en")
    ask = await start_cancel(chat, actions_by_name, "KM20261127001")
    await give_reason(chat, actions_by_name, ask, "Wrong recharge account")
    chat.say("it should be 3344556677", "inform", entities=[{"entity": "account", "value": "3344556677"}])
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["cancel_decision"] == "fix_account"
    await chat.run(actions_by_name["action_submit_cancel"])

    chat.activate("fix_target_form")
    await chat.run(actions_by_name["validate_fix_target_form"])
    assert chat.slots["account"] == "3344556677"
    assert chat.slots["requested_slot"] == "fix_confirm"
    confirm = only(await chat.run(actions_by_name["action_ask_fix_confirm"]))
    assert confirm["text"] == (
        "Please check: order KM20261127001, game account (UID or QQ number)\nfrom '2876543210' to '3344556677'\nChange it?"
    )
    assert await outcome_rows(outcomes, "KM20261127001") == [
        ("wrong_account", "saved", "fix_account", "B1001")
    ]


async def test_wrong_region_is_offered_a_fix_and_yes_means_fix(
    actions_by_name: Actions, new_chat: NewChat, outcomes: CancellationOutcomes
) -> None:
    chat = new_chat("en")
    ask = await start_cancel(chat, actions_by_name, "KM20261127001")
    offer = await give_reason(chat, actions_by_name, ask, "Wrong region or server")
    assert offer is not None
    assert offer["text"] == (
        "No need to cancel for a wrong region! The order is not delivered yet (being processed), so I can change "
        "the region/server right now. Fix it instead?"
    )
    assert titles(offer) == ["Fix the region", "Cancel anyway"]
    chat.say("yes", "affirm")
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["cancel_decision"] == "fix_region"
    await chat.run(actions_by_name["action_submit_cancel"])
    assert chat.slots["fix_field"] == "region"
    assert await outcome_rows(outcomes, "KM20261127001") == [("wrong_region", "saved", "fix_region", "B1001")]


OFFER_WAIT = {
    "zh": "承诺到账：12:03 前（游戏点卡 5 分钟内），还剩约 3 分钟。\n"
    "而且有超时全额退款保障：超过承诺时间没到账，¥6.00 会自动原路退回，不用申请，也不会有损失。要继续等待吗？",
    "en": "Promised by 12:03 (game card: within 5 min), about 3 min left.\n"
    "And the full-refund guarantee applies: if it misses the promised time, ¥6.00 comes back automatically - "
    "no request, no loss. Keep the order?",
}
KEPT = {
    "zh": "好的，订单 KM20261127001 继续为您处理，有进展我会第一时间通知您 👍",
    "en": "Great, order KM20261127001 stays active - I'll let you know as soon as it moves 👍",
}


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_too_slow_gets_the_arrival_time_and_the_guarantee_and_keep_keeps_the_order(
    actions_by_name: Actions,
    new_chat: NewChat,
    platform: PlatformClient,
    outcomes: CancellationOutcomes,
    language: str,
) -> None:
    chat = new_chat(language)
    ask = await start_cancel(chat, actions_by_name, "KM20261127001")
    offer = await give_reason(chat, actions_by_name, ask, REASON_BUTTONS[language][2])
    assert offer is not None
    assert offer["text"] == OFFER_WAIT[language]
    keep_title = "不取消了，继续等" if language == "zh" else "Keep the order"
    assert titles(offer) == [keep_title, "仍要取消" if language == "zh" else "Cancel anyway"]
    assert [b["payload"] for b in offer["buttons"]] == ["/keep_order", "/cancel_order"]

    chat.press(button(offer, keep_title))
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["cancel_decision"] == "keep"

    reply = only(await chat.run(actions_by_name["action_submit_cancel"]))
    assert reply["text"] == KEPT[language]
    assert (await platform.get_order("B1001", "KM20261127001")).state == "processing"
    assert await outcome_rows(outcomes, "KM20261127001") == [("arrival_too_slow", "saved", "kept", "B1001")]
    # the flow's slots are cleared, the order stays in context
    assert chat.returned_slots() == {
        "order_id": None,
        "order_problem": None,
        "cancel_reason": None,
        "cancel_decision": None,
        "cancel_confirm": None,
        "cancel_insisted": None,
        "flow_exit": None,
        "repair_unclear": None,
        "repair_prompt": None,
        "current_order_id": "KM20261127001",
    }


async def test_a_typed_reason_is_read_through_its_intent(actions_by_name: Actions, new_chat: NewChat) -> None:
    chat = new_chat()
    await start_cancel(chat, actions_by_name, "KM20261127001")
    chat.say("等了半天还没到 太慢了", "arrival_time")
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["cancel_reason"] == "arrival_too_slow"
    assert chat.slots["requested_slot"] == "cancel_decision"
    # "thanks, I'll wait" answers the offer with keep
    chat.say("好吧那我再等等 谢谢", "thank")
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["cancel_decision"] == "keep"


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_a_payment_problem_gets_guidance_and_the_order_is_kept(
    actions_by_name: Actions,
    new_chat: NewChat,
    platform: PlatformClient,
    outcomes: CancellationOutcomes,
    language: str,
) -> None:
    chat = new_chat(language)
    ask = await start_cancel(chat, actions_by_name, "KM20261127005")
    offer = await give_reason(chat, actions_by_name, ask, REASON_BUTTONS[language][3])
    assert offer is not None
    if language == "zh":
        assert offer["text"].startswith("付款的问题通常不用取消订单就能解决：余额不足可以充值后继续支付；")
        assert offer["text"].endswith("要保留订单，按上面的方法再试一次吗？")
    else:
        assert offer["text"].startswith("Payment problems can usually be solved without cancelling:")
        assert offer["text"].endswith("Keep the order and try again?")
    keep_title = "保留订单，我再试试" if language == "zh" else "Keep it, I'll try again"
    chat.press(button(offer, keep_title))
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["cancel_decision"] == "keep"
    reply = only(await chat.run(actions_by_name["action_submit_cancel"]))
    assert "KM20261127005" in reply["text"]
    assert (await platform.get_order("B1001", "KM20261127005")).state == "pending_payment"
    assert await outcome_rows(outcomes, "KM20261127005") == [("payment_problem", "saved", "kept", "B1001")]


# ---------------------------------------------------------------- the one-offer rule


@pytest.mark.parametrize(
    ("label", "answer", "tag"),
    [
        ("充值账号填错了", ("/cancel_order", "cancel_order"), "wrong_account"),
        ("区服/地区选错了", ("算了 还是直接取消吧", "cancel_order"), "wrong_region"),
        ("到账太慢/怕不到账", ("/cancel_order", "cancel_order"), "arrival_too_slow"),
        ("付款遇到问题", ("不用 还是取消吧", "cancel_order"), "payment_problem"),
    ],
    ids=["wrong_account", "wrong_region", "too_slow", "payment"],
)
async def test_still_cancelling_after_the_one_offer_cancels_with_the_reason(
    actions_by_name: Actions,
    new_chat: NewChat,
    platform: PlatformClient,
    outcomes: CancellationOutcomes,
    label: str,
    answer: tuple[str, str],
    tag: str,
) -> None:
    chat = new_chat()
    ask = await start_cancel(chat, actions_by_name, "KM20261127001")
    offer = await give_reason(chat, actions_by_name, ask, label)
    assert offer is not None
    text, intent = answer
    chat.say(text, intent)
    assert await chat.run(actions_by_name["validate_cancel_form"]) == []  # no second offer
    if text.startswith("/"):  # the [仍要取消] button: said twice, unambiguously, no read-back
        assert chat.slots["cancel_decision"] == "cancel"
    else:  # typed (it could be a misread "不取消了 我等"): the read-back, answered yes
        assert chat.slots["cancel_decision"] == "confirm"
        assert chat.slots["requested_slot"] == "cancel_confirm"
        chat.say("/affirm", "affirm", confidence=1.0)
        assert await chat.run(actions_by_name["validate_cancel_form"]) == []
    assert chat.active_loop is None

    reply = only(await chat.run(actions_by_name["action_submit_cancel"]))
    assert reply["text"].startswith(f"已为您取消订单 KM20261127001（原因：{label}）。")
    order = await platform.get_order("B1001", "KM20261127001")
    assert order.state == "cancelled"
    assert order.cancel is not None
    assert order.cancel.tag == tag
    assert await outcome_rows(outcomes, "KM20261127001") == [(tag, "cancelled", tag, "B1001")]
    offers = [m for m in chat.sent if m["text"] == offer["text"]]
    assert len(offers) == 1


# ---------------------------------------------------------------- reasons cancelled at once


@pytest.mark.parametrize(
    ("language", "label", "tag", "expected"),
    [
        (
            "zh",
            "商家说没货",
            "merchant_out_of_stock",
            "非常抱歉给您带来不便 🙏 订单 KM20261127001 已按「商家说没货」取消，已付款项 ¥6.00 会原路退回，一般几分钟内到账。"
            "这个问题我们会记录在商家的履约评分里。需要的话可以转人工，平台客服会跟进处理。",
        ),
        (
            "en",
            "Seller acting in bad faith",
            "merchant_malicious",
            "We're very sorry 🙏 Order KM20261127001 is cancelled as 'Seller acting in bad faith'. The ¥6.00 you paid "
            "goes back to your payment method, usually within minutes. This counts against the seller's fulfilment "
            "score. Tap below if you want a person to follow up.",
        ),
    ],
    ids=["out_of_stock-zh", "malicious-en"],
)
async def test_a_merchants_fault_cancels_at_once_with_its_tag_and_offers_a_human(
    actions_by_name: Actions,
    new_chat: NewChat,
    platform: PlatformClient,
    outcomes: CancellationOutcomes,
    language: str,
    label: str,
    tag: str,
    expected: str,
) -> None:
    chat = new_chat(language)
    ask = await start_cancel(chat, actions_by_name, "KM20261127001")
    assert await give_reason(chat, actions_by_name, ask, label) is None  # no offer for the merchant's fault
    await confirm_cancel(chat, actions_by_name)
    cancelled, ticket, note = await chat.run(actions_by_name["action_submit_cancel"])
    assert cancelled["text"] == expected
    assert ticket["text"].startswith("已为您转人工" if language == "zh" else "A person is on the way")
    assert note["custom"]["handoff"]["order_id"] == "KM20261127001"
    order = await platform.get_order("B1001", "KM20261127001")
    assert order.cancel is not None
    assert (order.state, order.cancel.tag, order.cancel.by) == ("cancelled", tag, "buyer")
    assert await outcome_rows(outcomes, "KM20261127001") == [(tag, "cancelled", tag, "B1001")]
    # the seller is accused: the ticket is marked so that platform agents take it, not that seller
    (escalation,) = await platform.list_escalations(buyer_id="B1001")
    assert (escalation.order_id, escalation.reason) == ("KM20261127001", "merchant_fault")


async def test_a_complaint_typed_as_the_reason_counts_as_the_merchants_bad_faith(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    chat = new_chat()
    await start_cancel(chat, actions_by_name, "KM20261127001")
    chat.say("商家一直拖着不发货，骗子吧", "complain")
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["cancel_reason"] == "merchant_malicious"
    await confirm_cancel(chat, actions_by_name)
    replies = await chat.run(actions_by_name["action_submit_cancel"])
    assert replies[1]["text"].startswith("已为您转人工")
    order = await platform.get_order("B1001", "KM20261127001")
    assert order.cancel is not None
    assert order.cancel.tag == "merchant_malicious"


@pytest.mark.parametrize(
    ("label", "tag"),
    [("别家更便宜", "found_cheaper"), ("不想要了", "demand_changed"), ("下错单了", "user_mistake")],
    ids=["found_cheaper", "demand_changed", "user_mistake"],
)
async def test_changed_mind_reasons_cancel_with_their_tag_and_the_restore_window(
    actions_by_name: Actions,
    new_chat: NewChat,
    platform: PlatformClient,
    outcomes: CancellationOutcomes,
    label: str,
    tag: str,
) -> None:
    chat = new_chat()
    ask = await start_cancel(chat, actions_by_name, "KM20261127001")
    assert await give_reason(chat, actions_by_name, ask, label) is None
    read_back = await confirm_cancel(chat, actions_by_name)
    assert (
        read_back["text"]
        == "请确认：取消订单 KM20261127001（王者荣耀 点券 60，¥6.00）吗？取消后已付的 ¥6.00 原路退回。"
    )
    reply = only(await chat.run(actions_by_name["action_submit_cancel"]))
    assert reply["text"] == (
        f"已为您取消订单 KM20261127001（原因：{label}）。已付款项 ¥6.00 会原路退回，一般几分钟内到账。\n"
        "如果是误操作，12:30 前可以说「恢复订单」找回。"
    )
    assert reply["buttons"] == []
    order = await platform.get_order("B1001", "KM20261127001")
    assert order.cancel is not None
    assert order.cancel.tag == tag
    assert await outcome_rows(outcomes, "KM20261127001") == [(tag, "cancelled", tag, "B1001")]
    assert chat.returned_slots()["current_order_id"] == "KM20261127001"


async def test_an_unpaid_order_is_cancelled_without_a_refund_line(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    chat = new_chat("en")
    ask = await start_cancel(chat, actions_by_name, "KM20261127005")
    assert await give_reason(chat, actions_by_name, ask, "Don't need it now") is None
    await confirm_cancel(chat, actions_by_name)
    text = only(await chat.run(actions_by_name["action_submit_cancel"]))["text"]
    assert text == (
        "Order KM20261127005 is cancelled (reason: Don't need it now).\n"
        "Cancelled by mistake? Say 'restore my order' before 12:30."
    )
    assert (await platform.get_order("B1001", "KM20261127005")).state == "cancelled"


async def test_an_unrecognised_reason_is_cancelled_as_other(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    chat = new_chat()
    await start_cancel(chat, actions_by_name, "KM20261127001")
    chat.say("就是想取消", "out_of_scope")
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["cancel_reason"] == "other"
    await confirm_cancel(chat, actions_by_name)
    await chat.run(actions_by_name["action_submit_cancel"])
    order = await platform.get_order("B1001", "KM20261127001")
    assert order.cancel is not None
    assert order.cancel.tag == "other"


# ---------------------------------------------------------------- orders that cannot be cancelled


@pytest.mark.parametrize(
    ("order_id", "language", "expected", "buttons"),
    [
        (
            "KM20261127002",
            "zh",
            "订单 KM20261127002 当前状态是「已到账」，已无法取消。如果实际没有到账，请点「转人工」，我们会核实处理。",
            ["转人工"],
        ),
        (
            "KM20261127002",
            "en",
            "Order KM20261127002 is delivered and can no longer be cancelled. If it did not actually arrive, tap "
            "'Talk to a person' and we will check.",
            ["Talk to a person"],
        ),
        ("KM20261127003", "zh", "订单 KM20261127003 当前状态是「已取消」，已无法取消。", []),
    ],
    ids=["delivered-zh", "delivered-en", "cancelled-zh"],
)
async def test_an_order_past_cancelling_is_explained_and_the_form_ends(
    actions_by_name: Actions,
    new_chat: NewChat,
    platform: PlatformClient,
    outcomes: CancellationOutcomes,
    order_id: str,
    language: str,
    expected: str,
    buttons: list[str],
) -> None:
    chat = new_chat(language)
    chat.say(f"取消 {order_id}", "cancel_order", entities=[{"entity": "order_id", "value": order_id}])
    chat.activate("cancel_form")
    reply = only(await chat.run(actions_by_name["validate_cancel_form"]))
    assert reply["text"] == expected
    assert titles(reply) == buttons
    assert chat.slots["order_problem"] == "not_eligible"
    assert chat.active_loop is None  # the buyer is not trapped in the form

    assert await chat.run(actions_by_name["action_submit_cancel"]) == []
    assert chat.returned_slots() == {
        "order_id": None,
        "order_problem": None,
        "cancel_reason": None,
        "cancel_decision": None,
        "cancel_confirm": None,
        "cancel_insisted": None,
        "current_order_id": order_id,
    }
    before = "delivered" if order_id == "KM20261127002" else "cancelled"
    assert (await platform.get_order("B1001", order_id)).state == before
    assert await outcome_rows(outcomes, order_id) == []


async def test_an_order_delivered_while_the_buyer_was_deciding_is_not_cancelled(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient, outcomes: CancellationOutcomes
) -> None:
    chat = new_chat(
        slots={"order_id": "KM20261127002", "cancel_reason": "found_cheaper", "cancel_confirm": True}
    )
    chat.say("确认取消", "affirm")
    reply = only(await chat.run(actions_by_name["action_submit_cancel"]))
    assert reply["text"] == "订单 KM20261127002 当前状态是「已到账」，已无法取消。"
    assert titles(reply) == ["转人工"]
    assert (await platform.get_order("B1001", "KM20261127002")).state == "delivered"
    assert await outcome_rows(outcomes, "KM20261127002") == []


async def test_without_an_order_the_open_orders_are_offered_and_a_tap_continues(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    chat = new_chat()
    chat.say("我要取消订单", "cancel_order")
    chat.activate("cancel_form")
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["requested_slot"] == "order_id"
    pick = only(await chat.run(actions_by_name["action_ask_cancel_form_order_id"]))
    chat.press(pick["buttons"][-1])
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["order_id"] == "KM20261127004"
    assert chat.slots["requested_slot"] == "cancel_reason"
    assert chat.returned[-1] == slot_event("requested_slot", "cancel_reason")


async def test_a_paid_order_cancelled_in_english_says_where_the_money_goes(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    chat = new_chat("en")
    ask = await start_cancel(chat, actions_by_name, "KM20261127001")
    assert await give_reason(chat, actions_by_name, ask, "Found it cheaper") is None
    await confirm_cancel(chat, actions_by_name)
    assert only(await chat.run(actions_by_name["action_submit_cancel"]))["text"] == (
        "Order KM20261127001 is cancelled (reason: Found it cheaper). The ¥6.00 you paid goes back to your payment "
        "method, usually within minutes.\nCancelled by mistake? Say 'restore my order' before 12:30."
    )


async def test_outcomes_are_recorded_on_postgresql_too(
    new_chat: NewChat, platform: PlatformClient, pg_url: str
) -> None:
    """Production keeps the outcomes in PostgreSQL: the same flows, the real repository on a migrated database."""
    await upgrade_to_head(pg_url)
    engine = make_engine(pg_url)
    try:
        store = CancellationOutcomes(make_sessionmaker(engine))
        actions = build(ActionDeps(platform=platform, outcomes=store))
        kept = new_chat(
            slots={
                "order_id": "KM20261127004",
                "cancel_reason": "arrival_too_slow",
                "cancel_decision": "keep",
            }
        )
        kept.say("那我再等等", "affirm")
        await kept.run(actions["action_submit_cancel"])
        cancelled = new_chat(
            slots={
                "order_id": "KM20261127001",
                "cancel_reason": "merchant_out_of_stock",
                "cancel_confirm": True,
            }
        )
        cancelled.say("商家说没货", "inform")
        await cancelled.run(actions["action_submit_cancel"])
        escalated = new_chat(slots={"order_id": "KM20261127005", "cancel_reason": "payment_problem"})
        escalated.say("转人工", "human_handoff")
        await escalated.run(actions["action_escalate"])

        assert await outcome_rows(store, "KM20261127004") == [("arrival_too_slow", "saved", "kept", "B1001")]
        assert await outcome_rows(store, "KM20261127001") == [
            ("merchant_out_of_stock", "cancelled", "merchant_out_of_stock", "B1001")
        ]
        assert await outcome_rows(store, "KM20261127005") == [
            ("payment_problem", "escalated", "human", "B1001")
        ]
        rows = await store.for_order("KM20261127001")
        assert rows[0].conversation_id == "tg-10001"
    finally:
        await engine.dispose()
