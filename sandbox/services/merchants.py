"""Merchants and their fulfilment score, computed from the orders themselves."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sandbox.domain import Grade
from sandbox.schemas import MerchantOut, MerchantScoreOut
from sandbox.services.common import require_merchant
from sandbox.services.views import merchant_out
from sandbox.tables import Order

SCORE_WINDOW_DAYS: Final = 30


async def get_merchant(session: AsyncSession, merchant_id: str) -> MerchantOut:
    return merchant_out(await require_merchant(session, merchant_id))


def _minutes(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() / 60


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 1) if present else None


def grade(cancel_rate: float, arrival: float | None, response: float | None) -> Grade:
    """A: rarely cancels, delivers within game-card SLAs and answers within minutes; D: unreliable."""
    arrival = arrival if arrival is not None else float("inf")
    response = response if response is not None else float("inf")
    if cancel_rate <= 0.05 and arrival <= 10 and response <= 3:
        return "A"
    if cancel_rate <= 0.10 and arrival <= 20 and response <= 10:
        return "B"
    if cancel_rate <= 0.20 and arrival <= 45:
        return "C"
    return "D"


async def merchant_score(session: AsyncSession, merchant_id: str, now: datetime) -> MerchantScoreOut:
    """Score over the last 30 days of orders that got past payment (unpaid orders say nothing about the shop).

    cancel rate = cancelled / considered; arrival = paid → delivered; response = paid → merchant accepted.
    """
    await require_merchant(session, merchant_id)
    since = now - timedelta(days=SCORE_WINDOW_DAYS)
    rows = await session.execute(
        select(Order).where(
            Order.merchant_id == merchant_id,
            Order.created_at >= since,
            Order.created_at <= now,
            Order.paid_at.is_not(None),
        )
    )
    orders = list(rows.scalars())
    considered = len(orders)
    cancelled = sum(1 for o in orders if o.state == "cancelled")
    cancel_rate = round(cancelled / considered, 4) if considered else 0.0
    arrival = _median([_minutes(o.paid_at, o.delivered_at) for o in orders if o.state == "delivered"])
    response = _median([_minutes(o.paid_at, o.processing_started_at) for o in orders])
    return MerchantScoreOut(
        merchant_id=merchant_id,
        window_days=SCORE_WINDOW_DAYS,
        orders_considered=considered,
        cancel_rate=cancel_rate,
        median_arrival_minutes=arrival,
        median_response_minutes=response,
        grade=grade(cancel_rate, arrival, response) if considered else None,
    )
