"""The Telegram identity the bot vouches for, carried through Rasa to the action server.

Rasa's REST channel (``/webhooks/rest/webhook``) is not covered by ``--auth-token``: anyone reaching Rasa can
post a message with any ``metadata``. So the bot signs what it asserts and the action server trusts
``metadata.telegram_user_id`` only with a valid signature:

    metadata["identity"] = {"ts": <unix seconds>, "sig": hex(HMAC-SHA256(METADATA_SECRET,
                                                         f"{sender}|{telegram_user_id}|{ts}"))}

The signature binds the Rasa conversation (``sender``), the Telegram user and the time; it is checked
against the tracker's own ``sender_id`` and must be at most ``max_age`` seconds old (a captured signature
cannot be replayed for another conversation, nor for long).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any, Final

IDENTITY_KEY: Final = "identity"
DEFAULT_MAX_AGE: Final = 15 * 60


def _digest(secret: str, sender: str, telegram_user_id: int, timestamp: int) -> str:
    message = f"{sender}|{telegram_user_id}|{timestamp}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_metadata(
    secret: str, sender: str, metadata: Mapping[str, Any], *, now: float | None = None
) -> dict[str, Any]:
    """``metadata`` with the signature of its ``telegram_user_id`` added (unchanged when it has none)."""
    signed = {key: value for key, value in metadata.items() if key != IDENTITY_KEY}
    user_id = signed.get("telegram_user_id")
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        return signed
    timestamp = int(time.time() if now is None else now)
    signed[IDENTITY_KEY] = {"ts": timestamp, "sig": _digest(secret, sender, user_id, timestamp)}
    return signed


def verify_metadata(
    secret: str,
    sender: str,
    metadata: Mapping[str, Any],
    *,
    now: float | None = None,
    max_age: float = DEFAULT_MAX_AGE,
) -> bool:
    """True when ``metadata.telegram_user_id`` was signed by the bot for this conversation, recently."""
    user_id = metadata.get("telegram_user_id")
    identity = metadata.get(IDENTITY_KEY)
    if not isinstance(user_id, int) or isinstance(user_id, bool) or not isinstance(identity, Mapping):
        return False
    timestamp, signature = identity.get("ts"), identity.get("sig")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or not isinstance(signature, str):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > max_age:
        return False
    return hmac.compare_digest(signature, _digest(secret, sender, user_id, timestamp))
