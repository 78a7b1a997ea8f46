"""Lookups and helpers shared by the services."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sandbox.domain import PRODUCT_KINDS, ProductKind
from sandbox.errors import ApiError
from sandbox.tables import Buyer, Merchant, Order, OrderAudit, Product


@dataclass(frozen=True, slots=True)
class OrderBundle:
    """An order with the product and merchant its representation needs."""

    order: Order
    product: Product
    merchant: Merchant


def kind_of(product: Product) -> ProductKind:
    if product.kind not in PRODUCT_KINDS:
        raise RuntimeError(f"product {product.sku} has unknown kind {product.kind!r}")
    return cast(ProductKind, product.kind)


def new_id(prefix: str) -> str:
    """A random public identifier such as ``ES3F9A0C1B2D4E``: unguessable, URL-safe, ≤ 32 chars."""
    return f"{prefix}{secrets.token_hex(6).upper()}"


def money(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


def cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


async def require_buyer(session: AsyncSession, buyer_id: str) -> Buyer:
    buyer = await session.get(Buyer, buyer_id)
    if buyer is None:
        raise ApiError("not_found", f"buyer {buyer_id} not found")
    return buyer


async def require_merchant(session: AsyncSession, merchant_id: str) -> Merchant:
    merchant = await session.get(Merchant, merchant_id)
    if merchant is None:
        raise ApiError("not_found", f"merchant {merchant_id} not found")
    return merchant


async def locked_product(session: AsyncSession, sku: str) -> Product:
    """The product row locked for a stock change (lock order everywhere: order first, then product)."""
    query = select(Product).where(Product.sku == sku).with_for_update()
    product = (await session.execute(query)).scalar_one_or_none()
    if product is None:
        raise ApiError("not_found", f"product {sku} not found")
    return product


async def bundle(session: AsyncSession, order: Order) -> OrderBundle:
    product = await session.get(Product, order.sku)
    merchant = await session.get(Merchant, order.merchant_id)
    if product is None or merchant is None:
        raise RuntimeError(f"order {order.order_id} references a missing product or merchant")
    return OrderBundle(order, product, merchant)


async def owned_order(
    session: AsyncSession, buyer_id: str, order_id: str, *, for_update: bool = False
) -> OrderBundle:
    """The buyer's order, locked for update if asked.

    Another buyer's order is reported exactly like a missing one, so order numbers cannot be probed.
    """
    query = select(Order).where(Order.order_id == order_id, Order.buyer_id == buyer_id)
    if for_update:
        query = query.with_for_update()
    order = (await session.execute(query)).scalar_one_or_none()
    if order is None:
        raise ApiError("not_found", f"order {order_id} not found")
    return await bundle(session, order)


def audit(
    session: AsyncSession, order: Order, field: str, old: str | None, new: str | None, at: datetime, by: str
) -> None:
    session.add(OrderAudit(order_id=order.order_id, field=field, old=old, new=new, at=at, by=by))


def set_state(session: AsyncSession, order: Order, state: str, at: datetime, by: str) -> None:
    """Change the order state and keep the change in the audit trail."""
    audit(session, order, "state", order.state, state, at, by)
    order.state = state
