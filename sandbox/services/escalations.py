"""Escalations (tickets) handed to merchants and agents; states only move forward."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sandbox.domain import ESCALATION_STATES
from sandbox.errors import ApiError
from sandbox.schemas import EscalationIn, EscalationOut
from sandbox.services.common import new_id, owned_order, require_buyer
from sandbox.services.events import emit_escalation_event
from sandbox.services.views import escalation_out
from sandbox.tables import Escalation

CSAT_STATES = frozenset({"resolved", "closed"})
OPEN_STATES = ("open", "merchant_notified", "agent_assigned")
SUMMARY_LIMIT = 4000


async def create_escalation(session: AsyncSession, request: EscalationIn, now: datetime) -> EscalationOut:
    """Open a ticket; with an order it must be the buyer's own, and the order's merchant is attached.

    One open ticket per buyer and order: a new request while one is open is added to it (its summary
    appended, an accusation of the merchant kept) and answered with ``appended: true``.
    """
    await require_buyer(session, request.buyer_id)
    merchant_id = None
    if request.order_id is not None:
        item = await owned_order(session, request.buyer_id, request.order_id)
        merchant_id = item.order.merchant_id
    same_order = (
        Escalation.order_id.is_(None) if request.order_id is None else Escalation.order_id == request.order_id
    )
    existing = (
        await session.execute(
            select(Escalation)
            .where(Escalation.buyer_id == request.buyer_id, same_order, Escalation.state.in_(OPEN_STATES))
            .order_by(Escalation.created_at.desc())
            .limit(1)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if existing is not None:
        existing.summary = f"{existing.summary}\n---\n{request.summary}"[-SUMMARY_LIMIT:]
        existing.accuses_merchant = bool(existing.accuses_merchant or request.accuses_merchant)
        existing.updated_at = now
        await session.flush()
        return escalation_out(existing).model_copy(update={"appended": True})
    escalation = Escalation(
        escalation_id=new_id("ES"),
        order_id=request.order_id,
        buyer_id=request.buyer_id,
        merchant_id=merchant_id,
        reason=request.reason,
        summary=request.summary,
        state="open",
        accuses_merchant=request.accuses_merchant,
        created_at=now,
        updated_at=now,
    )
    session.add(escalation)
    await session.flush()
    return escalation_out(escalation)


async def _require(session: AsyncSession, escalation_id: str, *, for_update: bool = False) -> Escalation:
    query = select(Escalation).where(Escalation.escalation_id == escalation_id)
    if for_update:
        query = query.with_for_update()
    escalation = (await session.execute(query)).scalar_one_or_none()
    if escalation is None:
        raise ApiError("not_found", f"escalation {escalation_id} not found")
    return escalation


async def get_escalation(session: AsyncSession, escalation_id: str) -> EscalationOut:
    return escalation_out(await _require(session, escalation_id))


async def list_escalations(
    session: AsyncSession, state: str | None, buyer_id: str | None, limit: int
) -> list[EscalationOut]:
    query = select(Escalation).order_by(Escalation.created_at.desc(), Escalation.escalation_id).limit(limit)
    if state is not None:
        query = query.where(Escalation.state == state)
    if buyer_id is not None:
        query = query.where(Escalation.buyer_id == buyer_id)
    return [escalation_out(e) for e in (await session.execute(query)).scalars()]


async def update_state(session: AsyncSession, escalation_id: str, state: str, now: datetime) -> EscalationOut:
    """Move forward (skipping steps is allowed); the current state again is a no-op; backwards is refused."""
    escalation = await _require(session, escalation_id, for_update=True)
    current = ESCALATION_STATES.index(escalation.state)
    target = ESCALATION_STATES.index(state)
    if target == current:
        return escalation_out(escalation)
    if target < current:
        raise ApiError("invalid_state_transition", f"cannot go back from {escalation.state} to {state}")
    escalation.state = state
    escalation.updated_at = now
    await session.flush()
    await emit_escalation_event(session, escalation, now)
    return escalation_out(escalation)


async def submit_csat(session: AsyncSession, escalation_id: str, score: int, now: datetime) -> EscalationOut:
    """Record the buyer's 1–5 rating once the ticket is resolved; a later rating replaces the earlier one."""
    escalation = await _require(session, escalation_id, for_update=True)
    if escalation.state not in CSAT_STATES:
        raise ApiError("invalid_state_transition", "a rating can only be given once the ticket is resolved")
    escalation.csat = score
    escalation.updated_at = now
    await session.flush()
    await emit_escalation_event(session, escalation, now)
    return escalation_out(escalation)
