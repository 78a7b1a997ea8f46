"""``/v1``: Telegram links, merchants, escalations, SLAs and webhook subscriptions."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from sandbox.api.deps import (
    V1_ERRORS,
    EscalationId,
    IdempotencyKey,
    MerchantId,
    RuntimeDep,
    SubscriptionId,
    TelegramUserIdPath,
    require_api_key,
)
from sandbox.domain import Carrier, EscalationState, ProductKind
from sandbox.schemas import (
    ID_PATTERN,
    BuyerLinkOut,
    CsatIn,
    EscalationIn,
    EscalationList,
    EscalationOut,
    EscalationPatch,
    Instant,
    MerchantLinkTokenOut,
    MerchantOut,
    MerchantRedeemIn,
    MerchantScoreOut,
    RedeemIn,
    SlaList,
    SlaOut,
    SubscriptionIn,
    SubscriptionOut,
)
from sandbox.services import escalations, links, merchants, webhooks
from sandbox.sla import list_slas

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], responses=V1_ERRORS)


# ---------------------------------------------------------------- Telegram links


@router.post("/telegram-links", status_code=201, response_model=BuyerLinkOut, tags=["links"])
async def redeem_link_token(
    request: Request, body: RedeemIn, runtime: RuntimeDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """Redeem a one-time token: the Telegram user is now this buyer (`token_unknown|expired|used`)."""
    now = runtime.now()

    async def work(session: AsyncSession) -> tuple[int, object]:
        link = await links.redeem_token(session, body.token, body.telegram_user_id, now)
        return 201, link.model_dump(mode="json")

    return await runtime.idempotent(request, idempotency_key, body, work)


@router.get("/telegram-links/{telegram_user_id}", response_model=BuyerLinkOut, tags=["links"])
async def get_link(telegram_user_id: TelegramUserIdPath, runtime: RuntimeDep) -> BuyerLinkOut:
    return await runtime.db.run(lambda s: links.get_link(s, telegram_user_id))


@router.delete("/telegram-links/{telegram_user_id}", status_code=204, response_class=Response, tags=["links"])
async def unlink(telegram_user_id: TelegramUserIdPath, runtime: RuntimeDep) -> Response:
    await runtime.db.run(lambda s: links.unlink(s, telegram_user_id))
    return Response(status_code=204)


# ---------------------------------------------------------------- merchants and SLAs


@router.get("/merchants/{merchant_id}", response_model=MerchantOut, tags=["merchants"])
async def get_merchant(merchant_id: MerchantId, runtime: RuntimeDep) -> MerchantOut:
    return await runtime.db.run(lambda s: merchants.get_merchant(s, merchant_id))


@router.post(
    "/merchants/{merchant_id}/link-tokens",
    status_code=201,
    response_model=MerchantLinkTokenOut,
    tags=["links"],
)
async def issue_merchant_link_token(
    request: Request, merchant_id: MerchantId, runtime: RuntimeDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """A one-time token (15 min) linking the merchant's Telegram chat, and its bot deep link (`m-…`)."""
    now, ttl = runtime.now(), runtime.settings.link_token_ttl_seconds

    async def work(session: AsyncSession) -> tuple[int, object]:
        token = await links.issue_merchant_token(
            session, merchant_id, now, timedelta(seconds=ttl), runtime.settings.bot_username
        )
        return 201, token.model_dump(mode="json")

    return await runtime.idempotent(request, idempotency_key, None, work)


