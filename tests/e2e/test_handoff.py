"""Human handoff end to end, three parties (buyer, merchant, agent) through the local Bot API server: the
agents' forum topic with the order card and transcript, relay both ways exactly once, Rasa paused and
resumed, close and CSAT, the merchant first with SLA expiry to the agents, a deleted topic, duplicated
updates, and a bot restart in the middle of a handoff."""

from __future__ import annotations

import asyncio
import itertools
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text as sql

from integrations.storage.db import make_engine
from tests.botapi_double import BotAPIDouble, FakeUser
from tests.e2e.conftest import AGENTS_CHAT_ID, SANDBOX_API_KEY, Stack
from tests.e2e.test_flows import has, sandbox
from tests.support.processes import ManagedProcess, inside_secrets

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

TIMEOUT = 60.0
MERCHANT_CHAT = -1002001  # the seeded merchant M01's Telegram chat
_ids = itertools.count(1)
LATENCIES: list[float] = []


async def linked_buyer(stack: Stack, telegram: BotAPIDouble) -> tuple[str, FakeUser]:
    """A fresh platform buyer linked to a fresh Telegram user (handoff state never leaks between tests)."""
    n = next(_ids)
    user_id = 7_100_000_000 + int(time.time()) % 100_000 * 100 + n
    buyer_id = f"BH{user_id}"
    async with sandbox(stack) as client:
        response = await client.post(
            "/admin/buyers",
            json={"buyer_id": buyer_id, "name": f"买家{n}", "telegram_user_id": user_id},
            headers={"X-Admin-Key": "sandbox-admin"},
        )
    assert response.status_code == 201, response.text
    return buyer_id, telegram.create_user(f"买家{n}", user_id=user_id, language_code="zh-hans")


async def order_for(stack: Stack, buyer_id: str) -> str:
    body = {"buyer_id": buyer_id, "sku": "WZRY-60", "account": "2876543210", "region": "安卓QQ区"}
    body |= {"state": "processing", "fulfil_seconds": 3600}
    async with sandbox(stack) as client:
        response = await client.post("/admin/orders", json=body, headers={"X-Admin-Key": "sandbox-admin"})
    assert response.status_code == 201, response.text
    return str(response.json()["order_id"])


def agent(telegram: BotAPIDouble) -> FakeUser:
    for user in telegram.users.values():
        if user.first_name == "客服小李":
            return user
    user = telegram.create_user("客服小李", language_code="zh-hans")
    telegram.set_member_status(AGENTS_CHAT_ID, user, "administrator")
    return user


def merchant(telegram: BotAPIDouble) -> FakeUser:
    for user in telegram.users.values():
        if user.first_name == "星辰店主":
            return user
    user = telegram.create_user("星辰店主", language_code="zh-hans")
    if MERCHANT_CHAT not in telegram.chats:
        telegram.create_supergroup("星辰游戏点卡 客服", is_forum=False, chat_id=MERCHANT_CHAT, members=[user])
    return user


def copied(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda message: "edit_date" not in message and message.get("text") == text


def ticket_of(message: dict[str, Any]) -> str:
    found = re.search(r"\bES[0-9A-Za-z]+", str(message["text"]))
    assert found is not None, message["text"]
    return found.group(0)


async def escalate(telegram: BotAPIDouble, user: FakeUser, expect: str) -> tuple[str, dict[str, Any]]:
    """The buyer asks for a human: Rasa's escalation action opens the ticket; the bot says what happens."""
    telegram.user_sends_text(user, "/human")
    said = await telegram.wait_for_bot_message(user.id, has("工单"), TIMEOUT)
    notice = await telegram.wait_for_bot_message(user.id, has(expect), TIMEOUT)
    assert "/end" in notice["text"]
    return ticket_of(said), notice


async def topic_post(telegram: BotAPIDouble, ticket: str) -> tuple[int, dict[str, Any]]:
    """The ticket's topic in the agents' group and its first post (order card + transcript)."""
    call = await telegram.wait_for_call(
        "createForumTopic",
        lambda c: (
            ticket in str(c.params.get("name", "")) and str(c.params.get("chat_id")) == str(AGENTS_CHAT_ID)
        ),
        TIMEOUT,
    )
    thread = int(call.result["message_thread_id"])
    first = await telegram.wait_for_bot_message(
        AGENTS_CHAT_ID, has("工单", ticket), TIMEOUT, thread_id=thread
    )
    return thread, first


async def relay_to_topic(telegram: BotAPIDouble, user: FakeUser, text: str, thread: int) -> dict[str, Any]:
    started = time.monotonic()
    telegram.user_sends_text(user, text)
    message = await telegram.wait_for_bot_message(AGENTS_CHAT_ID, copied(text), TIMEOUT, thread_id=thread)
    LATENCIES.append(time.monotonic() - started)
    return message


async def relay_to_buyer(
    telegram: BotAPIDouble, staff: FakeUser, text: str, buyer: FakeUser, **where: Any
) -> dict[str, Any]:
    started = time.monotonic()
    telegram.user_sends_text(staff, text, **where)
    message = await telegram.wait_for_bot_message(buyer.id, copied(text), TIMEOUT)
    LATENCIES.append(time.monotonic() - started)
    return message


async def rasa_paused(stack: Stack, user: FakeUser) -> bool:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.env['RASA_PORT']}", timeout=10) as client:
        # Rasa's HTTP API wants the stack's auth token
        token = inside_secrets()["RASA_AUTH_TOKEN"]
        response = await client.get(f"/conversations/tg-{user.id}/tracker", params={"token": token})
    response.raise_for_status()
    return bool(response.json().get("paused"))


