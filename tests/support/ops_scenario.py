"""A known mix of conversations for the operators' numbers, written through the real repositories.

Eleven buyer conversations on one day (Asia/Shanghai): saves of each kind, insisted cancels with several
tags, a restored order, an escalated cancel whose ticket missed the merchant's SLA, and a merchant ticket
reopened by the same buyer. ``EXPECTED`` is what ``/ops/api`` must say about it, worked out by hand in the
comments below (README "The operators' numbers" defines each number).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations.storage.handoff import HandoffRelay, HandoffRepository, HandoffTicket, RelayClaim
from integrations.storage.repositories import CancellationOutcomes, ConversationLog, LoggedMessage, Outcome

DAY = date(2026, 11, 30)
T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@dataclass(frozen=True)
class Cancel:
    chat: int
    tag: str
    outcome: str
    detail: str
    merchant: str
    kind: str
    language: str
    offered: bool


# chat, reason tag, outcome, detail, merchant, product kind, language, save offer made
CANCELS = [
    Cancel(1001, "wrong_account", "saved", "fix_account", "M1", "game_card", "zh", True),
    Cancel(1002, "wrong_region", "saved", "fix_region", "M1", "game_card", "zh", True),
    Cancel(1003, "arrival_too_slow", "saved", "kept", "M2", "phone_topup", "en", True),
    Cancel(1004, "payment_problem", "saved", "kept", "M2", "membership", "zh", True),
    Cancel(1005, "user_mistake", "cancelled", "user_mistake", "M1", "game_card", "zh", False),
    Cancel(1006, "arrival_too_slow", "cancelled", "arrival_too_slow", "M2", "phone_topup", "en", True),
    Cancel(1007, "found_cheaper", "cancelled", "found_cheaper", "M1", "membership", "zh", False),
    Cancel(1008, "demand_changed", "cancelled", "demand_changed", "M2", "game_card", "en", False),
    Cancel(1009, "merchant_out_of_stock", "escalated", "human", "M1", "game_card", "zh", False),
]
LANGUAGE = {1001: "zh", 1002: "zh", 1003: "en", 1004: "zh", 1005: "zh", 1006: "en", 1007: "zh"}
LANGUAGE |= {1008: "en", 1009: "zh", 1010: "en"}

EXPECTED: dict[str, Any] = {
    # 4 saved + 4 cancelled + 1 escalated requests; offers: 1001-1004 and 1006; saved: 4 + 1005 restored
    "funnel": {
        "requests": 9,
        "offers": 5,
        "saved": 5,
        "fixed_account": 1,
        "fixed_region": 1,
        "kept_waiting": 1,
        "payment_help": 1,
        "restored": 1,
        "cancelled": 4,
        "escalated": 1,
        "save_rate": 0.5556,
    },
    "arrival_too_slow": {"requests": 2, "offers": 2, "saved": 1, "cancelled": 1, "save_rate": 0.5},
    # 10 chats, chat 1010 twice (2 h apart) = 11 conversations; tickets T1 (1009), T2 and T3 (1010): 3 of them
    "containment": {
        "conversations": 11,
        "handed_off": 3,
        "contained": 8,
        "containment_rate": 0.7273,
        "handoff_rate": 0.2727,
        "tickets": 3,
        "accepted": 2,
        "resolved": 2,
        "reopened": 1,  # T2 resolved, T3 for the same order the same day
        "reopen_rate": 0.5,
        "first_reply_count": 2,
        "first_reply_median_seconds": 60.0,  # 90 s (T1) and 30 s (T2)
        "routed_to_merchant": 2,
        "merchant_sla_expired": 1,  # T1 went to the agents after the merchant's SLA
        "merchant_sla_hit_rate": 0.5,
    },
    "csat": {"resolved": 2, "answers": 2, "response_rate": 1.0, "average": 4.0},
    "csat_distribution": {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1},
    "merchants": {
        "M1": {"requests": 5, "saved": 3, "cancelled": 2, "escalated": 1, "tickets": 1, "csat_average": 5.0},
        "M2": {"requests": 4, "saved": 2, "cancelled": 2, "escalated": 0, "tickets": 2, "csat_average": 3.0},
    },
    # what the handoff repository's audit log moves in /metrics
    "metrics": {
        'kmbot_handoffs_total{event="opened"}': 3.0,
        'kmbot_handoffs_total{event="accepted"}': 2.0,
        'kmbot_handoffs_total{event="closed"}': 2.0,
        "kmbot_merchant_sla_expired_total": 1.0,
        'kmbot_csat_answers_total{score="5"}': 1.0,
        'kmbot_csat_answers_total{score="3"}': 1.0,
    },
}


async def seed(sessions: async_sessionmaker[AsyncSession], handoff: HandoffRepository) -> None:
    log = ConversationLog(sessions)
    outcomes = CancellationOutcomes(sessions)
    for i, chat in enumerate(range(1001, 1011)):
        at = T0 + timedelta(minutes=3 * i)
        await _exchange(log, chat, at)
    # chat 1010 comes back two hours later: a second conversation
    await _exchange(log, 1010, T0 + timedelta(hours=2))

    for i, c in enumerate(CANCELS):
        at = T0 + timedelta(minutes=3 * i, seconds=40)
        await outcomes.record(
            Outcome(
                f"{c.chat}",
                f"O-{c.chat}",
                c.tag,
                c.outcome,
                c.detail,
                f"B{c.chat}",
                c.merchant,
                c.kind,
                c.language,
                c.offered,
                at,
            )
        )
    await outcomes.record(  # 1005's order restored ten minutes after it was cancelled
        Outcome(
            "1005",
            "O-1005",
            "user_mistake",
            "restored",
            "restored",
            "B1005",
            "M1",
            "game_card",
            "zh",
            False,
            T0 + timedelta(minutes=22),
        )
    )

    # T1: the escalated out-of-stock cancel; merchant M1 misses the SLA, agent Alice takes it and answers
    t1 = T0 + timedelta(minutes=24, seconds=50)
    await _ticket(handoff, "T1", 1009, "O-1009", "M1", "zh", t1)
    await handoff.audit("T1", "routed_merchant", detail="M1 shop")
    await handoff.audit("T1", "routed_agents", detail="sla_expired")
    await handoff.audit("T1", "take", actor_id=77, actor_name="Alice")
    await _reply(sessions, handoff, "T1", 1009, t1 + timedelta(seconds=90))
    await handoff.update(
        "T1", state="resolved", resolved_at=t1 + timedelta(minutes=10), assignee_name="Alice"
    )
    await handoff.audit("T1", "close", actor_id=77, actor_name="Alice")
    await handoff.update("T1", state="closed", csat=5, csat_at=t1 + timedelta(minutes=11))
    await handoff.audit("T1", "csat", actor_id=1009, actor_name="buyer", detail="5")

    # T2: a complaint handled by merchant M2 in time; rated 3; T3: the same order again two hours later
    t2 = T0 + timedelta(minutes=27, seconds=50)
    await _ticket(handoff, "T2", 1010, "O-1010", "M2", "en", t2)
    await handoff.audit("T2", "routed_merchant", detail="M2 shop")
    await handoff.audit("T2", "take", actor_id=88, actor_name="M2 shop")
    await _reply(sessions, handoff, "T2", 1010, t2 + timedelta(seconds=30))
    await handoff.update(
        "T2", state="resolved", resolved_at=t2 + timedelta(minutes=5), assignee_name="M2 shop"
    )
    await handoff.audit("T2", "close", actor_id=88, actor_name="M2 shop")
    await handoff.update("T2", state="closed", csat=3, csat_at=t2 + timedelta(minutes=6))
    await handoff.audit("T2", "csat", actor_id=1010, actor_name="buyer", detail="3")
    await _ticket(handoff, "T3", 1010, "O-1010", "M2", "en", T0 + timedelta(hours=2, seconds=50))
    await handoff.audit("T3", "routed_agents", detail="no merchant chat")


async def _exchange(log: ConversationLog, chat: int, at: datetime) -> None:
    language = LANGUAGE[chat]
    await log.append(
        LoggedMessage(chat, "in", "text", "我要取消订单", telegram_user_id=chat, language=language, at=at)
    )
    await log.append(LoggedMessage(chat, "out", "text", "好的", at=at + timedelta(seconds=2)))
    await log.append(
        LoggedMessage(chat, "in", "text", "嗯", telegram_user_id=chat, at=at + timedelta(seconds=30))
    )
    await log.append(LoggedMessage(chat, "out", "text", "已处理", at=at + timedelta(seconds=32)))


async def _ticket(
    handoff: HandoffRepository,
    ticket_id: str,
    chat: int,
    order: str,
    merchant: str,
    language: str,
    at: datetime,
) -> None:
    await handoff.create(
        HandoffTicket(
            ticket_id=ticket_id,
            order_id=order,
            buyer_id=f"B{chat}",
            buyer_user_id=chat,
            buyer_chat_id=chat,
            language=language,
            reason="complain",
            summary="",
            merchant_id=merchant,
            route="agents",
            state="queued",
            created_at=at,
            updated_at=at,
        )
    )
    await handoff.audit(ticket_id, "escalated", detail="complain")


async def _reply(
    sessions: async_sessionmaker[AsyncSession],
    handoff: HandoffRepository,
    ticket_id: str,
    chat: int,
    at: datetime,
) -> None:
    """A human's reply relayed to the buyer at ``at`` (the relay row's time is what the numbers read)."""
    relay_id = await handoff.claim_relay(RelayClaim(ticket_id, "to_buyer", -100, int(ticket_id[1:]), chat))
    assert relay_id is not None
    await handoff.complete_relay(relay_id, 5000 + relay_id, None)
    async with sessions.begin() as session:  # the repository stamps "now"; the scenario happened at ``at``
        await session.execute(update(HandoffRelay).where(HandoffRelay.id == relay_id).values(created_at=at))
