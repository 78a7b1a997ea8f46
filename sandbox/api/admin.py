"""``/admin``: controls for tests and demos (X-Admin-Key). Not part of the platform contract proper."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sandbox.api.deps import ERRORS, RuntimeDep, require_admin_key
from sandbox.domain import EventType
from sandbox.errors import ApiError
from sandbox.runtime import Runtime
from sandbox.schemas import (
    ID_PATTERN,
    AdminOrderIn,
    BuyerIn,
    BuyerOut,
    ClockIn,
    ClockOut,
    DeliveryOut,
    EventList,
    EventOut,
    MerchantIn,
    MerchantOut,
    OrderOut,
    ProductAdminOut,
    ProductIn,
    ResetIn,
    ResetOut,
    TickOut,
)
from sandbox.services import admin
from sandbox.tables import Event, WebhookDelivery

router = APIRouter(
    prefix="/admin", dependencies=[Depends(require_admin_key)], responses=ERRORS, tags=["admin"]
)


@router.post("/buyers", status_code=201, response_model=BuyerOut)
async def create_buyer(body: BuyerIn, runtime: RuntimeDep) -> BuyerOut:
    """A buyer, optionally linked to a Telegram user at once."""
    now = runtime.now()
    return await runtime.db.run(lambda s: admin.create_buyer(s, body, now))


@router.post("/merchants", status_code=201, response_model=MerchantOut)
async def create_merchant(body: MerchantIn, runtime: RuntimeDep) -> MerchantOut:
    now = runtime.now()
    return await runtime.db.run(lambda s: admin.create_merchant(s, body, now))


@router.post(
    "/products", status_code=201, response_model=ProductAdminOut, responses={200: {"model": ProductAdminOut}}
)
async def upsert_product(body: ProductIn, runtime: RuntimeDep) -> JSONResponse:
    """Create (201) or replace (200) a product, stock included."""
    product, created = await runtime.db.run(lambda s: admin.upsert_product(s, body))
    return JSONResponse(product.model_dump(mode="json"), status_code=201 if created else 200)


@router.post("/orders", status_code=201, response_model=OrderOut)
async def create_order(body: AdminOrderIn, runtime: RuntimeDep) -> OrderOut:
    """An order written directly in the given state (no events); later steps come from `/admin/tick`."""
    now = runtime.now()
    return await runtime.db.run(lambda s: admin.create_order(s, body, now))


def _clock_out(runtime: Runtime) -> ClockOut:
    return ClockOut(now=runtime.now(), frozen=runtime.clock.frozen, speed=runtime.clock.speed)


@router.get("/clock", response_model=ClockOut)
async def get_clock(runtime: RuntimeDep) -> ClockOut:
    return _clock_out(runtime)


@router.post("/clock", response_model=ClockOut)
async def set_clock(body: ClockIn, runtime: RuntimeDep) -> ClockOut:
    """`{now}` jumps (frozen unless `frozen: false`), `{advance_seconds}` moves on, `{frozen: false}` resumes,
    `{speed}` makes it run that many times faster than real time."""
    if body.now is not None and body.advance_seconds is not None:
        raise ApiError("validation_error", "give either now or advance_seconds, not both")
    if body.speed is not None:
        runtime.clock.set_speed(body.speed)
    if body.now is not None:
        runtime.clock.set(body.now, frozen=body.frozen is not False)
    elif body.advance_seconds is not None:
        runtime.clock.advance(body.advance_seconds)
    if body.frozen is False:
        runtime.clock.unfreeze()
    elif body.frozen is True and not runtime.clock.frozen:
        runtime.clock.set(runtime.now(), frozen=True)
    return _clock_out(runtime)


@router.post("/tick", response_model=TickOut)
async def tick(runtime: RuntimeDep) -> TickOut:
    """Run the fulfilment simulation once at the current sandbox time."""
    now, result = await runtime.tick()
    return TickOut(now=now, transitions=result.transitions, events=result.events)


@router.post("/reset", response_model=ResetOut)
async def reset(runtime: RuntimeDep, body: ResetIn | None = None) -> ResetOut:
    """Delete everything and seed the demo data again (clock: real time, or frozen at `now`)."""
    seeded_at = await runtime.reset(None if body is None else body.now)
    return ResetOut(status="ok", now=seeded_at)


async def _events(
    session: AsyncSession, type_: EventType | None, order_id: str | None, limit: int
) -> list[EventOut]:
    query = select(Event).order_by(Event.created_at, Event.event_id).limit(limit)
    if type_ is not None:
        query = query.where(Event.type == type_)
    if order_id is not None:
        query = query.where(Event.order_id == order_id)
    events = list((await session.execute(query)).scalars())
    deliveries = await session.execute(
        select(WebhookDelivery)
        .where(WebhookDelivery.event_id.in_([e.event_id for e in events]))
        .order_by(WebhookDelivery.id)
    )
    by_event: dict[str, list[DeliveryOut]] = {}
    for d in deliveries.scalars():
        by_event.setdefault(d.event_id, []).append(DeliveryOut.model_validate(d, from_attributes=True))
    return [
        EventOut.model_validate(
            {
                "event_id": e.event_id,
                "type": e.type,
                "occurred_at": e.occurred_at,
                "order_id": e.order_id,
                "escalation_id": e.escalation_id,
                "data": json.loads(e.body)["data"],
                "deliveries": by_event.get(e.event_id, []),
            }
        )
        for e in events
    ]


@router.get("/events", response_model=EventList)
async def list_events(
    runtime: RuntimeDep,
    type_: Annotated[EventType | None, Query(alias="type")] = None,
    order_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> EventList:
    """The outbox, oldest first, with each event's delivery attempts."""
    found = await runtime.db.run(lambda s: _events(s, type_, order_id, limit))
    return EventList(events=found)
