"""Buyer messages the assistant could not answer yet (Rasa or the action server down): kept in order and
answered when it is back, or handed to a person after a limit. Nothing a buyer wrote is lost."""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from redis.asyncio import Redis

from bot.i18n import Language


@dataclass(frozen=True, slots=True)
class PendingMessage:
    chat_id: int
    user_id: int
    text: str
    language: Language
    kind: str
    message_id: int | None
    queued_at: float
    attempts: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> PendingMessage:
        data: dict[str, Any] = json.loads(raw)
        return cls(**data)


KEPT_MARKER_TTL_SECONDS = 2 * 24 * 3600


class PendingStore(Protocol):
    async def push(self, message: PendingMessage) -> None: ...

    async def chats(self) -> list[int]: ...

    async def peek(self, chat_id: int) -> PendingMessage | None: ...

    async def replace_head(self, chat_id: int, message: PendingMessage) -> None: ...

    async def pop(self, chat_id: int) -> None: ...

    async def has_pending(self, chat_id: int) -> bool: ...


class MemoryPendingStore:
    def __init__(self) -> None:
        self._queues: dict[int, deque[PendingMessage]] = {}

    async def push(self, message: PendingMessage) -> None:
        self._queues.setdefault(message.chat_id, deque()).append(message)

    async def chats(self) -> list[int]:
        return [chat for chat, queue in self._queues.items() if queue]

    async def peek(self, chat_id: int) -> PendingMessage | None:
        queue = self._queues.get(chat_id)
        return queue[0] if queue else None

    async def replace_head(self, chat_id: int, message: PendingMessage) -> None:
        self._queues[chat_id][0] = message

    async def pop(self, chat_id: int) -> None:
        queue = self._queues.get(chat_id)
        if queue:
            queue.popleft()
            if not queue:
                del self._queues[chat_id]

    async def has_pending(self, chat_id: int) -> bool:
        return bool(self._queues.get(chat_id))


class RedisPendingStore:
    """One list per chat plus a set of chats with something pending; survives a bot restart."""

    def __init__(self, redis: Redis, prefix: str = "kmbot:pending:") -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, chat_id: int) -> str:
        return f"{self._prefix}{chat_id}"

    async def push(self, message: PendingMessage) -> None:
        """Kept once: an update processed again after a crash does not keep its message twice."""
        if message.message_id is not None:
            digest = hashlib.sha256(message.text.encode("utf-8", "replace")).hexdigest()[:12]
            marker = f"{self._prefix}kept:{message.chat_id}:{message.message_id}:{message.kind}:{digest}"
            if not await self._redis.set(marker, "1", nx=True, ex=KEPT_MARKER_TTL_SECONDS):
                return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(self._key(message.chat_id), message.to_json())
            pipe.sadd(f"{self._prefix}chats", message.chat_id)
            await pipe.execute()

    async def chats(self) -> list[int]:
        members = await self._redis.smembers(f"{self._prefix}chats")
        return sorted(int(m) for m in members)

    async def peek(self, chat_id: int) -> PendingMessage | None:
        raw = await self._redis.lindex(self._key(chat_id), 0)
        return PendingMessage.from_json(raw) if raw is not None else None

    async def replace_head(self, chat_id: int, message: PendingMessage) -> None:
        await self._redis.lset(self._key(chat_id), 0, message.to_json())

    async def pop(self, chat_id: int) -> None:
        await self._redis.lpop(self._key(chat_id))
        if not await self._redis.llen(self._key(chat_id)):
            await self._redis.srem(f"{self._prefix}chats", chat_id)

    async def has_pending(self, chat_id: int) -> bool:
        return bool(await self._redis.llen(self._key(chat_id)))


def now() -> float:
    return time.time()
