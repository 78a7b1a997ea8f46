"""``/v1/buyers/...``: link tokens, the buyer's orders and everything a buyer can do to them."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from sandbox.api.deps import V1_ERRORS, BuyerId, IdempotencyKey, OrderId, RuntimeDep, require_api_key
from sandbox.schemas import (
    CancelIn,
    LinkTokenOut,
    OrderList,
    OrderOut,
    RechargeTargetHistory,
    RechargeTargetPatch,
    RefundRequestIn,
    RefundRequestOut,
)
from sandbox.services import links, orders

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], responses=V1_ERRORS)
ORDER = "/buyers/{buyer_id}/orders/{order_id}"


@router.post("/buyers/{buyer_id}/link-tokens", status_code=201, response_model=LinkTokenOut, tags=["links"])
async def issue_link_token(
    request: Request, buyer_id: BuyerId, runtime: RuntimeDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """A one-time token (15 min) binding a Telegram user to this buyer, and its bot deep link."""
    now, ttl = runtime.now(), runtime.settings.link_token_ttl_seconds

    async def work(session: AsyncSession) -> tuple[int, object]:
        token = await links.issue_token(
            session, buyer_id, now, timedelta(seconds=ttl), runtime.settings.bot_username
        )
        return 201, token.model_dump(mode="json")

    return await runtime.idempotent(request, idempotency_key, None, work)


@router.get("/buyers/{buyer_id}/orders", response_model=OrderList, tags=["orders"])
async def list_orders(
    buyer_id: BuyerId, runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=50)] = 5
) -> OrderList:
    """The buyer's orders, newest first."""
    now = runtime.now()
    found = await runtime.db.run(lambda s: orders.list_orders(s, buyer_id, limit, now))
    return OrderList(orders=found)


@router.get(ORDER, response_model=OrderOut, tags=["orders"])
async def get_order(buyer_id: BuyerId, order_id: OrderId, runtime: RuntimeDep) -> OrderOut:
    """One order; another buyer's order is `not_found`."""
    now = runtime.now()
    return await runtime.db.run(lambda s: orders.get_order(s, buyer_id, order_id, now))


@router.patch(f"{ORDER}/recharge-target", response_model=OrderOut, tags=["orders"])
async def fix_recharge_target(
    request: Request,
    buyer_id: BuyerId,
    order_id: OrderId,
    body: RechargeTargetPatch,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Correct account and/or region before delivery (validated per product kind; audited)."""
    now = runtime.now()

    async def work(session: AsyncSession) -> tuple[int, object]:
        order = await orders.fix_recharge_target(session, buyer_id, order_id, body, now)
        return 200, order.model_dump(mode="json")

    return await runtime.idempotent(request, idempotency_key, body, work)


@router.get(f"{ORDER}/recharge-target/history", response_model=RechargeTargetHistory, tags=["orders"])
async def recharge_target_history(
    buyer_id: BuyerId, order_id: OrderId, runtime: RuntimeDep
) -> RechargeTargetHistory:
    changes = await runtime.db.run(lambda s: orders.recharge_target_history(s, buyer_id, order_id))
    return RechargeTargetHistory(changes=changes)


@router.post(f"{ORDER}/cancel", response_model=OrderOut, tags=["orders"])
async def cancel_order(
    request: Request,
    buyer_id: BuyerId,
    order_id: OrderId,
    body: CancelIn,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Cancel before delivery with one of the 12 reason tags; a buyer's cancel is restorable for a while."""
    now, window = runtime.now(), runtime.restore_window

    async def work(session: AsyncSession) -> tuple[int, object]:
        order = await orders.cancel_order(session, buyer_id, order_id, body, now, window)
        return 200, order.model_dump(mode="json")

    return await runtime.idempotent(request, idempotency_key, body, work)


@router.post(f"{ORDER}/restore", response_model=OrderOut, tags=["orders"])
async def restore_order(
    request: Request,
    buyer_id: BuyerId,
    order_id: OrderId,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Undo a cancellation inside the restore window while stock allows; restoring twice is harmless."""
    now = runtime.now()

    async def work(session: AsyncSession) -> tuple[int, object]:
        order = await orders.restore_order(session, buyer_id, order_id, now)
        return 200, order.model_dump(mode="json")

    return await runtime.idempotent(request, idempotency_key, None, work)


@router.post(f"{ORDER}/refund-requests", status_code=201, response_model=RefundRequestOut, tags=["orders"])
async def request_refund(
    request: Request,
    buyer_id: BuyerId,
    order_id: OrderId,
    body: RefundRequestIn,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Refunded at once when failed, overdue or not yet started; otherwise queued for the merchant."""
    now = runtime.now()

    async def work(session: AsyncSession) -> tuple[int, object]:
        result = await orders.request_refund(session, buyer_id, order_id, body.reason, now)
        return 201, result.model_dump(mode="json")

    return await runtime.idempotent(request, idempotency_key, body, work)
