"""Answers without a form: arrival times, the refund guarantee, the merchant's rating, payment guidance."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from rasa_sdk import Action

from integrations.platform import PlatformClient
from sandbox.testing import SandboxAdmin
from tests.actions.conftest import DAY, NIGHT, Clock
from tests.actions.support import UNLINKED_TG, Chat, only, slot_event

Actions = dict[str, Action]
NewChat = Callable[..., Chat]

SLA_DAY = {
    "zh": "各类商品的承诺到账时间（以平台规则为准）：\n"
    "• 游戏点卡：白天 5 分钟，夜间 23:00–07:00 5 分钟\n"
    "• 会员：白天 30 分钟，夜间 23:00–07:00 30 分钟\n"
    "• 话费充值：白天 10 分钟，夜间 23:00–07:00 30 分钟\n"
    "• 话费充值（中国电信）：白天 15 分钟，夜间 23:00–07:00 45 分钟\n"
    "• 话费充值（中国移动）：白天 10 分钟，夜间 23:00–07:00 30 分钟\n"
    "• 话费充值（中国联通）：白天 10 分钟，夜间 23:00–07:00 30 分钟\n"
    "超过承诺时间未到账的订单，系统自动全额退款，原路退回。",
    "en": "Promised arrival times by product (the platform's rules):\n"
    "• game card: daytime 5 min, at night (23:00-07:00) 5 min\n"
    "• membership: daytime 30 min, at night (23:00-07:00) 30 min\n"
    "• phone top-up: daytime 10 min, at night (23:00-07:00) 30 min\n"
    "• phone top-up (China Telecom): daytime 15 min, at night (23:00-07:00) 45 min\n"
    "• phone top-up (China Mobile): daytime 10 min, at night (23:00-07:00) 30 min\n"
    "• phone top-up (China Unicom): daytime 10 min, at night (23:00-07:00) 30 min\n"
    "An order that misses its promised time is refunded in full automatically.",
}
# at night the night figures come first
SLA_NIGHT_ZH = (
    "各类商品的承诺到账时间（以平台规则为准）：\n"
    "• 游戏点卡：夜间 23:00–07:00 5 分钟，白天 5 分钟\n"
    "• 会员：夜间 23:00–07:00 30 分钟，白天 30 分钟\n"
    "• 话费充值：夜间 23:00–07:00 30 分钟，白天 10 分钟\n"
    "• 话费充值（中国电信）：夜间 23:00–07:00 45 分钟，白天 15 分钟\n"
    "• 话费充值（中国移动）：夜间 23:00–07:00 30 分钟，白天 10 分钟\n"
    "• 话费充值（中国联通）：夜间 23:00–07:00 30 分钟，白天 10 分钟\n"
    "超过承诺时间未到账的订单，系统自动全额退款，原路退回。"
)
GUARANTEE_TERMS = {
    "zh": "超时全额退款保障：订单未在承诺时间内到账，系统自动全额退款，原路退回，无需申请。"
    "余额/支付宝/微信一般几分钟内到账，银行卡 1-3 个工作日。",
    "en": "Full-refund guarantee: if an order is not delivered by its promised time, the whole amount is "
    "refunded automatically to the original payment method - no request needed. Wallets get it within "
    "minutes, bank cards in 1-3 working days.",
}
TARGETS = {
    "WZRY-60": ("2876543210", "安卓QQ区"),
    "TXSP-VIP-M": ("13912345678", "中国大陆"),
    "CM-100": ("13800138000", "广东移动"),
    "CT-50": ("13312345678", "上海电信"),
}


async def new_order(admin: SandboxAdmin, sku: str, **fields: object) -> str:
    account, region = TARGETS[sku]
    fields = {"state": "processing", **fields}
    created = await admin.create_order(buyer_id="B1001", sku=sku, account=account, region=region, **fields)
    return str(created["order_id"])


# ---------------------------------------------------------------- arrival time


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_arrival_times_by_kind_and_carrier_in_the_day(
    actions_by_name: Actions, new_chat: NewChat, language: str
) -> None:
    chat = new_chat(language)
    chat.say("多久能到账" if language == "zh" else "how long does it take", "arrival_time")
    reply = only(await chat.run(actions_by_name["action_arrival_time"]))
    assert reply["text"] == SLA_DAY[language]
    title = "超时退款保障" if language == "zh" else "Refund guarantee"
    assert reply["buttons"] == [{"title": title, "payload": "/refund_guarantee"}]
    assert chat.returned == []


async def test_at_night_phone_top_ups_promise_longer(
    actions_by_name: Actions, new_chat: NewChat, clock: Clock
) -> None:
    await clock.reset(NIGHT)
    chat = new_chat()
    chat.say("半夜充话费要多久", "arrival_time")
    assert only(await chat.run(actions_by_name["action_arrival_time"]))["text"] == SLA_NIGHT_ZH


@pytest.mark.parametrize(
    ("text", "entities", "expected"),
    [
        (
            "晚上充电信话费要多久啊",
            [("carrier", "telecom"), ("time_of_day", "night"), ("product_kind", "phone_topup")],
            "承诺到账时间（以平台规则为准）：\n• 话费充值（中国电信）：夜间 23:00–07:00 45 分钟，白天 15 分钟\n"
            "超过承诺时间未到账的订单，系统自动全额退款，原路退回。",
        ),
        (
            "会员一般多久开通",
            [("product_kind", "membership")],
            "承诺到账时间（以平台规则为准）：\n• 会员：白天 30 分钟，夜间 23:00–07:00 30 分钟\n"
            "超过承诺时间未到账的订单，系统自动全额退款，原路退回。",
        ),
    ],
    ids=["telecom-at-night", "memberships"],
)
async def test_a_general_question_is_answered_from_the_promise_table_not_about_the_last_order(
    actions_by_name: Actions, new_chat: NewChat, text: str, entities: list[tuple[str, str]], expected: str
) -> None:
    """Issue 10: "晚上充电信话费要多久啊" was answered with the overdue status of the last discussed order."""
    chat = new_chat(slots={"current_order_id": "KM20261127001"})
    chat.say(text, "arrival_time", entities=[{"entity": name, "value": value} for name, value in entities])
    assert only(await chat.run(actions_by_name["action_arrival_time"]))["text"] == expected


async def test_an_unlinked_buyer_still_gets_the_general_answer(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    chat = new_chat("en", telegram_user_id=UNLINKED_TG, slots={"current_order_id": "KM20261127001"})
    chat.say("when will KM20261127001 arrive", "arrival_time")
    assert only(await chat.run(actions_by_name["action_arrival_time"]))["text"] == SLA_DAY["en"]


@pytest.mark.parametrize(
    ("at", "sku", "by", "minutes", "kind_zh"),
    [
        (DAY, "WZRY-60", "12:05", 5, "游戏点卡"),
        (DAY, "TXSP-VIP-M", "12:30", 30, "会员"),
        (DAY, "CM-100", "12:10", 10, "话费充值"),
        (DAY, "CT-50", "12:15", 15, "话费充值"),
        (NIGHT, "WZRY-60", "01:35", 5, "游戏点卡"),
        (NIGHT, "CM-100", "02:00", 30, "话费充值"),
        (NIGHT, "CT-50", "02:15", 45, "话费充值"),
    ],
    ids=[
        "game-day",
        "membership-day",
        "mobile-day",
        "telecom-day",
        "game-night",
        "mobile-night",
        "telecom-night",
    ],
)
async def test_the_arrival_time_of_an_order_follows_its_kind_carrier_and_hour(
    actions_by_name: Actions,
    new_chat: NewChat,
    admin: SandboxAdmin,
    clock: Clock,
    at: datetime,
    sku: str,
    by: str,
    minutes: int,
    kind_zh: str,
) -> None:
    if at != DAY:
        await clock.reset(at)
    order_id = await new_order(admin, sku)
    chat = new_chat(slots={"current_order_id": order_id})
    chat.say("多久到账", "arrival_time")
    reply = only(await chat.run(actions_by_name["action_arrival_time"]))
    assert reply["text"] == (
        f"{order_id}: 承诺到账：{by} 前（{kind_zh} {minutes} 分钟内），还剩约 {minutes} 分钟。\n"
        "超过承诺时间未到账的订单，系统自动全额退款，原路退回。"
    )
    assert reply["buttons"] == [{"title": "转人工", "payload": "/human_handoff"}]
    assert chat.returned_slots()["current_order_id"] == order_id


async def test_an_order_id_in_the_message_wins_over_the_context(
    actions_by_name: Actions, new_chat: NewChat, admin: SandboxAdmin, clock: Clock
) -> None:
    await clock.reset(NIGHT)
    order_id = await new_order(admin, "CT-50")
    chat = new_chat("en", slots={"current_order_id": "KM20261127001"})
    chat.say(f"{order_id} when??", "arrival_time", entities=[{"entity": "order_id", "value": order_id}])
    reply = only(await chat.run(actions_by_name["action_arrival_time"]))
    assert reply["text"] == (
        f"{order_id}: Promised by 02:15 (phone top-up: within 45 min), about 45 min left.\n"
        "An order that misses its promised time is refunded in full automatically."
    )


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("zh", "KM20261127005: 付款后开始处理。\n超过承诺时间未到账的订单，系统自动全额退款，原路退回。"),
        (
            "en",
            "KM20261127005: Processing starts once it is paid.\nAn order that misses its promised time is refunded in full automatically.",
        ),
    ],
    ids=["zh", "en"],
)
async def test_an_unpaid_order_says_the_clock_starts_at_payment(
    actions_by_name: Actions, new_chat: NewChat, language: str, expected: str
) -> None:
    chat = new_chat(language, slots={"current_order_id": "KM20261127005"})
    chat.say("多久到账", "arrival_time")
    assert only(await chat.run(actions_by_name["action_arrival_time"]))["text"] == expected


async def test_an_overdue_order_gets_the_guarantee_with_its_arrival_time(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    chat = new_chat(slots={"current_order_id": "KM20261127004"})
    chat.say("怎么还没到", "arrival_time")
    reply, ticket, _ = await chat.run(actions_by_name["action_arrival_time"])
    # the refund was due at 11:25 and it is 12:00: said to be late (not "预计 11:25 前到账"), and escalated
    assert reply["text"] == (
        "KM20261127004: 承诺到账：11:20 前（话费充值 10 分钟内），已超时 40 分钟。\n"
        "订单 KM20261127004 的超时退款原定 11:25 前到账，现在已经晚了，这不应该发生。我已为您转人工跟进，¥49.80 的退款会优先处理。"
    )
    assert ticket["text"].startswith("已为您转人工")


async def test_a_refund_not_yet_due_is_stated_with_its_due_time(
    actions_by_name: Actions, new_chat: NewChat, clock: Clock
) -> None:
    clock.advance(-38 * 60)  # 11:22 in Shanghai: the refund is due at 11:25
    chat = new_chat(slots={"current_order_id": "KM20261127004"})
    chat.say("怎么还没到", "arrival_time")
    reply = only(await chat.run(actions_by_name["action_arrival_time"]))
    assert "预计 11:25 前到账" in reply["text"]


async def test_a_delivered_order_says_when_it_arrived(actions_by_name: Actions, new_chat: NewChat) -> None:
    chat = new_chat("en", slots={"current_order_id": "KM20261127002"})
    chat.say("when does it arrive", "arrival_time")
    assert only(await chat.run(actions_by_name["action_arrival_time"]))["text"] == (
        "KM20261127002: Delivered at Nov 24 12:13."
    )


# ---------------------------------------------------------------- refund guarantee


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "zh",
            "按全额退款保障，超时未到账将自动全额退款 ¥6.00，预计 12:03 前到账，无需申请。您也可以继续等待到账。",
        ),
        (
            "en",
            "Under the full-refund guarantee, ¥6.00 is refunded automatically, expected by 12:03; no request needed.",
        ),
    ],
    ids=["zh", "en"],
)
async def test_an_overdue_order_is_refunded_in_full_automatically(
    actions_by_name: Actions, new_chat: NewChat, admin: SandboxAdmin, language: str, expected: str
) -> None:
    # a game card paid 7 minutes ago: promised within 5, now 2 minutes late
    order_id = await new_order(admin, "WZRY-60", paid_at=DAY - timedelta(minutes=7), outcome="stall")
    chat = new_chat(language, slots={"current_order_id": order_id})
    chat.say(
        "超时了能退款吗" if language == "zh" else "it's late, do I get my money back?", "refund_guarantee"
    )
    reply = only(await chat.run(actions_by_name["action_refund_guarantee"]))
    assert reply["text"] == expected
    assert chat.returned == [
        slot_event("order_id", None),
        slot_event("order_problem", None),
        slot_event("current_order_id", order_id),
    ]


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "zh",
            "订单 KM20261127001 还在承诺时间内（12:03 前到账），暂不触发退款；如果到 12:03 仍未到账，会自动全额退款 ¥6.00，无需申请。",
        ),
        (
            "en",
            "Order KM20261127001 is still within its promised time (due by 12:03); if it is not delivered by then, ¥6.00 is refunded automatically - no request needed.",
        ),
    ],
    ids=["zh", "en"],
)
async def test_an_order_within_its_promise_is_told_when_the_guarantee_starts(
    actions_by_name: Actions, new_chat: NewChat, language: str, expected: str
) -> None:
    chat = new_chat(language, slots={"current_order_id": "KM20261127001"})
    chat.say("会退款吗", "refund_guarantee")
    assert only(await chat.run(actions_by_name["action_refund_guarantee"]))["text"] == expected


async def test_a_refund_already_issued_by_the_guarantee_is_reported(
    actions_by_name: Actions,
    new_chat: NewChat,
    admin: SandboxAdmin,
    platform: PlatformClient,
    clock: Clock,
) -> None:
    order_id = await new_order(admin, "WZRY-60", outcome="stall")
    clock.advance(6 * 60)  # past the 5-minute promise: the platform refunds it
    await admin.tick()
    assert (await platform.get_order("B1001", order_id)).state == "refunded"
    chat = new_chat(slots={"current_order_id": order_id})
    chat.say("退款了吗", "refund_guarantee")
    reply = only(await chat.run(actions_by_name["action_refund_guarantee"]))
    assert reply["text"] == "超时全额退款 ¥6.00 已于 12:05 原路退回。"


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("context", [None, "KM20261127002"], ids=["no-order", "delivered-order"])
async def test_without_an_order_on_its_way_the_terms_are_explained(
    actions_by_name: Actions, new_chat: NewChat, language: str, context: str | None
) -> None:
    chat = new_chat(language, slots={"current_order_id": context})
    chat.say("超时退款怎么算", "refund_guarantee")
    assert (
        only(await chat.run(actions_by_name["action_refund_guarantee"]))["text"] == GUARANTEE_TERMS[language]
    )
    assert chat.returned == []


# ---------------------------------------------------------------- merchant rating


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "zh",
            "订单 KM20261127001 的商家「星辰游戏点卡」近 30 天履约情况（17 单）：取消率 0%，到账时间中位数 8 分钟，"
            "响应速度中位数 2 分钟，综合评级 A。整体很靠谱 👍",
        ),
        (
            "en",
            "Seller '星辰游戏点卡' of order KM20261127001, last 30 days (17 orders): cancel rate 0%, median arrival "
            "8 min, median response 2 min, grade A. A reliable seller 👍",
        ),
    ],
    ids=["zh", "en"],
)
async def test_a_good_merchant_is_rated_in_words_through_the_form(
    actions_by_name: Actions, new_chat: NewChat, language: str, expected: str
) -> None:
    chat = new_chat(language, slots={"current_order_id": "KM20261127001"})
    chat.say("这家店靠谱吗", "merchant_rating")
    chat.activate("merchant_rating_form")
    assert await chat.run(actions_by_name["validate_merchant_rating_form"]) == []
    assert chat.slots["order_id"] == "KM20261127001"  # the order in context, without asking
    assert chat.active_loop is None
    reply = only(await chat.run(actions_by_name["action_merchant_rating"]))
    assert reply["text"] == expected
    assert chat.returned_slots() == {
        "order_id": None,
        "order_problem": None,
        "current_order_id": "KM20261127001",
    }


async def test_a_fair_merchant_is_called_average(actions_by_name: Actions, new_chat: NewChat) -> None:
    chat = new_chat(slots={"order_id": "KM20261127004"})
    chat.say("这个商家怎么样", "merchant_rating")
    assert only(await chat.run(actions_by_name["action_merchant_rating"]))["text"] == (
        "订单 KM20261127004 的商家「极速话费充值」近 30 天履约情况（13 单）：取消率 15%，到账时间中位数 23 分钟，"
        "响应速度中位数 5 分钟，综合评级 C。表现中等，有问题可以随时找我。"
    )


async def test_a_slow_merchant_is_called_weak_and_the_guarantee_is_recalled(
    actions_by_name: Actions, new_chat: NewChat, admin: SandboxAdmin
) -> None:
    await admin.create_merchant("M09", "慢吞吞小店")
    await admin.upsert_product(
        sku="SLOW-60", kind="game_card", name="慢慢 点券 60", merchant_id="M09", price="6.00"
    )
    order_id = str(
        (
            await admin.create_order(
                buyer_id="B1001",
                sku="SLOW-60",
                account="2876543210",
                region="安卓QQ区",
                state="delivered",
                paid_at=DAY - timedelta(hours=3),
                response_seconds=20 * 60,
                fulfil_seconds=90 * 60,
            )
        )["order_id"]
    )
    chat = new_chat("en", slots={"order_id": order_id})
    chat.say("is this seller legit", "merchant_rating")
    assert only(await chat.run(actions_by_name["action_merchant_rating"]))["text"] == (
        f"Seller '慢吞吞小店' of order {order_id}, last 30 days (1 orders): cancel rate 0%, median arrival "
        "110 min, median response 20 min, grade D. Below average; your order is still covered by the "
        "full-refund guarantee."
    )


async def test_a_merchant_without_paid_orders_has_no_data(
    actions_by_name: Actions, new_chat: NewChat, admin: SandboxAdmin
) -> None:
    await admin.create_merchant("M08", "新开小店")
    await admin.upsert_product(
        sku="NEW-60", kind="game_card", name="新店 点券 60", merchant_id="M08", price="6.00"
    )
    order_id = str(
        (
            await admin.create_order(
                buyer_id="B1001",
                sku="NEW-60",
                account="2876543210",
                region="安卓QQ区",
                state="pending_payment",
            )
        )["order_id"]
    )
    chat = new_chat(slots={"order_id": order_id})
    chat.say("这家新店靠谱吗", "merchant_rating")
    text = only(await chat.run(actions_by_name["action_merchant_rating"]))["text"]
    assert "（0 单）" in text
    assert "到账时间中位数 暂无数据，响应速度中位数 暂无数据，综合评级 暂无数据" in text


# ---------------------------------------------------------------- payment guidance

PAYMENT_CASES = [
    (
        "余额不足",
        "zh",
        "balance",
        "余额不足时订单会保留 15 分钟：充值余额或换用支付宝/微信/银行卡后，在「我的订单」里点「继续支付」即可，不用重新下单。",
    ),
    (
        "SMS code late",
        "en",
        "sms_code",
        "SMS codes usually arrive within a minute: check the phone number and your spam folder, request a new "
        "one after 60 s, or pay another way.",
    ),
    (
        "支付页面报错",
        "zh",
        "gateway",
        "支付页面报错多是通道临时波动：请稍等 1-2 分钟重试，或换一种支付方式。只要没扣款就不会有损失；"
        "如果已经扣款，请不要重复付款，等平台确认后订单会自动继续，没确认的话点下面转人工核实。",
    ),
    (
        "Payment page error",
        "en",
        "gateway",
        "A payment-page error is usually a brief gateway hiccup: retry in 1-2 minutes or use another method. "
        "Nothing is lost if you were not charged; if you were, do not pay again - the order continues once the "
        "platform confirms the payment, and a person can check it if it does not.",
    ),
    (
        "付不了款啊啊啊",
        "zh",
        "other",
        "付款问题我记下了。常见情况：余额不足可充值后继续支付；验证码延迟请 60 秒后重新获取；支付页报错请换一种方式；"
        "已扣款但订单没更新时不要重复付款，等平台确认。没解决的话点下面转人工。",
    ),
]


@pytest.mark.parametrize(
    ("answer", "language", "issue", "expected"), PAYMENT_CASES, ids=[c[2] + "-" + c[1] for c in PAYMENT_CASES]
)
async def test_payment_guidance_follows_the_issue(
    actions_by_name: Actions, new_chat: NewChat, answer: str, language: str, issue: str, expected: str
) -> None:
    chat = new_chat(language)
    chat.say("付款出问题了" if language == "zh" else "payment failed", "payment_problem")
    chat.activate("payment_form")
    await chat.run(actions_by_name["validate_payment_form"])
    assert chat.slots["requested_slot"] == "payment_issue"
    ask = only(await chat.run(actions_by_name["action_ask_payment_issue"]))
    assert len(ask["buttons"]) == 4

    chat.say(answer, "payment_problem")
    await chat.run(actions_by_name["validate_payment_form"])
    assert chat.slots["payment_issue"] == issue
    assert chat.active_loop is None

    reply = only(await chat.run(actions_by_name["action_payment_guidance"]))
    assert reply["text"] == expected
    human = "转人工" if language == "zh" else "Talk to a person"
    assert reply["buttons"] == [{"title": human, "payload": "/human_handoff"}]
    assert chat.returned == [slot_event("payment_issue", None)]


@pytest.mark.parametrize(
    ("language", "context", "note"),
    [
        ("zh", "KM20261127007", "（KM20261127007）"),
        ("en", "KM20261127007", "(KM20261127007)"),
        ("zh", None, ""),
    ],
    ids=["zh-order", "en-order", "zh-no-order"],
)
async def test_charged_without_an_order_names_the_order_in_context(
    actions_by_name: Actions, new_chat: NewChat, language: str, context: str | None, note: str
) -> None:
    chat = new_chat(language, slots={"current_order_id": context, "payment_issue": "charged_no_order"})
    chat.say("扣款了但没订单" if language == "zh" else "Charged, no order", "payment_problem")
    text = only(await chat.run(actions_by_name["action_payment_guidance"]))["text"]
    if language == "zh":
        assert text.startswith("扣款成功但订单没更新，一般是支付通知延迟：请不要重复付款")
    else:
        assert text.startswith("Charged but the order did not update: the payment notice is delayed.")
    assert text.endswith(note or "客服会核实这笔扣款。")
    assert "5 分钟" not in text and "5 minutes" not in text  # no rule the platform does not state