@router.post("/merchant-links", response_model=MerchantOut, tags=["links"])
async def redeem_merchant_link_token(
    request: Request, body: MerchantRedeemIn, runtime: RuntimeDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """Redeem a merchant token: tickets for the merchant's orders now go to this chat
    (`token_unknown|expired|used`)."""
    now = runtime.now()

    async def work(session: AsyncSession) -> tuple[int, object]:
        merchant = await links.redeem_merchant_token(session, body.token, body.telegram_chat_id, now)
        return 200, merchant.model_dump(mode="json")

    return await runtime.idempotent(request, idempotency_key, body, work)


@router.get("/merchants/{merchant_id}/score", response_model=MerchantScoreOut, tags=["merchants"])
async def get_merchant_score(merchant_id: MerchantId, runtime: RuntimeDep) -> MerchantScoreOut:
    """Cancel rate, median arrival and response minutes over the last 30 days of paid orders."""
    now = runtime.now()
    return await runtime.db.run(lambda s: merchants.merchant_score(s, merchant_id, now))


@router.get("/slas", response_model=SlaList, tags=["slas"])
async def get_slas(
    runtime: RuntimeDep,
    product_kind: ProductKind | None = None,
    carrier: Carrier | None = None,
    at: Annotated[Instant | None, Query(description="only the entries in force at this instant")] = None,
) -> SlaList:
    """Promised arrival minutes per kind, carrier and time of day (night = 23:00–07:00 China time)."""
    entries = list_slas(product_kind, carrier, at)
    return SlaList(slas=[SlaOut.model_validate(entry, from_attributes=True) for entry in entries])


# ---------------------------------------------------------------- escalations


@router.post("/escalations", status_code=201, response_model=EscalationOut, tags=["escalations"])
async def create_escalation(
    request: Request, body: EscalationIn, runtime: RuntimeDep, idempotency_key: IdempotencyKey = None
) -> Response:
    now = runtime.now()

    async def work(session: AsyncSession) -> tuple[int, object]:
        escalation = await escalations.create_escalation(session, body, now)
        return 201, escalation.model_dump(mode="json")

    return await runtime.idempotent(request, idempotency_key, body, work)


@router.get("/escalations", response_model=EscalationList, tags=["escalations"])
async def list_escalations(
    runtime: RuntimeDep,
    state: EscalationState | None = None,
    buyer_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> EscalationList:
    """Newest first, optionally only one state or one buyer."""
    found = await runtime.db.run(lambda s: escalations.list_escalations(s, state, buyer_id, limit))
    return EscalationList(escalations=found)


@router.get("/escalations/{escalation_id}", response_model=EscalationOut, tags=["escalations"])
async def get_escalation(escalation_id: EscalationId, runtime: RuntimeDep) -> EscalationOut:
    return await runtime.db.run(lambda s: escalations.get_escalation(s, escalation_id))


@router.patch("/escalations/{escalation_id}", response_model=EscalationOut, tags=["escalations"])
async def update_escalation(
    request: Request,
    escalation_id: EscalationId,
    body: EscalationPatch,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Forward-only: open → merchant_notified → agent_assigned → resolved → closed."""
    now = runtime.now()

    async def work(session: AsyncSession) -> tuple[int, object]:
        escalation = await escalations.update_state(session, escalation_id, body.state, now)
        return 200, escalation.model_dump(mode="json")

    return await runtime.idempotent(request, idempotency_key, body, work)


@router.post("/escalations/{escalation_id}/csat", response_model=EscalationOut, tags=["escalations"])
async def submit_csat(
    request: Request,
    escalation_id: EscalationId,
    body: CsatIn,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The buyer's 1–5 rating, once the escalation is resolved or closed."""
    now = runtime.now()

    async def work(session: AsyncSession) -> tuple[int, object]:
        escalation = await escalations.submit_csat(session, escalation_id, body.score, now)
        return 200, escalation.model_dump(mode="json")

    return await runtime.idempotent(request, idempotency_key, body, work)


# ---------------------------------------------------------------- webhooks


@router.post(
    "/webhook-subscriptions",
    status_code=201,
    response_model=SubscriptionOut,
    responses={200: {"model": SubscriptionOut, "description": "The URL was subscribed already: replaced"}},
    tags=["webhooks"],
)
async def subscribe_webhook(
    request: Request, body: SubscriptionIn, runtime: RuntimeDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """Deliver the chosen events to `url`, signed with `secret` (never echoed back). One subscription per
    URL: subscribing a URL again replaces its events and secret (200, same `subscription_id`)."""
    now, allowed = runtime.now(), runtime.settings.allowed_webhook_hosts

    async def work(session: AsyncSession) -> tuple[int, object]:
        subscription, created = await webhooks.subscribe(session, body, now, allowed)
        return (201 if created else 200), subscription.model_dump(mode="json")

    return await runtime.idempotent(request, idempotency_key, body, work)


@router.delete(
    "/webhook-subscriptions/{subscription_id}", status_code=204, response_class=Response, tags=["webhooks"]
)
async def unsubscribe_webhook(subscription_id: SubscriptionId, runtime: RuntimeDep) -> Response:
    now = runtime.now()
    await runtime.db.run(lambda s: webhooks.unsubscribe(s, subscription_id, now))
    return Response(status_code=204)
