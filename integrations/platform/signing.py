"""Webhook signatures, shared by the platform sandbox (signing) and the bot (verifying).

``X-Platform-Signature: sha256=<hex>`` where hex = HMAC-SHA256(secret, f"{timestamp}.{raw body}") and
``X-Platform-Timestamp`` is unix seconds. Receivers reject bad signatures and timestamps more than
``tolerance`` seconds away from their own clock (replay protection), then deduplicate by event id.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Final

EVENT_ID_HEADER: Final = "X-Platform-Event-Id"
TIMESTAMP_HEADER: Final = "X-Platform-Timestamp"
SIGNATURE_HEADER: Final = "X-Platform-Signature"
SIGNATURE_PREFIX: Final = "sha256="
DEFAULT_TOLERANCE: Final = 300


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def sign(secret: str | bytes, timestamp: int | str, body: str | bytes) -> str:
    """The signature header value, ``sha256=<hex>``, for ``body`` sent at ``timestamp``."""
    message = _bytes(str(timestamp)) + b"." + _bytes(body)
    digest = hmac.new(_bytes(secret), message, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_PREFIX}{digest}"


def _parse_timestamp(timestamp: int | str) -> int | None:
    if isinstance(timestamp, int):
        return timestamp
    text = timestamp.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else None


def verify(
    secret: str | bytes,
    timestamp: int | str | None,
    signature: str | None,
    body: str | bytes,
    *,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE,
) -> bool:
    """Whether ``signature`` is valid for ``body`` at ``timestamp`` and the timestamp is fresh.

    ``now`` is the receiver's current unix time. Comparison is constant-time; any malformed input is False.
    """
    if timestamp is None or signature is None:
        return False
    parsed = _parse_timestamp(timestamp)
    if parsed is None or abs(now - parsed) > tolerance:
        return False
    expected = sign(secret, parsed if isinstance(timestamp, int) else timestamp.strip(), body)
    return hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("utf-8", "replace"))


def verify_headers(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: str | bytes,
    *,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE,
) -> bool:
    """:func:`verify` reading timestamp and signature from request headers (any case)."""
    lowered = {key.lower(): value for key, value in headers.items()}
    return verify(
        secret,
        lowered.get(TIMESTAMP_HEADER.lower()),
        lowered.get(SIGNATURE_HEADER.lower()),
        body,
        now=now,
        tolerance=tolerance,
    )