async def db_rows(stack: Stack, query: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = make_engine(stack.env["DATABASE_URL"])
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(sql(query), params)]
    finally:
        await engine.dispose()


async def platform_escalation(stack: Stack, ticket: str) -> dict[str, Any]:
    async with sandbox(stack) as client:
        response = await client.get(f"/v1/escalations/{ticket}", headers={"X-API-Key": SANDBOX_API_KEY})
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


async def close_and_rate(
    stack: Stack, telegram: BotAPIDouble, staff: FakeUser, buyer: FakeUser, ticket: str, **where: Any
) -> None:
    telegram.user_sends_text(staff, "/close", **where)
    ask = await telegram.wait_for_bot_message(buyer.id, has("人工服务已结束"), TIMEOUT)
    buttons = [b for row in ask["reply_markup"]["inline_keyboard"] for b in row]
    assert [b["text"] for b in buttons] == ["1", "2", "3", "4", "5"]
    assert not await rasa_paused(stack, buyer)
    callback = telegram.user_presses_button(buyer, ask, buttons[4]["callback_data"])
    await telegram.wait_for_callback_answer(callback, TIMEOUT)
    for _ in range(50):
        if (await platform_escalation(stack, ticket)).get("csat") == 5:
            break
        await asyncio.sleep(0.2)
    assert (await platform_escalation(stack, ticket))["csat"] == 5
    assert await db_rows(stack, "SELECT csat, state FROM handoff_tickets WHERE ticket_id = :t", t=ticket) == [
        (5, "closed")
    ]


