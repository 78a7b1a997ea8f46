"""When the platform fails (unreachable, throttling, a buyer who never linked Telegram) every action answers
politely and none raises: a raised exception would leave the buyer without any reply."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import cast

import httpx
import pytest
from fastapi import FastAPI
from rasa_sdk import Action

from actions.base import ActionDeps
from integrations.platform import PlatformClient
from integrations.storage.db import make_engine, make_sessionmaker
from integrations.storage.repositories import CancellationOutcomes
from sandbox.ratelimit import RateLimiter
from tests.actions.conftest import API_KEY, build
from tests.actions.support import BUYER_TG, UNLINKED_TG, Chat, only

Actions = dict[str, Action]
NewChat = Callable[..., Chat]

NOT_LINKED = {
    "zh": "您的 Telegram 还没有绑定平台账号，暂时无法查看订单。请在平台「我的-客服」页面点击「绑定 Telegram」链接完成绑定，"
    "然后再来问我。一般问题（到账时间、退款保障）现在就可以问。",
    "en": "Your Telegram is not linked to a platform account yet, so I cannot see your orders. Open 'My account → "
    "Support → Link Telegram' on the platform, then come back. General questions (arrival times, refund "
    "guarantee) work right away.",
}
DOWN = {
    "zh": "订单系统暂时无法访问，请稍后再试；着急的话可以发送 /human 转人工。",
    "en": "The order system is unreachable right now. Please try again shortly, or send /human for a person.",
}
BUSY = {
    "zh": "查询太频繁了，请稍等片刻再试。",
    "en": "Too many requests right now - please wait a moment and try again.",
}

# Actions that answer without the platform (questions whose buttons need no lookup, the clarifying question).
PLATFORM_FREE = {
    "action_ask_cancel_reason",
    "action_ask_fix_field",
    "action_ask_payment_issue",
    "action_bot_identity",
    "action_clarify",
    "action_out_of_scope",
    "action_validate_slot_mappings",
    "validate_payment_form",
}
# General answers an unlinked buyer still gets (DESIGN: arrival times and the guarantee need no account).
GENERAL = {"action_arrival_time", "action_refund_guarantee", "action_payment_guidance"}

EVERY_SLOT = {
    "order_id": "KM20261127001",
    "current_order_id": "KM20261127001",
    "cancel_reason": "wrong_account",
    "cancel_decision": "cancel",
    "fix_field": "account",
    "account": "3344556677",
    "fix_confirm": True,
    "restore_confirm": True,
    "payment_issue": "charged_no_order",
}


@pytest.fixture
async def unreachable(closed_port: int) -> AsyncIterator[PlatformClient]:
    async with PlatformClient(f"http://127.0.0.1:{closed_port}", API_KEY, retries=1, backoff=0) as client:
        yield client


def mid_flow_chat(new_chat: NewChat, action: str, language: str, telegram_user_id: int | None) -> Chat:
    """A conversation deep in a flow (every slot filled) whose latest message names an order."""
    chat = new_chat(language, slots=dict(EVERY_SLOT), telegram_user_id=telegram_user_id)
    if action.startswith("validate_") and action.endswith("_form"):
        chat.active_loop = action.removeprefix("validate_")
    chat.say("KM20261127001 帮我看看", "inform", entities=[{"entity": "order_id", "value": "KM20261127001"}])
    return chat


def assert_polite(chat: Chat, name: str, messages: list[dict[str, object]], expected: set[str]) -> None:
    if name in PLATFORM_FREE:  # answered as usual: nothing to look up
        assert all(m["text"] not in expected for m in messages), (name, messages)
        return
    assert [m["text"] for m in messages if m["text"] in expected], (name, messages)
    if name.startswith("validate_"):
        # the form ends instead of asking questions it cannot check
        assert chat.slots["order_problem"] in ("platform_down", "not_linked"), name
        assert chat.active_loop is None, name


ACTION_NAMES = sorted(build(ActionDeps(platform=cast(PlatformClient, None))))  # names only: nothing runs


@pytest.mark.parametrize("name", ACTION_NAMES)
async def test_an_unreachable_platform_gets_a_polite_reply_from_every_action(
    new_chat: NewChat, unreachable: PlatformClient, outcomes: CancellationOutcomes, name: str
) -> None:
    action = build(ActionDeps(platform=unreachable, outcomes=outcomes))[name]
    chat = mid_flow_chat(new_chat, name, "zh", BUYER_TG)
    messages = await chat.run(action)
    assert_polite(chat, name, messages, {DOWN["zh"]})


@pytest.mark.parametrize("name", ACTION_NAMES)
async def test_a_throttling_platform_gets_a_polite_reply_from_every_action(
    new_chat: NewChat, actions_by_name: Actions, sandbox: FastAPI, name: str
) -> None:
    # one request goes through (the buyer link), every later one is refused with Retry-After of minutes
    sandbox.state.runtime.limiter = RateLimiter(0.001, 1)
    chat = mid_flow_chat(new_chat, name, "en", BUYER_TG)
    messages = await chat.run(actions_by_name[name])
    assert_polite(chat, name, messages, {BUSY["en"], DOWN["en"]})


@pytest.mark.parametrize("name", ACTION_NAMES)
async def test_an_unlinked_buyer_gets_the_linking_steps_or_the_general_answer(
    new_chat: NewChat, actions_by_name: Actions, platform: PlatformClient, name: str
) -> None:
    chat = mid_flow_chat(new_chat, name, "zh", UNLINKED_TG)
    messages = await chat.run(actions_by_name[name])
    if name in GENERAL:
        assert messages
        assert all(m["text"] != NOT_LINKED["zh"] for m in messages)
        return
    assert_polite(chat, name, messages, {NOT_LINKED["zh"]})
    # nothing was done to B1001's order on the strength of someone else's Telegram account
    assert (await platform.get_order("B1001", "KM20261127001")).state == "processing"


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_order_status_when_the_platform_is_unreachable_offers_a_human(
    new_chat: NewChat, unreachable: PlatformClient, language: str
) -> None:
    action = build(ActionDeps(platform=unreachable))["action_order_status"]
    chat = new_chat(language, slots={"order_id": "KM20261127001"})
    chat.say("KM20261127001", "order_status")
    reply = only(await chat.run(action))
    assert reply["text"] == DOWN[language]
    assert [b["payload"] for b in reply["buttons"]] == ["/human_handoff"]
    assert chat.returned == []


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_order_status_when_throttled_asks_to_wait(
    new_chat: NewChat, actions_by_name: Actions, sandbox: FastAPI, language: str
) -> None:
    sandbox.state.runtime.limiter = RateLimiter(0.001, 1)
    chat = new_chat(language, slots={"order_id": "KM20261127001"})
    chat.say("KM20261127001", "order_status")
    reply = only(await chat.run(actions_by_name["action_order_status"]))
    assert reply["text"] == BUSY[language]


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("telegram_user_id", [UNLINKED_TG, None], ids=["unlinked", "no-telegram-id"])
async def test_order_status_for_an_unlinked_buyer_explains_linking(
    new_chat: NewChat, actions_by_name: Actions, language: str, telegram_user_id: int | None
) -> None:
    chat = new_chat(language, slots={"order_id": "KM20261127001"}, telegram_user_id=telegram_user_id)
    chat.say("KM20261127001", "order_status")
    assert only(await chat.run(actions_by_name["action_order_status"]))["text"] == NOT_LINKED[language]


async def test_an_unlinked_buyer_in_the_cancel_form_is_not_asked_for_a_reason(
    new_chat: NewChat, actions_by_name: Actions
) -> None:
    chat = new_chat("en", telegram_user_id=UNLINKED_TG)
    chat.say(
        "cancel KM20261127001", "cancel_order", entities=[{"entity": "order_id", "value": "KM20261127001"}]
    )
    chat.activate("cancel_form")
    assert only(await chat.run(actions_by_name["validate_cancel_form"]))["text"] == NOT_LINKED["en"]
    assert chat.active_loop is None
    assert await chat.run(actions_by_name["action_submit_cancel"]) == []


async def test_a_platform_answering_500_gets_a_polite_reply(new_chat: NewChat) -> None:
    seen: list[str] = []

    def platform_failing(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == f"/v1/telegram-links/{BUYER_TG}":
            return httpx.Response(
                200,
                json={"buyer_id": "B1001", "telegram_user_id": BUYER_TG, "linked_at": "2026-10-28T04:00:00Z"},
            )
        return httpx.Response(500, json={"error": {"code": "internal", "message": "database is on fire"}})

    transport = httpx.MockTransport(platform_failing)
    async with PlatformClient("http://platform.test", API_KEY, transport=transport, backoff=0) as client:
        action = build(ActionDeps(platform=client))["action_order_status"]
        chat = new_chat("en", slots={"order_id": "KM20261127001"})
        chat.say("KM20261127001", "order_status")
        reply = only(await chat.run(action))
    assert reply["text"] == DOWN["en"]
    assert "fire" not in reply["text"]
    assert "/v1/buyers/B1001/orders/KM20261127001" in seen


async def test_a_broken_outcome_store_does_not_stop_the_cancellation(
    new_chat: NewChat, platform: PlatformClient, tmp_path: Path
) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'never-migrated.db'}")  # no tables
    try:
        actions = build(
            ActionDeps(platform=platform, outcomes=CancellationOutcomes(make_sessionmaker(engine)))
        )
        chat = new_chat(
            slots={"order_id": "KM20261127001", "cancel_reason": "found_cheaper", "cancel_confirm": True}
        )
        chat.say("确认取消", "affirm")
        reply = only(await chat.run(actions["action_submit_cancel"]))
    finally:
        await engine.dispose()
    assert reply["text"].startswith("已为您取消订单 KM20261127001（原因：别家更便宜）。")
    assert (await platform.get_order("B1001", "KM20261127001")).state == "cancelled"
