"""Button payloads ↔ Telegram ``callback_data`` (at most 64 bytes).

Short payloads travel inline (``p:`` prefix); longer ones are kept in a key-value store under a digest
(``h:`` prefix) so that any Rasa button works, and expire after a day.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

CALLBACK_DATA_LIMIT = 64
PAYLOAD_TTL_SECONDS = 24 * 3600


class KeyValueStore(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl_seconds: int) -> None: ...


class PayloadCodec:
    def __init__(self, store: KeyValueStore) -> None:
        self._store = store

    async def encode(self, payload: str) -> str:
        inline = f"p:{payload}"
        if len(inline.encode()) <= CALLBACK_DATA_LIMIT:
            return inline
        digest = hashlib.sha256(payload.encode()).hexdigest()[:32]
        await self._store.set(f"payload:{digest}", payload, PAYLOAD_TTL_SECONDS)
        return f"h:{digest}"

    async def decode(self, data: str) -> str | None:
        """The original payload, or None when unknown or expired."""
        if data.startswith("p:"):
            return data[2:] or None
        if data.startswith("h:"):
            return await self._store.get(f"payload:{data[2:]}")
        return None