async def test_agents_topic_relay_both_ways_duplicates_and_csat(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    _, user = await linked_buyer(stack, telegram)
    staff = agent(telegram)
    ticket, notice = await escalate(telegram, user, "人工客服马上就来")  # no order: no merchant, agents
    assert "排在第" in notice["text"]
    thread, first = await topic_post(telegram, ticket)
    assert "对话记录" in first["text"] and "/human" in first["text"]
    assert any(t.message_thread_id == thread for t in telegram.topics(AGENTS_CHAT_ID))
    assert await rasa_paused(stack, user)

    asked = await relay_to_topic(telegram, user, "充值一直没到账，帮忙看看", thread)
    # the buyer's photo arrives in the topic too
    telegram.user_sends_photo(user, caption="付款截图")
    photo = await telegram.wait_for_bot_message(
        AGENTS_CHAT_ID, lambda m: "photo" in m and m.get("caption") == "付款截图", TIMEOUT, thread_id=thread
    )
    assert photo["message_thread_id"] == thread
    # the agent answers in the topic, replying to the buyer's message: threaded in the buyer's chat
    answer = await relay_to_buyer(
        telegram,
        staff,
        "您好，我来帮您查一下",
        user,
        chat=AGENTS_CHAT_ID,
        message_thread_id=thread,
        reply_to=asked["message_id"],
    )
    assert answer["reply_to_message"]["text"] == "充值一直没到账，帮忙看看"
    # an internal note is not relayed
    telegram.user_sends_text(staff, "/note 买家情绪稳定", chat=AGENTS_CHAT_ID, message_thread_id=thread)
    await telegram.wait_for_bot_message(AGENTS_CHAT_ID, has("内部备注已记录"), TIMEOUT, thread_id=thread)

    # duplicated updates: the same buyer message delivered again (new update id), and a redelivered update
    original = telegram.user_sends_text(user, "第二个问题")
    await telegram.wait_for_bot_message(AGENTS_CHAT_ID, copied("第二个问题"), TIMEOUT, thread_id=thread)
    telegram.inject_raw_update({"message": original})
    replayed = telegram.inject_raw_update({"message": telegram.user_sends_text(user, "第三个问题")})
    telegram.inject_raw_update(replayed)
    await relay_to_topic(telegram, user, "最后一条", thread)
    await telegram.wait_updates_consumed()
    await asyncio.sleep(1.0)
    texts = [m.get("text") for m in telegram.bot_messages(AGENTS_CHAT_ID, thread_id=thread)]
    assert texts.count("第二个问题") == 1 and texts.count("第三个问题") == 1
    # in order
    assert texts.index("第二个问题") < texts.index("第三个问题") < texts.index("最后一条")
    # an edit is relayed as an edit note anchored on the relayed copy
    telegram.user_edits_message(user, original, "第二个问题（已更正）")
    edit = await telegram.wait_for_bot_message(
        AGENTS_CHAT_ID, has("买家修改了消息", "已更正"), TIMEOUT, thread_id=thread
    )
    assert edit["reply_to_message"]["text"] == "第二个问题"
    # the bot itself stayed silent in the buyer's chat while the human held it
    since_notice = [
        str(m.get("text")) for m in telegram.bot_messages(user.id) if m["message_id"] > notice["message_id"]
    ]
    assert "您好，我来帮您查一下" in since_notice
    # ... apart from saying who joined: a role, never the agent's account
    assert any(t.startswith("👤 平台客服") for t in since_notice) and not any(
        "客服小李" in t for t in since_notice
    )
    assert all(
        t == "您好，我来帮您查一下" or t.startswith(("您发得有点快", "👤 平台客服")) for t in since_notice
    ), since_notice

    for _ in range(50):  # the map row is completed right after Telegram confirmed the send
        relays = await db_rows(
            stack,
            "SELECT direction, dst_message_id FROM handoff_relay WHERE ticket_id = :t ORDER BY id",
            t=ticket,
        )
        if all(mid for _, mid in relays):
            break
        await asyncio.sleep(0.1)
    assert [d for d, _ in relays].count("to_buyer") == 1 and all(mid for _, mid in relays)

    await close_and_rate(stack, telegram, staff, user, ticket, chat=AGENTS_CHAT_ID, message_thread_id=thread)
    # back to the bot: Rasa answers again
    telegram.user_sends_text(user, "你好")
    reply = await telegram.wait_for_bot_message(
        user.id, lambda m: "edit_date" not in m and bool(m.get("text")), TIMEOUT
    )
    assert "人工" not in reply["text"] or "已结束" not in reply["text"]
    assert (await platform_escalation(stack, ticket))["state"] == "closed"


async def test_merchant_first_then_sla_to_agents_deleted_topic_and_restart(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    buyer_id, user = await linked_buyer(stack, telegram)
    shop = merchant(telegram)
    staff = agent(telegram)

    # 1. a ticket the merchant answers: card in the merchant's chat, reply-to threading both ways
    order_id = await order_for(stack, buyer_id)
    telegram.user_sends_text(user, f"订单 {order_id} 到哪了")
    await telegram.wait_for_bot_message(user.id, has(order_id), TIMEOUT)
    ticket, _ = await escalate(telegram, user, "商家")
    card = await telegram.wait_for_bot_message(MERCHANT_CHAT, has("工单", ticket), TIMEOUT)
    assert order_id in card["text"] and "2876543210" not in card["text"] and "287*****10" in card["text"]
    assert [b["text"] for b in card["reply_markup"]["inline_keyboard"][0]] == ["✅ 接单", "♻️ 恢复订单"]
    telegram.user_sends_text(user, "商家你好，还没到")
    relayed = await telegram.wait_for_bot_message(MERCHANT_CHAT, copied("商家你好，还没到"), TIMEOUT)
    await relay_to_buyer(
        telegram, shop, "马上给您补发", user, chat=MERCHANT_CHAT, reply_to=relayed["message_id"]
    )
    await close_and_rate(stack, telegram, shop, user, ticket, chat=MERCHANT_CHAT, reply_to=card["message_id"])

    # 2. a ticket the merchant leaves unanswered: after the SLA it goes to the agents' topic
    telegram.user_sends_text(user, f"订单 {order_id} 还是没到")
    await telegram.wait_for_bot_message(user.id, has(order_id), TIMEOUT)
    ticket, _ = await escalate(telegram, user, "商家")
    await telegram.wait_for_bot_message(MERCHANT_CHAT, has("工单", ticket), TIMEOUT)
    started = time.monotonic()
    thread, first = await topic_post(telegram, ticket)
    assert time.monotonic() - started >= 5  # only after the merchant's SLA (15 s in this stack)
    assert order_id in first["text"] and "2876543210" not in first["text"]
    await telegram.wait_for_bot_message(user.id, has("商家暂未回复"), TIMEOUT)
    await telegram.wait_for_bot_message(MERCHANT_CHAT, has("已转平台客服"), TIMEOUT)
    await relay_to_topic(telegram, user, "等了好久了", thread)

    # 3. someone deletes the topic: the next message recreates it, with the card first
    telegram.chat(AGENTS_CHAT_ID).topics[thread].is_deleted = True
    telegram.user_sends_text(user, "还在吗？")
    new_thread, _ = await topic_post(telegram, ticket)
    assert new_thread != thread
    await telegram.wait_for_bot_message(AGENTS_CHAT_ID, copied("还在吗？"), TIMEOUT, thread_id=new_thread)

    # 4. the bot restarts mid-handoff; messages sent meanwhile are relayed once it is back
    bot.stop()
    telegram.user_sends_text(user, "你们是不是掉线了")
    telegram.user_sends_text(staff, "没有掉线，正在处理", chat=AGENTS_CHAT_ID, message_thread_id=new_thread)
    bot.start()
    await asyncio.to_thread(bot.wait_healthy)
    await telegram.wait_for_bot_message(
        AGENTS_CHAT_ID, copied("你们是不是掉线了"), TIMEOUT, thread_id=new_thread
    )
    await telegram.wait_for_bot_message(user.id, copied("没有掉线，正在处理"), TIMEOUT)
    await relay_to_topic(telegram, user, "好的谢谢", new_thread)
    assert await rasa_paused(stack, user)

    await close_and_rate(
        stack, telegram, staff, user, ticket, chat=AGENTS_CHAT_ID, message_thread_id=new_thread
    )
    audit = [
        a
        for (a,) in await db_rows(
            stack, "SELECT action FROM handoff_audit WHERE ticket_id = :t ORDER BY id", t=ticket
        )
    ]
    assert audit[:3] == ["escalated", "routed_merchant", "routed_agents"] and "topic_recreated" in audit
    assert audit[-2:] == ["close", "csat"]
    if LATENCIES:
        print(
            f"\nhandoff relay latency over {len(LATENCIES)} messages: p50 {statistics.median(LATENCIES) * 1000:.0f} ms, "
            f"max {max(LATENCIES) * 1000:.0f} ms; all (ms): {[round(x * 1000) for x in LATENCIES]}"
        )


async def private_merchant(stack: Stack, telegram: BotAPIDouble, buyer_id: str) -> tuple[FakeUser, str, str]:
    """A merchant who is one person on their phone: their own shop, product and an order of ``buyer_id``."""
    n = next(_ids)
    shop = telegram.create_user(f"小店主{n}", username=f"shop_owner_{n}", language_code="zh-hans")
    merchant_id, sku = f"MP{shop.id % 10_000_000}", f"MPSKU{shop.id % 10_000_000}"
    admin = {"X-Admin-Key": "sandbox-admin"}
    async with sandbox(stack) as client:
        for path, body in (
            ("/admin/merchants", {"merchant_id": merchant_id, "name": f"小店{n}"}),
            (
                "/admin/products",
                {
                    "sku": sku,
                    "kind": "game_card",
                    "name": "王者荣耀 点券 60",
                    "merchant_id": merchant_id,
                    "price": "6.00",
                },
            ),
        ):
            response = await client.post(path, json=body, headers=admin)
            assert response.status_code in (200, 201), response.text
        order: dict[str, object] = {"buyer_id": buyer_id, "sku": sku, "account": "2876543210"}
        order |= {"region": "安卓QQ区"}
        order |= {"state": "processing", "fulfil_seconds": 3600}
        response = await client.post("/admin/orders", json=order, headers=admin)
        assert response.status_code == 201, response.text
        order_id = str(response.json()["order_id"])
        token = await client.post(
            f"/v1/merchants/{merchant_id}/link-tokens", headers={"X-API-Key": SANDBOX_API_KEY}
        )
    assert token.status_code == 201, token.text
    return shop, order_id, str(token.json()["token"])


async def staff_says(
    telegram: BotAPIDouble, staff: FakeUser, text: str, expect: str, chat: int, thread: int | None
) -> dict[str, Any]:
    telegram.user_sends_text(staff, text, chat=chat, message_thread_id=thread)
    return await telegram.wait_for_bot_message(chat, has(expect), TIMEOUT, thread_id=thread)


async def test_merchant_in_a_private_chat_every_staff_action_and_topic_lifecycle(
    stack: Stack, telegram: BotAPIDouble, bot: ManagedProcess
) -> None:
    buyer_id, user = await linked_buyer(stack, telegram)
    shop, order_id, token = await private_merchant(stack, telegram, buyer_id)
    staff = agent(telegram)
    telegram.private_topics = True
    try:
        # 1. the merchant links their private chat with the platform's deep link
        telegram.user_sends_text(shop, f"/start {token}")
        await telegram.wait_for_bot_message(shop.id, has("已绑定商家"), TIMEOUT)

        # 2. the buyer's ticket gets its own topic in the merchant's private chat
        telegram.user_sends_text(user, f"订单 {order_id} 到哪了")
        await telegram.wait_for_bot_message(user.id, has(order_id), TIMEOUT)
        ticket, _ = await escalate(telegram, user, "商家")
        call = await telegram.wait_for_call(
            "createForumTopic", lambda c: str(c.params.get("chat_id")) == str(shop.id), TIMEOUT
        )
        topic = int(call.result["message_thread_id"])
        card = await telegram.wait_for_bot_message(shop.id, has("工单", ticket), TIMEOUT, thread_id=topic)
        assert "2876543210" not in card["text"] and "在本话题直接发消息" in card["text"]
        telegram.user_sends_text(user, "还没到账，急")
        await telegram.wait_for_bot_message(shop.id, copied("还没到账，急"), TIMEOUT, thread_id=topic)

        # 3. every staff command from the merchant's topic
        listing = await staff_says(telegram, shop, "/t", "快捷回复", shop.id, topic)
        assert "/t screenshot" in listing["text"]
        await staff_says(telegram, shop, "/t screenshot", "已按买家语言发送", shop.id, topic)
        joined = await telegram.wait_for_bot_message(user.id, has("商家客服"), TIMEOUT)
        assert "小店主" not in joined["text"] and "shop_owner" not in joined["text"]
        await telegram.wait_for_bot_message(user.id, has("截图"), TIMEOUT)
        telegram.user_sends_text(shop, "马上给您处理", chat=shop.id, message_thread_id=topic)
        relayed = await telegram.wait_for_bot_message(user.id, copied("马上给您处理"), TIMEOUT)
        assert "forward_origin" not in relayed and "forward_from" not in relayed
        await staff_says(telegram, shop, "/note 买家很急", "内部备注已记录", shop.id, topic)
        await staff_says(telegram, shop, "/order", order_id, shop.id, topic)
        await staff_says(telegram, shop, "/fix 2876543299 安卓QQ区", "已修改订单", shop.id, topic)
        await telegram.wait_for_bot_message(user.id, has("充值信息改为", "2876543299"), TIMEOUT)
        async with sandbox(stack) as client:  # the buyer cancelled by mistake on the platform
            cancelled = await client.post(
                f"/v1/buyers/{buyer_id}/orders/{order_id}/cancel",
                json={"reason_tag": "user_mistake"},
                headers={"X-API-Key": SANDBOX_API_KEY},
            )
        assert cancelled.status_code == 200, cancelled.text
        await staff_says(telegram, shop, "/restore", "已恢复订单", shop.id, topic)
        await telegram.wait_for_bot_message(user.id, has("已为您恢复订单", order_id), TIMEOUT)
        await staff_says(telegram, shop, "/refund", "退款申请", shop.id, topic)
        await telegram.wait_for_bot_message(user.id, has(order_id, "退款"), TIMEOUT)
        # the card's button: accept (already theirs), then release and pass to the platform
        press = telegram.user_presses_button(shop, card, f"ho:acc:{ticket}", chat=shop.id)
        await telegram.wait_for_callback_answer(press, TIMEOUT)
        await telegram.wait_for_bot_message(shop.id, has("已由您处理中"), TIMEOUT, thread_id=topic)
        await staff_says(telegram, shop, "/release", "已释放工单", shop.id, topic)
        await telegram.wait_for_bot_message(user.id, has("回到队列"), TIMEOUT)
        telegram.user_sends_text(shop, "/pass", chat=shop.id, message_thread_id=topic)
        await telegram.wait_for_bot_message(shop.id, has("已转平台客服"), TIMEOUT, thread_id=topic)
        await telegram.wait_for_call(
            "editForumTopic",
            lambda c: (
                str(c.params.get("chat_id")) == str(shop.id) and "已转平台" in str(c.params.get("name"))
            ),
            TIMEOUT,
        )

        # 4. the agents take it over in their forum: button, close, reopen, buyer ends it
        thread, first = await topic_post(telegram, ticket)
        assert "此前的人工服务" not in first["text"]
        press = telegram.user_presses_button(staff, first, f"ho:take:{ticket}", chat=AGENTS_CHAT_ID)
        await telegram.wait_for_callback_answer(press, TIMEOUT)
        taken = await telegram.wait_for_bot_message(user.id, has("平台客服"), TIMEOUT)
        assert "客服小李" not in taken["text"]
        await telegram.wait_for_call(
            "editForumTopic", lambda c: str(c.params.get("name", "")).startswith("💬 " + ticket), TIMEOUT
        )
        telegram.user_sends_text(staff, "/close", chat=AGENTS_CHAT_ID, message_thread_id=thread)
        await telegram.wait_for_bot_message(user.id, has("人工服务已结束"), TIMEOUT)
        await telegram.wait_for_call(
            "closeForumTopic",
            lambda c: (
                str(c.params.get("chat_id")) == str(AGENTS_CHAT_ID)
                and int(c.params.get("message_thread_id", 0)) == thread
            ),
            TIMEOUT,
        )
        state = next(t for t in telegram.topics(AGENTS_CHAT_ID) if t.message_thread_id == thread)
        assert state.is_closed and state.name.startswith("✅ " + ticket)
        await staff_says(telegram, staff, "/reopen", "重新打开了工单", AGENTS_CHAT_ID, thread)
        await telegram.wait_for_bot_message(user.id, has("重新打开了工单", ticket), TIMEOUT)
        assert not state.is_closed and await rasa_paused(stack, user)
        telegram.user_sends_text(user, "好了，谢谢")
        await telegram.wait_for_bot_message(AGENTS_CHAT_ID, copied("好了，谢谢"), TIMEOUT, thread_id=thread)
        telegram.user_sends_text(user, "/end")
        await telegram.wait_for_bot_message(user.id, has("人工服务已结束"), TIMEOUT)
    finally:
        telegram.private_topics = False

    audit = await db_rows(
        stack,
        "SELECT action, actor_name, detail FROM handoff_audit WHERE ticket_id = :t ORDER BY id",
        t=ticket,
    )
    actions = [a for a, _, _ in audit]
    for expected in (
        "take",
        "template",
        "note",
        "order",
        "fix",
        "restore",
        "refund",
        "release",
        "pass",
        "close",
        "reopen",
    ):
        assert expected in actions, (expected, actions)
    keys = [d.rpartition("key=")[2] for a, _, d in audit if a in ("fix", "restore", "refund")]
    assert len(set(keys)) == 3 and all(k.startswith(f"handoff:{ticket}:") for k in keys)
    logged = await db_rows(
        stack,
        "SELECT direction, kind, text FROM chat_messages WHERE chat_id = :c ORDER BY id",
        c=user.id,
    )
    assert ("in", "text", "还没到账，急") in logged and ("out", "human", "马上给您处理") in logged
