"""Telegram binding tokens, escalations, merchant scores and SLAs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from integrations.platform import InvalidToken, NotAllowed, NotLinked, PlatformClient
from integrations.platform.models import Sla
from sandbox.testing import SandboxAdmin

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------- binding tokens


async def test_token_binds_once(platform: PlatformClient) -> None:
    token = await platform.issue_link_token("B1003")
    assert token.deep_link.endswith(f"?start={token.token}")
    assert len(token.token) <= 64
    link = await platform.redeem_link_token(token.token, 20003)
    assert (link.buyer_id, link.telegram_user_id) == ("B1003", 20003)
    assert (await platform.get_link(20003)).buyer_id == "B1003"
    with pytest.raises(InvalidToken) as reused:
        await platform.redeem_link_token(token.token, 20004)
    assert (reused.value.code, reused.value.status) == ("token_used", 409)


async def test_token_expires_after_15_minutes(platform: PlatformClient, admin: SandboxAdmin) -> None:
    token = await platform.issue_link_token("B1003")
    assert token.expires_at == await admin.advance(0) + timedelta(minutes=15)
    await admin.advance(15 * 60)
    with pytest.raises(InvalidToken) as expired:
        await platform.redeem_link_token(token.token, 20003)
    assert (expired.value.code, expired.value.status) == ("token_expired", 410)
    with pytest.raises(InvalidToken) as unknown:
        await platform.redeem_link_token("no-such-token", 20003)
    assert (unknown.value.code, unknown.value.status) == ("token_unknown", 404)


async def test_concurrent_redemptions_of_one_token_bind_once(platform: PlatformClient) -> None:
    token = await platform.issue_link_token("B1003")
    results = await asyncio.gather(
        *(platform.redeem_link_token(token.token, 30000 + i) for i in range(6)), return_exceptions=True
    )
    linked = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, InvalidToken)]
    assert len(linked) == 1 and len(refused) == 5


async def test_concurrent_links_of_one_telegram_user_do_not_collide(platform: PlatformClient) -> None:
    tokens = [await platform.issue_link_token(buyer) for buyer in ("B1002", "B1003", "B1002", "B1003")]
    links = await asyncio.gather(*(platform.redeem_link_token(t.token, 40000) for t in tokens))
    assert {link.telegram_user_id for link in links} == {40000}
    assert (await platform.get_link(40000)).buyer_id in {"B1002", "B1003"}


async def test_relinking_moves_the_telegram_user_and_unlink_is_idempotent(platform: PlatformClient) -> None:
    token = await platform.issue_link_token("B1003")
    await platform.redeem_link_token(token.token, 10001)  # 10001 was B1001's
    assert (await platform.get_link(10001)).buyer_id == "B1003"
    await platform.unlink(10001)
    await platform.unlink(10001)
    with pytest.raises(NotLinked):
        await platform.get_link(10001)


# ---------------------------------------------------------------- escalations


async def test_escalation_moves_forward_only(platform: PlatformClient, admin: SandboxAdmin) -> None:
    created = await platform.create_escalation(
        "B1001", "arrival_too_slow", "话费 50 分钟未到账", order_id="KM20261127004"
    )
    assert (created.state, created.merchant_id, created.csat) == ("open", "M02", None)
    with pytest.raises(NotAllowed) as early_csat:
        await platform.submit_csat(created.escalation_id, 5)
    assert early_csat.value.code == "invalid_state_transition"

    await admin.advance(60)
    notified = await platform.update_escalation(created.escalation_id, "merchant_notified")
    assert notified.updated_at > created.updated_at
    same = await platform.update_escalation(created.escalation_id, "merchant_notified")
    assert same == notified
    with pytest.raises(NotAllowed) as backwards:
        await platform.update_escalation(created.escalation_id, "open")
    assert backwards.value.code == "invalid_state_transition"
    resolved = await platform.update_escalation(
        created.escalation_id, "resolved"
    )  # skipping ahead is allowed
    rated = await platform.submit_csat(resolved.escalation_id, 4)
    assert rated.csat == 4
    closed = await platform.update_escalation(created.escalation_id, "closed")
    assert (closed.state, closed.csat) == ("closed", 4)

    events = await admin.events(type_="escalation.updated")
    assert [e["data"]["state"] for e in events] == ["merchant_notified", "resolved", "resolved", "closed"]
    assert events[0]["data"]["telegram_user_ids"] == [10001]


async def test_escalation_lists_filter_by_state_and_buyer(platform: PlatformClient) -> None:
    first = await platform.create_escalation("B1001", "complain", "态度差")
    second = await platform.create_escalation("B1002", "human_handoff", "要人工")
    await platform.update_escalation(second.escalation_id, "agent_assigned")
    assert [e.escalation_id for e in await platform.list_escalations("open")] == [first.escalation_id]
    assert [e.escalation_id for e in await platform.list_escalations(buyer_id="B1002")] == [
        second.escalation_id
    ]
    assert len(await platform.list_escalations()) == 2
    assert (await platform.get_escalation(first.escalation_id)).summary == "态度差"


async def test_one_open_ticket_per_buyer_and_order(platform: PlatformClient) -> None:
    order = (await platform.list_orders("B1001"))[0].order_id
    first = await platform.create_escalation("B1001", "human_request", "要人工", order_id=order)
    assert not first.appended and not first.accuses_merchant and first.merchant_id is not None
    again = await platform.create_escalation(
        "B1001", "complaint", "这商家是骗子吧", order_id=order, accuses_merchant=True
    )
    assert again.escalation_id == first.escalation_id and again.appended and again.accuses_merchant
    assert again.summary == "要人工\n---\n这商家是骗子吧"
    # another order, or no order, is another ticket; a later request without the accusation keeps it
    other = await platform.create_escalation("B1001", "human_request", "别的事")
    assert other.escalation_id != first.escalation_id and not other.appended
    third = await platform.create_escalation("B1001", "human_request", "还在吗", order_id=order)
    assert third.escalation_id == first.escalation_id and third.accuses_merchant
    # once resolved, a new request opens a new ticket
    await platform.update_escalation(first.escalation_id, "resolved")
    fresh = await platform.create_escalation("B1001", "human_request", "又出问题了", order_id=order)
    assert fresh.escalation_id != first.escalation_id and not fresh.appended and not fresh.accuses_merchant
    assert (await platform.get_escalation(first.escalation_id)).accuses_merchant


async def test_merchant_links_a_telegram_chat_with_a_one_time_token(
    platform: PlatformClient, admin: SandboxAdmin
) -> None:
    token = await platform.issue_merchant_link_token("M01")
    assert token.token.startswith("m-") and len(token.token) <= 64
    assert token.deep_link.endswith(f"?start={token.token}") and token.merchant_id == "M01"
    merchant = await platform.redeem_merchant_link_token(token.token, 880001)
    assert merchant.telegram_chat_id == 880001
    assert (await platform.get_merchant("M01")).telegram_chat_id == 880001
    with pytest.raises(InvalidToken) as reused:
        await platform.redeem_merchant_link_token(token.token, 880002)
    assert reused.value.code == "token_used"
    with pytest.raises(InvalidToken):  # a buyer's token is not a merchant's
        await platform.redeem_merchant_link_token((await platform.issue_link_token("B1003")).token, 1)
    late = await platform.issue_merchant_link_token("M01")
    await admin.advance(15 * 60)
    with pytest.raises(InvalidToken) as expired:
        await platform.redeem_merchant_link_token(late.token, 880003)
    assert expired.value.code == "token_expired"


# ---------------------------------------------------------------- merchant score


async def test_merchant_score_is_computed_from_orders(platform: PlatformClient, admin: SandboxAdmin) -> None:
    now = await admin.advance(0)
    await admin.create_buyer("B9001", "评分测试")
    await admin.create_merchant("M09", "评分测试店")
    await admin.upsert_product(
        sku="M09-CARD", kind="game_card", name="测试点卡", merchant_id="M09", price="1.00"
    )
    for n, (response, fulfil) in enumerate([(60, 180), (120, 360), (180, 0)]):
        await admin.create_order(
            order_id=f"KMSCORE{n}", buyer_id="B9001", sku="M09-CARD", account="12345678", region="国服",
            state="delivered", paid_at=now - timedelta(hours=1), response_seconds=response, fulfil_seconds=fulfil,
        )  # fmt: skip
    await admin.create_order(
        order_id="KMSCORE9", buyer_id="B9001", sku="M09-CARD", account="12345678", region="国服"
    )
    await admin.create_order(
        order_id="KMSCOREU", buyer_id="B9001", sku="M09-CARD", account="12345678", region="国服",
        state="pending_payment",
    )  # fmt: skip
    await platform.cancel_order("B9001", "KMSCORE9", "found_cheaper")

    score = await platform.get_merchant_score("M09")
    assert score.orders_considered == 4  # the unpaid order says nothing about the shop
    assert score.cancel_rate == 0.25
    assert score.median_arrival_minutes == 4.0  # paid → delivered: 4, 8, 3 minutes
    assert score.median_response_minutes == 2.0  # paid → accepted: 1, 2, 3 minutes (one never accepted)
    assert score.grade == "D"  # a quarter of the paid orders cancelled


async def test_merchant_without_orders_has_no_grade(platform: PlatformClient, admin: SandboxAdmin) -> None:
    await admin.create_merchant("M10", "新店")
    score = await platform.get_merchant_score("M10")
    assert (score.orders_considered, score.cancel_rate, score.grade) == (0, 0.0, None)
    assert (await platform.get_merchant_score("M01")).grade in {"A", "B"}


# ---------------------------------------------------------------- SLAs


def _minutes(slas: list[Sla]) -> dict[tuple[str, str | None], int]:
    return {(s.product_kind, s.carrier): s.promised_minutes for s in slas}


async def test_slas_by_kind_carrier_and_time_of_day(platform: PlatformClient) -> None:
    noon = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)  # 12:00 in China
    late = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)  # 23:30 in China
    day = _minutes(await platform.get_slas(at=noon))
    night = _minutes(await platform.get_slas(at=late))
    assert day[("game_card", None)] == night[("game_card", None)] == 5
    assert day[("membership", None)] == night[("membership", None)] == 30
    assert (day[("phone_topup", "中国移动")], night[("phone_topup", "中国移动")]) == (10, 30)
    assert (day[("phone_topup", "中国电信")], night[("phone_topup", "中国电信")]) == (15, 45)
    all_entries = await platform.get_slas(product_kind="phone_topup", carrier="中国联通")
    assert {(s.night, s.promised_minutes) for s in all_entries} == {(False, 10), (True, 30)}


async def test_order_paid_at_night_gets_the_night_promise(
    platform: PlatformClient, admin: SandboxAdmin
) -> None:
    night = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)  # 00:00 in China
    await admin.set_clock(night + timedelta(minutes=1))
    await admin.create_order(
        order_id="KMNIGHT1",
        buyer_id="B1001",
        sku="CT-50",
        account="13300001111",
        region="上海电信",
        paid_at=night,
    )
    order = await platform.get_order("B1001", "KMNIGHT1")
    assert (order.promised_minutes, order.promised_by) == (45, night + timedelta(minutes=45))
