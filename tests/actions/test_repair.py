"""Conversation repair (issue 10): typed answers read in the context of the question, every form can be left,
interrupted and corrected, nothing is cancelled without a clear yes, and only true statements.

Each test reproduces a failure a buyer met (the issue quotes them); the intents are what the NLU gives for such
messages, the rest is the real action code against the sandbox.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rasa_sdk import Action

from integrations.platform import PlatformClient
from integrations.storage.repositories import CancellationOutcomes
from tests.actions.conftest import outcome_rows
from tests.actions.support import Chat, Message, button, only

Actions = dict[str, Action]
NewChat = Callable[..., Chat]


def order_entity(order_id: str) -> list[dict[str, str]]:
    return [{"entity": "order_id", "value": order_id}]


async def cancel_until_offer(chat: Chat, actions: Actions, order_id: str, reason: str) -> Message:
    """'取消 KM…' and a reason button; returns the next question (the save offer or the read-back)."""
    chat.say(f"取消 {order_id}", "cancel_order", entities=order_entity(order_id))
    chat.activate("cancel_form")
    await chat.run(actions["validate_cancel_form"])
    chat.press({"title": reason, "payload": f'/inform{{"cancel_reason":"{reason}"}}'})
    await chat.run(actions["validate_cancel_form"])
    slot = chat.slots["requested_slot"]
    return only(await chat.run(actions[f"action_ask_{slot}"]))


async def ask_why(chat: Chat, actions: Actions) -> None:
    """'取消 KM20261127001': the cancel form asks why."""
    chat.say("取消 KM20261127001", "cancel_order", entities=order_entity("KM20261127001"))
    chat.activate("cancel_form")
    await chat.run(actions["validate_cancel_form"])


async def start_fix(chat: Chat, actions: Actions, field: str = "account") -> None:
    intent = "wrong_account" if field == "account" else "wrong_region"
    chat.slots["fix_field"] = field
    chat.say("KM20261127001 账号填错了", intent, entities=order_entity("KM20261127001"))
    chat.activate("fix_target_form")
    await chat.run(actions["validate_fix_target_form"])
    assert chat.slots["requested_slot"] == field


# ---------------------------------------------------------------- typed equals tapped


@pytest.mark.parametrize(
    ("language", "text"),
    [("zh", "好吧那我再等等"), ("en", "ok fine, I'll keep it"), ("zh", "行 那不取消了")],
)
async def test_a_typed_keep_to_the_slow_arrival_offer_keeps_the_order(
    actions_by_name: Actions,
    new_chat: NewChat,
    platform: PlatformClient,
    outcomes: CancellationOutcomes,
    language: str,
    text: str,
) -> None:
    """Issue 10: "好吧那我再等等" / "ok fine, I'll keep it" typed to the offer cancelled the order."""
    chat = new_chat(language)
    offer = await cancel_until_offer(chat, actions_by_name, "KM20261127001", "arrival_too_slow")
    assert chat.slots["requested_slot"] == "cancel_decision"
    assert "/keep_order" in [b["payload"] for b in offer["buttons"]]
    chat.say(text, "keep_order")
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.active_loop is None
    reply = only(await chat.run(actions_by_name["action_submit_cancel"]))
    assert "KM20261127001" in reply["text"]
    assert (await platform.get_order("B1001", "KM20261127001")).state == "processing"
    assert await outcome_rows(outcomes, "KM20261127001") == [("arrival_too_slow", "saved", "kept", "B1001")]


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("嗯", "affirm"),
        ("ok", "affirm"),
        ("不", "deny"),
        ("？？", "out_of_scope"),
        ("asdfgh", "nlu_fallback"),
    ],
)
async def test_no_affirmative_neutral_or_unclear_answer_to_an_offer_cancels(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient, text: str, intent: str
) -> None:
    """ "No path leads from an affirmative, neutral or unclear message to a cancellation" (issue 10)."""
    chat = new_chat()
    await cancel_until_offer(chat, actions_by_name, "KM20261127001", "arrival_too_slow")
    for _ in range(3):  # the buyer keeps answering the same way
        if chat.active_loop is None:
            break
        chat.say(text, intent)
        await chat.run(actions_by_name["validate_cancel_form"])
        slot = chat.slots["requested_slot"]
        if slot is not None:
            await chat.run(actions_by_name[f"action_ask_{slot}"])
    if chat.active_loop is None:
        await chat.run(actions_by_name["action_submit_cancel"])
    assert (await platform.get_order("B1001", "KM20261127001")).state == "processing"


async def test_a_no_to_the_offer_is_read_back_before_anything_is_cancelled(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    chat = new_chat("en")
    await cancel_until_offer(chat, actions_by_name, "KM20261127001", "wrong_account")
    chat.say("no", "deny")
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["requested_slot"] == "cancel_confirm"
    read_back = only(await chat.run(actions_by_name["action_ask_cancel_confirm"]))
    assert read_back["text"].startswith(
        "Please confirm: cancel order KM20261127001 (王者荣耀 点券 60, ¥6.00)?"
    )
    assert (await platform.get_order("B1001", "KM20261127001")).state == "processing"
    chat.press(button(read_back, "Yes, cancel it"))
    await chat.run(actions_by_name["validate_cancel_form"])
    await chat.run(actions_by_name["action_submit_cancel"])
    order = await platform.get_order("B1001", "KM20261127001")
    assert order.state == "cancelled"
    assert order.cancel is not None
    assert order.cancel.tag == "wrong_account"


@pytest.mark.parametrize(
    "reason", ["found_cheaper", "user_mistake", "duplicate_order", "unclear_description"]
)
async def test_one_tap_on_a_reason_does_not_cancel_a_paid_order(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient, reason: str
) -> None:
    """Issue 10: one tap on 别家更便宜 / 下错单了 / 重复下单 / 描述不清 cancelled a paid order with no read-back."""
    chat = new_chat()
    read_back = await cancel_until_offer(chat, actions_by_name, "KM20261127001", reason)
    assert chat.slots["requested_slot"] == "cancel_confirm"
    assert (
        read_back["text"]
        == "请确认：取消订单 KM20261127001（王者荣耀 点券 60，¥6.00）吗？取消后已付的 ¥6.00 原路退回。"
    )
    assert (await platform.get_order("B1001", "KM20261127001")).state == "processing"
    chat.say("算了 不取消了", "keep_order")
    await chat.run(actions_by_name["validate_cancel_form"])
    await chat.run(actions_by_name["action_submit_cancel"])
    assert (await platform.get_order("B1001", "KM20261127001")).state == "processing"


async def test_a_reason_in_the_opening_message_is_not_asked_again(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    """Issue 10: "KM… 等太久了 不想要了 取消" already says why; the bot asked "为什么要取消" anyway."""
    chat = new_chat()
    chat.say(
        "KM20261127001 等太久了 不想要了 取消",
        "cancel_order",
        entities=[*order_entity("KM20261127001"), {"entity": "cancel_reason", "value": "arrival_too_slow"}],
    )
    chat.activate("cancel_form")
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["cancel_reason"] == "arrival_too_slow"
    assert chat.slots["requested_slot"] == "cancel_decision"  # straight to the one offer


@pytest.mark.parametrize(
    ("entities", "intent", "tag"),
    [
        ([{"entity": "cancel_reason", "value": "found_cheaper"}], "inform", "found_cheaper"),
        ([{"entity": "cancel_reason", "value": "demand_changed"}], "inform", "demand_changed"),
        ([{"entity": "cancel_reason", "value": "duplicate_order"}], "inform", "duplicate_order"),
        (
            [{"entity": "cancel_reason", "value": "merchant_out_of_stock"}],
            "complain",
            "merchant_out_of_stock",
        ),
        ([], "out_of_scope", "other"),
    ],
    ids=["cheaper", "changed-mind", "duplicate", "out-of-stock", "none-found"],
)
async def test_a_typed_reason_takes_the_classifiers_tag(
    actions_by_name: Actions, new_chat: NewChat, entities: list[dict[str, str]], intent: str, tag: str
) -> None:
    """Issue 10: typed 别家便宜好几块 / 不想玩了 / 下了两单 became `other`; 商家说没货 became merchant_malicious."""
    chat = new_chat()
    await ask_why(chat, actions_by_name)
    chat.say("原因在这", intent, entities=entities)
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["cancel_reason"] == tag


# ---------------------------------------------------------------- every form can be left


@pytest.mark.parametrize(
    ("text", "intent"), [("算了不改了", "stop"), ("退出", "stop"), ("never mind", "stop")]
)
async def test_stop_inside_the_fix_form_ends_it_without_a_change(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient, text: str, intent: str
) -> None:
    """Issue 10: inside the fix form 算了不改了 / 退出 were refused as "not a valid phone number"."""
    chat = new_chat()
    await start_fix(chat, actions_by_name)
    chat.say(text, intent)
    assert await chat.run(actions_by_name["validate_fix_target_form"]) == []  # no "invalid account"
    assert chat.active_loop is None
    reply = only(await chat.run(actions_by_name["action_submit_fix"]))
    assert reply["text"] == "好的，已停下，订单 KM20261127001 没有任何改动。还有别的需要随时说～"
    assert (await platform.get_order("B1001", "KM20261127001")).recharge_target.account == "2876543210"
    assert chat.slots["flow_exit"] is None


async def test_a_bare_cancel_inside_the_fix_form_asks_which_is_meant(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    chat = new_chat()
    await start_fix(chat, actions_by_name)
    chat.say("取消", "cancel_order")
    assert await chat.run(actions_by_name["validate_fix_target_form"]) == []
    assert chat.slots["requested_slot"] == "account"
    question = only(await chat.run(actions_by_name["action_ask_account"]))
    assert question["text"] == "您是想取消订单 KM20261127001，还是不改了、保留订单？"
    assert [b["payload"] for b in question["buttons"]] == ["/cancel_order", "/stop"]


async def test_asking_for_a_person_inside_a_form_opens_a_ticket(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    """Issue 10: 我要转人工 inside the fix form was refused as an invalid account; inside the payment flow
    "I want to talk to a human" got payment tips."""
    chat = new_chat()
    await start_fix(chat, actions_by_name)
    chat.say("我要转人工", "human_handoff")
    await chat.run(actions_by_name["validate_fix_target_form"])
    assert chat.active_loop is None
    replies = await chat.run(actions_by_name["action_submit_fix"])
    assert replies[0]["text"].startswith("已为您转人工")
    assert len(await platform.list_escalations(buyer_id="B1001")) == 1

    payment = new_chat("en")
    payment.say("payment failed", "payment_problem")
    payment.activate("payment_form")
    await payment.run(actions_by_name["validate_payment_form"])
    payment.say("I want to talk to a human", "human_handoff")
    await payment.run(actions_by_name["validate_payment_form"])
    replies = await payment.run(actions_by_name["action_payment_guidance"])
    assert replies[0]["text"].startswith("A person is on the way")


async def test_another_flow_typed_inside_the_region_form_is_never_taken_as_the_region(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    """Issue 10: "我要取消订单 KM…" typed inside the region form became the new region."""
    chat = new_chat()
    await start_fix(chat, actions_by_name, "region")
    chat.say("我要取消订单 KM20261127001", "cancel_order", entities=order_entity("KM20261127001"))
    chat.slots["region"] = "我要取消订单 KM20261127001"  # what the from_text mapping takes
    await chat.run(actions_by_name["validate_fix_target_form"])
    assert chat.active_loop is None
    assert chat.slots["region"] is None
    await chat.run(actions_by_name["action_submit_fix"])
    followups = [e for e in chat.returned if e.get("event") == "followup"]
    assert followups == [{"event": "followup", "timestamp": None, "name": "cancel_form"}]
    assert (await platform.get_order("B1001", "KM20261127001")).recharge_target.region == "安卓QQ区"


async def test_a_question_in_the_middle_of_a_form_is_answered_and_the_form_goes_on(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    chat = new_chat()
    await start_fix(chat, actions_by_name)
    chat.say("还要多久到账啊", "arrival_time")
    answer = only(await chat.run(actions_by_name["validate_fix_target_form"]))
    assert answer["text"].startswith("KM20261127001: 承诺到账")
    assert chat.active_loop == "fix_target_form"
    assert chat.slots["requested_slot"] == "account"
    asked = only(await chat.run(actions_by_name["action_ask_account"]))
    assert asked["text"].startswith("请发送正确的游戏账号")


# ---------------------------------------------------------------- corrections


async def test_not_this_one_but_another_switches_the_order(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    """Issue 10: "不是这个 是KM20261127003" → "好的～还有什么可以帮您？"."""
    chat = new_chat()
    chat.say("我手滑把话费订单取消了 能恢复不", "restore_order", entities=order_entity("KM20261127004"))
    chat.activate("restore_form")
    reply = only(await chat.run(actions_by_name["validate_restore_form"]))
    assert "不是已取消的订单" in reply["text"]  # the wrong order: explained…
    chat.active_loop = "restore_form"  # …and the buyer corrects it at once
    chat.slots.update({"requested_slot": "restore_confirm", "order_problem": None})
    chat.say("不是这个 是KM20261127003", "deny", entities=order_entity("KM20261127003"))
    await chat.run(actions_by_name["validate_restore_form"])
    assert chat.slots["order_id"] == "KM20261127003"
    assert chat.slots["current_order_id"] == "KM20261127003"
    assert chat.slots["requested_slot"] == "restore_confirm"


@pytest.mark.parametrize("typed", ["km2026112700l", "KM2O26112700l", "KM2026112701"])
async def test_a_mistyped_order_id_is_matched_against_the_buyers_orders(
    actions_by_name: Actions, new_chat: NewChat, typed: str
) -> None:
    """Issue 10: "km2026112700l" → "「None」看起来不是订单号" (Python's None shown to a buyer)."""
    chat = new_chat()
    chat.say("取消订单", "cancel_order")
    chat.activate("cancel_form")
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["requested_slot"] == "order_id"
    chat.say(typed, "inform")
    (suggestion,) = await chat.run(actions_by_name["validate_cancel_form"])
    assert "None" not in suggestion["text"]
    assert "KM20261127001" in [b["title"] for b in suggestion["buttons"]]
    assert await chat.run(actions_by_name["action_ask_cancel_form_order_id"]) == []  # no second question
    chat.press(button(suggestion, "KM20261127001"))
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["order_id"] == "KM20261127001"


@pytest.mark.parametrize(
    ("text", "intent"),
    [("/order_status", "order_status"), ("我的订单呢", "order_status"), ("cancel", "cancel_order")],
)
async def test_the_forms_own_request_again_repeats_the_question_plainly(
    actions_by_name: Actions, new_chat: NewChat, text: str, intent: str
) -> None:
    """Asking again for what the form does ("/orders" while it lists the orders) is not "I didn't understand"."""
    form = "order_status_form" if intent == "order_status" else "cancel_form"
    chat = new_chat()
    chat.say(text, intent)
    chat.activate(form)
    await chat.run(actions_by_name[f"validate_{form}"])
    assert chat.slots["requested_slot"] == "order_id"
    chat.say(text, intent)
    assert await chat.run(actions_by_name[f"validate_{form}"]) == []
    assert chat.slots["requested_slot"] == "order_id" and chat.slots.get("flow_exit") is None
    ask = "action_ask_order_id" if form == "order_status_form" else f"action_ask_{form}_order_id"
    (question,) = await chat.run(actions_by_name[ask])
    assert "没太明白" not in question["text"] and question["buttons"], question


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_a_stop_to_why_is_a_stop_even_with_a_weak_reason_guess(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient, language: str
) -> None:
    """ "算了吧 不改了" / "forget it" answering "why?": the classifier guesses a reason at 0.4; the order stays."""
    chat = new_chat(language)
    await ask_why(chat, actions_by_name)
    chat.say("算了吧 不改了" if language == "zh" else "forget it", "stop", confidence=1.0)
    chat.latest_message["cancel_reason"] = {"value": "demand_changed", "confidence": 0.44}
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots.get("cancel_decision") == "keep" and chat.slots["requested_slot"] is None
    assert (await platform.get_order("B1001", "KM20261127001")).state == "processing"


async def test_a_general_question_asked_instead_of_why_is_answered_and_why_asked_again(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    """ "晚上充电信话费要多久啊" answering "why?" became the reason arrival_too_slow and the save offer."""
    chat = new_chat()
    await ask_why(chat, actions_by_name)
    chat.say(
        "晚上充电信话费要多久啊",
        "arrival_time",
        entities=[
            {"entity": "carrier", "value": "telecom"},
            {"entity": "time_of_day", "value": "night"},
            {"entity": "product_kind", "value": "phone_topup"},
        ],
    )
    (answer,) = await chat.run(actions_by_name["validate_cancel_form"])
    assert "电信" in answer["text"] and chat.slots.get("cancel_reason") is None
    assert chat.slots["requested_slot"] == "cancel_reason"


async def test_a_weak_other_gives_way_to_a_confident_reason_intent(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    """ "pay button doesn't work" (payment_problem 0.97, classifier "other" 0.38) was recorded as other."""
    chat = new_chat("en")
    chat.say("cancel KM20261127001", "cancel_order", entities=order_entity("KM20261127001"))
    chat.activate("cancel_form")
    await chat.run(actions_by_name["validate_cancel_form"])
    chat.say("pay button doesn't work", "payment_problem", confidence=0.97)
    chat.latest_message["cancel_reason"] = {"value": "other", "confidence": 0.38}
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["cancel_reason"] == "payment_problem"


async def test_an_order_id_answering_which_order_is_taken_whatever_the_intent(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    """ "KM20261127001～" (read as goodbye) ended the cancel form in silence."""
    chat = new_chat()
    chat.say("我想退单", "cancel_order")
    chat.activate("cancel_form")
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["requested_slot"] == "order_id"
    chat.say("KM20261127001～", "goodbye", entities=order_entity("KM20261127001"))
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["order_id"] == "KM20261127001" and chat.slots["requested_slot"] == "cancel_reason"


async def test_a_stop_before_an_order_is_chosen_says_so(actions_by_name: Actions, new_chat: NewChat) -> None:
    chat = new_chat()
    chat.say("我想退单", "cancel_order")
    chat.activate("cancel_form")
    await chat.run(actions_by_name["validate_cancel_form"])
    chat.say("算了", "stop", confidence=1.0)
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["flow_exit"] == "stop"
    (said,) = await chat.run(actions_by_name["action_submit_cancel"])
    assert said["text"]


@pytest.mark.parametrize("field", ["account", "region"])
async def test_a_no_to_the_new_value_ends_the_fix_form(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient, field: str
) -> None:
    """ "leave it" (deny) to "send the correct phone number" was "Sorry, I didn't quite get that"."""
    chat = new_chat("en")
    await start_fix(chat, actions_by_name, field)
    chat.say("leave it", "deny", confidence=0.95)
    await chat.run(actions_by_name["validate_fix_target_form"])
    assert chat.slots["flow_exit"] == "stop" and chat.slots["requested_slot"] is None
    assert (await platform.get_order("B1001", "KM20261127001")).recharge_target.account == "2876543210"


async def test_a_hesitant_cancel_reading_never_cancels(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    """ "还是不取消了…" (cancel_order 0.62, keep_order 0.37) answering "why?" skipped the read-back and cancelled."""
    chat = new_chat()
    await ask_why(chat, actions_by_name)
    chat.say(
        "还是不取消了…",
        "cancel_order",
        confidence=0.62,
        ranking=[("cancel_order", 0.62), ("keep_order", 0.37)],
    )
    await chat.run(actions_by_name["validate_cancel_form"])
    assert not chat.slots.get("cancel_insisted") and chat.slots["requested_slot"] == "cancel_confirm"
    chat.say(
        "还是不取消了…",
        "cancel_order",
        confidence=0.62,
        ranking=[("cancel_order", 0.62), ("keep_order", 0.37)],
    )
    await chat.run(actions_by_name["validate_cancel_form"])  # the read-back: a hesitant yes is not a yes
    assert chat.slots.get("cancel_confirm") is not True and chat.active_loop == "cancel_form"
    assert (await platform.get_order("B1001", "KM20261127001")).state == "processing"


async def test_declining_to_say_why_gets_the_reasons_as_buttons_once_then_other(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    """ "不方便说" to "why?" was "抱歉，我没太明白" three times in a row; "other" is among the buttons."""
    chat = new_chat()
    await ask_why(chat, actions_by_name)
    chat.say("不方便说", "deny", confidence=0.9)
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["requested_slot"] == "cancel_reason"
    hint, question = await chat.run(actions_by_name["action_ask_cancel_reason"])
    assert "其他原因" in hint["text"] and "没太明白" not in hint["text"]
    assert '/inform{"cancel_reason":"other"}' in [b["payload"] for b in question["buttons"]]
    chat.say("就是不想说", "deny", confidence=0.8)
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["cancel_reason"] == "other" and chat.slots["requested_slot"] == "cancel_confirm"
    assert (await platform.get_order("B1001", "KM20261127001")).state == "processing"


@pytest.mark.parametrize(
    ("text", "intent", "confidence", "reason", "tag"),
    [
        ("不想玩这个游戏了", "stop", 0.89, "demand_changed", "demand_changed"),  # a reason, not "stop here"
        ("私人原因", "bot_identity", 0.46, None, "other"),  # a weak misreading is not a digression
        ("家里的事", "order_status", 0.41, None, "other"),  # nor an "order status → too slow" guess
    ],
)
async def test_the_answer_to_why_is_the_reason_whatever_else_the_nlu_reads_into_it(
    actions_by_name: Actions,
    new_chat: NewChat,
    platform: PlatformClient,
    text: str,
    intent: str,
    confidence: float,
    reason: str | None,
    tag: str,
) -> None:
    """Simulated buyers were asked "why?" three times in a row, or had the order kept, for such answers."""
    chat = new_chat()
    await ask_why(chat, actions_by_name)
    assert chat.slots["requested_slot"] == "cancel_reason"
    chat.say(text, intent, confidence=confidence)
    if reason:  # the reason classifier's own parse field, as Rasa hands it to the actions
        chat.latest_message["cancel_reason"] = {"value": reason, "confidence": 0.89}
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["cancel_reason"] == tag
    assert chat.slots.get("flow_exit") is None and chat.slots.get("cancel_decision") != "keep"
    assert chat.slots["requested_slot"] == "cancel_confirm"  # the read-back, nothing cancelled yet
    assert (await platform.get_order("B1001", "KM20261127001")).state == "processing"


# ---------------------------------------------------------------- one key per action, honest confirmations


async def test_cancel_restore_cancel_again_really_cancels_and_says_so(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    """Issue 10/11: the second cancel of an order replayed the first key: "已为您取消…" while it stayed paid."""
    chat = new_chat()
    for round_ in range(2):
        chat.say("取消 KM20261127001", "cancel_order", entities=order_entity("KM20261127001"))
        chat.activate("cancel_form")
        await chat.run(actions_by_name["validate_cancel_form"])
        chat.press({"title": "x", "payload": '/inform{"cancel_reason":"found_cheaper"}'})
        await chat.run(actions_by_name["validate_cancel_form"])
        chat.press({"title": "确认取消", "payload": "/affirm"})
        await chat.run(actions_by_name["validate_cancel_form"])
        reply = only(await chat.run(actions_by_name["action_submit_cancel"]))
        assert reply["text"].startswith("已为您取消订单 KM20261127001"), round_
        assert (await platform.get_order("B1001", "KM20261127001")).state == "cancelled", round_
        if round_ == 0:
            chat.say("恢复 KM20261127001", "restore_order", entities=order_entity("KM20261127001"))
            chat.activate("restore_form")
            await chat.run(actions_by_name["validate_restore_form"])
            chat.press({"title": "确认恢复", "payload": "/affirm"})
            await chat.run(actions_by_name["validate_restore_form"])
            restored = only(await chat.run(actions_by_name["action_submit_restore"]))
            assert restored["text"].startswith("✅ 订单 KM20261127001 已恢复")
            assert (await platform.get_order("B1001", "KM20261127001")).state != "cancelled"


async def test_fixing_back_and_forth_reports_what_the_platform_holds(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    """Issue 11: after 2876543210 → 12345678 → 2876543210 → 12345678 the bot said "已修改「12345678」" while the
    platform still had 2876543210."""
    chat = new_chat()
    for account in ("12345678", "2876543210", "12345678"):
        await start_fix(chat, actions_by_name)
        chat.say(account, "inform", entities=[{"entity": "account", "value": account}])
        await chat.run(actions_by_name["validate_fix_target_form"])
        chat.press({"title": "确认修改", "payload": "/affirm"})
        await chat.run(actions_by_name["validate_fix_target_form"])
        reply = only(await chat.run(actions_by_name["action_submit_fix"]))
        held = (await platform.get_order("B1001", "KM20261127001")).recharge_target.account
        assert held == account
        assert f"「{account}」" in reply["text"]


# ---------------------------------------------------------------- handoff on the right signals


async def test_are_you_a_bot_gets_an_honest_answer_and_no_ticket(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    chat = new_chat()
    chat.say("你是机器人吗", "bot_identity")
    reply = only(await chat.run(actions_by_name["action_bot_identity"]))
    assert "机器人" in reply["text"]
    assert reply["buttons"] == [{"title": "转人工", "payload": "/human_handoff"}]
    assert await platform.list_escalations(buyer_id="B1001") == []


async def test_how_long_until_a_person_answers_comes_from_the_queue(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    chat = new_chat()
    chat.say("多久有人理我", "handoff_wait")
    reply = only(await chat.run(actions_by_name["action_handoff_wait"]))
    assert reply["text"].startswith("您目前没有等待人工的工单")  # not an order's arrival time
    chat.say("转人工", "human_handoff")
    await chat.run(actions_by_name["action_escalate"])
    (ticket,) = await platform.list_escalations(buyer_id="B1001")
    chat.say("多久有人理我", "handoff_wait")
    reply = only(await chat.run(actions_by_name["action_handoff_wait"]))
    assert reply["text"].startswith(f"您的工单 {ticket.escalation_id} 状态")
    assert "前面还有 0 个工单在排队" in reply["text"]


async def test_one_open_ticket_per_buyer_and_order(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    """Issue 10: 8 tickets in one conversation."""
    chat = new_chat(slots={"current_order_id": "KM20261127001"})
    for _ in range(3):
        chat.say("转人工", "human_handoff")
        await chat.run(actions_by_name["action_escalate"])
    assert len(await platform.list_escalations(buyer_id="B1001")) == 1


async def test_a_complaint_accusing_the_merchant_is_marked_for_platform_agents(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    """Issue 10: "这商家是骗子吧 退单" was handed to that same merchant."""
    chat = new_chat(slots={"current_order_id": "KM20261127001"})
    chat.say(
        "这商家是骗子吧 退单",
        "complain",
        entities=[{"entity": "cancel_reason", "value": "merchant_malicious"}],
    )
    await chat.run(actions_by_name["action_escalate"])
    (ticket,) = await platform.list_escalations(buyer_id="B1001")
    assert ticket.reason == "merchant_fault"


async def test_cancel_said_again_at_the_reason_question_is_read_back_when_typed(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    """Said twice, unambiguously (the second time with the button): the insistence must survive rasa_sdk's
    filtering of extracted slots. Typed, the second cancel gets the read-back (it may be a misread keep)."""
    chat = new_chat()
    chat.say("取消订单 KM20261127001", "cancel_order", entities=order_entity("KM20261127001"))
    chat.activate("cancel_form")
    await chat.run(actions_by_name["validate_cancel_form"])
    chat.say("别问了 就是要取消", "cancel_order", confidence=0.99)
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["requested_slot"] == "cancel_confirm" and not chat.slots.get("cancel_insisted")
    chat.say("/cancel_order", "cancel_order", confidence=1.0)
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots.get("cancel_confirm") is True
    assert chat.active_loop is None
    reply = only(await chat.run(actions_by_name["action_submit_cancel"]))
    assert reply["text"].startswith("已为您取消订单 KM20261127001（原因：其他原因）")
    assert (await platform.get_order("B1001", "KM20261127001")).state == "cancelled"


async def test_the_classifiers_reason_is_read_from_its_own_parse_field(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    """The reason classifier writes `cancel_reason` beside the entities (a whole-message span would overlap)."""
    chat = new_chat()
    chat.say("KM20261127001 别家便宜好几块 取消", "cancel_order", entities=order_entity("KM20261127001"))
    chat.latest_message["cancel_reason"] = {"value": "found_cheaper", "confidence": 0.8}
    chat.activate("cancel_form")
    await chat.run(actions_by_name["validate_cancel_form"])
    assert chat.slots["cancel_reason"] == "found_cheaper"
    assert chat.slots["requested_slot"] == "cancel_confirm"


async def test_the_wait_offer_on_a_late_order_states_the_late_refund_as_late(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    chat = new_chat()
    offer = await cancel_until_offer(chat, actions_by_name, "KM20261127004", "arrival_too_slow")
    assert "原定 11:25 前到账，现在已经晚了" in offer["text"]
    assert "预计" not in offer["text"]
    assert [b["payload"] for b in offer["buttons"]] == ["/keep_order", "/cancel_order", "/human_handoff"]
