"""Buyer-facing order operations: read, fix the recharge target, cancel, restore, ask for a refund."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sandbox.domain import CANCELLABLE_STATES, FIXABLE_STATES, RESTORABLE_BY
from sandbox.errors import ApiError
from sandbox.schemas import (
    CancelIn,
    OrderOut,
    RechargeTargetChange,
    RechargeTargetPatch,
    RefundRequestOut,
)
from sandbox.services import lifecycle
from sandbox.services.common import (
    OrderBundle,
    audit,
    bundle,
    kind_of,
    locked_product,
    new_id,
    owned_order,
    require_buyer,
    set_state,
)
from sandbox.services.views import is_overdue, order_out
from sandbox.tables import Order, OrderAudit, RefundRequest
from sandbox.targets import normalize_account, normalize_region


async def get_order(session: AsyncSession, buyer_id: str, order_id: str, now: datetime) -> OrderOut:
    return order_out(await owned_order(session, buyer_id, order_id), now)


async def list_orders(session: AsyncSession, buyer_id: str, limit: int, now: datetime) -> list[OrderOut]:
    """The buyer's newest orders first."""
    await require_buyer(session, buyer_id)
    rows = await session.execute(
        select(Order)
        .where(Order.buyer_id == buyer_id)
        .order_by(Order.created_at.desc(), Order.order_id.desc())
        .limit(limit)
    )
    return [order_out(await bundle(session, order), now) for order in rows.scalars()]


def _ensure_fixable(order: Order) -> None:
    if order.state == "delivered":
        raise ApiError("already_delivered", "the order is already delivered; its target can no longer change")
    if order.state not in FIXABLE_STATES:
        raise ApiError("order_closed", f"the order is {order.state}; its target can no longer change")


async def fix_recharge_target(
    session: AsyncSession, buyer_id: str, order_id: str, patch: RechargeTargetPatch, now: datetime
) -> OrderOut:
    """Correct account and/or region before delivery; every real change lands in the audit trail.

    The order row is locked (and version-checked), so two concurrent fixes apply one after the other and
    the second records the first's value as its ``old``.
    """
    if patch.account is None and patch.region is None:
        raise ApiError("validation_error", "give a new account, a new region, or both")
    item = await owned_order(session, buyer_id, order_id, for_update=True)
    order = item.order
    _ensure_fixable(order)
    kind = kind_of(item.product)
    if patch.account is not None:
        account = normalize_account(kind, patch.account)
        if account != order.account:
            audit(session, order, "account", order.account, account, now, "buyer")
            order.account = account
    if patch.region is not None:
        region = normalize_region(kind, patch.region, item.product.carrier)
        if region != order.region:
            audit(session, order, "region", order.region, region, now, "buyer")
            order.region = region
    await session.flush()
    return order_out(item, now)


async def recharge_target_history(
    session: AsyncSession, buyer_id: str, order_id: str
) -> list[RechargeTargetChange]:
    await owned_order(session, buyer_id, order_id)
    rows = await session.execute(
        select(OrderAudit)
        .where(OrderAudit.order_id == order_id, OrderAudit.field.in_(("account", "region")))
        .order_by(OrderAudit.id)
    )
    return [
        RechargeTargetChange.model_validate(
            {"field": row.field, "old": row.old, "new": row.new, "at": row.at, "by": row.by}
        )
        for row in rows.scalars()
    ]


async def cancel_order(
    session: AsyncSession,
    buyer_id: str,
    order_id: str,
    request: CancelIn,
    now: datetime,
    restore_window: timedelta,
) -> OrderOut:
    """Cancel before delivery; the reserved unit goes back to stock and a buyer's cancel stays restorable."""
    item = await owned_order(session, buyer_id, order_id, for_update=True)
    order = item.order
    if order.state == "delivered":
        raise ApiError("already_delivered", "the order is already delivered and cannot be cancelled")
    if order.state not in CANCELLABLE_STATES:
        raise ApiError("not_cancellable", f"an order in state {order.state} cannot be cancelled")
    order.state_before_cancel = order.state
    set_state(session, order, "cancelled", now, request.by)
    order.cancelled_at = now
    order.cancel_tag = request.reason_tag
    order.cancel_by = request.by
    order.cancel_note = request.note
    order.restorable_until = now + restore_window if request.by in RESTORABLE_BY else None
    product = await locked_product(session, order.sku)
    product.stock += 1
    await session.flush()
    return order_out(item, now)


