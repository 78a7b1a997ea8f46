"""Handing over to a human (a platform ticket with the order and what was tried), and the clarifying question
that comes before it when the assistant did not understand."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from rasa_sdk import Action

from integrations.platform import PlatformClient
from integrations.storage.repositories import CancellationOutcomes
from sandbox.ratelimit import RateLimiter
from tests.actions.conftest import outcome_rows
from tests.actions.support import Chat, only

Actions = dict[str, Action]
NewChat = Callable[..., Chat]

FALLBACK_RANKING = [
    ("nlu_fallback", 0.7),
    ("wrong_account", 0.31),
    ("greet", 0.2),
    ("cancel_order", 0.12),
    ("refund_guarantee", 0.05),
    ("arrival_time", 0.02),
]


def not_understood(chat: Chat, text: str = "那个啥 就是那个") -> None:
    chat.say(text, "nlu_fallback", ranking=FALLBACK_RANKING, confidence=0.7)


@pytest.mark.parametrize(
    ("language", "expected", "who"),
    [
        (
            "zh",
            "已为您转人工（工单 {ticket}）。商家客服会在这个对话里直接回复您，一般 10 分钟内；期间您可以继续发送截图或补充说明。",
            "merchant",
        ),
        (
            "en",
            "A person is on the way (ticket {ticket}). The seller's support will reply right here, usually within 10 "
            "minutes; meanwhile you can send screenshots or details.",
            "merchant",
        ),
    ],
    ids=["zh", "en"],
)
async def test_a_human_request_about_an_order_opens_a_ticket_for_its_merchant(
    actions_by_name: Actions,
    new_chat: NewChat,
    platform: PlatformClient,
    language: str,
    expected: str,
    who: str,
) -> None:
    chat = new_chat(language, slots={"current_order_id": "KM20261127001"})
    chat.say("KM20261127001 查一下", "order_status")
    chat.say("转人工" if language == "zh" else "I want a human", "human_handoff")
    messages = await chat.run(actions_by_name["action_escalate"])

    tickets = await platform.list_escalations(buyer_id="B1001")
    assert len(tickets) == 1
    ticket = tickets[0]
    assert (ticket.order_id, ticket.merchant_id, ticket.reason, ticket.state) == (
        "KM20261127001",
        "M01",
        "human_request",
        "open",
    )
    # what the human who takes over gets to read
    assert "buyer [order_status]: KM20261127001 查一下" in ticket.summary
    assert ticket.summary.endswith(
        "buyer [human_handoff]: " + ("转人工" if language == "zh" else "I want a human")
    )

    assert len(messages) == 2
    assert messages[0]["text"] == expected.format(ticket=ticket.escalation_id)
    # a note for the bot's handoff relay, not shown to the buyer
    assert messages[1]["text"] is None
    assert messages[1]["custom"] == {
        "handoff": {"escalation_id": ticket.escalation_id, "order_id": "KM20261127001"}
    }


async def test_without_an_order_a_platform_agent_takes_it(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    chat = new_chat("en")
    chat.say("let me talk to someone", "human_handoff")
    messages = await chat.run(actions_by_name["action_escalate"])
    (ticket,) = await platform.list_escalations(buyer_id="B1001")
    assert (ticket.order_id, ticket.merchant_id) == (None, None)
    assert messages[0]["text"].startswith(
        f"A person is on the way (ticket {ticket.escalation_id}). A platform agent "
    )
    assert messages[1]["custom"] == {"handoff": {"escalation_id": ticket.escalation_id, "order_id": None}}


async def test_a_complaint_is_filed_as_one(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    chat = new_chat(slots={"current_order_id": "KM20261127004"})
    chat.say("你们这什么破平台 四十分钟了还没到 我要投诉", "complain")
    await chat.run(actions_by_name["action_escalate"])
    (ticket,) = await platform.list_escalations(buyer_id="B1001")
    assert (ticket.reason, ticket.order_id, ticket.merchant_id) == ("complaint", "KM20261127004", "M02")


async def test_the_same_message_redelivered_opens_one_ticket(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    chat = new_chat()
    chat.say("人工客服", "human_handoff")
    before = list(chat.events)
    first = await chat.run(actions_by_name["action_escalate"])
    chat.events = before  # the same call again (e.g. retried after a timeout): same tracker, same message
    second = await chat.run(actions_by_name["action_escalate"])
    (ticket,) = await platform.list_escalations(buyer_id="B1001")
    assert ticket.escalation_id in first[0]["text"]
    assert ticket.escalation_id in second[0]["text"]  # the same ticket, said to be in progress already


async def test_a_human_asked_for_in_the_middle_of_cancelling_records_an_escalated_outcome(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient, outcomes: CancellationOutcomes
) -> None:
    chat = new_chat(
        slots={
            "order_id": "KM20261127001",
            "cancel_reason": "arrival_too_slow",
            "requested_slot": "cancel_decision",
        }
    )
    chat.active_loop = "cancel_form"
    chat.say("别废话了 找个真人", "human_handoff")
    await chat.run(actions_by_name["action_escalate"])
    rows = await outcome_rows(outcomes, "KM20261127001")
    assert rows == [("arrival_too_slow", "escalated", "human", "B1001")]
    assert (await platform.get_order("B1001", "KM20261127001")).state == "processing"
    assert chat.returned_slots() == {
        "order_id": None,
        "order_problem": None,
        "cancel_reason": None,
        "cancel_decision": None,
        "escalation_reason": None,
        "current_order_id": "KM20261127001",
    }


async def test_a_plain_human_request_records_no_cancellation_outcome(
    actions_by_name: Actions, new_chat: NewChat, outcomes: CancellationOutcomes
) -> None:
    chat = new_chat(slots={"current_order_id": "KM20261127001"})
    chat.say("转人工", "human_handoff")
    await chat.run(actions_by_name["action_escalate"])
    assert await outcomes.for_order("KM20261127001") == []


async def test_two_misses_in_a_row_are_escalated_as_not_understood(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    chat = new_chat()
    not_understood(chat)
    await chat.run(actions_by_name["action_clarify"])
    not_understood(chat, "就是那个嘛 你懂的")
    await chat.run(actions_by_name["action_clarify"])
    chat.say("/human_handoff", "human_handoff")
    await chat.run(actions_by_name["action_escalate"])
    (ticket,) = await platform.list_escalations(buyer_id="B1001")
    assert ticket.reason == "not_understood"
    assert "bot: action_clarify" in ticket.summary


async def test_a_ticket_that_cannot_be_created_is_answered_politely(
    actions_by_name: Actions, new_chat: NewChat, sandbox: FastAPI, platform: PlatformClient
) -> None:
    # the platform lets two calls through (the buyer link, the order), then throttles the ticket itself
    sandbox.state.runtime.limiter = RateLimiter(0.001, 2)
    chat = new_chat(slots={"current_order_id": "KM20261127001"})
    chat.say("转人工", "human_handoff")
    reply = only(await chat.run(actions_by_name["action_escalate"]))
    assert (
        reply["text"] == "转人工暂时没有成功，我已记录您的问题，会尽快重试并通知您；也可以稍后再发送 /human。"
    )
    assert chat.returned == []
    sandbox.state.runtime.limiter = RateLimiter(0, 1)
    assert await platform.list_escalations(buyer_id="B1001") == []


# ---------------------------------------------------------------- clarify


@pytest.mark.parametrize(
    ("language", "text", "buttons"),
    [
        (
            "zh",
            "抱歉，我不太确定您的意思。您是想：",
            [
                ("改充值账号", "/wrong_account"),
                ("取消订单", "/cancel_order"),
                ("超时退款保障", "/refund_guarantee"),
                ("查订单进度", "/order_status"),
            ],
        ),
        (
            "en",
            "Sorry, I'm not sure what you mean. Did you want to:",
            [
                ("Fix the account", "/wrong_account"),
                ("Cancel an order", "/cancel_order"),
                ("Refund guarantee", "/refund_guarantee"),
                ("Check an order", "/order_status"),
            ],
        ),
    ],
    ids=["zh", "en"],
)
async def test_a_first_miss_asks_with_the_likeliest_intents_as_buttons(
    actions_by_name: Actions,
    new_chat: NewChat,
    platform: PlatformClient,
    language: str,
    text: str,
    buttons: list[tuple[str, str]],
) -> None:
    chat = new_chat(language)
    not_understood(chat)
    reply = only(await chat.run(actions_by_name["action_clarify"]))
    assert reply["text"] == text
    assert [(b["title"], b["payload"]) for b in reply["buttons"]] == buttons
    assert chat.returned == []
    assert await platform.list_escalations(buyer_id="B1001") == []


async def test_with_no_likely_intent_the_order_and_a_human_are_offered(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    chat = new_chat()
    chat.say("asdfgh", "nlu_fallback", ranking=[("nlu_fallback", 0.9), ("greet", 0.05)])
    reply = only(await chat.run(actions_by_name["action_clarify"]))
    assert [b["payload"] for b in reply["buttons"]] == ["/order_status", "/human_handoff"]


@pytest.mark.parametrize(
    ("language", "text", "titles"),
    [
        ("zh", "抱歉，我还是没理解 😥 要不要转人工客服帮您处理？", ["转人工", "我换个说法"]),
        (
            "en",
            "Sorry, I still don't understand 😥 Shall I get a person to help you?",
            ["Talk to a person", "I'll rephrase"],
        ),
    ],
    ids=["zh", "en"],
)
async def test_a_second_miss_in_a_row_offers_a_human(
    actions_by_name: Actions, new_chat: NewChat, language: str, text: str, titles: list[str]
) -> None:
    chat = new_chat(language)
    not_understood(chat)
    await chat.run(actions_by_name["action_clarify"])
    not_understood(chat, "嗯嗯就是那个")
    reply = only(await chat.run(actions_by_name["action_clarify"]))
    assert reply["text"] == text
    assert [b["title"] for b in reply["buttons"]] == titles
    assert [b["payload"] for b in reply["buttons"]] == ["/human_handoff", "/deny"]


async def test_an_understood_message_between_misses_starts_the_count_again(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    chat = new_chat()
    not_understood(chat)
    await chat.run(actions_by_name["action_clarify"])
    chat.say("KM20261127001 到哪了", "order_status")
    not_understood(chat)
    reply = only(await chat.run(actions_by_name["action_clarify"]))
    assert reply["text"] == "抱歉，我不太确定您的意思。您是想："


# ---------------------------------------------------------------- out of scope


@pytest.mark.parametrize(
    ("language", "first", "second"),
    [
        ("zh", "这个我帮不上忙哦", "看来我没能帮到您"),
        ("en", "I can't help with that, sorry", "Looks like I couldn't help"),
    ],
    ids=["zh", "en"],
)
async def test_out_of_scope_says_what_the_bot_does_and_the_second_in_a_row_offers_a_human(
    actions_by_name: Actions, new_chat: NewChat, language: str, first: str, second: str
) -> None:
    chat = new_chat(language)
    chat.say("今天天气怎么样", "out_of_scope")
    reply = only(await chat.run(actions_by_name["action_out_of_scope"]))
    assert reply["text"].startswith(first)
    assert [b["payload"] for b in reply["buttons"]] == ["/order_status"]
    chat.say("讲个笑话", "out_of_scope")
    reply = only(await chat.run(actions_by_name["action_out_of_scope"]))
    assert reply["text"].startswith(second)
    assert [b["payload"] for b in reply["buttons"]] == ["/order_status", "/human_handoff"]
    assert chat.returned == []


async def test_a_miss_of_either_kind_counts_towards_the_human_offer(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    chat = new_chat()
    chat.say("讲个笑话", "out_of_scope")
    await chat.run(actions_by_name["action_out_of_scope"])
    not_understood(chat)
    reply = only(await chat.run(actions_by_name["action_clarify"]))
    assert reply["text"] == "抱歉，我还是没理解 😥 要不要转人工客服帮您处理？"


async def test_an_understood_message_resets_the_out_of_scope_count(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    chat = new_chat()
    chat.say("讲个笑话", "out_of_scope")
    await chat.run(actions_by_name["action_out_of_scope"])
    chat.say("谢谢", "thank")
    chat.say("今天天气怎么样", "out_of_scope")
    reply = only(await chat.run(actions_by_name["action_out_of_scope"]))
    assert [b["payload"] for b in reply["buttons"]] == ["/order_status"]


async def test_a_human_asked_for_after_out_of_scope_answers_is_escalated_as_not_understood(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient
) -> None:
    chat = new_chat()
    chat.say("讲个笑话", "out_of_scope")
    await chat.run(actions_by_name["action_out_of_scope"])
    chat.say("今天天气怎么样", "out_of_scope")
    await chat.run(actions_by_name["action_out_of_scope"])
    chat.press({"title": "转人工", "payload": "/human_handoff"})
    await chat.run(actions_by_name["action_escalate"])
    (ticket,) = await platform.list_escalations(buyer_id="B1001")
    assert ticket.reason == "not_understood"
