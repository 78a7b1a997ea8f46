"""The fulfilment simulation, driven step by step with the sandbox clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from integrations.platform import PlatformClient
from sandbox.testing import SandboxAdmin

pytestmark = pytest.mark.integration


def moves(tick: dict[str, Any], order_id: str) -> list[tuple[str, str]]:
    return [(t["from_state"], t["to_state"]) for t in tick["transitions"] if t["order_id"] == order_id]


async def new_order(admin: SandboxAdmin, order_id: str, **fields: Any) -> None:
    defaults: dict[str, Any] = {
        "buyer_id": "B1002",
        "sku": "WZRY-60",
        "account": "12345678",
        "region": "国服",
    }
    await admin.create_order(order_id=order_id, **(defaults | fields))


async def test_paid_order_is_processed_then_delivered_in_time(
    platform: PlatformClient, admin: SandboxAdmin
) -> None:
    await new_order(admin, "KMSIM1", response_seconds=30, fulfil_seconds=120)
    paid_at = await admin.advance(0)
    assert moves(await admin.tick(), "KMSIM1") == []

    await admin.advance(30)
    assert moves(await admin.tick(), "KMSIM1") == [("paid", "processing")]
    await admin.advance(119)
    assert moves(await admin.tick(), "KMSIM1") == []
    await admin.advance(1)
    assert moves(await admin.tick(), "KMSIM1") == [("processing", "delivered")]
    assert moves(await admin.tick(), "KMSIM1") == [], "a second step at the same instant does nothing"

    order = await platform.get_order("B1002", "KMSIM1")
    assert order.delivered_at == paid_at + timedelta(seconds=150)
    assert order.card_secret is not None and "*" in repr(order)
    assert len(order.card_secret.get_secret_value()) == 19
    delivered = await admin.events(type_="order.delivered", order_id="KMSIM1")
    assert len(delivered) == 1
    assert delivered[0]["data"]["order"]["state"] == "delivered"


async def test_steps_stamp_planned_times_whatever_the_step_size(
    platform: PlatformClient, admin: SandboxAdmin
) -> None:
    await new_order(admin, "KMSIM2", response_seconds=30, fulfil_seconds=120)
    paid_at = await admin.advance(0)
    await admin.advance(3600)
    assert moves(await admin.tick(), "KMSIM2") == [("paid", "processing"), ("processing", "delivered")]
    order = await platform.get_order("B1002", "KMSIM2")
    assert order.delivered_at == paid_at + timedelta(seconds=150)


async def test_failed_order_is_refunded(platform: PlatformClient, admin: SandboxAdmin) -> None:
    await new_order(admin, "KMSIM3", outcome="fail", response_seconds=10, fulfil_seconds=60)
    await admin.advance(70)
    assert moves(await admin.tick(), "KMSIM3") == [("paid", "processing"), ("processing", "failed")]
    failed = await platform.get_order("B1002", "KMSIM3")
    assert (failed.refund_guarantee.status, failed.progress.step) == ("scheduled", "failed")
    await admin.advance(60)
    assert moves(await admin.tick(), "KMSIM3") == [("failed", "refunded")]
    types = [e["type"] for e in await admin.events(order_id="KMSIM3")]
    assert types == ["order.failed", "order.refunded"]


async def test_overdue_order_is_refunded_in_full_at_the_promised_time(
    platform: PlatformClient, admin: SandboxAdmin
) -> None:
    await new_order(admin, "KMSIM4", sku="CM-100", account="13800138000", region="广东移动", outcome="stall")
    paid_at = await admin.advance(0)
    await admin.advance(9 * 60)
    await admin.tick()
    assert (await platform.get_order("B1002", "KMSIM4")).state == "processing"
    await admin.advance(2 * 60)
    before = await platform.get_order("B1002", "KMSIM4")
    assert (before.overdue_minutes, before.refund_guarantee.overdue) == (1, True)
    assert moves(await admin.tick(), "KMSIM4") == [("processing", "refunded")]
    refunded = await platform.get_order("B1002", "KMSIM4")
    assert refunded.refund_guarantee.status == "issued"
    assert refunded.refund_guarantee.refunded_at == paid_at + timedelta(minutes=10)
    assert refunded.refund_guarantee.refund_amount == refunded.amount
    assert refunded.overdue_minutes == 0


async def test_slow_delivery_loses_to_the_guarantee(admin: SandboxAdmin) -> None:
    await new_order(admin, "KMSIM5", response_seconds=60, fulfil_seconds=600)  # would finish after 11 minutes
    await admin.advance(3600)
    assert moves(await admin.tick(), "KMSIM5") == [("paid", "processing"), ("processing", "refunded")]


async def test_stalled_payment_fires_once_and_confirmed_payment_fires_paid(
    platform: PlatformClient, admin: SandboxAdmin
) -> None:
    now = await admin.advance(0)
    await new_order(admin, "KMPAY1", state="pending_payment", payment_submitted_at=now)
    await new_order(
        admin, "KMPAY2", state="pending_payment", payment_submitted_at=now, outcome="payment_stall"
    )
    await admin.advance(60)
    assert moves(await admin.tick(), "KMPAY1") == [("pending_payment", "paid")]
    paid = await platform.get_order("B1002", "KMPAY1")
    assert paid.paid_at == now + timedelta(minutes=1)
    assert paid.promised_by == paid.paid_at + timedelta(minutes=5)

    await admin.advance(4 * 60)
    await admin.tick()
    await admin.tick()
    stalled = await admin.events(type_="order.payment_stalled", order_id="KMPAY2")
    assert len(stalled) == 1
    order = await platform.get_order("B1002", "KMPAY2")
    assert order.state == "pending_payment" and order.progress.note == "支付确认延迟，平台正在核实"
    assert [e["type"] for e in await admin.events(order_id="KMPAY1")] == ["order.paid", "order.delivered"]


async def test_seeded_orders_under_the_simulation(platform: PlatformClient, admin: SandboxAdmin) -> None:
    first = await admin.tick()
    assert moves(first, "KM20261127004") == [("processing", "refunded")]
    stalled = await admin.events(type_="order.payment_stalled", order_id="KM20261127007")
    assert len(stalled) == 1 and stalled[0]["data"]["telegram_user_ids"] == [10001]
    await admin.advance(3 * 60)
    assert moves(await admin.tick(), "KM20261127001") == [("processing", "delivered")]
    assert (await platform.get_order("B1001", "KM20261127001")).overdue_minutes == 0
