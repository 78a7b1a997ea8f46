"""Webhook subscriptions. Delivery itself is done by :mod:`sandbox.dispatcher`."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sandbox.errors import ApiError
from sandbox.schemas import SubscriptionIn, SubscriptionOut
from sandbox.services.common import new_id
from sandbox.tables import WebhookDelivery, WebhookSubscription


def check_host(url: str, allowed_hosts: frozenset[str]) -> None:
    """Refuse hosts outside the configured allow-list (SSRF guard; an empty list allows every host)."""
    host = (urlsplit(url).hostname or "").lower()
    if allowed_hosts and host not in allowed_hosts:
        raise ApiError("validation_error", f"webhook host {host!r} is not allowed on this sandbox")


def _out(sub: WebhookSubscription) -> SubscriptionOut:
    return SubscriptionOut.model_validate(
        {
            "subscription_id": sub.subscription_id,
            "url": sub.url,
            "events": sub.events,
            "created_at": sub.created_at,
        }
    )


async def subscribe(
    session: AsyncSession, request: SubscriptionIn, now: datetime, allowed_hosts: frozenset[str]
) -> tuple[SubscriptionOut, bool]:
    """One subscription per URL: a URL already subscribed is replaced in place (events and secret updated,
    same id, its pending deliveries kept) rather than added again; further duplicates from older versions are
    retired. Returns the subscription and whether it was created (False: replaced)."""
    url = str(request.url)
    check_host(url, allowed_hosts)
    events: list[str] = sorted(set(request.events))
    secret = request.secret
    existing = list(
        await session.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.url == url, WebhookSubscription.deleted_at.is_(None))
            .order_by(WebhookSubscription.created_at, WebhookSubscription.subscription_id)
            .with_for_update()
        )
    )
    if existing:
        kept, *duplicates = existing
        kept.events, kept.secret = events, secret
        for duplicate in duplicates:
            await _retire(session, duplicate, now)
        await session.flush()
        return _out(kept), False
    sub = WebhookSubscription(
        subscription_id=new_id("WH"), url=url, events=events, secret=secret, created_at=now
    )
    session.add(sub)
    await session.flush()
    return _out(sub), True


async def _retire(session: AsyncSession, sub: WebhookSubscription, now: datetime) -> None:
    sub.deleted_at = now
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == sub.subscription_id, WebhookDelivery.status == "pending")
        .values(status="cancelled")
    )


async def unsubscribe(session: AsyncSession, subscription_id: str, now: datetime) -> None:
    """Deactivate the subscription and cancel its undelivered events."""
    sub = await session.get(WebhookSubscription, subscription_id)
    if sub is None or sub.deleted_at is not None:
        raise ApiError("not_found", f"webhook subscription {subscription_id} not found")
    await _retire(session, sub, now)
