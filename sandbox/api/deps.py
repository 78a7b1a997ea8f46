"""Request dependencies: the runtime, authentication, rate limiting and common parameters."""

from __future__ import annotations

import hmac
from typing import Annotated, Any, Final, cast

from fastapi import Depends, Header, Path, Request, Security
from fastapi.security import APIKeyHeader

from sandbox.errors import ApiError
from sandbox.ratelimit import RateLimiter
from sandbox.runtime import Runtime
from sandbox.schemas import ID_PATTERN, TELEGRAM_ID_MAX, ErrorEnvelope


def get_runtime(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey")
_admin_key_header = APIKeyHeader(name="X-Admin-Key", auto_error=False, scheme_name="AdminKey")


def _matches(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


async def require_api_key(runtime: RuntimeDep, key: Annotated[str | None, Security(_api_key_header)]) -> None:
    """Authenticate a ``/v1`` call, then charge it to the key's rate-limit bucket."""
    if not _matches(key, runtime.settings.api_key):
        raise ApiError("unauthorized", "missing or wrong X-API-Key")
    wait = runtime.limiter.acquire(runtime.settings.api_key)
    if wait is not None:
        raise ApiError(
            "rate_limited",
            "too many requests; retry later",
            headers={"Retry-After": RateLimiter.retry_after_header(wait)},
        )


async def require_admin_key(
    runtime: RuntimeDep, key: Annotated[str | None, Security(_admin_key_header)]
) -> None:
    if not _matches(key, runtime.settings.admin_key):
        raise ApiError("unauthorized", "missing or wrong X-Admin-Key")


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        description="same key + same body → one effect, first response replayed",
    ),
]
BuyerId = Annotated[str, Path(pattern=ID_PATTERN, examples=["B1001"])]
OrderId = Annotated[str, Path(pattern=ID_PATTERN, examples=["KM20261127001"])]
MerchantId = Annotated[str, Path(pattern=ID_PATTERN, examples=["M01"])]
EscalationId = Annotated[str, Path(pattern=ID_PATTERN)]
SubscriptionId = Annotated[str, Path(pattern=ID_PATTERN)]
TelegramUserIdPath = Annotated[int, Path(ge=1, le=TELEGRAM_ID_MAX, examples=[10001])]

ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    "4XX": {"model": ErrorEnvelope, "description": "Refused; `error.code` says why"},
    "5XX": {"model": ErrorEnvelope, "description": "Platform fault (`internal`, `unavailable`)"},
}
V1_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    429: {
        "model": ErrorEnvelope,
        "description": "`rate_limited`",
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    },
    **ERRORS,
}
