"""Merchants in a private chat (topics, or reply threading where there are none), the topic lifecycle,
roles instead of accounts, canned replies, one conversation record, the out-of-hours path with a frozen clock,
and every staff action with its own idempotency key, an audit row and the buyer told in their language."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.handoff.ports import Actor
from bot.handoff.service import BuyerRef, first_name
from integrations.platform.models import Merchant, Order, RefundRequest
from tests.bot.handoff.test_service import AGENTS, BUYER, NOW, FakePlatform, Rig, order

SHOP = 5_550_001  # the merchant's private chat with the bot (= their user id)
EN_BUYER = BuyerRef(user_id=7002, chat_id=7002, language="en")


@dataclass
class PrivateMerchantPlatform(FakePlatform):
    keys: list[str] = field(default_factory=list)
    refund_state: str = "approved"

    async def get_merchant(self, merchant_id: str) -> Merchant:
        return Merchant(merchant_id="M01", name="星辰游戏点卡", telegram_chat_id=SHOP, support_hours="-")

    async def redeem_merchant_link_token(
        self, token: str, telegram_chat_id: int, *, idempotency_key: str | None = None
    ) -> Merchant:
        return Merchant(
            merchant_id="M01", name="星辰游戏点卡", telegram_chat_id=telegram_chat_id, support_hours="-"
        )

    async def restore_order(
        self, buyer_id: str, order_id: str, *, idempotency_key: str | None = None
    ) -> Order:
        self.keys.append(idempotency_key or "")
        return await super().restore_order(buyer_id, order_id, idempotency_key=idempotency_key)

    async def request_refund(
        self, buyer_id: str, order_id: str, reason: str, *, idempotency_key: str | None = None
    ) -> RefundRequest:
        self.keys.append(idempotency_key or "")
        return RefundRequest.model_validate(
            {
                "refund_request_id": "R1",
                "state": self.refund_state,
                "reason": reason,
                "created_at": NOW.isoformat(),
                "order": order().model_dump(mode="json"),
            }
        )


SHOPKEEPER = Actor(SHOP, "王老板 13800138000", SHOP)
AGENT = Actor(42, "@li_agent", AGENTS)


async def test_a_merchant_in_a_private_chat_gets_a_topic_per_ticket(make_rig: Any) -> None:
    rig: Rig = make_rig(PrivateMerchantPlatform())
    await rig.service.start(BUYER, "E1", "KM20261128001")
    ticket = await rig.service.active_for_buyer(BUYER.user_id)
    assert ticket is not None and ticket.route == "merchant" and ticket.merchant_topic_id is not None
    assert rig.messenger.topic_chat[ticket.merchant_topic_id] == SHOP
    (card,) = rig.messenger.to(SHOP)
    assert card["thread"] == ticket.merchant_topic_id and "在本话题直接发消息" in card["text"]
    assert await rig.service.is_merchant_chat(SHOP)  # the private chat is staff, not a buyer
    # the buyer's message lands in that topic; the merchant's message in the topic is found by it
    assert await rig.service.from_buyer(ticket, 11, text="还没到账")
    assert rig.messenger.sent[-1]["thread"] == ticket.merchant_topic_id
    found, _ = await rig.service.ticket_for_staff(SHOP, ticket.merchant_topic_id, None)
    assert found is not None and found.ticket_id == "E1"
    # outside the topic, with a topic ticket open, nothing is guessed
    assert await rig.service.ticket_for_staff(SHOP, None, None) == (None, None)


async def test_without_topics_a_private_merchant_chat_uses_reply_threading(make_rig: Any) -> None:
    rig: Rig = make_rig(PrivateMerchantPlatform())
    rig.messenger.no_topics.add(SHOP)
    await rig.service.start(BUYER, "E1", "KM20261128001")
    ticket = await rig.service.active_for_buyer(BUYER.user_id)
    assert ticket is not None and ticket.route == "merchant" and ticket.merchant_topic_id is None
    (card,) = rig.messenger.to(SHOP)
    assert card["thread"] is None and "「回复」本消息" in card["text"]
    assert (await rig.service.repository.merchant_chat(SHOP)).topics == "no"  # type: ignore[union-attr]
    found, _ = await rig.service.ticket_for_staff(SHOP, None, card["id"])
    assert found is not None and found.ticket_id == "E1"
    found, _ = await rig.service.ticket_for_staff(SHOP, None, None)  # the only open one
    assert found is not None


async def test_agents_group_without_topics_still_gets_the_card_and_the_relay(make_rig: Any) -> None:
    rig: Rig = make_rig(FakePlatform(merchant_id=None))
    rig.messenger.no_topics.add(AGENTS)
    notice = await rig.service.start(BUYER, "E1", None)
    assert notice is not None
    ticket = await rig.service.active_for_buyer(BUYER.user_id)
    assert ticket is not None and ticket.topic_id is None and ticket.agents_card_id is not None
    assert await rig.service.from_buyer(ticket, 11, text="在吗")
    copy = rig.messenger.sent[-1]
    assert copy["chat"] == AGENTS and copy["thread"] is None
    found, _ = await rig.service.ticket_for_staff(AGENTS, None, copy["id"])
    assert found is not None and found.ticket_id == "E1"
    assert len(rig.messenger.to(AGENTS)) == 2  # one card, not one per message


async def test_topic_lifecycle_close_rate_and_reopen(make_rig: Any) -> None:
    rig: Rig = make_rig(FakePlatform(merchant_id=None))
    await rig.service.start(BUYER, "E1", "KM20261128001")
    ticket = await rig.service.active_for_buyer(BUYER.user_id)
    assert ticket is not None and ticket.topic_id is not None
    assert rig.messenger.topics[ticket.topic_id].startswith("🆕 E1 · KM20261128001")
    await rig.service.take(ticket, AGENT)
    assert rig.messenger.topics[ticket.topic_id].startswith("💬 E1")
    await rig.service.close(ticket, AGENT)
    assert (
        rig.messenger.topics[ticket.topic_id].startswith("✅ E1")
        and "已解决" in rig.messenger.topics[ticket.topic_id]
    )
    assert ticket.topic_id in rig.messenger.closed
    await rig.service.rate("E1", BUYER.user_id, 4)
    assert rig.messenger.topics[ticket.topic_id].endswith("4★")
    closed = await rig.service.repository.get("E1")
    assert closed is not None
    answer = await rig.service.reopen(closed, AGENT)
    assert "重新打开" in answer and ticket.topic_id not in rig.messenger.closed
    assert rig.messenger.topics[ticket.topic_id].startswith("💬 E1")
    assert rig.assistant.events[-1] == ("pause", "tg-7001")
    assert (await rig.service.active_for_buyer(BUYER.user_id)) is not None
    told = rig.messenger.to(BUYER.chat_id)[-1]["text"]
    assert "重新打开了工单 E1" in told and "平台客服" in told and "li_agent" not in told


async def test_buyers_see_roles_never_accounts(make_rig: Any) -> None:
    rig: Rig = make_rig(PrivateMerchantPlatform())
    await rig.service.start(BUYER, "E1", "KM20261128001")
    ticket = await rig.service.active_for_buyer(BUYER.user_id)
    assert ticket is not None
    assert await rig.service.from_human(ticket, SHOPKEEPER, 71, text="马上处理")
    announce, copy = rig.messenger.to(BUYER.chat_id)[-2:]
    assert (
        "商家客服" in announce["text"] and "王老板" not in announce["text"] and "138" not in announce["text"]
    )
    assert copy["kind"] == "copy"  # a copy: no forward header naming the account
    named: Rig = make_rig(PrivateMerchantPlatform(), first_names=True)
    assert named.service.role(ticket, "王老板 13800138000") == ("商家客服 王老板", "Seller support 王老板")
    assert named.service.role(ticket, "@shop_owner") == ("商家客服", "Seller support")
    assert first_name("13800138000") == ""


async def test_canned_replies_in_the_buyers_language(make_rig: Any) -> None:
    rig: Rig = make_rig(FakePlatform(merchant_id=None))
    await rig.service.start(EN_BUYER, "E1", None)
    ticket = await rig.service.active_for_buyer(EN_BUYER.user_id)
    assert ticket is not None
    listing = await rig.service.canned(ticket, AGENT, "")
    assert listing is not None and "/t screenshot" in listing and "/t refund_sent" in listing
    sent = await rig.service.canned(ticket, AGENT, "screenshot")
    assert sent is not None and "请发截图" in sent
    text = rig.messenger.to(EN_BUYER.chat_id)[-1]["text"]
    assert text.startswith("Could you send a screenshot")
    unknown = await rig.service.canned(ticket, AGENT, "nope")
    assert unknown is not None and "没有名为「nope」" in unknown
    log = [(a.action, a.detail) for a in await rig.service.repository.audit_log("E1")]
    assert ("template", "screenshot") in log
    assert rig.transcripts.logged[-1].kind == "human" and rig.transcripts.logged[-1].text == text


async def test_one_conversation_record_and_earlier_handoffs_on_the_card(make_rig: Any) -> None:
    rig: Rig = make_rig(FakePlatform(merchant_id=None))
    await rig.service.start(BUYER, "E0", "KM20261128001")
    first = await rig.service.active_for_buyer(BUYER.user_id)
    assert first is not None
    assert await rig.service.from_buyer(first, 11, text="到账了吗")
    assert await rig.service.from_human(first, AGENT, 12, text="正在查")
    logged = [(m.direction, m.kind, m.text) for m in rig.transcripts.logged]
    assert ("in", "text", "到账了吗") in logged and ("out", "human", "正在查") in logged
    await rig.service.close(first, AGENT)
    await rig.service.rate("E0", BUYER.user_id, 2)
    await rig.service.start(BUYER, "E1", "KM20261128001")
    card = rig.messenger.to(AGENTS)[-1]["text"]
    assert "此前的人工服务" in card and "E0" in card and "2★" in card


async def test_out_of_hours_with_a_frozen_clock(make_rig: Any) -> None:
    rig: Rig = make_rig(FakePlatform(merchant_id=None), hours="09:00-23:00")
    rig.clock[0] = NOW.replace(hour=18)  # 02:00 in Shanghai
    notice = await rig.service.start(BUYER, "E1", None)
    assert notice is not None and "非工作时间" in notice.text and "09:00" in notice.text
    assert await rig.service.wake_after_hours() == 0  # still night
    rig.clock[0] = NOW.replace(hour=18) + timedelta(hours=7, minutes=1)  # 09:01 in Shanghai
    assert await rig.service.wake_after_hours() == 1
    assert "客服已上线" in rig.messenger.to(BUYER.chat_id)[-1]["text"]
    assert "工作时间开始" in rig.messenger.to(AGENTS)[-1]["text"]
    assert await rig.service.wake_after_hours() == 0  # once


async def test_every_staff_action_has_its_own_key_an_audit_row_and_tells_the_buyer(make_rig: Any) -> None:
    platform = PrivateMerchantPlatform()
    rig: Rig = make_rig(platform)
    await rig.service.start(EN_BUYER, "E1", "KM20261128001")
    ticket = await rig.service.active_for_buyer(EN_BUYER.user_id)
    assert ticket is not None
    assert "接手" in await rig.service.take(ticket, SHOPKEEPER)
    assert "已由您处理中" in await rig.service.take(ticket, SHOPKEEPER)  # no second announcement
    assert await rig.service.platform_action(ticket, SHOPKEEPER, "restore", request_id="m1:10")
    assert await rig.service.platform_action(ticket, SHOPKEEPER, "restore", request_id="m1:10")
    assert await rig.service.platform_action(ticket, SHOPKEEPER, "restore", request_id="m1:11")
    assert platform.keys == ["handoff:E1:restore:m1:10"] * 2 + ["handoff:E1:restore:m1:11"]
    refunded = await rig.service.platform_action(ticket, SHOPKEEPER, "refund", request_id="cb9")
    assert "退款" in refunded and platform.keys[-1] == "handoff:E1:refund:cb9"
    fixed = await rig.service.platform_action(
        ticket, SHOPKEEPER, "fix", "13900139000 广东移动", request_id="m1:12"
    )
    assert "139****9000" in fixed
    await rig.service.release(ticket, SHOPKEEPER)
    await rig.service.note(ticket, SHOPKEEPER, "买家急")
    card = await rig.service.order_card(ticket, SHOPKEEPER)
    assert "KM20261128001" in card
    buyer = [m["text"] for m in rig.messenger.to(EN_BUYER.chat_id)]
    assert any(t.startswith("👤 Seller support has joined") for t in buyer)
    assert any("Your order KM20261128001 has been restored" in t for t in buyer)
    assert any("has been refunded" in t for t in buyer)
    assert any("recharge details" in t and "13900139000" in t for t in buyer)
    assert any("back in the queue" in t for t in buyer)
    assert not any("买家急" in t for t in buyer)  # a note is internal
    actions = [a.action for a in await rig.service.repository.audit_log("E1")]
    for action in ("take", "restore", "refund", "fix", "release", "note", "order"):
        assert action in actions, action
    passed = await rig.service.pass_to_platform(ticket, SHOPKEEPER)
    assert passed is None
    moved = await rig.service.repository.get("E1")
    assert moved is not None and moved.route == "agents"
    assert moved.merchant_topic_id in rig.messenger.closed  # the merchant's topic is closed
    assert "pass" in [a.action for a in await rig.service.repository.audit_log("E1")]


async def test_linking_a_merchant_chat(make_rig: Any) -> None:
    rig: Rig = make_rig(PrivateMerchantPlatform())
    linked, text = await rig.service.link_merchant("m-token", 5_550_002)
    assert linked and "星辰游戏点卡" in text and "话题" in text
    assert await rig.service.is_merchant_chat(5_550_002)


async def test_without_copy_message_the_text_is_relayed(make_rig: Any) -> None:
    rig: Rig = make_rig(FakePlatform(merchant_id=None))
    rig.messenger.no_copy = True  # a Bot API that lacks copyMessage
    await rig.service.start(BUYER, "E1", None)
    ticket = await rig.service.active_for_buyer(BUYER.user_id)
    assert ticket is not None
    assert await rig.service.from_buyer(ticket, 11, text="<b>还没到</b>")
    relayed = rig.messenger.to(AGENTS)[-1]
    assert relayed["text"] == "👤 买家：&lt;b&gt;还没到&lt;/b&gt;" and relayed["thread"] == ticket.topic_id
    assert await rig.service.from_human(ticket, AGENT, 12, text="马上查")
    assert rig.messenger.to(BUYER.chat_id)[-1]["text"] == "马上查"
