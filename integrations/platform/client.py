"""Async client of the platform API (docs/platform-api.md).

One pooled ``httpx.AsyncClient`` per instance. Idempotent calls — GETs, DELETEs and every POST/PATCH, which
always carry an ``Idempotency-Key`` (generated when the caller gives none, and kept across retries) — are
retried with exponential backoff on timeouts, connection errors, 5xx and short 429s. Every failure surfaces
as a :class:`~integrations.platform.errors.PlatformError`; no httpx exception escapes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from integrations.platform.errors import (
    PlatformError,
    RateLimited,
    Unavailable,
    from_response,
    from_transport_error,
)
from integrations.platform.models import (
    BuyerLink,
    CancelledBy,
    CancelReasonTag,
    Escalation,
    EscalationList,
    EscalationState,
    EventType,
    LinkToken,
    Merchant,
    MerchantLinkToken,
    MerchantScore,
    Order,
    OrderList,
    ProductKind,
    RechargeTargetChange,
    RechargeTargetHistory,
    RefundRequest,
    Sla,
    SlaList,
    WebhookSubscription,
)
from integrations.privacy import mask_personal_data

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
MAX_RATE_LIMIT_WAIT: Final = 2.0
"""Longest Retry-After the client sleeps through; a longer one is raised as RateLimited at once."""
USER_AGENT: Final = "kameng-cs-bot/platform-client"


def _segment(value: str | int) -> str:
    """Quote one path segment so ids typed by buyers ('../x', 'a/b', '?') cannot change the route."""
    return quote(str(value), safe="")


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


class PlatformClient:
    """Use as ``async with PlatformClient(url, key) as platform: ...`` or call :meth:`aclose`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff: float = 0.2,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self._retries = retries
        self._backoff = backoff
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"X-API-Key": api_key, "Accept": "application/json", "User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ transport

    def _delay(self, attempt: int, error: PlatformError) -> float:
        if isinstance(error, RateLimited):
            return error.retry_after
        return float(self._backoff * 2.0**attempt * random.uniform(0.5, 1.0))

    def _retryable(self, error: PlatformError) -> bool:
        if isinstance(error, RateLimited):
            return error.retry_after <= MAX_RATE_LIMIT_WAIT
        return isinstance(error, Unavailable)

    async def _send_once(self, request: httpx.Request) -> httpx.Response | PlatformError:
        try:
            response = await self._http.send(request)
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            return from_transport_error(exc)
        if response.is_success:
            return response
        return from_response(response)

    def _build(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None,
        body: Mapping[str, Any] | None,
        idempotency_key: str | None,
    ) -> httpx.Request:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        try:
            return self._http.build_request(method, path, params=params, json=body, headers=headers)
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            raise PlatformError("invalid_request", detail=f"cannot build {method} {path}: {exc}") from exc

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """Send, retrying only when repeating the request cannot cause a second effect."""
        if self._http.is_closed:
            raise PlatformError("client_closed", detail="this PlatformClient has been closed")
        request = self._build(method, path, params, body, idempotency_key)
        idempotent = method in IDEMPOTENT_METHODS or idempotency_key is not None
        attempts = self._retries + 1 if idempotent else 1
        for attempt in range(attempts):
            outcome = await self._send_once(request)
            if isinstance(outcome, httpx.Response):
                return outcome
            if attempt == attempts - 1 or not self._retryable(outcome):
                raise outcome
            delay = self._delay(attempt, outcome)
            logger.warning(
                "platform %s %s failed (%s); retry %d in %.2fs",
                method,
                path,
                outcome.code,
                attempt + 1,
                delay,
            )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    @staticmethod
    def _parse(model: type[M], response: httpx.Response) -> M:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise Unavailable(
                "bad_response",
                status=response.status_code,
                detail=f"unexpected {model.__name__} from {response.request.url.path}: {exc.error_count()} errors",
            ) from exc

    async def _get(self, model: type[M], path: str, params: Mapping[str, str | int] | None = None) -> M:
        return self._parse(model, await self._request("GET", path, params=params))

    async def _write(
        self, method: str, model: type[M], path: str, body: Mapping[str, Any] | None, key: str | None
    ) -> M:
        response = await self._request(method, path, body=body, idempotency_key=key or new_idempotency_key())
        return self._parse(model, response)

    # ------------------------------------------------------------------ health

    async def health(self) -> None:
        """Raise :class:`Unavailable` unless the platform answers its health check."""
        await self._request("GET", "/health")

    # ------------------------------------------------------------------ buyers and Telegram links

    async def issue_link_token(self, buyer_id: str, *, idempotency_key: str | None = None) -> LinkToken:
        path = f"/v1/buyers/{_segment(buyer_id)}/link-tokens"
        return await self._write("POST", LinkToken, path, None, idempotency_key)

    async def redeem_link_token(
        self, token: str, telegram_user_id: int, *, idempotency_key: str | None = None
    ) -> BuyerLink:
        """Bind the Telegram user to the token's buyer; raises InvalidToken (unknown/expired/used)."""
        body = {"token": token, "telegram_user_id": telegram_user_id}
        return await self._write("POST", BuyerLink, "/v1/telegram-links", body, idempotency_key)

    async def get_link(self, telegram_user_id: int) -> BuyerLink:
        """The buyer this Telegram user is linked to; raises NotLinked."""
        return await self._get(BuyerLink, f"/v1/telegram-links/{_segment(telegram_user_id)}")

    async def unlink(self, telegram_user_id: int) -> None:
        await self._request("DELETE", f"/v1/telegram-links/{_segment(telegram_user_id)}")

    # ------------------------------------------------------------------ orders

    @staticmethod
    def _order_path(buyer_id: str, order_id: str) -> str:
        return f"/v1/buyers/{_segment(buyer_id)}/orders/{_segment(order_id)}"

    async def get_order(self, buyer_id: str, order_id: str) -> Order:
        """The buyer's order; raises NotFound for unknown ids and for other buyers' orders."""
        return await self._get(Order, self._order_path(buyer_id, order_id))

    async def list_orders(self, buyer_id: str, limit: int = 5) -> list[Order]:
        """Newest first; ``limit`` 1–50."""
        found = await self._get(OrderList, f"/v1/buyers/{_segment(buyer_id)}/orders", {"limit": limit})
        return found.orders

    async def fix_recharge_target(
        self,
        buyer_id: str,
        order_id: str,
        *,
        account: str | None = None,
        region: str | None = None,
        idempotency_key: str | None = None,
    ) -> Order:
        """Correct account and/or region; raises InvalidInput (invalid_account, unknown_region) or NotAllowed."""
        body = {k: v for k, v in (("account", account), ("region", region)) if v is not None}
        path = f"{self._order_path(buyer_id, order_id)}/recharge-target"
        return await self._write("PATCH", Order, path, body, idempotency_key)

    async def recharge_target_history(self, buyer_id: str, order_id: str) -> list[RechargeTargetChange]:
        path = f"{self._order_path(buyer_id, order_id)}/recharge-target/history"
        return (await self._get(RechargeTargetHistory, path)).changes

    async def cancel_order(
        self,
        buyer_id: str,
        order_id: str,
        reason_tag: CancelReasonTag,
        *,
        note: str | None = None,
        by: CancelledBy = "buyer",
        idempotency_key: str | None = None,
    ) -> Order:
        body: dict[str, Any] = {"reason_tag": reason_tag, "by": by}
        if note is not None:
            body["note"] = note
        path = f"{self._order_path(buyer_id, order_id)}/cancel"
        return await self._write("POST", Order, path, body, idempotency_key)

    async def restore_order(
        self, buyer_id: str, order_id: str, *, idempotency_key: str | None = None
    ) -> Order:
        """Undo a cancellation; raises NotAllowed (not_restorable, restore_window_passed, out_of_stock)."""
        path = f"{self._order_path(buyer_id, order_id)}/restore"
        return await self._write("POST", Order, path, None, idempotency_key)

    async def request_refund(
        self, buyer_id: str, order_id: str, reason: str, *, idempotency_key: str | None = None
    ) -> RefundRequest:
        path = f"{self._order_path(buyer_id, order_id)}/refund-requests"
        return await self._write("POST", RefundRequest, path, {"reason": reason}, idempotency_key)

    # ------------------------------------------------------------------ merchants and SLAs

    async def get_merchant(self, merchant_id: str) -> Merchant:
        return await self._get(Merchant, f"/v1/merchants/{_segment(merchant_id)}")

    async def issue_merchant_link_token(
        self, merchant_id: str, *, idempotency_key: str | None = None
    ) -> MerchantLinkToken:
        path = f"/v1/merchants/{_segment(merchant_id)}/link-tokens"
        return await self._write("POST", MerchantLinkToken, path, {}, idempotency_key)

    async def redeem_merchant_link_token(
        self, token: str, telegram_chat_id: int, *, idempotency_key: str | None = None
    ) -> Merchant:
        """Tickets of the token's merchant now go to ``telegram_chat_id``; InvalidToken when refused."""
        body = {"token": token, "telegram_chat_id": telegram_chat_id}
        return await self._write("POST", Merchant, "/v1/merchant-links", body, idempotency_key)

    async def get_merchant_score(self, merchant_id: str) -> MerchantScore:
        return await self._get(MerchantScore, f"/v1/merchants/{_segment(merchant_id)}/score")

    async def get_slas(
        self, product_kind: ProductKind | None = None, carrier: str | None = None, at: datetime | None = None
    ) -> list[Sla]:
        """SLA entries; with ``at`` only those in force then (day or night)."""
        params: dict[str, str | int] = {}
        if product_kind is not None:
            params["product_kind"] = product_kind
        if carrier is not None:
            params["carrier"] = carrier
        if at is not None:
            params["at"] = at.isoformat()
        return (await self._get(SlaList, "/v1/slas", params)).slas

    # ------------------------------------------------------------------ escalations

    async def create_escalation(
        self,
        buyer_id: str,
        reason: str,
        summary: str,
        *,
        order_id: str | None = None,
        accuses_merchant: bool = False,
        idempotency_key: str | None = None,
    ) -> Escalation:
        """Open a ticket, or add to the buyer's open one for the same order (``appended``). With
        ``accuses_merchant`` (the buyer accuses the order's merchant) it goes to platform agents only.
        The summary is read by people (merchant, agents): personal data is masked; the order keeps the
        real values."""
        body: dict[str, Any] = {
            "buyer_id": buyer_id,
            "reason": reason,
            "summary": mask_personal_data(summary),
        }
        if order_id is not None:
            body["order_id"] = order_id
        if accuses_merchant:
            body["accuses_merchant"] = True
        return await self._write("POST", Escalation, "/v1/escalations", body, idempotency_key)

    async def get_escalation(self, escalation_id: str) -> Escalation:
        return await self._get(Escalation, f"/v1/escalations/{_segment(escalation_id)}")

    async def list_escalations(
        self, state: EscalationState | None = None, *, buyer_id: str | None = None, limit: int = 50
    ) -> list[Escalation]:
        params: dict[str, str | int] = {"limit": limit}
        if state is not None:
            params["state"] = state
        if buyer_id is not None:
            params["buyer_id"] = buyer_id
        return (await self._get(EscalationList, "/v1/escalations", params)).escalations

    async def update_escalation(
        self, escalation_id: str, state: EscalationState, *, idempotency_key: str | None = None
    ) -> Escalation:
        """Move the ticket forward; raises NotAllowed (invalid_state_transition) for a step back."""
        path = f"/v1/escalations/{_segment(escalation_id)}"
        return await self._write("PATCH", Escalation, path, {"state": state}, idempotency_key)

    async def submit_csat(
        self, escalation_id: str, score: int, *, idempotency_key: str | None = None
    ) -> Escalation:
        path = f"/v1/escalations/{_segment(escalation_id)}/csat"
        return await self._write("POST", Escalation, path, {"score": score}, idempotency_key)

    # ------------------------------------------------------------------ webhooks

    async def subscribe_webhook(
        self, url: str, events: Sequence[EventType], secret: str, *, idempotency_key: str | None = None
    ) -> WebhookSubscription:
        body = {"url": url, "events": list(events), "secret": secret}
        return await self._write(
            "POST", WebhookSubscription, "/v1/webhook-subscriptions", body, idempotency_key
        )

    async def unsubscribe_webhook(self, subscription_id: str) -> None:
        await self._request("DELETE", f"/v1/webhook-subscriptions/{_segment(subscription_id)}")
