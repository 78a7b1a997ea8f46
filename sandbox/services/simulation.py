"""Deterministic fulfilment simulation, driven by the sandbox clock.

Each order carries a plan (``sim_outcome`` plus response/fulfilment seconds). A step at instant ``now`` moves
every open order as far as its plan allows up to ``now``, stamping each transition at its planned instant, so
the result does not depend on how often steps run:

- pending_payment with a submitted payment → paid one minute later; a ``payment_stall`` plan never confirms
  and fires ``order.payment_stalled`` once after five minutes;
- paid → processing after the merchant's response time; processing → delivered (or failed) after the
  fulfilment time; a ``stall`` plan never finishes;
- an order still paid/processing at its promised time is refunded in full at that instant (the guarantee);
- a failed order is refunded one minute after failing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from sandbox.schemas import Transition
from sandbox.services import lifecycle
from sandbox.services.common import OrderBundle, bundle
from sandbox.tables import Order

SYSTEM = "system"


@dataclass
class StepResult:
    transitions: list[Transition] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


Action = Callable[[], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class _Planned:
    at: datetime
    action: Action


def _payment_step(session: AsyncSession, item: OrderBundle, now: datetime) -> _Planned | None:
    order = item.order
    submitted = order.payment_submitted_at
    if submitted is None:
        return None
    if order.sim_outcome == "payment_stall":
        if order.payment_stalled_at is not None:
            return None
        at = submitted + lifecycle.PAYMENT_STALL_AFTER
        return _Planned(at, lambda: lifecycle.payment_stalled(session, item, at, now))
    at = submitted + lifecycle.PAYMENT_CONFIRM_DELAY
    return _Planned(at, lambda: lifecycle.mark_paid(session, item, at, now, SYSTEM))


def _work_step(session: AsyncSession, item: OrderBundle, now: datetime) -> _Planned | None:
    """The merchant's next planned move on a paid or processing order, if it ever makes one."""
    order = item.order
    if order.state == "paid":
        anchor = lifecycle.fulfilment_anchor(order)
        if anchor is None:
            return None
        at = anchor + timedelta(seconds=order.sim_response_seconds)

        async def accept() -> None:
            lifecycle.start_processing(session, item, at, SYSTEM)

        return _Planned(at, accept)
    if order.sim_outcome == "stall" or order.processing_started_at is None:
        return None
    at = order.processing_started_at + timedelta(seconds=order.sim_fulfil_seconds)
    if order.sim_outcome == "fail":
        return _Planned(at, lambda: lifecycle.fail(session, item, at, now, SYSTEM))
    return _Planned(at, lambda: lifecycle.deliver(session, item, at, now, SYSTEM))


def _fulfilment_step(session: AsyncSession, item: OrderBundle, now: datetime) -> _Planned | None:
    """Work that finishes by the promised time wins; otherwise the guarantee refunds at the promised time."""
    planned = _work_step(session, item, now)
    promised_by = item.order.promised_by
    if promised_by is not None and (planned is None or planned.at > promised_by):
        at = promised_by
        return _Planned(at, lambda: lifecycle.refund(session, item, at, now, reason="guarantee", by=SYSTEM))
    return planned


def _next_step(session: AsyncSession, item: OrderBundle, now: datetime) -> _Planned | None:
    order = item.order
    if order.state == "pending_payment":
        return _payment_step(session, item, now)
    if order.state in ("paid", "processing"):
        return _fulfilment_step(session, item, now)
    if order.state == "failed" and order.failed_at is not None:
        at = order.failed_at + lifecycle.FAILED_REFUND_DELAY
        return _Planned(at, lambda: lifecycle.refund(session, item, at, now, reason="failed", by=SYSTEM))
    return None


async def _advance(session: AsyncSession, item: OrderBundle, now: datetime, result: StepResult) -> None:
    while (planned := _next_step(session, item, now)) is not None and planned.at <= now:
        before = item.order.state
        event_id = await planned.action()
        if event_id is not None:
            result.events.append(event_id)
        if item.order.state != before:
            result.transitions.append(
                Transition.model_validate(
                    {
                        "order_id": item.order.order_id,
                        "from_state": before,
                        "to_state": item.order.state,
                        "at": planned.at,
                    }
                )
            )


async def run_step(session: AsyncSession, now: datetime) -> StepResult:
    """One simulation step over every open order (rows locked by a concurrent request are left for later)."""
    query = (
        select(Order)
        .where(
            or_(
                Order.state.in_(("paid", "processing", "failed")),
                (Order.state == "pending_payment") & Order.payment_submitted_at.is_not(None),
            )
        )
        .order_by(Order.order_id)
        .with_for_update(skip_locked=True)
    )
    result = StepResult()
    for order in (await session.execute(query)).scalars().all():
        await _advance(session, await bundle(session, order), now, result)
    await session.flush()
    return result
