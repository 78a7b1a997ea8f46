"""Webhook delivery: signed exactly as documented, retried with backoff, at least once, from the outbox."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from integrations.platform import InvalidInput, PlatformClient, PlatformEvent
from integrations.platform.signing import EVENT_ID_HEADER, verify_headers
from sandbox.db import Database
from sandbox.dispatcher import WebhookDispatcher
from sandbox.migrate import upgrade_to_head
from sandbox.schemas import SubscriptionIn
from sandbox.services import events, webhooks
from sandbox.settings import SandboxSettings
from sandbox.tables import WebhookDelivery
from sandbox.testing import SandboxAdmin, WebhookRecorder

pytestmark = pytest.mark.integration

SECRET = "a-long-webhook-secret-for-tests"


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def deliver_one_event(admin: SandboxAdmin) -> None:
    await admin.create_order(
        order_id="KMHOOK1",
        buyer_id="B1001",
        sku="WZRY-60",
        account="12345678",
        region="国服",
        response_seconds=0,
        fulfil_seconds=30,
    )
    await admin.advance(30)  # the seeded KM20261127001 is delivered a little later
    await admin.tick()


async def test_delivery_is_signed_and_retried_until_accepted(
    platform: PlatformClient, admin: SandboxAdmin, webhook_receiver: WebhookRecorder
) -> None:
    webhook_receiver.fail_first = 2
    subscription = await platform.subscribe_webhook(webhook_receiver.url, ["order.delivered"], SECRET)
    assert subscription.events == ["order.delivered"]
    await deliver_one_event(admin)
    await wait_for(lambda: len(webhook_receiver.received()) >= 3)

    attempts = webhook_receiver.received()
    assert len({a.body for a in attempts}) == 1, "every retry sends the same bytes"
    assert len({a.headers[EVENT_ID_HEADER.lower()] for a in attempts}) == 1
    for attempt in attempts:
        assert verify_headers(SECRET, attempt.headers, attempt.body, now=time.time())
        assert not verify_headers("another-secret-entirely", attempt.headers, attempt.body, now=time.time())
    event = PlatformEvent.model_validate_json(attempts[0].body)
    assert event.event_id == attempts[0].headers[EVENT_ID_HEADER.lower()]
    assert event.type == "order.delivered"
    assert event.order is not None and event.order.order_id == "KMHOOK1"
    assert event.telegram_user_ids == [10001]

    delivery = await delivery_of(admin, "KMHOOK1")
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("delivered", 3, 204)


async def delivery_of(admin: SandboxAdmin, order_id: str) -> dict[str, Any]:
    """The outbox's record once the dispatcher has written the outcome of the last attempt."""
    deadline = time.monotonic() + 10
    while True:
        outbox = await admin.events(type_="order.delivered", order_id=order_id)
        delivery: dict[str, Any] = outbox[0]["deliveries"][0]
        if delivery["status"] != "pending" or time.monotonic() > deadline:
            return delivery
        await asyncio.sleep(0.02)


async def test_only_subscribed_types_are_sent_and_unsubscribe_stops(
    platform: PlatformClient, admin: SandboxAdmin, webhook_receiver: WebhookRecorder
) -> None:
    webhook_receiver.fail_first = 10_000
    subscription = await platform.subscribe_webhook(webhook_receiver.url, ["order.refunded"], SECRET)
    await deliver_one_event(admin)  # order.delivered (not subscribed); the overdue seed is refunded
    await wait_for(lambda: len(webhook_receiver.received()) >= 1)
    await platform.unsubscribe_webhook(subscription.subscription_id)
    refunded = await admin.events(type_="order.refunded", order_id="KM20261127004")
    assert refunded[0]["deliveries"][0]["status"] == "cancelled"
    assert (await admin.events(type_="order.delivered"))[0]["deliveries"] == []
    seen = len(webhook_receiver.received())
    await asyncio.sleep(0.5)
    assert len(webhook_receiver.received()) == seen


async def test_subscription_hosts_are_restricted(platform: PlatformClient) -> None:
    with pytest.raises(InvalidInput) as refused:
        await platform.subscribe_webhook("http://hooks.example.invalid/x", ["order.paid"], SECRET)
    assert refused.value.code == "validation_error"


# ---------------------------------------------------------------- dispatcher in isolation


