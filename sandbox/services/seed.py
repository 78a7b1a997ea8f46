"""Demo data, laid out relative to the sandbox clock at seeding time.

The end-to-end tests and the demo rely on these exact records (buyer B1001 linked to Telegram user 10001,
merchant M01, order KM20261127001 processing and not overdue, …). Seeding is idempotent: rows that already
exist are left untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from sandbox.services.admin import OrderPlan, build_order
from sandbox.services.common import cents
from sandbox.tables import Buyer, Merchant, Order, Product, TelegramLink


@dataclass(frozen=True, slots=True)
class _MerchantSeed:
    merchant_id: str
    name: str
    telegram_chat_id: int
    support_hours: str


@dataclass(frozen=True, slots=True)
class _ProductSeed:
    sku: str
    kind: str
    name: str
    merchant_id: str
    price: str
    carrier: str | None
    stock: int


@dataclass(frozen=True, slots=True)
class _OrderSeed:
    order_id: str
    buyer_id: str
    sku: str
    account: str
    region: str | None
    state: str
    created_ago: timedelta
    paid_ago: timedelta | None = None
    submitted_ago: timedelta | None = None
    outcome: str = "deliver"
    response_seconds: int | None = None
    fulfil_seconds: int | None = None
    cancel: tuple[str, str, timedelta] | None = None
    """(reason tag, by, how long ago) for cancelled orders."""


MERCHANTS: Final = (
    _MerchantSeed("M01", "星辰游戏点卡", -1002001, "09:00–次日02:00"),
    _MerchantSeed("M02", "极速话费充值", -1002002, "全天 24 小时"),
    _MerchantSeed("M03", "云端会员商城", -1002003, "10:00–22:00"),
)
BUYERS: Final = (("B1001", "演示买家", 10001), ("B1002", "测试买家二", 10002), ("B1003", "老客户小王", None))
PRODUCTS: Final = (
    _ProductSeed("WZRY-60", "game_card", "王者荣耀 点券 60", "M01", "6.00", None, 500),
    _ProductSeed("HPJY-60", "game_card", "和平精英 点券 60", "M01", "6.00", None, 300),
    _ProductSeed("YS-60", "game_card", "原神 创世结晶 60", "M01", "6.00", None, 200),
    _ProductSeed("CM-100", "phone_topup", "中国移动 话费 100 元", "M02", "99.50", "中国移动", 1000),
    _ProductSeed("CU-50", "phone_topup", "中国联通 话费 50 元", "M02", "49.80", "中国联通", 1000),
    _ProductSeed("CT-50", "phone_topup", "中国电信 话费 50 元", "M02", "49.70", "中国电信", 1000),
    _ProductSeed("TXSP-VIP-M", "membership", "腾讯视频 VIP 月卡", "M03", "25.00", None, 300),
    _ProductSeed("IQY-VIP-M", "membership", "爱奇艺 黄金会员 月卡", "M03", "19.80", None, 300),
    _ProductSeed("QQFC-LTD", "game_card", "QQ飞车 限定礼包", "M01", "30.00", None, 0),
)

_M = timedelta(minutes=1)
_D = timedelta(days=1)

DEMO_ORDERS: Final = (
    # B1001: the main demo order, processing and comfortably inside its 5-minute promise.
    _OrderSeed(
        "KM20261127001", "B1001", "WZRY-60", "2876543210", "安卓QQ区", "processing",
        created_ago=2 * _M + timedelta(seconds=10), paid_ago=2 * _M, response_seconds=30, fulfil_seconds=240,
    ),
    _OrderSeed(
        "KM20261127002", "B1001", "TXSP-VIP-M", "13912345678", "中国大陆", "delivered",
        created_ago=3 * _D, paid_ago=3 * _D - _M, response_seconds=120, fulfil_seconds=600,
    ),
    _OrderSeed(
        "KM20261127003", "B1001", "CM-100", "13800138000", "广东移动", "cancelled",
        created_ago=15 * _M, paid_ago=14 * _M, cancel=("user_mistake", "buyer", 5 * _M),
    ),
    _OrderSeed(
        "KM20261127004", "B1001", "CU-50", "13100001111", "北京联通", "processing",
        created_ago=51 * _M, paid_ago=50 * _M, outcome="stall", response_seconds=60,
    ),
    _OrderSeed(
        "KM20261127005", "B1001", "HPJY-60", "51234567", "安卓微信区", "pending_payment", created_ago=4 * _M,
    ),
    _OrderSeed(
        "KM20261127006", "B1001", "YS-60", "108765432", "国服", "delivered",
        created_ago=_D, paid_ago=_D - _M, response_seconds=40, fulfil_seconds=140,
    ),
    _OrderSeed(
        "KM20261127007", "B1001", "CT-50", "13312345678", "上海电信", "pending_payment",
        created_ago=9 * _M, submitted_ago=8 * _M, outcome="payment_stall",
    ),
    # B1002: another buyer's orders (ownership checks).
    _OrderSeed(
        "KM20261127101", "B1002", "CT-50", "13300001111", "上海电信", "paid", created_ago=2 * _M, paid_ago=_M,
    ),
    _OrderSeed(
        "KM20261127102", "B1002", "WZRY-60", "3344556677", "iOS QQ区", "delivered",
        created_ago=2 * _D, paid_ago=2 * _D, response_seconds=20, fulfil_seconds=100,
    ),
)  # fmt: skip


def _history() -> tuple[_OrderSeed, ...]:
    """Past orders of B1003, giving each merchant a realistic score (M01 good, M02 fair, M03 slow)."""
    specs = (
        ("WZRY-60", "2233445566", "安卓QQ区", 14, (40, 200), 0),
        ("CM-100", "13800001234", "广东移动", 10, (240, 900), 1),
        ("IQY-VIP-M", "13700001234", "中国大陆", 8, (600, 1800), 1),
    )
    seeds: list[_OrderSeed] = []
    for index, (sku, account, region, count, (response, fulfil), cancelled) in enumerate(specs):
        for n in range(count):
            ago = (n + 1) * _D + index * timedelta(hours=3)
            common = _OrderSeed(
                f"KM2026110{index + 1}{n:03d}", "B1003", sku, account, region, "delivered",
                created_ago=ago, paid_ago=ago - _M,
                response_seconds=response + 15 * n, fulfil_seconds=fulfil + 30 * n,
            )  # fmt: skip
            if n < cancelled:
                common = replace(
                    common, state="cancelled", cancel=("arrival_too_slow", "buyer", ago - 5 * _M)
                )
            seeds.append(common)
    return tuple(seeds)


async def _seed_parties(session: AsyncSession, now: datetime) -> None:
    for m in MERCHANTS:
        if await session.get(Merchant, m.merchant_id) is None:
            session.add(
                Merchant(
                    merchant_id=m.merchant_id,
                    name=m.name,
                    telegram_chat_id=m.telegram_chat_id,
                    support_hours=m.support_hours,
                    created_at=now - 365 * _D,
                )
            )
    for buyer_id, name, telegram_user_id in BUYERS:
        if await session.get(Buyer, buyer_id) is None:
            session.add(Buyer(buyer_id=buyer_id, name=name, created_at=now - 90 * _D))
        if telegram_user_id is not None and await session.get(TelegramLink, telegram_user_id) is None:
            session.add(
                TelegramLink(telegram_user_id=telegram_user_id, buyer_id=buyer_id, linked_at=now - 30 * _D)
            )
    for p in PRODUCTS:
        if await session.get(Product, p.sku) is None:
            session.add(
                Product(
                    sku=p.sku,
                    kind=p.kind,
                    name=p.name,
                    merchant_id=p.merchant_id,
                    price_cents=cents(p.price),
                    carrier=p.carrier,
                    stock=p.stock,
                )
            )
    await session.flush()


def _order_from_seed(seed: _OrderSeed, product: Product, now: datetime, restore_window: timedelta) -> Order:
    state = "paid" if seed.state == "cancelled" else seed.state
    plan = OrderPlan(
        order_id=seed.order_id,
        buyer_id=seed.buyer_id,
        product=product,
        account=seed.account,
        region=seed.region,
        state=state,
        created_at=now - seed.created_ago,
        paid_at=None if seed.paid_ago is None else now - seed.paid_ago,
        payment_submitted_at=None if seed.submitted_ago is None else now - seed.submitted_ago,
        outcome=seed.outcome,
        response_seconds=seed.response_seconds,
        fulfil_seconds=seed.fulfil_seconds,
    )
    order = build_order(plan, now)
    if seed.cancel is not None:
        tag, by, ago = seed.cancel
        order.state_before_cancel, order.state = order.state, "cancelled"
        order.cancel_tag, order.cancel_by, order.cancelled_at = tag, by, now - ago
        order.restorable_until = now - ago + restore_window
    return order


async def seed(session: AsyncSession, now: datetime, restore_window: timedelta) -> None:
    """Insert whatever part of the demo data is missing."""
    await _seed_parties(session, now)
    for spec in (*DEMO_ORDERS, *_history()):
        if await session.get(Order, spec.order_id) is None:
            product = await session.get(Product, spec.sku)
            if product is None:
                raise RuntimeError(f"seed order {spec.order_id} names unknown product {spec.sku}")
            session.add(_order_from_seed(spec, product, now, restore_window))
    await session.flush()
