"""The JSON error envelope and the exception handlers that guarantee it for every 4xx/5xx."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

logger = logging.getLogger(__name__)

ERROR_STATUS: Final[Mapping[str, int]] = {
    "bad_request": 400,
    "unauthorized": 401,
    "not_found": 404,
    "token_unknown": 404,
    "not_linked": 404,
    "method_not_allowed": 405,
    "already_exists": 409,
    "token_used": 409,
    "already_delivered": 409,
    "not_cancellable": 409,
    "not_restorable": 409,
    "restore_window_passed": 409,
    "out_of_stock": 409,
    "not_refundable": 409,
    "order_closed": 409,
    "invalid_state_transition": 409,
    "token_expired": 410,
    "idempotency_conflict": 422,
    "invalid_account": 422,
    "unknown_region": 422,
    "invalid_reason_tag": 422,
    "validation_error": 422,
    "rate_limited": 429,
    "internal": 500,
    "unavailable": 503,
}
"""Every machine code the API emits, with its HTTP status (docs/platform-api.md lists the same)."""

_STATUS_CODES: Final[Mapping[int, str]] = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "invalid_state_transition",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}

# Validation failures on these body fields get their own code (the schema still documents the enum).
_FIELD_CODES: Final[Mapping[str, str]] = {"reason_tag": "invalid_reason_tag"}


class ApiError(Exception):
    """A request the API refuses, carried to the client as the error envelope."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.status = ERROR_STATUS[code]
        self.message = message
        self.headers = dict(headers or {})
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers or None)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Field locations and messages only: pydantic's ``input``/``ctx`` may echo secrets or be unserialisable."""
    return [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": err["type"],
        }
        for err in exc.errors()
    ]


def _validation_code(details: list[dict[str, Any]]) -> str:
    for detail in details:
        loc = detail["loc"]
        if len(loc) >= 2 and loc[0] == "body" and loc[1] in _FIELD_CODES:
            return _FIELD_CODES[loc[1]]
    return "validation_error"


async def _handle_api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _handle_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    code = _validation_code(details)
    return ApiError(code, "request is not valid", details=details).response()


_METHODS: Final = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette names only the first matching route's)."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


async def _handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own 404/405 (unknown route, wrong method) and any other HTTPException."""
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "bad_request" if exc.status_code < 500 else "internal")
    body = {"error": {"code": code, "message": str(exc.detail)}}
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return JSONResponse(body, status_code=exc.status_code, headers=headers or None)


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": {"code": "internal", "message": "internal error"}}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _handle_api_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(Exception, _handle_unexpected)
