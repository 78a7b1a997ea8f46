"""Order rules of the sandbox: seeds, recharge targets, cancel/restore, refunds, idempotency, concurrency."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from integrations.platform import InvalidInput, NotAllowed, PlatformClient
from sandbox.db import Database
from sandbox.services.seed import seed
from sandbox.tables import OrderAudit
from sandbox.testing import SandboxAdmin

pytestmark = pytest.mark.integration

B1 = "B1001"
PROCESSING = "KM20261127001"
DELIVERED_MEMBERSHIP = "KM20261127002"
CANCELLED_TOPUP = "KM20261127003"
OVERDUE_TOPUP = "KM20261127004"
PENDING = "KM20261127005"


def order_path(order_id: str, buyer_id: str = B1) -> str:
    return f"/v1/buyers/{buyer_id}/orders/{order_id}"


# ---------------------------------------------------------------- seeds


async def test_required_seed_records(platform: PlatformClient, admin: SandboxAdmin) -> None:
    link = await platform.get_link(10001)
    assert link.buyer_id == B1
    merchant = await platform.get_merchant("M01")
    assert (merchant.name, merchant.telegram_chat_id) == ("星辰游戏点卡", -1002001)

    order = await platform.get_order(B1, PROCESSING)
    assert order.state == "processing"
    assert (order.product.kind, order.product.name, order.amount) == (
        "game_card",
        "王者荣耀 点券 60",
        Decimal("6.00"),
    )
    assert order.promised_minutes == 5 and order.overdue_minutes == 0
    assert order.promised_by is not None and order.paid_at is not None
    assert order.promised_by > await admin.advance(0) > order.paid_at
    assert (order.recharge_target.account, order.recharge_target.region) == ("2876543210", "安卓QQ区")
    assert order.merchant.merchant_id == "M01"

    by_id = {o.order_id: o for o in await platform.list_orders(B1, limit=50)}
    assert by_id[DELIVERED_MEMBERSHIP].state == "delivered"
    assert by_id[DELIVERED_MEMBERSHIP].product.kind == "membership"
    cancelled = by_id[CANCELLED_TOPUP]
    assert cancelled.state == "cancelled" and cancelled.product.kind == "phone_topup"
    assert (cancelled.recharge_target.account, cancelled.recharge_target.region) == (
        "13800138000",
        "广东移动",
    )
    assert cancelled.cancel is not None and cancelled.cancel.restorable_until is not None
    overdue = by_id[OVERDUE_TOPUP]
    assert (
        overdue.state == "processing"
        and overdue.product.kind == "phone_topup"
        and overdue.overdue_minutes > 0
    )
    assert overdue.refund_guarantee.status == "scheduled"
    assert by_id[PENDING].state == "pending_payment"
    assert (await platform.get_order("B1002", "KM20261127101")).buyer_id == "B1002"


async def test_orders_are_listed_newest_first(platform: PlatformClient) -> None:
    orders = await platform.list_orders(B1)
    assert len(orders) == 5
    assert orders[0].order_id == PROCESSING
    assert [o.created_at for o in orders] == sorted((o.created_at for o in orders), reverse=True)


async def test_seeding_again_changes_nothing(
    admin: SandboxAdmin, platform: PlatformClient, database: Database
) -> None:
    before = await platform.get_order(B1, PROCESSING)
    await platform.cancel_order(B1, PENDING, "demand_changed")
    later = await admin.advance(3600)
    await database.run(lambda s: seed(s, later, timedelta(minutes=30)))
    after = await platform.get_order(B1, PROCESSING)
    assert (after.state, after.paid_at, after.promised_by) == (
        before.state,
        before.paid_at,
        before.promised_by,
    )
    assert (await platform.get_order(B1, PENDING)).state == "cancelled"


# ---------------------------------------------------------------- recharge targets


@pytest.mark.parametrize(
    ("order_id", "account", "region", "expected"),
    [
        (PROCESSING, "123456789012", "ios qq区", ("123456789012", "iOS QQ区")),
        (PROCESSING, "10001", "港服", ("10001", "港服")),
        (CANCELLED_TOPUP, "+86 139-1234-5678", "深圳移动", None),
        (CANCELLED_TOPUP, "+86 139-1234-5678", "广东联通", None),
        (CANCELLED_TOPUP, "+86 139-1234-5678", "浙江移动", ("13912345678", "浙江移动")),
    ],
)
async def test_fix_normalises_and_validates_region(
    platform: PlatformClient, order_id: str, account: str, region: str, expected: tuple[str, str] | None
) -> None:
    if expected is None:
        with pytest.raises(InvalidInput) as refused:
            await platform.fix_recharge_target(B1, order_id, account=account, region=region)
        assert refused.value.code == "unknown_region"
        return
    order = await platform.fix_recharge_target(B1, order_id, account=account, region=region)
    assert (order.recharge_target.account, order.recharge_target.region) == expected


@pytest.mark.parametrize(
    ("order_id", "account"),
    [
        (PROCESSING, "1234"),  # game UID too short
        (PROCESSING, "abc12345"),
        (CANCELLED_TOPUP, "12800138000"),  # not a mobile prefix
        (CANCELLED_TOPUP, "1380013800"),
        (PENDING, "9" * 13),
    ],
)
async def test_fix_refuses_invalid_accounts(platform: PlatformClient, order_id: str, account: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        await platform.fix_recharge_target(B1, order_id, account=account)
    assert refused.value.code == "invalid_account"


async def test_membership_accepts_phone_qq_or_email(platform: PlatformClient, admin: SandboxAdmin) -> None:
    await admin.create_order(order_id="KMTESTM1", buyer_id=B1, sku="TXSP-VIP-M", account="13800138000")
    for account in ("13700001111", "123456789", "buyer.one@example.com"):
        order = await platform.fix_recharge_target(B1, "KMTESTM1", account=account)
        assert order.recharge_target.account == account
    with pytest.raises(InvalidInput):
        await platform.fix_recharge_target(B1, "KMTESTM1", account="not an account")


async def test_fix_is_refused_after_delivery_and_on_closed_orders(platform: PlatformClient) -> None:
    with pytest.raises(NotAllowed) as delivered:
        await platform.fix_recharge_target(B1, DELIVERED_MEMBERSHIP, account="13700001111")
    assert delivered.value.code == "already_delivered"
    await platform.request_refund(B1, OVERDUE_TOPUP, "太慢了")
    with pytest.raises(NotAllowed) as closed:
        await platform.fix_recharge_target(B1, OVERDUE_TOPUP, region="北京联通")
    assert closed.value.code == "order_closed"


async def test_empty_fix_is_a_validation_error(http: httpx.AsyncClient) -> None:
    response = await http.patch(f"{order_path(PROCESSING)}/recharge-target", json={})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_concurrent_fixes_lose_no_update(platform: PlatformClient) -> None:
    accounts = [f"20000000{i:02d}" for i in range(8)]
    await asyncio.gather(*(platform.fix_recharge_target(B1, PROCESSING, account=a) for a in accounts))
    await asyncio.gather(
        platform.fix_recharge_target(B1, PROCESSING, region="安卓微信区"),
        platform.fix_recharge_target(B1, PROCESSING, account="3000000001"),
    )
    history = await platform.recharge_target_history(B1, PROCESSING)
    account_changes = [c for c in history if c.field == "account"]
    assert len(account_changes) == len(accounts) + 1
    chain = ["2876543210"] + [c.new for c in account_changes]
    assert [c.old for c in account_changes] == chain[:-1], "each fix must see the previous one"
    assert sorted(str(new) for new in chain[1:-1]) == sorted(accounts)
    order = await platform.get_order(B1, PROCESSING)
    assert (order.recharge_target.account, order.recharge_target.region) == ("3000000001", "安卓微信区")
    assert [c.new for c in history if c.field == "region"] == ["安卓微信区"]


# ---------------------------------------------------------------- cancel and restore


async def test_cancel_then_restore_restarts_the_promise(
    platform: PlatformClient, admin: SandboxAdmin
) -> None:
    cancelled = await platform.cancel_order(B1, PROCESSING, "wrong_account", note="填错号了")
    assert cancelled.state == "cancelled" and cancelled.cancel is not None
    assert (cancelled.cancel.tag, cancelled.cancel.by, cancelled.cancel.note) == (
        "wrong_account",
        "buyer",
        "填错号了",
    )
    now = await admin.advance(600)
    restored = await platform.restore_order(B1, PROCESSING)
    assert restored.state == "paid" and restored.cancel is None
    assert restored.promised_by == now + timedelta(minutes=5)
    again = await platform.restore_order(B1, PROCESSING)
    assert again.state == "paid", "restoring a restored order is a harmless no-op"


async def test_restore_refusals(platform: PlatformClient, admin: SandboxAdmin) -> None:
    with pytest.raises(NotAllowed) as not_cancelled:
        await platform.restore_order(B1, PENDING)
    assert not_cancelled.value.code == "not_restorable"

    await platform.cancel_order(B1, PENDING, "merchant_out_of_stock", by="merchant")
    with pytest.raises(NotAllowed) as by_merchant:
        await platform.restore_order(B1, PENDING)
    assert by_merchant.value.code == "not_restorable"

    await admin.advance(26 * 60)  # the seeded cancellation was 5 minutes ago; the window is 30
    with pytest.raises(NotAllowed) as late:
        await platform.restore_order(B1, CANCELLED_TOPUP)
    assert late.value.code == "restore_window_passed"


async def test_restore_needs_stock(platform: PlatformClient, admin: SandboxAdmin) -> None:
    product = {
        "sku": "LAST-ONE",
        "kind": "game_card",
        "name": "限量皮肤",
        "merchant_id": "M01",
        "price": "9.90",
    }
    await admin.upsert_product(**product, stock=1)
    await admin.create_order(
        order_id="KMLAST1", buyer_id=B1, sku="LAST-ONE", account="12345678", region="国服"
    )
    await platform.cancel_order(B1, "KMLAST1", "demand_changed")
    await admin.upsert_product(**product, stock=0)  # someone else bought the returned unit
    with pytest.raises(NotAllowed) as refused:
        await platform.restore_order(B1, "KMLAST1")
    assert refused.value.code == "out_of_stock"


async def test_cancel_refusals(platform: PlatformClient) -> None:
    with pytest.raises(NotAllowed) as delivered:
        await platform.cancel_order(B1, DELIVERED_MEMBERSHIP, "demand_changed")
    assert delivered.value.code == "already_delivered"
    with pytest.raises(NotAllowed) as cancelled:
        await platform.cancel_order(B1, CANCELLED_TOPUP, "demand_changed")
    assert cancelled.value.code == "not_cancellable"


# ---------------------------------------------------------------- idempotency


async def test_same_key_restores_once_and_replays(http: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "restore-once"}
    first = await http.post(f"{order_path(CANCELLED_TOPUP)}/restore", headers=headers)
    second = await http.post(f"{order_path(CANCELLED_TOPUP)}/restore", headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"


async def test_concurrent_requests_with_one_key_have_one_effect(
    http: httpx.AsyncClient, database: Database
) -> None:
    headers = {"Idempotency-Key": "double-tap-cancel"}
    body = {"reason_tag": "user_mistake"}
    responses = await asyncio.gather(
        *(http.post(f"{order_path(PROCESSING)}/cancel", json=body, headers=headers) for _ in range(8))
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.text for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 7
    assert (await http.get(order_path(PROCESSING))).json()["state"] == "cancelled"

    restore_headers = {"Idempotency-Key": "double-tap-restore"}
    restored = await asyncio.gather(
        *(http.post(f"{order_path(PROCESSING)}/restore", headers=restore_headers) for _ in range(8))
    )
    assert {r.status_code for r in restored} == {200}
    assert len({r.text for r in restored}) == 1
    transitions = await database.run(lambda s: _state_changes(s, PROCESSING))
    assert transitions == [("processing", "cancelled"), ("cancelled", "paid")]


async def _state_changes(session: AsyncSession, order_id: str) -> list[tuple[str | None, str | None]]:
    rows = await session.execute(
        select(OrderAudit.old, OrderAudit.new)
        .where(OrderAudit.order_id == order_id, OrderAudit.field == "state")
        .order_by(OrderAudit.id)
    )
    return [(old, new) for old, new in rows]


async def test_key_reused_for_another_request_conflicts(http: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "reused"}
    path = f"{order_path(PROCESSING)}/recharge-target"
    assert (await http.patch(path, json={"account": "1111111"}, headers=headers)).status_code == 200
    conflict = await http.patch(path, json={"account": "2222222"}, headers=headers)
    assert conflict.status_code == 422
    assert conflict.json()["error"]["code"] == "idempotency_conflict"


async def test_refusals_are_replayed_too(http: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "refused-cancel"}
    path = f"{order_path(DELIVERED_MEMBERSHIP)}/cancel"
    first = await http.post(path, json={"reason_tag": "other"}, headers=headers)
    second = await http.post(path, json={"reason_tag": "other"}, headers=headers)
    assert first.status_code == second.status_code == 409
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"


# ---------------------------------------------------------------- refunds


async def test_refund_rules(platform: PlatformClient, admin: SandboxAdmin) -> None:
    overdue = await platform.request_refund(B1, OVERDUE_TOPUP, "超时了")
    assert (overdue.state, overdue.order.state) == ("approved", "refunded")
    assert overdue.order.refund_guarantee.status == "issued"

    processing = await platform.request_refund(B1, PROCESSING, "不想要了")
    assert (processing.state, processing.order.state) == ("pending", "processing")
    with pytest.raises(NotAllowed) as pending_twice:
        await platform.request_refund(B1, PROCESSING, "再问一次")
    assert pending_twice.value.code == "not_refundable"

    delivered = await platform.request_refund(B1, DELIVERED_MEMBERSHIP, "用不了")
    assert (delivered.state, delivered.order.state) == ("pending", "delivered")

    await admin.create_order(order_id="KMPAID1", buyer_id=B1, sku="YS-60", account="12345678", region="国服")
    paid = await platform.request_refund(B1, "KMPAID1", "拍错了")
    assert (paid.state, paid.order.state) == ("approved", "refunded")

    for order_id in (PENDING, CANCELLED_TOPUP, OVERDUE_TOPUP):
        with pytest.raises(NotAllowed) as nothing_to_refund:
            await platform.request_refund(B1, order_id, "退款")
        assert nothing_to_refund.value.code == "not_refundable"
