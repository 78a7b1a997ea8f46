"""Order state transitions with their timestamps, audit entries and events, in one place.

Used by the API (cancel, restore, refunds), by admin order creation and by the fulfilment simulation.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from sandbox.domain import ProductKind
from sandbox.services.common import OrderBundle, kind_of, set_state
from sandbox.services.events import emit_order_event
from sandbox.sla import sla_for
from sandbox.tables import Order

DEFAULT_TIMINGS: Final[dict[str, tuple[int, int]]] = {
    "game_card": (30, 120),
    "phone_topup": (60, 300),
    "membership": (120, 600),
}
"""Simulated (merchant response, fulfilment) seconds per product kind, all well inside the SLA."""

PAYMENT_CONFIRM_DELAY: Final = timedelta(minutes=1)
PAYMENT_STALL_AFTER: Final = timedelta(minutes=5)
FAILED_REFUND_DELAY: Final = timedelta(minutes=1)


def card_secret() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


def promise(order: Order, kind: ProductKind, carrier: str | None, start: datetime) -> None:
    """Start the SLA clock: promised_by = start + the SLA in force at ``start``."""
    minutes = sla_for(kind, carrier, start).promised_minutes
    order.promised_minutes = minutes
    order.promised_by = start + timedelta(minutes=minutes)


def fulfilment_anchor(order: Order) -> datetime | None:
    """When the current fulfilment attempt began: payment, or the later restore."""
    if order.paid_at is None:
        return None
    if order.restored_at is not None and order.restored_at > order.paid_at:
        return order.restored_at
    return order.paid_at


async def mark_paid(session: AsyncSession, item: OrderBundle, at: datetime, now: datetime, by: str) -> str:
    order = item.order
    set_state(session, order, "paid", at, by)
    order.paid_at = at
    promise(order, kind_of(item.product), item.product.carrier, at)
    return await emit_order_event(session, "order.paid", item, at, now)


def start_processing(session: AsyncSession, item: OrderBundle, at: datetime, by: str) -> None:
    set_state(session, item.order, "processing", at, by)
    item.order.processing_started_at = at


async def deliver(session: AsyncSession, item: OrderBundle, at: datetime, now: datetime, by: str) -> str:
    order = item.order
    set_state(session, order, "delivered", at, by)
    order.delivered_at = at
    if item.product.kind == "game_card":
        order.card_secret = card_secret()
    return await emit_order_event(session, "order.delivered", item, at, now)


async def fail(session: AsyncSession, item: OrderBundle, at: datetime, now: datetime, by: str) -> str:
    set_state(session, item.order, "failed", at, by)
    item.order.failed_at = at
    return await emit_order_event(session, "order.failed", item, at, now)


async def refund(
    session: AsyncSession, item: OrderBundle, at: datetime, now: datetime, *, reason: str, by: str
) -> str:
    """Refund the full amount to the original payment method."""
    order = item.order
    set_state(session, order, "refunded", at, by)
    order.refunded_at = at
    order.refund_reason = reason
    return await emit_order_event(session, "order.refunded", item, at, now)


async def payment_stalled(session: AsyncSession, item: OrderBundle, at: datetime, now: datetime) -> str:
    item.order.payment_stalled_at = at
    return await emit_order_event(session, "order.payment_stalled", item, at, now)
