"""Platform events: written to the outbox in the same transaction as the change that caused them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sandbox.clock import utc_now
from sandbox.domain import EventType
from sandbox.services.common import OrderBundle
from sandbox.services.views import escalation_out, order_out
from sandbox.tables import Escalation, Event, TelegramLink, WebhookDelivery, WebhookSubscription


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def encode_body(event_id: str, type_: EventType, occurred_at: datetime, data: dict[str, Any]) -> str:
    """The exact bytes (as text) every delivery of the event sends and signs."""
    payload = {
        "event_id": event_id,
        "type": type_,
        "occurred_at": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


async def _subscribers(session: AsyncSession, type_: EventType) -> list[WebhookSubscription]:
    rows = await session.execute(select(WebhookSubscription).where(WebhookSubscription.deleted_at.is_(None)))
    return [sub for sub in rows.scalars() if type_ in sub.events]


async def emit(
    session: AsyncSession,
    type_: EventType,
    occurred_at: datetime,
    data: dict[str, Any],
    *,
    order_id: str | None = None,
    escalation_id: str | None = None,
) -> str:
    """Store the event and one pending delivery per subscriber; returns the event id."""
    event_id = new_event_id()
    real_now = utc_now()
    session.add(
        Event(
            event_id=event_id,
            type=type_,
            occurred_at=occurred_at,
            order_id=order_id,
            escalation_id=escalation_id,
            body=encode_body(event_id, type_, occurred_at, data),
            created_at=real_now,
        )
    )
    for sub in await _subscribers(session, type_):
        session.add(
            WebhookDelivery(
                event_id=event_id,
                subscription_id=sub.subscription_id,
                status="pending",
                attempts=0,
                next_attempt_at=real_now,
            )
        )
    return event_id


async def telegram_user_ids(session: AsyncSession, buyer_id: str) -> list[int]:
    rows = await session.execute(
        select(TelegramLink.telegram_user_id)
        .where(TelegramLink.buyer_id == buyer_id)
        .order_by(TelegramLink.telegram_user_id)
    )
    return list(rows.scalars())


async def emit_order_event(
    session: AsyncSession, type_: EventType, item: OrderBundle, occurred_at: datetime, now: datetime
) -> str:
    """An ``order.*`` event carrying the order as the API shows it and the buyer's linked Telegram users."""
    order = item.order
    data: dict[str, Any] = {
        "order_id": order.order_id,
        "buyer_id": order.buyer_id,
        "state": order.state,
        "telegram_user_ids": await telegram_user_ids(session, order.buyer_id),
        "order": order_out(item, now).model_dump(mode="json"),
    }
    return await emit(session, type_, occurred_at, data, order_id=order.order_id)


async def emit_escalation_event(session: AsyncSession, escalation: Escalation, occurred_at: datetime) -> str:
    data: dict[str, Any] = {
        "escalation_id": escalation.escalation_id,
        "state": escalation.state,
        "telegram_user_ids": await telegram_user_ids(session, escalation.buyer_id),
        "escalation": escalation_out(escalation).model_dump(mode="json"),
    }
    return await emit(
        session, "escalation.updated", occurred_at, data, escalation_id=escalation.escalation_id
    )