class FakeWall:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    await upgrade_to_head(db.engine)
    yield db
    await db.dispose()


async def test_backoff_doubles_and_gives_up_after_max_attempts(sqlite_db: Database) -> None:
    settings = SandboxSettings(
        _env_file=None,
        webhook_retry_base_seconds=2,
        webhook_retry_max_seconds=5,
        webhook_max_attempts=3,
    )
    requests: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(503)

    wall = FakeWall()
    dispatcher = WebhookDispatcher(sqlite_db, settings, wall=wall)
    assert [dispatcher.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [2, 4, 5, 5]
    now = wall.now

    async def setup(session: AsyncSession) -> None:
        sub = SubscriptionIn.model_validate(
            {"url": "http://127.0.0.1:9/hook", "events": ["order.paid"], "secret": SECRET}
        )
        await webhooks.subscribe(session, sub, now, frozenset())
        await session.flush()
        await events.emit(session, "order.paid", now, {"order_id": "KMX"})

    await sqlite_db.run(setup)
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        assert await dispatcher.deliver_due(client) == 0, "the fake wall clock is behind the real one"
        wall.now = datetime.now(UTC)
        assert await dispatcher.deliver_due(client) == 1
        assert await dispatcher.deliver_due(client) == 0, "not due again before the backoff"
        wall.now += timedelta(seconds=2)
        assert await dispatcher.deliver_due(client) == 1
        wall.now += timedelta(seconds=4)
        assert await dispatcher.deliver_due(client) == 1
        wall.now += timedelta(hours=1)
        assert await dispatcher.deliver_due(client) == 0, "dead after three attempts"

    delivery = await sqlite_db.run(lambda s: s.get(WebhookDelivery, 1))
    assert delivery is not None
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("dead", 3, 503)
    assert len(requests) == 3
    body = json.loads(requests[0].content)
    assert body["type"] == "order.paid" and body["data"] == {"order_id": "KMX"}


async def test_one_subscription_per_url_replaced_not_added(sqlite_db: Database) -> None:
    """A bot that restarts subscribes again: the platform replaces its subscription (new secret and events)
    instead of adding one, and retires duplicates an older version left behind."""
    from sandbox.tables import WebhookSubscription

    now = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
    url = "http://127.0.0.1:9/platform/events"

    def request(events: list[str], secret: str) -> SubscriptionIn:
        return SubscriptionIn.model_validate({"url": url, "events": events, "secret": secret})

    async def scenario(session: AsyncSession) -> None:
        first, created = await webhooks.subscribe(session, request(["order.paid"], SECRET), now, frozenset())
        assert created
        # what six starts of an older bot left: duplicates of the same URL
        for n in range(3):
            session.add(
                WebhookSubscription(
                    subscription_id=f"WHOLD{n}",
                    url=url,
                    events=["order.paid"],
                    secret=SECRET,
                    created_at=now + timedelta(seconds=n + 1),
                )
            )
        await session.flush()
        await events.emit(session, "order.paid", now, {"order_id": "KMX"})
        again, created = await webhooks.subscribe(
            session, request(["order.paid", "order.delivered"], SECRET + "-rotated"), now, frozenset()
        )
        assert not created and again.subscription_id == first.subscription_id
        assert again.events == ["order.delivered", "order.paid"]
        active = list(
            await session.scalars(select(WebhookSubscription).where(WebhookSubscription.deleted_at.is_(None)))
        )
        assert [(s.subscription_id, s.secret) for s in active] == [
            (first.subscription_id, SECRET + "-rotated")
        ]
        pending = list(
            await session.scalars(select(WebhookDelivery).where(WebhookDelivery.status == "pending"))
        )
        assert [d.subscription_id for d in pending] == [first.subscription_id]  # the kept one still delivers

    await sqlite_db.run(scenario)


async def test_subscribing_again_over_http_answers_200_with_the_same_id(platform: PlatformClient) -> None:
    url = "http://127.0.0.1:9/resubscribed"
    first = await platform.subscribe_webhook(url, ["order.paid"], SECRET)
    second = await platform.subscribe_webhook(url, ["order.paid", "order.failed"], SECRET)
    assert second.subscription_id == first.subscription_id
    assert second.events == ["order.failed", "order.paid"]
    await platform.unsubscribe_webhook(first.subscription_id)
