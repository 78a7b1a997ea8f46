"""One exception tree for everything the platform API can refuse or fail to do.

Every HTTP status, error code and transport failure is mapped here and nowhere else
(:func:`from_response`, :func:`from_transport_error`). ``.message`` is safe to show a buyer (Chinese, no
internals); ``.detail`` is the technical reason for logs.
"""

from __future__ import annotations

import json
import math
import time
from email.utils import parsedate_to_datetime
from typing import Final

import httpx


class PlatformError(Exception):
    """Base class: ``code`` is the API's machine code, ``status`` the HTTP status (None if no response)."""

    default_message: str = "平台暂时无法处理该请求，请稍后再试。"

    def __init__(
        self,
        code: str,
        *,
        status: int | None = None,
        message: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.code = code
        self.status = status
        self.message = message or BUYER_MESSAGES.get(code, self.default_message)
        self.detail = detail or code
        super().__init__(f"{code} (HTTP {status}): {self.detail}" if status else f"{code}: {self.detail}")


class Unauthorized(PlatformError):
    """The API key was refused: a deployment problem, never the buyer's."""


class NotFound(PlatformError):
    """No such resource, or not the caller's: another buyer's order is reported as not found."""

    default_message = "没有找到这个订单或记录，请核对后再试。"


NotOwner = NotFound
"""Alias: the platform does not reveal whether an order exists when it belongs to someone else."""


class NotLinked(NotFound):
    """The Telegram user is not linked to any buyer account."""


class InvalidToken(PlatformError):
    """A binding token that is unknown, expired or already used."""


class NotAllowed(PlatformError):
    """The order (or ticket) is in a state that forbids this: already delivered, not restorable…"""

    default_message = "当前订单状态不支持这个操作。"


class InvalidInput(PlatformError):
    """The request carried a value the platform rejects: bad account, unknown region…"""

    default_message = "填写的信息有误，请检查后重新输入。"


class RateLimited(PlatformError):
    """Too many requests; ``retry_after`` is the number of seconds to wait."""

    def __init__(
        self,
        code: str = "rate_limited",
        *,
        retry_after: float = 1.0,
        status: int | None = 429,
        message: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(code, status=status, message=message, detail=detail)


class Unavailable(PlatformError):
    """The platform could not be reached or failed (timeout, connection error, 5xx, garbled response)."""

    default_message = "平台系统繁忙，请稍后再试。"


BUYER_MESSAGES: Final[dict[str, str]] = {
    "unauthorized": "客服系统暂时无法连接平台，请稍后再试。",
    "not_found": "没有找到这个订单，请核对订单号后再试。",
    "not_linked": "您的 Telegram 账号还没有绑定平台账号，请先完成绑定。",
    "token_unknown": "绑定链接无效，请在平台重新获取绑定链接。",
    "token_expired": "绑定链接已过期，请在平台重新获取绑定链接。",
    "token_used": "绑定链接已使用过，请在平台重新获取绑定链接。",
    "already_delivered": "订单已经到账，无法再修改或取消。",
    "not_cancellable": "订单当前状态无法取消。",
    "not_restorable": "这个订单无法恢复。",
    "restore_window_passed": "已超过可恢复时间（取消后 30 分钟内），无法恢复订单。",
    "out_of_stock": "商品库存不足，暂时无法恢复订单。",
    "not_refundable": "这个订单当前无法申请退款。",
    "order_closed": "订单已结束，无法再修改。",
    "invalid_state_transition": "当前状态不支持这个操作。",
    "invalid_account": "充值账号格式不正确，请检查后重新输入。",
    "unknown_region": "区服/地区不正确，请从支持的区服中选择。",
    "invalid_reason_tag": "取消原因无效。",
    "validation_error": "填写的信息有误，请检查后重新输入。",
    "idempotency_conflict": "请求重复，请稍后再试。",
    "rate_limited": "操作太频繁了，请稍等片刻再试。",
    "timeout": "平台响应超时，请稍后再试。",
    "unavailable": "平台系统繁忙，请稍后再试。",
    "bad_response": "平台系统繁忙，请稍后再试。",
    "internal": "平台系统繁忙，请稍后再试。",
}

_CODE_CLASSES: Final[dict[str, type[PlatformError]]] = {
    "unauthorized": Unauthorized,
    "not_found": NotFound,
    "not_linked": NotLinked,
    "token_unknown": InvalidToken,
    "token_expired": InvalidToken,
    "token_used": InvalidToken,
    "already_delivered": NotAllowed,
    "not_cancellable": NotAllowed,
    "not_restorable": NotAllowed,
    "restore_window_passed": NotAllowed,
    "out_of_stock": NotAllowed,
    "not_refundable": NotAllowed,
    "order_closed": NotAllowed,
    "invalid_state_transition": NotAllowed,
    "already_exists": NotAllowed,
    "invalid_account": InvalidInput,
    "unknown_region": InvalidInput,
    "invalid_reason_tag": InvalidInput,
    "validation_error": InvalidInput,
    "idempotency_conflict": InvalidInput,
    "bad_request": InvalidInput,
    "method_not_allowed": InvalidInput,
}


def _class_for_status(status: int) -> type[PlatformError]:
    if status == 401 or status == 403:
        return Unauthorized
    if status == 404:
        return NotFound
    if status in (409, 410):
        return NotAllowed
    if status in (400, 422):
        return InvalidInput
    if status >= 500 or status in (408, 502, 503, 504):
        return Unavailable
    return PlatformError


def _error_body(response: httpx.Response) -> tuple[str | None, str | None]:
    """(code, message) from the JSON envelope, or (None, None) when the body is not one."""
    try:
        error = json.loads(response.content).get("error")
    except (ValueError, AttributeError):
        return None, None
    if not isinstance(error, dict):
        return None, None
    code, message = error.get("code"), error.get("message")
    return (code if isinstance(code, str) else None, message if isinstance(message, str) else None)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); 1 s when absent or garbled."""
    if not value:
        return 1.0
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 1.0
    delta = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, math.ceil(delta))


def from_response(response: httpx.Response) -> PlatformError:
    """The exception for a non-2xx response: by error code first, by HTTP status otherwise."""
    status = response.status_code
    code, text = _error_body(response)
    detail = f"{response.request.method} {response.request.url.path}: {text or response.reason_phrase}"
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return RateLimited(code or "rate_limited", retry_after=retry_after, status=status, detail=detail)
    if status >= 500:
        return Unavailable(code or "unavailable", status=status, detail=detail)
    cls = _CODE_CLASSES.get(code, _class_for_status(status)) if code else _class_for_status(status)
    return cls(code or f"http_{status}", status=status, detail=detail)


def from_transport_error(exc: Exception) -> PlatformError:
    """The exception for a request that got no usable response."""
    if isinstance(exc, httpx.TimeoutException):
        return Unavailable("timeout", detail=f"{type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.InvalidURL):
        return PlatformError("invalid_request", detail=f"invalid URL: {exc}")
    return Unavailable("unavailable", detail=f"{type(exc).__name__}: {exc}")
