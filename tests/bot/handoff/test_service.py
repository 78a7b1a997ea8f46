"""HandoffService with in-memory ports and a real (SQLite) repository: routing, relay, SLA, close, CSAT."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.handoff.hours import BusinessHours
from bot.handoff.masking import mask_number, mask_text
from bot.handoff.ports import Actor, ChatUnreachable, CopyUnavailable, Keyboard, TopicGone, TopicsUnavailable
from bot.handoff.service import BuyerRef, HandoffService, HandoffSettings
from bot.kv import MemoryKeyValueStore
from integrations.platform.errors import PlatformError
from integrations.platform.models import Escalation, EscalationState, Merchant, Order, RefundRequest
from integrations.storage.db import make_engine, make_sessionmaker
from integrations.storage.handoff import HandoffRepository
from integrations.storage.models import Base, ChatMessage
from integrations.storage.repositories import LoggedMessage

AGENTS = -100900
MERCHANT_CHAT = -1002001
BUYER = BuyerRef(user_id=7001, chat_id=7001, language="zh")
NOW = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


def order(**changes: Any) -> Order:
    data: dict[str, Any] = {
        "order_id": "KM20261128001",
        "buyer_id": "B1001",
        "state": "processing",
        "product": {"kind": "game_card", "name": "王者荣耀 点券 60", "sku": "WZRY-60"},
        "amount": "6.00",
        "currency": "CNY",
        "created_at": NOW.isoformat(),
        "progress": {"step": "processing", "note": "正在充值"},
        "recharge_target": {"account": "13800138000", "region": "安卓QQ区"},
        "refund_guarantee": {
            "applies": True,
            "overdue": False,
            "status": "none",
            "refund_amount": "6.00",
            "terms": "-",
        },
        "merchant": {"merchant_id": "M01", "name": "星辰游戏点卡"},
        "card_secret": "ABCD-EFGH-IJKL-MNOP",
    }
    data.update(changes)
    return Order.model_validate(data)


@dataclass
class FakeMessenger:
    sent: list[dict[str, Any]] = field(default_factory=list)
    topics: dict[int, str] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    unreachable: set[int] = field(default_factory=set)
    no_topics: set[int] = field(default_factory=set)
    no_copy: bool = False
    closed: set[int] = field(default_factory=set)
    topic_chat: dict[int, int] = field(default_factory=dict)
    next_id: int = 100

    def _new(self, **record: Any) -> int:
        if record["chat"] in self.unreachable:
            raise ChatUnreachable("chat not found")
        if record.get("thread") in self.deleted:
            raise TopicGone("message thread not found")
        self.next_id += 1
        self.sent.append({**record, "id": self.next_id})
        return self.next_id

    async def send_text(
        self,
        chat_id: int,
        text: str,
        *,
        thread_id: int | None = None,
        reply_to: int | None = None,
        buttons: Keyboard | None = None,
    ) -> int:
        return self._new(
            kind="text", chat=chat_id, text=text, thread=thread_id, reply_to=reply_to, buttons=buttons
        )

    async def copy(
        self,
        to_chat: int,
        from_chat: int,
        message_id: int,
        *,
        thread_id: int | None = None,
        reply_to: int | None = None,
    ) -> int:
        if self.no_copy:
            raise CopyUnavailable("Not Found")
        return self._new(
            kind="copy", chat=to_chat, source=(from_chat, message_id), thread=thread_id, reply_to=reply_to
        )

    async def create_topic(self, chat_id: int, name: str) -> int:
        if chat_id in self.no_topics:
            raise TopicsUnavailable("Bad Request: the chat is not a forum")
        self.next_id += 1
        self.topics[self.next_id] = name
        self.topic_chat[self.next_id] = chat_id
        return self.next_id

    async def edit_topic(self, chat_id: int, thread_id: int, name: str) -> bool:
        self.topics[thread_id] = name
        self.sent.append({"kind": "topic", "chat": chat_id, "thread": thread_id, "name": name})
        return True

    async def close_topic(self, chat_id: int, thread_id: int) -> bool:
        self.closed.add(thread_id)
        return True

    async def reopen_topic(self, chat_id: int, thread_id: int) -> bool:
        self.closed.discard(thread_id)
        return True

    async def set_buttons(self, chat_id: int, message_id: int, buttons: Keyboard | None) -> None:
        self.sent.append({"kind": "buttons", "chat": chat_id, "message": message_id, "buttons": buttons})

    def to(self, chat: int) -> list[dict[str, Any]]:
        return [item for item in self.sent if item.get("chat") == chat and item["kind"] in ("text", "copy")]


@dataclass
class FakePlatform:
    merchant_id: str | None = "M01"
    merchant_chat: int | None = MERCHANT_CHAT
    states: list[str] = field(default_factory=list)
    csat: list[int] = field(default_factory=list)
    actions: list[tuple[str, Any]] = field(default_factory=list)
    summary: str = (
        "buyer [order_status]: 我的订单 KM20261128001 手机 13800138000 还没到\nbot: action_order_status"
    )
    accuses: bool = False
    order_id: str | None = "KM20261128001"

    def _escalation(self, state: str = "open") -> Escalation:
        return Escalation.model_validate(
            {
                "escalation_id": "E1",
                "order_id": self.order_id,
                "buyer_id": "B1001",
                "merchant_id": self.merchant_id,
                "reason": "human_request",
                "summary": self.summary,
                "accuses_merchant": self.accuses,
                "state": state,
                "created_at": NOW.isoformat(),
                "updated_at": NOW.isoformat(),
            }
        )

    async def get_escalation(self, escalation_id: str) -> Escalation:
        return self._escalation()

    async def get_order(self, buyer_id: str, order_id: str) -> Order:
        return order()

    async def get_merchant(self, merchant_id: str) -> Merchant:
        return Merchant(
            merchant_id="M01", name="星辰游戏点卡", telegram_chat_id=self.merchant_chat, support_hours="-"
        )

    async def update_escalation(
        self, escalation_id: str, state: EscalationState, *, idempotency_key: str | None = None
    ) -> Escalation:
        self.states.append(state)
        return self._escalation(state)

    async def submit_csat(
        self, escalation_id: str, score: int, *, idempotency_key: str | None = None
    ) -> Escalation:
        self.csat.append(score)
        return self._escalation("resolved")

    async def restore_order(
        self, buyer_id: str, order_id: str, *, idempotency_key: str | None = None
    ) -> Order:
        self.actions.append(("restore", order_id))
        return order()

    async def fix_recharge_target(
        self,
        buyer_id: str,
        order_id: str,
        *,
        account: str | None = None,
        region: str | None = None,
        idempotency_key: str | None = None,
    ) -> Order:
        self.actions.append(("fix", account))
        if account == "bad":
            raise PlatformError("invalid_account")
        return order(recharge_target={"account": account, "region": region})

    async def request_refund(
        self, buyer_id: str, order_id: str, reason: str, *, idempotency_key: str | None = None
    ) -> RefundRequest:
        raise PlatformError("not_allowed")


@dataclass
class FakeAssistant:
    events: list[tuple[str, str]] = field(default_factory=list)

    async def pause(self, sender_id: str) -> None:
        self.events.append(("pause", sender_id))

    async def resume(self, sender_id: str) -> None:
        self.events.append(("resume", sender_id))


class FakeTranscripts:
    def __init__(self) -> None:
        self.logged: list[LoggedMessage] = []

    async def transcript(self, chat_id: int, limit: int = 100) -> list[ChatMessage]:
        return [
            ChatMessage(chat_id=chat_id, direction="in", kind="text", text="我的手机 13800138000 话费没到"),
            ChatMessage(chat_id=chat_id, direction="out", kind="text", text="正在为您查询"),
        ]

    async def append(self, message: LoggedMessage) -> None:
        self.logged.append(message)


@dataclass
class Rig:
    service: HandoffService
    messenger: FakeMessenger
    platform: FakePlatform
    assistant: FakeAssistant
    clock: list[datetime]
    transcripts: FakeTranscripts


@pytest_asyncio.fixture
async def make_rig(tmp_path: Path) -> AsyncIterator[Any]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)

    def build(
        platform: FakePlatform | None = None, hours: str = "00:00-24:00", *, first_names: bool = False
    ) -> Rig:
        clock = [NOW]
        fakes = (FakeMessenger(), platform or FakePlatform(), FakeAssistant())
        transcripts = FakeTranscripts()
        settings = HandoffSettings(
            AGENTS,
            timedelta(minutes=10),
            BusinessHours.parse(hours, "Asia/Shanghai"),
            staff_first_names=first_names,
        )
        service = HandoffService(
            HandoffRepository(make_sessionmaker(engine)),
            fakes[1],
            fakes[2],
            MemoryKeyValueStore(),
            transcripts,
            settings,
            clock=lambda: clock[0],
        )
        service.attach(fakes[0])
        return Rig(service, *fakes, clock, transcripts)

    yield build
    await engine.dispose()


async def test_ticket_without_merchant_goes_to_an_agents_topic_with_a_masked_card(make_rig: Any) -> None:
    rig: Rig = make_rig(FakePlatform(merchant_id=None))
    notice = await rig.service.start(BUYER, "E1", "KM20261128001")
    assert notice is not None and "第 1 位" in notice.text and notice.end_button
    assert len(rig.messenger.topics) == 1
    (card,) = rig.messenger.to(AGENTS)
    assert card["thread"] in rig.messenger.topics
    assert "KM20261128001" in card["text"] and "138****8000" in card["text"]
    assert "13800138000" not in card["text"] and "ABCD-EFGH" not in card["text"]
    assert "action_order_status" in card["text"] and "话费没到" in card["text"]
    assert rig.assistant.events == [("pause", "tg-7001")]
    assert (await rig.service.active_for_buyer(BUYER.user_id)) is not None
    # the same escalation again (a redelivered reply) changes nothing
    await rig.service.start(BUYER, "E1", "KM20261128001")
    assert len(rig.messenger.topics) == 1


async def test_relay_both_ways_once_with_reply_mapping_and_auto_take(make_rig: Any) -> None:
    rig: Rig = make_rig(FakePlatform(merchant_id=None))
    await rig.service.start(BUYER, "E1", None)
    ticket = await rig.service.active_for_buyer(BUYER.user_id)
    assert ticket is not None and ticket.topic_id is not None
    assert await rig.service.from_buyer(ticket, 11)
    assert not await rig.service.from_buyer(ticket, 11)  # a duplicate is not relayed again
    relayed = rig.messenger.to(AGENTS)[-1]
    assert relayed["source"] == (BUYER.chat_id, 11) and relayed["thread"] == ticket.topic_id
    agent = Actor(501, "客服小李", AGENTS)
    assert await rig.service.from_human(ticket, agent, 900, reply_to=relayed["id"])
    to_buyer = rig.messenger.to(BUYER.chat_id)[-1]
    assert to_buyer["source"] == (AGENTS, 900) and to_buyer["reply_to"] == 11
    # the buyer replies to the agent's message: threaded onto the agent's original in the topic
    await rig.service.from_buyer(ticket, 12, reply_to=to_buyer["id"])
    assert rig.messenger.to(AGENTS)[-1]["reply_to"] == 900
    # an edit is relayed once per revision, anchored on the relayed message
    assert await rig.service.from_buyer(ticket, 11, edit_revision=5, edited_text="改一下")
    assert not await rig.service.from_buyer(ticket, 11, edit_revision=5, edited_text="改一下")
    edit = rig.messenger.to(AGENTS)[-1]
    assert "改一下" in edit["text"] and edit["reply_to"] == relayed["id"]
    fresh = await rig.service.repository.get("E1")
    assert fresh is not None and fresh.state == "assigned" and fresh.assignee_name == "客服小李"
    assert "agent_assigned" in rig.platform.states


async def test_merchant_first_then_sla_expiry_moves_the_ticket_to_agents(make_rig: Any) -> None:
    rig: Rig = make_rig()
    notice = await rig.service.start(BUYER, "E1", "KM20261128001")
    assert notice is not None and "商家" in notice.text
    (card,) = rig.messenger.to(MERCHANT_CHAT)
    assert [title for title, _ in card["buttons"][0]] == ["✅ 接单", "♻️ 恢复订单"]
    assert "merchant_notified" in rig.platform.states
    assert not rig.messenger.topics
    assert await rig.service.expire_merchant_slas() == 0
    rig.clock[0] = NOW + timedelta(minutes=11)
    assert await rig.service.expire_merchant_slas() == 1
    assert len(rig.messenger.topics) == 1
    assert any("已转平台客服" in m.get("text", "") for m in rig.messenger.to(MERCHANT_CHAT))
    assert any("商家暂未回复" in m.get("text", "") for m in rig.messenger.to(BUYER.chat_id))
    ticket = await rig.service.active_for_buyer(BUYER.user_id)
    assert ticket is not None and ticket.route == "agents" and ticket.state == "queued"
    assert not rig.service.may_act(ticket, MERCHANT_CHAT)  # the merchant no longer holds it


async def test_a_merchant_answer_stops_the_sla(make_rig: Any) -> None:
    rig: Rig = make_rig()
    await rig.service.start(BUYER, "E1", None)
    ticket = await rig.service.active_for_buyer(BUYER.user_id)
    assert ticket is not None
    found, _ = await rig.service.ticket_for_staff(MERCHANT_CHAT, None, ticket.card_message_id)
    assert found is not None and found.ticket_id == "E1"
    assert await rig.service.from_human(ticket, Actor(9, "店主", MERCHANT_CHAT), 55)
    rig.clock[0] = NOW + timedelta(hours=1)
    assert await rig.service.expire_merchant_slas() == 0
    assert not await rig.service.from_human(ticket, Actor(9, "路人", -555), 56)  # not the ticket's chat


async def test_unreachable_merchant_chat_goes_straight_to_agents(make_rig: Any) -> None:
    rig: Rig = make_rig()
    rig.messenger.unreachable.add(MERCHANT_CHAT)
    await rig.service.start(BUYER, "E1", None)
    ticket = await rig.service.active_for_buyer(BUYER.user_id)
    assert ticket is not None and ticket.route == "agents" and len(rig.messenger.topics) == 1


async def test_a_deleted_topic_is_recreated_with_its_card(make_rig: Any) -> None:
    rig: Rig = make_rig(FakePlatform(merchant_id=None))
    await rig.service.start(BUYER, "E1", None)
    ticket = await rig.service.active_for_buyer(BUYER.user_id)
    assert ticket is not None and ticket.topic_id is not None
    rig.messenger.deleted.add(ticket.topic_id)
    assert await rig.service.from_buyer(ticket, 21)
    assert len(rig.messenger.topics) == 2
    new_topic = max(rig.messenger.topics)
    card, copy = rig.messenger.to(AGENTS)[-2:]
    assert card["thread"] == new_topic and "工单" in card["text"]
    assert copy["thread"] == new_topic and copy["source"] == (BUYER.chat_id, 21)
    fresh = await rig.service.repository.get("E1")
    assert fresh is not None and fresh.topic_id == new_topic
    assert "topic_recreated" in [row.action for row in await rig.service.repository.audit_log("E1")]


async def test_close_resumes_the_assistant_and_asks_for_csat(make_rig: Any) -> None:
    rig: Rig = make_rig(FakePlatform(merchant_id=None))
    await rig.service.start(BUYER, "E1", "KM20261128001")
    ticket = await rig.service.active_for_buyer(BUYER.user_id)
    assert ticket is not None
    agent = Actor(501, "客服小李", AGENTS)
    assert "已记录" in await rig.service.note(ticket, agent, "buyer seems ok")
    answer = await rig.service.close(ticket, agent)
    assert "已结束" in answer
    assert rig.assistant.events[-1] == ("resume", "tg-7001")
    assert await rig.service.active_for_buyer(BUYER.user_id) is None
    ask = rig.messenger.to(BUYER.chat_id)[-1]
    assert [data for _, data in ask["buttons"][0]] == [f"csat:E1:{n}" for n in range(1, 6)]
    assert "已结束" in await rig.service.close(ticket, agent)  # twice: nothing more happens
    assert await rig.service.rate("E1", 999, 5) is None  # only the buyer rates
    assert await rig.service.rate("E1", BUYER.user_id, 4) == "zh"
    stored = await rig.service.repository.get("E1")
    assert stored is not None and stored.csat == 4 and stored.state == "closed"
    assert rig.platform.csat == [4] and rig.platform.states[-2:] == ["resolved", "closed"]
    actions = [row.action for row in await rig.service.repository.audit_log("E1")]
    assert actions == ["escalated", "routed_agents", "note", "close", "csat"]


async def test_platform_actions_are_logged_with_who_did_them(make_rig: Any) -> None:
    rig: Rig = make_rig(FakePlatform(merchant_id=None))
    await rig.service.start(BUYER, "E1", "KM20261128001")
    ticket = await rig.service.active_for_buyer(BUYER.user_id)
    assert ticket is not None
    agent = Actor(501, "客服小李", AGENTS)
    assert "已恢复" in await rig.service.platform_action(ticket, agent, "restore")
    fixed = await rig.service.platform_action(ticket, agent, "fix", "13900139000 广东")
    assert "139****9000" in fixed and "13900139000" not in fixed
    assert "失败" in await rig.service.platform_action(ticket, agent, "refund")
    assert "/fix" in await rig.service.platform_action(ticket, agent, "fix", "")
    log = await rig.service.repository.audit_log("E1")
    assert [(row.action, row.actor_name) for row in log[-3:]] == [
        ("restore", "客服小李"),
        ("fix", "客服小李"),
        ("refund_failed", "客服小李"),
    ]
    assert "13900139000" not in log[-2].detail
    assert any(
        "13900139000" in m.get("text", "") for m in rig.messenger.to(BUYER.chat_id)
    )  # the buyer sees it


async def test_outside_business_hours_the_buyer_is_told_when(make_rig: Any) -> None:
    rig: Rig = make_rig(FakePlatform(merchant_id=None), hours="20:00-23:00")
    notice = await rig.service.start(BUYER, "E1", None)
    assert notice is not None and "非工作时间" in notice.text and "11-28 20:00" in notice.text


def test_masking() -> None:
    assert mask_number("13800138000") == "138****8000"
    assert mask_number("2876543210") == "287*****10"
    text = mask_text("卡密：ABCD1234 订单 KM20261127001 手机13800138000 QQ 123456789 码 AAAA-BBBB-CCCC-DDDD")
    assert "ABCD1234" not in text and "13800138000" not in text and "123456789" not in text
    assert "AAAA-BBBB" not in text and "KM20261127001" in text


def test_business_hours() -> None:
    hours = BusinessHours.parse("22:00-02:00", "Asia/Shanghai")
    assert hours.is_open(datetime(2026, 1, 1, 15, 0, tzinfo=UTC))  # 23:00 local
    assert not hours.is_open(datetime(2026, 1, 1, 4, 0, tzinfo=UTC))  # 12:00 local
    assert hours.next_open(datetime(2026, 1, 1, 4, 0, tzinfo=UTC)).hour == 22
    assert BusinessHours.parse("00:00-24:00", "UTC").always_open
    with pytest.raises(ValueError):
        BusinessHours.parse("9-17", "UTC")
    with pytest.raises(ValueError):
        BusinessHours.parse("09:00-17:00", "Mars/Base")