def _already_restored(order: Order) -> bool:
    return (
        order.state != "cancelled"
        and order.restored_at is not None
        and order.cancelled_at is not None
        and order.restored_at >= order.cancelled_at
    )


def _check_restorable(order: Order, now: datetime) -> None:
    if order.state != "cancelled":
        raise ApiError("not_restorable", f"an order in state {order.state} cannot be restored")
    if order.restorable_until is None:
        raise ApiError("not_restorable", "this cancellation was made by the merchant or platform")
    if now > order.restorable_until:
        raise ApiError("restore_window_passed", "the restore window of this order has passed")


async def restore_order(session: AsyncSession, buyer_id: str, order_id: str, now: datetime) -> OrderOut:
    """Undo a cancellation within the window while stock allows.

    Restoring an order that is already restored succeeds without another effect. A paid order goes back to
    ``paid`` and its SLA clock restarts now.
    """
    item = await owned_order(session, buyer_id, order_id, for_update=True)
    order = item.order
    if _already_restored(order):
        return order_out(item, now)
    _check_restorable(order, now)
    product = await locked_product(session, order.sku)
    if product.stock <= 0:
        raise ApiError("out_of_stock", f"{product.name} is out of stock; the order cannot be restored")
    product.stock -= 1
    target = "pending_payment" if order.state_before_cancel == "pending_payment" else "paid"
    set_state(session, order, target, now, "buyer")
    order.restored_at = now
    order.processing_started_at = None
    if target == "paid":
        lifecycle.promise(order, kind_of(product), product.carrier, now)
    await session.flush()
    return order_out(item, now)


async def _pending_request_exists(session: AsyncSession, order_id: str) -> bool:
    query = select(RefundRequest.refund_request_id).where(
        RefundRequest.order_id == order_id, RefundRequest.state == "pending"
    )
    return (await session.execute(query)).first() is not None


def _refund_decision(item: OrderBundle, now: datetime) -> tuple[str, str | None]:
    """(request state, refund reason if the refund is issued at once)."""
    order = item.order
    if order.state == "failed":
        return "approved", "failed"
    if is_overdue(order, now):
        return "approved", "guarantee"
    if order.state == "paid":
        return "approved", "request"
    return "pending", None  # processing or delivered: the merchant decides


async def request_refund(
    session: AsyncSession, buyer_id: str, order_id: str, reason: str, now: datetime
) -> RefundRequestOut:
    """Refund at once when the rules allow (failed, overdue, not yet started), otherwise queue for review."""
    item = await owned_order(session, buyer_id, order_id, for_update=True)
    order = item.order
    if order.state in ("pending_payment", "cancelled", "refunded"):
        raise ApiError("not_refundable", f"an order in state {order.state} has nothing to refund")
    if await _pending_request_exists(session, order_id):
        raise ApiError("not_refundable", "a refund request for this order is already pending")
    state, refund_reason = _refund_decision(item, now)
    request = RefundRequest(
        refund_request_id=new_id("RF"),
        order_id=order_id,
        buyer_id=buyer_id,
        reason=reason,
        state=state,
        created_at=now,
        decided_at=now if state == "approved" else None,
    )
    session.add(request)
    if refund_reason is not None:
        await lifecycle.refund(session, item, now, now, reason=refund_reason, by="platform")
    await session.flush()
    return RefundRequestOut.model_validate(
        {
            "refund_request_id": request.refund_request_id,
            "state": request.state,
            "reason": request.reason,
            "created_at": request.created_at,
            "order": order_out(item, now),
        }
    )
