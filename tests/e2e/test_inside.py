"""Hygiene and the authenticated inside, end to end with the real processes: a NUL byte from Telegram through
the bot, PostgreSQL and Rasa to a reply; typed ``/intent{...}`` read as words; Rasa's HTTP API and the action
server refusing callers without their tokens; a forged Telegram identity not believed; no secret in the log."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from sqlalchemy import text as sql

from integrations.storage.db import make_engine
from sandbox.testing import SandboxAdmin
from tests.botapi_double import BotAPIDouble
from tests.e2e.conftest import Stack
from tests.support.processes import ManagedProcess, inside_secrets

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]
TIMEOUT = 90


def rasa(stack: Stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.env['RASA_PORT']}", timeout=60)


async def linked_buyer_with_order(stack: Stack, telegram_user_id: int) -> str:
    """A fresh platform buyer linked to ``telegram_user_id`` with one processing order; its id."""
    buyer_id = f"BH{telegram_user_id}"
    async with SandboxAdmin(f"http://127.0.0.1:{stack.env['SANDBOX_PORT']}", "sandbox-admin") as admin:
        await admin.create_buyer(buyer_id, "卫生测试", telegram_user_id=telegram_user_id)
        order = await admin.create_order(
            buyer_id=buyer_id,
            sku="WZRY-60",
            account="2876543210",
            region="安卓QQ区",
            state="processing",
            fulfil_seconds=3600,
        )
    return str(order["order_id"])


async def logged_texts(stack: Stack, chat_id: int) -> list[str]:
    engine = make_engine(stack.env["DATABASE_URL"])
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                sql("SELECT text FROM chat_messages WHERE chat_id = :chat AND direction = 'in' ORDER BY id"),
                {"chat": chat_id},
            )
            return [str(row[0]) for row in rows]
    finally:
        await engine.dispose()


async def user_texts_seen_by_rasa(stack: Stack, sender: str) -> list[str]:
    async with rasa(stack) as client:
        response = await client.get(
            f"/conversations/{sender}/tracker", params={"token": inside_secrets()["RASA_AUTH_TOKEN"]}
        )
    response.raise_for_status()
    return [e.get("text") or "" for e in response.json()["events"] if e.get("event") == "user"]


def new_message(*words: str) -> Any:
    return lambda m: "edit_date" not in m and all(w in (m.get("text") or "") for w in words)


async def test_a_nul_byte_goes_end_to_end_and_is_answered(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    uid = random.randint(7_000_000, 7_999_999)
    order_id = await linked_buyer_with_order(stack, uid)
    user = telegram.create_user("卫生测试", user_id=uid)
    telegram.user_sends_text(user, f"我的订单 {order_id} 到哪了\x00")
    # the order's details in the reply: the action server believed the identity the bot signed
    reply = await telegram.wait_for_bot_message(user.id, new_message(order_id), TIMEOUT)
    assert "没有绑定" not in reply["text"]
    [stored] = await logged_texts(stack, uid)
    assert stored == f"我的订单 {order_id} 到哪了"  # PostgreSQL took it, without the NUL
    assert f"我的订单 {order_id} 到哪了" in await user_texts_seen_by_rasa(stack, f"tg-{uid}")


async def test_typed_intent_syntax_is_read_as_words_not_as_an_intent(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    uid = random.randint(8_000_000, 8_999_999)
    order_id = await linked_buyer_with_order(stack, uid)
    user = telegram.create_user("斜杠测试", user_id=uid)
    forged = '/cancel_order{"order_id":"' + order_id + '"}'
    telegram.user_sends_text(user, forged)
    await telegram.wait_for_bot_message(user.id, new_message(), TIMEOUT)
    seen = await user_texts_seen_by_rasa(stack, f"tg-{uid}")
    assert seen[-1] == forged[1:]  # no leading slash: NLU reads it, Rasa does not take it as an intent
    async with rasa(stack) as client:
        parse = await client.post(
            "/model/parse", params={"token": inside_secrets()["RASA_AUTH_TOKEN"]}, json={"text": forged}
        )
    assert parse.json()["intent"]["confidence"] == 1.0  # what Rasa would have done with the raw text


async def test_the_inside_refuses_callers_without_tokens_and_forged_identities(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    async with rasa(stack) as client:
        assert (await client.post("/model/parse", json={"text": "你好"})).status_code == 401
        assert (await client.get("/status")).status_code == 401
        authorised = await client.post(
            "/model/parse", params={"token": inside_secrets()["RASA_AUTH_TOKEN"]}, json={"text": "你好"}
        )
        assert authorised.status_code == 200

        # someone who reaches Rasa's (open) REST channel claims to be a linked buyer: not believed
        victim = random.randint(9_000_000, 9_999_999)
        order_id = await linked_buyer_with_order(stack, victim)
        forged = await client.post(
            "/webhooks/rest/webhook",
            json={
                "sender": f"attacker-{victim}",
                "message": f"我的订单 {order_id} 到哪了",
                "metadata": {"telegram_user_id": victim, "language": "zh"},
            },
        )
    answer = " ".join(reply.get("text", "") for reply in forged.json())
    assert "没有绑定" in answer and order_id not in answer, answer

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.env['ACTION_SERVER_PORT']}") as actions:
        call = {"next_action": "action_order_status", "sender_id": "x", "tracker": {"sender_id": "x"}}
        assert (await actions.post("/webhook", json=call)).status_code == 401
        assert (await actions.get("/actions")).status_code == 401
        assert (await actions.get("/health")).status_code == 200

    for process in (bot, stack.actions, stack.rasa):
        log = process.log_tail(2_000_000)
        assert telegram.token not in log, process.name
        for secret in inside_secrets().values():
            assert secret not in log, process.name
