"""Durable intake: a Telegram update is acknowledged only once it is stored, and processed from the store.

Why Redis Streams (and not PostgreSQL ``SKIP LOCKED``): the bot already depends on Redis for every update
(FSM state, dedupe, button payloads, kept messages), so the intake adds no new failure point, while a SQL
intake would make every update depend on *both* stores. Streams give what the intake needs natively: an
append-only log per partition (``XADD``, ordered ids), consumer groups whose pending-entries list (PEL)
remembers what was handed out but not yet acknowledged, and ``XAUTOCLAIM`` to take over the entries of a
consumer that died. Durability is Redis's: run it with ``appendonly yes`` and ``appendfsync always`` (or
``everysec`` and accept up to a second of updates Telegram will *not* redeliver), as docker-compose does.

Layout (prefix ``kmbot:intake:``)::

    seen:<update_id>   SET NX with a 25 h TTL (Telegram keeps an unconfirmed update 24 h): a redelivered
                       update (webhook retry after a lost 200, polling after a crash) is stored once
    <p>                the stream of partition p = chat id mod ``partitions``: one chat, one partition
    lease:<p>          which replica owns partition p (SET NX PX, renewed every lease/3)

Semantics, across several replicas:

* ``put`` stores an update atomically with its dedupe key (one Lua script); if it raises, the update is
  not stored and must not be acknowledged (webhook: 5xx so that Telegram redelivers; polling: the offset
  does not move past it).
* Each partition is owned by one replica at a time (a lease). The owner first takes over every entry left
  unacknowledged by the previous owner (``XAUTOCLAIM``) and replays them in stream order, then reads new
  entries. Entries are dispatched to one queue per chat (per forum topic): a chat's updates are processed
  one at a time, in order; chats run in parallel.
* An entry is acknowledged (``XACK`` + ``XDEL``) when its processing returned, i.e. when every reply it
  made is in the durable outbox (``bot.journal``) and sent. A processing that fails because a store is down
  (``bot.outage``) is retried with backoff, holding back only that chat. A crash or a stop in the middle
  leaves the entry in the PEL: it is handed back and processed again by the next owner (``redelivered``),
  and the outbox journal keeps that from sending a reply twice.

Without ``REDIS_URL`` (the one-process demo) :class:`MemoryIntakeStore` offers the same interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiogram.types import Update
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bot.ordering import conversation_key
from bot.outage import StoreUnavailable, is_outage

log = logging.getLogger(__name__)

DEDUPE_TTL_SECONDS = 25 * 3600
DEFAULT_PARTITIONS = 16
GROUP = "bot"

ChatKey = tuple[int, int]


def partition_of(chat_id: int, partitions: int) -> int:
    return abs(chat_id) % partitions


def update_chat(update: Mapping[str, Any]) -> ChatKey:
    """The conversation an update belongs to (chat, forum topic); chat-less updates by user; else (0, 0)."""
    parsed = Update.model_validate(update)
    return conversation_key(parsed) or (0, 0)


@dataclass(frozen=True, slots=True)
class IntakeEntry:
    entry_id: str
    partition: int
    update: dict[str, Any]
    redelivered: bool = False

    @property
    def update_id(self) -> int:
        return int(self.update["update_id"])


class IntakeStore(Protocol):
    """Where updates are kept until processed. Every method raises on a store outage."""

    partitions: int

    async def put(self, update: Mapping[str, Any]) -> bool:
        """Store ``update`` durably; False when it was stored before (a redelivery). Raises when not stored."""

    async def acquire(self, partition: int, owner: str, ttl: float) -> bool:
        """Take or renew the lease of ``partition``; False when another replica holds it."""

    async def release(self, partition: int, owner: str) -> None: ...

    async def recover(self, partition: int, owner: str) -> list[IntakeEntry]:
        """Take over every entry handed out but not acknowledged (by anyone), in stream order."""

    async def read(
        self, partitions: Sequence[int], owner: str, count: int, block_ms: int
    ) -> list[IntakeEntry]:
        """New entries of these partitions (waits up to ``block_ms`` for one)."""

    async def ack(self, partition: int, entry_id: str) -> None: ...


# ----------------------------------------------------------------------------------------------- Redis

_PUT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('XADD', KEYS[2], '*', 'u', ARGV[2])
return 1
"""
_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _stream_batches(reply: Any) -> list[tuple[Any, Any]]:
    """XREADGROUP's answer as (stream, entries) pairs, under RESP2 (a list) or RESP3 (a map)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return [
            (stream, batch[0] if batch and isinstance(batch[0], list) else batch)
            for stream, batch in reply.items()
        ]
    return [(stream, batch) for stream, batch in reply]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisIntakeStore:
    """Redis Streams, one stream per partition, one consumer group (see the module docstring)."""

    def __init__(
        self, redis: Redis, *, partitions: int = DEFAULT_PARTITIONS, prefix: str = "kmbot:intake:"
    ) -> None:
        self._redis = redis
        self.partitions = partitions
        self._prefix = prefix
        self._put = redis.register_script(_PUT)
        self._lease = redis.register_script(_LEASE)
        self._release = redis.register_script(_RELEASE)
        self._groups: set[int] = set()

    def stream(self, partition: int) -> str:
        return f"{self._prefix}{partition}"

    async def put(self, update: Mapping[str, Any]) -> bool:
        chat, _ = update_chat(update)
        partition = partition_of(chat, self.partitions)
        keys = [f"{self._prefix}seen:{update['update_id']}", self.stream(partition)]
        payload = json.dumps(update, ensure_ascii=False, separators=(",", ":"))
        return bool(await self._put(keys=keys, args=[DEDUPE_TTL_SECONDS, payload]))

    async def _ensure_group(self, partition: int, *, force: bool = False) -> None:
        if partition in self._groups and not force:
            return
        try:
            await self._redis.xgroup_create(self.stream(partition), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add(partition)

    async def acquire(self, partition: int, owner: str, ttl: float) -> bool:
        key = f"{self._prefix}lease:{partition}"
        if not await self._lease(keys=[key], args=[owner, int(ttl * 1000)]):
            return False
        await self._ensure_group(partition)
        return True

    async def release(self, partition: int, owner: str) -> None:
        await self._release(keys=[f"{self._prefix}lease:{partition}"], args=[owner])

    def _entry(self, partition: int, entry_id: Any, fields: Any, redelivered: bool) -> IntakeEntry | None:
        if not fields:
            return None
        raw = fields.get(b"u", fields.get("u"))
        if raw is None:
            return None
        return IntakeEntry(_text(entry_id), partition, json.loads(raw), redelivered)

    async def recover(self, partition: int, owner: str) -> list[IntakeEntry]:
        await self._ensure_group(partition, force=True)
        stream = self.stream(partition)
        start = "0-0"
        while True:  # move every pending entry of any consumer (dead or handed back) to this owner
            claimed: Any = await self._redis.xautoclaim(stream, GROUP, owner, 0, start_id=start, count=200)
            start = _text(claimed[0])
            for deleted in claimed[2] if len(claimed) > 2 else []:
                await self._redis.xack(stream, GROUP, deleted)
            if start == "0-0":
                break
        entries: list[IntakeEntry] = []
        last = "0"
        while True:  # then read this owner's pending list, in stream order
            reply: Any = await self._redis.xreadgroup(GROUP, owner, {stream: last}, count=200)
            batch = _stream_batches(reply)[0][1] if reply else []
            if not batch:
                break
            for entry_id, fields in batch:
                last = _text(entry_id)
                entry = self._entry(partition, entry_id, fields, redelivered=True)
                if entry is None:
                    await self.ack(partition, last)
                else:
                    entries.append(entry)
        return entries

    async def read(
        self, partitions: Sequence[int], owner: str, count: int, block_ms: int
    ) -> list[IntakeEntry]:
        if not partitions:
            await asyncio.sleep(block_ms / 1000)
            return []
        streams: dict[Any, Any] = {self.stream(p): ">" for p in partitions}
        try:
            reply: Any = await self._redis.xreadgroup(GROUP, owner, streams, count=count, block=block_ms)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            log.warning("intake consumer group missing (Redis lost its data?); recreating it")
            for partition in partitions:
                await self._ensure_group(partition, force=True)
            return []
        by_stream = {self.stream(p): p for p in partitions}
        entries: list[IntakeEntry] = []
        for stream, batch in _stream_batches(reply):
            partition = by_stream[_text(stream)]
            for entry_id, fields in batch:
                entry = self._entry(partition, entry_id, fields, redelivered=False)
                if entry is None:
                    await self.ack(partition, _text(entry_id))
                else:
                    entries.append(entry)
        return entries

    async def ack(self, partition: int, entry_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream(partition), GROUP, entry_id)
            pipe.xdel(self.stream(partition), entry_id)
            await pipe.execute()


# ----------------------------------------------------------------------------------------- in process


class MemoryIntakeStore:
    """The same contract in process (the one-process demo): nothing survives the process, by design."""

    def __init__(self, *, partitions: int = DEFAULT_PARTITIONS) -> None:
        self.partitions = partitions
        self._seen: set[int] = set()
        self._new: dict[int, deque[IntakeEntry]] = {}
        self._pending: dict[int, dict[str, IntakeEntry]] = {}
        self._sequence = 0
        self._arrived = asyncio.Event()
        self._leases: dict[int, str] = {}

    async def put(self, update: Mapping[str, Any]) -> bool:
        update_id = int(update["update_id"])
        if update_id in self._seen:
            return False
        self._seen.add(update_id)
        chat, _ = update_chat(update)
        partition = partition_of(chat, self.partitions)
        self._sequence += 1
        entry = IntakeEntry(f"{self._sequence}-0", partition, dict(update))
        self._new.setdefault(partition, deque()).append(entry)
        self._arrived.set()
        return True

    async def acquire(self, partition: int, owner: str, ttl: float) -> bool:
        holder = self._leases.setdefault(partition, owner)
        return holder == owner

    async def release(self, partition: int, owner: str) -> None:
        if self._leases.get(partition) == owner:
            del self._leases[partition]

    async def recover(self, partition: int, owner: str) -> list[IntakeEntry]:
        pending = self._pending.get(partition, {})
        ordered = sorted(pending.values(), key=lambda e: int(e.entry_id.split("-")[0]))
        return [IntakeEntry(e.entry_id, e.partition, e.update, redelivered=True) for e in ordered]

    async def read(
        self, partitions: Sequence[int], owner: str, count: int, block_ms: int
    ) -> list[IntakeEntry]:
        entries = self._take(partitions, count)
        if not entries:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), block_ms / 1000)
            entries = self._take(partitions, count)
        return entries

    def _take(self, partitions: Sequence[int], count: int) -> list[IntakeEntry]:
        taken: list[IntakeEntry] = []
        for partition in partitions:
            queue = self._new.get(partition)
            while queue and len(taken) < count:
                entry = queue.popleft()
                self._pending.setdefault(partition, {})[entry.entry_id] = entry
                taken.append(entry)
        return taken

    async def ack(self, partition: int, entry_id: str) -> None:
        self._pending.get(partition, {}).pop(entry_id, None)


# ---------------------------------------------------------------------------------------------- worker

Process = Callable[[IntakeEntry], Awaitable[None]]
PartitionHook = Callable[[int], Awaitable[None]]


@dataclass(eq=False, slots=True)
class _ChatQueue:
    entries: deque[IntakeEntry] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None
    busy: bool = False


class Backoff:
    """Exponential backoff with jitter, capped; ``reset`` after a success."""

    def __init__(self, base: float = 0.2, cap: float = 10.0) -> None:
        self._base = base
        self._cap = cap
        self._attempt = 0

    def next(self) -> float:
        step: float = min(self._cap, self._base * 2.0 ** min(self._attempt, 20))
        self._attempt += 1
        return step / 2 + random.uniform(0, step / 2)

    def reset(self) -> None:
        self._attempt = 0


class IntakeWorker:
    """Owns partitions, processes their entries per chat in order, acknowledges what is done.

    :param process: handles one entry; returns when its replies are in the durable outbox. Raising an
        outage error (``bot.outage.is_outage``) means "try again later"; other errors are retried
        ``max_failures`` times, then the entry is acknowledged and logged (a bug must not block a chat).
    :param on_acquire: called when a partition is taken over, before its entries are processed (the
        outbox replays what the previous owner left unsent).
    """

    def __init__(
        self,
        store: IntakeStore,
        process: Process,
        *,
        owner: str | None = None,
        lease_seconds: float = 15.0,
        on_acquire: PartitionHook | None = None,
        max_failures: int = 5,
        max_outstanding: int = 500,
        read_block_ms: int = 1000,
    ) -> None:
        self._store = store
        self._process = process
        self.owner = owner or f"bot-{uuid.uuid4().hex[:12]}"
        self._lease = lease_seconds
        self._on_acquire = on_acquire
        self._max_failures = max_failures
        self._max_outstanding = max_outstanding
        self._block_ms = read_block_ms
        self._owned: set[int] = set()
        self._ready: set[int] = set()
        """Owned partitions whose backlog is recovered: new entries are read from these."""
        self._chats: dict[ChatKey, _ChatQueue] = {}
        self._outstanding = 0
        self._room = asyncio.Event()
        self._room.set()
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.processed = 0
        self.redelivered = 0

    def owns(self, chat_id: int) -> bool:
        return partition_of(chat_id, self._store.partitions) in self._owned

    @property
    def outstanding(self) -> int:
        return self._outstanding

    async def run(self) -> None:
        """Keep the leases and read entries until ``stop``."""
        self._spawn(self._keep_leases(), f"intake-{self.owner}-leases")
        backoff = Backoff()
        while not self._stopping:
            await self._room.wait()
            try:
                entries = await self._store.read(sorted(self._ready), self.owner, 64, self._block_ms)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = backoff.next()
                log.warning("intake read failed (%s); retrying in %.1fs", _brief(exc), delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            for entry in entries:
                self._dispatch(entry)

    async def stop(self, timeout: float) -> None:
        """Stop reading, let in-flight entries finish within ``timeout``, hand the others back."""
        self._stopping = True
        self._room.set()
        busy = [queue.task for queue in self._chats.values() if queue.task is not None]
        if busy:
            _, unfinished = await asyncio.wait(busy, timeout=timeout)
            if unfinished:
                log.warning("handing back %d in-flight update(s) at shutdown", len(unfinished))
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for partition in sorted(self._owned):
            try:
                await self._store.release(partition, self.owner)
            except Exception as exc:
                log.warning("could not release intake partition %s: %s", partition, _brief(exc))
        self._owned.clear()
        self._ready.clear()

    # --------------------------------------------------------------------------------------- leases

    def _spawn(self, coroutine: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _keep_leases(self) -> None:
        while not self._stopping:
            for partition in range(self._store.partitions):
                try:
                    held = await self._store.acquire(partition, self.owner, self._lease)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("intake lease check failed (%s)", _brief(exc))
                    break  # the store is down: keep what we own; the lease outlives a short outage
                if held and partition not in self._owned:
                    self._owned.add(partition)
                    self._spawn(self._take_over(partition), f"intake-{self.owner}-take-over-{partition}")
                elif not held and partition in self._owned:
                    log.warning("lost intake partition %s to another replica", partition)
                    self._owned.discard(partition)
                    self._ready.discard(partition)
            await asyncio.sleep(self._lease / 3)

    async def _take_over(self, partition: int) -> None:
        backoff = Backoff()
        while not self._stopping:
            try:
                if self._on_acquire is not None:
                    await self._on_acquire(partition)
                backlog = await self._store.recover(partition, self.owner)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = backoff.next()
                log.warning(
                    "intake take-over of %s failed (%s); retrying in %.1fs", partition, _brief(exc), delay
                )
                await asyncio.sleep(delay)
        else:
            return
        if backlog:
            log.info("partition %s: %d update(s) handed back, processing them first", partition, len(backlog))
        for entry in backlog:
            self._dispatch(entry)
        self._ready.add(partition)

    # ------------------------------------------------------------------------------------- per chat

    def _dispatch(self, entry: IntakeEntry) -> None:
        try:
            key = update_chat(entry.update)
        except Exception:
            log.exception("intake entry %s is not a valid update; dropping it", entry.entry_id)
            self._spawn(self._ack(entry), "intake-ack-invalid")
            return
        queue = self._chats.get(key)
        if queue is None:
            queue = self._chats[key] = _ChatQueue()
        queue.entries.append(entry)
        self._outstanding += 1
        if self._outstanding >= self._max_outstanding:
            self._room.clear()
        if queue.task is None:
            queue.task = asyncio.create_task(
                self._drain_chat(key, queue), name=f"intake-{self.owner}-chat-{key[0]}"
            )

    async def _drain_chat(self, key: ChatKey, queue: _ChatQueue) -> None:
        try:
            while queue.entries and not self._stopping:
                entry = queue.entries[0]
                try:
                    await self._handle(entry)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a bug here must not stop the chat for good
                    log.exception("intake could not handle update %s; retrying", entry.update_id)
                    await asyncio.sleep(1.0)
                    continue
                queue.entries.popleft()
                self._settled()
        finally:
            queue.task = None
            if not queue.entries:
                self._chats.pop(key, None)

    def _settled(self) -> None:
        self._outstanding -= 1
        if self._outstanding < self._max_outstanding:
            self._room.set()

    async def _handle(self, entry: IntakeEntry) -> None:
        backoff = Backoff(base=0.5, cap=15.0)
        failures = 0
        if entry.redelivered:
            self.redelivered += 1
        while True:
            try:
                await self._process(entry)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping:
                    raise asyncio.CancelledError from exc  # hand it back; the next owner retries
                if is_outage(exc):
                    delay = backoff.next()
                    log.warning(
                        "update %s waits for a store (%s); retrying in %.1fs",
                        entry.update_id,
                        _brief(exc),
                        delay,
                    )
                else:
                    failures += 1
                    if failures >= self._max_failures:
                        log.exception("update %s failed %d times; giving up on it", entry.update_id, failures)
                        break
                    delay = backoff.next()
                    log.warning(
                        "update %s failed (%s); retrying in %.1fs", entry.update_id, _brief(exc), delay
                    )
                entry = IntakeEntry(entry.entry_id, entry.partition, entry.update, redelivered=True)
                await asyncio.sleep(delay)
        self.processed += 1
        await self._ack(entry)

    async def _ack(self, entry: IntakeEntry) -> None:
        backoff = Backoff()
        while True:
            try:
                await self._store.ack(entry.partition, entry.entry_id)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # processed but not acknowledged: the journal makes a replay harmless
                if self._stopping:
                    return
                await asyncio.sleep(backoff.next())
                log.warning("ack of update %s failed (%s); retrying", entry.update_id, _brief(exc))


def _brief(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:200]


__all__ = [
    "IntakeEntry",
    "IntakeStore",
    "IntakeWorker",
    "MemoryIntakeStore",
    "RedisIntakeStore",
    "StoreUnavailable",
    "partition_of",
]
