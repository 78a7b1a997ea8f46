"""Right ticket, right people: a complaint accusing the merchant never reaches that merchant; a new request
joins the buyer's open ticket; the assistant-down handover reaches a person like any escalation."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.handoff.conversation import HandoffAwareConversation
from bot.services.conversation import BuyerMessage
from bot.services.escalation import mentioned_order
from bot.services.pending import MemoryPendingStore
from integrations.rasa import BotReply, RasaUnavailable
from integrations.storage.db import make_engine, make_sessionmaker, upgrade_to_head
from integrations.storage.repositories import ConversationLog
from tests.bot.handoff.test_service import AGENTS, BUYER, MERCHANT_CHAT, FakePlatform, Rig

COMPLAINT = "buyer [complain]: 这商家是骗子吧 退单"


async def test_a_complaint_accusing_the_merchant_goes_to_agents_only(make_rig: Any) -> None:
    rig: Rig = make_rig(FakePlatform(summary=COMPLAINT, accuses=True))
    notice = await rig.service.start(BUYER, "E1", "KM20261128001")
    assert notice is not None and "排在第 1 位" in notice.text
    ticket = await rig.service.active_for_buyer(BUYER.user_id)
    assert ticket is not None and ticket.route == "agents" and ticket.accuses_merchant
    (card,) = rig.messenger.to(AGENTS)
    assert "骗子" in card["text"] and "勿转给商家" in card["text"]
    # the merchant only learns that the platform handles it, and why: never the complaint
    (told,) = rig.messenger.to(MERCHANT_CHAT)
    assert "平台客服处理" in told["text"] and "E1" in told["text"] and "骗子" not in told["text"]
    assert told.get("buttons") is None
    assert "merchant_notified" not in rig.platform.states
    assert not rig.service.may_act(ticket, MERCHANT_CHAT)
    assert await rig.service.from_buyer(ticket, 21)  # relayed to the agents, not to the merchant
    assert rig.messenger.sent[-1]["chat"] == AGENTS
    assert await rig.service.pass_to_platform(ticket, _merchant_actor()) is not None  # no way back


async def test_a_new_request_joins_the_open_ticket_and_an_accusation_takes_it_from_the_merchant(
    make_rig: Any,
) -> None:
    platform = FakePlatform()
    rig: Rig = make_rig(platform)
    await rig.service.start(BUYER, "E1", "KM20261128001")
    ticket = await rig.service.active_for_buyer(BUYER.user_id)
    assert ticket is not None and ticket.route == "merchant"
    # the redelivered note changes nothing
    again = await rig.service.start(BUYER, "E1", "KM20261128001")
    assert again is not None and "补充" not in again.text
    before = len(rig.messenger.to(MERCHANT_CHAT))
    # the platform added a second request to the same ticket (one open ticket per buyer and order)
    platform.summary += "\n---\nbuyer [human_handoff]: 还是没到账 快点"
    added = await rig.service.start(BUYER, "E1", "KM20261128001")
    assert added is not None and "已补充到进行中的工单 E1" in added.text
    (note,) = rig.messenger.to(MERCHANT_CHAT)[before:]
    assert "再次请求人工" in note["text"] and "还是没到账" in note["text"]
    # then an accusation: the ticket leaves the merchant, who sees why but not the complaint
    platform.summary += "\n---\n" + COMPLAINT
    platform.accuses = True
    moved = await rig.service.start(BUYER, "E1", "KM20261128001")
    assert moved is not None and "已补充" in moved.text
    ticket = await rig.service.active_for_buyer(BUYER.user_id)
    assert ticket is not None and ticket.route == "agents" and ticket.accuses_merchant
    to_merchant = rig.messenger.to(MERCHANT_CHAT)[before + 1 :]
    assert to_merchant and all("骗子" not in m["text"] for m in to_merchant)
    assert any("已转平台客服" in m["text"] and "投诉" in m["text"] for m in to_merchant)
    agents = rig.messenger.to(AGENTS)
    assert any("骗子" in m["text"] for m in agents)
    actions = [a.action for a in await rig.service.repository.audit_log("E1")]
    assert actions.count("request_added") == 2 and "taken_from_merchant" in actions
    assert not rig.service.may_act(ticket, MERCHANT_CHAT)


def _merchant_actor() -> Any:
    from bot.handoff.ports import Actor

    return Actor(1, "店主", MERCHANT_CHAT)


class DownAssistant:
    async def send(self, sender_id: str, text: str, metadata: Mapping[str, Any]) -> list[BotReply]:
        raise RasaUnavailable("connection refused")


class Escalator:
    def __init__(self, platform: FakePlatform) -> None:
        self.platform = platform
        self.calls: list[tuple[int, str, str]] = []

    async def escalate(self, user_id: int, reason: str, summary: str) -> str | None:
        self.calls.append((user_id, reason, summary))
        self.platform.summary = summary
        return "E1"


async def test_the_assistant_down_handover_reaches_a_person(make_rig: Any, tmp_path: Path) -> None:
    platform = FakePlatform(merchant_id=None, order_id=None)
    rig: Rig = make_rig(platform)
    url = f"sqlite+aiosqlite:///{tmp_path / 'log.db'}"
    await upgrade_to_head(url)
    escalator = Escalator(platform)
    conversation = HandoffAwareConversation(
        rig.service,
        DownAssistant(),
        ConversationLog(make_sessionmaker(make_engine(url))),
        MemoryPendingStore(),
        escalator,
        handoff_after_seconds=0,
    )
    for text in ("充值一直没到", "你们人呢"):
        await conversation.handle(BuyerMessage(BUYER.chat_id, BUYER.user_id, text, "zh"))
    delivered: list[BotReply] = []

    async def deliver(chat_id: int, replies: list[BotReply]) -> None:
        delivered.extend(replies)

    assert await conversation.retry_pending(deliver) == 2
    assert escalator.calls == [(BUYER.user_id, "assistant_unavailable", "充值一直没到\n你们人呢")]
    said, notice = delivered
    assert "E1" in (said.text or "") and "排在第 1 位" in (notice.text or "")
    assert notice.buttons and notice.buttons[0].payload == "/handoff_end"
    # a person sees it: a topic in the agents' group whose card carries the kept messages
    ticket = await rig.service.active_for_buyer(BUYER.user_id)
    assert ticket is not None and ticket.topic_id is not None and ticket.reason == "human_request"
    (card,) = rig.messenger.to(AGENTS)
    assert "充值一直没到" in card["text"] and "你们人呢" in card["text"]
    # and the buyer's next message goes to that person
    assert await rig.service.from_buyer(ticket, 31)
    assert rig.messenger.sent[-1]["chat"] == AGENTS


def test_the_order_a_waiting_buyer_mentioned_is_attached() -> None:
    assert mentioned_order("我的订单 KM20261127001 没到\n还有km20261127002呢") == "KM20261127002"
    assert mentioned_order("订单号是123456") is None
    assert mentioned_order("XKM20261127001") is None
