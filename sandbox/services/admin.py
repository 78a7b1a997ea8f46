"""Test and demo controls: create buyers, merchants, products and orders directly; wipe the database."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from sandbox.domain import CURRENCY, ProductKind
from sandbox.errors import ApiError
from sandbox.schemas import (
    AdminOrderIn,
    BuyerIn,
    BuyerOut,
    MerchantIn,
    MerchantOut,
    OrderOut,
    ProductAdminOut,
    ProductIn,
)
from sandbox.services import lifecycle
from sandbox.services.common import (
    bundle,
    cents,
    kind_of,
    locked_product,
    money,
    require_buyer,
    require_merchant,
)
from sandbox.services.events import telegram_user_ids
from sandbox.services.links import upsert_link
from sandbox.services.views import merchant_out, order_out
from sandbox.sla import CHINA_TZ
from sandbox.tables import Base, Buyer, Merchant, Order, Product
from sandbox.targets import validate_target


async def create_buyer(session: AsyncSession, request: BuyerIn, now: datetime) -> BuyerOut:
    if await session.get(Buyer, request.buyer_id) is not None:
        raise ApiError("already_exists", f"buyer {request.buyer_id} already exists")
    session.add(Buyer(buyer_id=request.buyer_id, name=request.name, created_at=now))
    await session.flush()
    if request.telegram_user_id is not None:
        await upsert_link(session, request.telegram_user_id, request.buyer_id, now)
    return BuyerOut(
        buyer_id=request.buyer_id,
        name=request.name,
        created_at=now,
        telegram_user_ids=await telegram_user_ids(session, request.buyer_id),
    )


async def create_merchant(session: AsyncSession, request: MerchantIn, now: datetime) -> MerchantOut:
    if await session.get(Merchant, request.merchant_id) is not None:
        raise ApiError("already_exists", f"merchant {request.merchant_id} already exists")
    merchant = Merchant(
        merchant_id=request.merchant_id,
        name=request.name,
        telegram_chat_id=request.telegram_chat_id,
        support_hours=request.support_hours,
        created_at=now,
    )
    session.add(merchant)
    await session.flush()
    return merchant_out(merchant)


def _product_out(product: Product) -> ProductAdminOut:
    return ProductAdminOut.model_validate(
        {
            "sku": product.sku,
            "kind": product.kind,
            "name": product.name,
            "merchant_id": product.merchant_id,
            "price": money(product.price_cents),
            "carrier": product.carrier,
            "stock": product.stock,
        }
    )


async def upsert_product(session: AsyncSession, request: ProductIn) -> tuple[ProductAdminOut, bool]:
    """Create or replace a product (stock included); returns it and whether it was created."""
    await require_merchant(session, request.merchant_id)
    if (request.kind == "phone_topup") != (request.carrier is not None):
        raise ApiError("validation_error", "phone top-ups need a carrier; other kinds must not have one")
    product = await session.get(Product, request.sku)
    created = product is None
    if product is None:
        product = Product(sku=request.sku)
        session.add(product)
    product.kind = request.kind
    product.name = request.name
    product.merchant_id = request.merchant_id
    product.price_cents = cents(request.price)
    product.carrier = request.carrier
    product.stock = request.stock
    await session.flush()
    return _product_out(product), created


@dataclass(frozen=True, slots=True)
class OrderPlan:
    """Everything needed to write an order directly in a given state (used by admin creation and seeds)."""

    order_id: str
    buyer_id: str
    product: Product
    account: str
    region: str | None
    state: str
    created_at: datetime
    paid_at: datetime | None = None
    payment_submitted_at: datetime | None = None
    outcome: str = "deliver"
    response_seconds: int | None = None
    fulfil_seconds: int | None = None


def _timings(kind: ProductKind, plan: OrderPlan) -> tuple[int, int]:
    response, fulfil = lifecycle.DEFAULT_TIMINGS[kind]
    return (
        response if plan.response_seconds is None else plan.response_seconds,
        fulfil if plan.fulfil_seconds is None else plan.fulfil_seconds,
    )


def build_order(plan: OrderPlan, now: datetime) -> Order:
    """An order row as if it had reached ``plan.state`` on its own by ``now`` (no events, no audit)."""
    kind = kind_of(plan.product)
    response, fulfil = _timings(kind, plan)
    order = Order(
        order_id=plan.order_id,
        buyer_id=plan.buyer_id,
        sku=plan.product.sku,
        merchant_id=plan.product.merchant_id,
        state=plan.state,
        amount_cents=plan.product.price_cents,
        currency=CURRENCY,
        account=plan.account,
        region=plan.region,
        created_at=plan.created_at,
        payment_submitted_at=plan.payment_submitted_at,
        sim_outcome=plan.outcome,
        sim_response_seconds=response,
        sim_fulfil_seconds=fulfil,
    )
    if plan.state == "pending_payment":
        return order
    paid_at = plan.paid_at or now
    order.paid_at = paid_at
    lifecycle.promise(order, kind, plan.product.carrier, paid_at)
    if plan.state in ("processing", "delivered"):
        order.processing_started_at = min(paid_at + timedelta(seconds=response), max(now, paid_at))
    if plan.state == "delivered" and order.processing_started_at is not None:
        order.delivered_at = min(
            order.processing_started_at + timedelta(seconds=fulfil), max(now, order.processing_started_at)
        )
        if kind == "game_card":
            order.card_secret = lifecycle.card_secret()
    return order


def new_order_id(now: datetime) -> str:
    return f"KM{now.astimezone(CHINA_TZ):%Y%m%d}{secrets.randbelow(10**6):06d}"


def _check_times(request: AdminOrderIn, created_at: datetime) -> None:
    if request.state == "pending_payment" and request.paid_at is not None:
        raise ApiError("validation_error", "an unpaid order cannot have paid_at")
    if request.state != "pending_payment" and request.payment_submitted_at is not None:
        raise ApiError("validation_error", "payment_submitted_at is only for pending_payment orders")
    for moment in (request.paid_at, request.payment_submitted_at):
        if moment is not None and moment < created_at:
            raise ApiError("validation_error", "payment cannot precede order creation")


async def create_order(session: AsyncSession, request: AdminOrderIn, now: datetime) -> OrderOut:
    """Create an order for tests; takes one unit of stock and validates the target like the API does."""
    await require_buyer(session, request.buyer_id)
    product = await locked_product(session, request.sku)
    order_id = request.order_id or new_order_id(now)
    if await session.get(Order, order_id) is not None:
        raise ApiError("already_exists", f"order {order_id} already exists")
    created_at = request.created_at or min(now, request.paid_at or now, request.payment_submitted_at or now)
    _check_times(request, created_at)
    if product.stock <= 0:
        raise ApiError("out_of_stock", f"{product.name} is out of stock")
    target = validate_target(kind_of(product), request.account, request.region, product.carrier)
    product.stock -= 1
    plan = OrderPlan(
        order_id=order_id,
        buyer_id=request.buyer_id,
        product=product,
        account=target.account,
        region=target.region,
        state=request.state,
        created_at=created_at,
        paid_at=request.paid_at,
        payment_submitted_at=request.payment_submitted_at,
        outcome=request.outcome,
        response_seconds=request.response_seconds,
        fulfil_seconds=request.fulfil_seconds,
    )
    order = build_order(plan, now)
    session.add(order)
    await session.flush()
    return order_out(await bundle(session, order), now)


async def wipe(session: AsyncSession) -> None:
    """Delete every row, children first."""
    for table in reversed(Base.metadata.sorted_tables):
        await session.execute(delete(table))
