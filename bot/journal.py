"""The durable side of the outbox: every chat-bound write is journaled before it is sent, and sent once.

``bot.outbox.Outbox`` paces and retries sends in memory; this journal makes them survive a crash or a
restart. A session middleware (outermost, before the outbox's own) does, for every chat-bound write:

1. give it an idempotency key. Inside the processing of an update (``send_scope("u:<update_id>")``, set by
   the intake worker) the key is ``<scope>:<content fingerprint>:<n>``, the n-th write of that content by
   that update, so processing the same update again after a crash produces the same keys (and one message
   fewer, say a flood notice, shifts nothing); elsewhere (platform events, timers) a random key;
2. if the journal says that key was sent, return the recorded result (the ``Message`` with its id) and
   send nothing; if the key is being sent right now (a replay), wait for that;
3. otherwise record it (state ``queued``, the method as JSON) and only then send it through the outbox;
4. record the outcome: ``sent`` with the result, or ``failed`` (Telegram refused it for good).

A write left ``queued`` by a process that died is sent by the next owner of its partition (``replay``)
before that partition's updates are processed, in the order it was journaled. The one window left is a
crash after Telegram accepted a request and before ``sent`` was recorded: Telegram has no idempotency key,
so that message is sent again (logged as a replay).

Redis layout (prefix ``kmbot:ob:``): ``m:<key>`` a hash (state, partition, chat, method class and JSON,
result JSON; expires after ``ttl``), ``q:<partition>`` a sorted set of queued keys by journal sequence,
``seq`` the sequence counter. :class:`MemoryJournal` is the same in process for the demo.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import aiogram.methods
from aiogram import Bot
from aiogram.client.default import Default
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramBadRequest, TelegramEntityTooLarge, TelegramForbiddenError
from aiogram.methods.base import Response, TelegramType
from pydantic import BaseModel, TypeAdapter
from redis.asyncio import Redis

from bot.intake import partition_of
from bot.outbox import chat_key, is_outgoing_method

if TYPE_CHECKING:
    from aiogram.methods import TelegramMethod

log = logging.getLogger(__name__)

QUEUED, SENT, FAILED = "queued", "sent", "failed"
JOURNAL_TTL_SECONDS = 3 * 24 * 3600
_DEFINITIVE = (TelegramForbiddenError, TelegramBadRequest, TelegramEntityTooLarge)


# ------------------------------------------------------------------------------------------ key scopes


@dataclass(slots=True)
class _Scope:
    name: str
    partition: int | None
    counters: dict[str, int] = field(default_factory=dict)


_scope: ContextVar[_Scope | None] = ContextVar("kmbot_send_scope", default=None)
_replaying: ContextVar[str | None] = ContextVar("kmbot_replaying", default=None)


@contextlib.contextmanager
def send_scope(name: str, partition: int | None = None) -> Iterator[None]:
    """Writes made inside get deterministic keys ``<name>:0``, ``<name>:1``... (one scope per update)."""
    token = _scope.set(_Scope(name, partition))
    try:
        yield
    finally:
        _scope.reset(token)


# --------------------------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class JournalRecord:
    key: str
    state: str
    partition: int
    chat: str
    method: str
    data: str
    result: str | None = None


def content_fingerprint(method: TelegramMethod[Any]) -> str:
    """What a write says, where: a key that does not shift when a processing sends one message less
    (a flood notice) and does not depend on button tokens, which are new on every run."""
    parts = [method.__api_method__, str(chat_key(method))]
    for name in ("message_id", "message_thread_id", "text", "caption", "from_chat_id"):
        value = getattr(method, name, None)
        if value is not None and not isinstance(value, Default):
            parts.append(f"{name}={value}")
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def method_json(method: TelegramMethod[Any]) -> str:
    """The method's own fields as JSON; fields left to the bot's defaults stay defaults on replay, also
    inside nested objects (``ReplyParameters.quote_parse_mode``, a link preview's options)."""
    return method.model_dump_json(exclude_none=True, exclude=_defaults_of(method))


def _defaults_of(value: Any) -> dict[Any, Any] | None:
    """pydantic's nested ``exclude`` for every ``Default`` placeholder in ``value``, or None if it has none."""
    if isinstance(value, BaseModel):
        fields: dict[Any, Any] = {}
        for name in type(value).model_fields:
            field = getattr(value, name, None)
            if isinstance(field, Default):
                fields[name] = True
            elif (nested := _defaults_of(field)) is not None:
                fields[name] = nested
        return fields or None
    if isinstance(value, list | tuple):
        items = {index: nested for index, item in enumerate(value) if (nested := _defaults_of(item))}
        return items or None
    return None


def method_from_json(name: str, data: str) -> TelegramMethod[Any]:
    cls = getattr(aiogram.methods, name)
    method: TelegramMethod[Any] = cls.model_validate_json(data)
    return method


def _no_default(value: Any) -> None:
    """aiogram leaves ``Default`` placeholders in some objects it returns; they are not data."""
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True, by_alias=True, fallback=_no_default)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def result_json(result: Any) -> str:
    return json.dumps(_plain(result), ensure_ascii=False)


def result_from_json(method: TelegramMethod[Any], raw: str, bot: Bot) -> Any:
    adapter: TypeAdapter[Any] = TypeAdapter(method.__returning__)
    return adapter.validate_python(json.loads(raw), context={"bot": bot})


class JournalStore(Protocol):
    async def lookup(self, key: str) -> JournalRecord | None: ...

    async def record(self, record: JournalRecord) -> None: ...

    async def finish(self, record: JournalRecord, state: str, result: str | None) -> None: ...

    async def queued(self, partition: int) -> list[JournalRecord]: ...


class RedisJournal:
    def __init__(
        self, redis: Redis, *, prefix: str = "kmbot:ob:", ttl_seconds: int = JOURNAL_TTL_SECONDS
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_seconds

    def _key(self, key: str) -> str:
        return f"{self._prefix}m:{key}"

    def _queue(self, partition: int) -> str:
        return f"{self._prefix}q:{partition}"

    async def lookup(self, key: str) -> JournalRecord | None:
        raw = await self._redis.hgetall(self._key(key))
        if not raw:
            return None
        fields = {_text(k): _text(v) for k, v in raw.items()}
        return JournalRecord(
            key=key,
            state=fields.get("s", QUEUED),
            partition=int(fields.get("p", "0")),
            chat=fields.get("c", ""),
            method=fields.get("m", ""),
            data=fields.get("d", "{}"),
            result=fields.get("r"),
        )

    async def record(self, record: JournalRecord) -> None:
        sequence = await self._redis.incr(f"{self._prefix}seq")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                self._key(record.key),
                mapping={
                    "s": QUEUED,
                    "p": record.partition,
                    "c": record.chat,
                    "m": record.method,
                    "d": record.data,
                },
            )
            pipe.expire(self._key(record.key), self._ttl)
            pipe.zadd(self._queue(record.partition), {record.key: sequence})
            await pipe.execute()

    async def finish(self, record: JournalRecord, state: str, result: str | None) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            mapping: dict[Any, Any] = {"s": state}
            if result is not None:
                mapping["r"] = result
            pipe.hset(self._key(record.key), mapping=mapping)
            pipe.zrem(self._queue(record.partition), record.key)
            await pipe.execute()

    async def queued(self, partition: int) -> list[JournalRecord]:
        keys = [_text(k) for k in await self._redis.zrange(self._queue(partition), 0, -1)]
        records: list[JournalRecord] = []
        for key in keys:
            found = await self.lookup(key)
            if found is None or found.state != QUEUED:  # expired or finished: drop the stale queue entry
                await self._redis.zrem(self._queue(partition), key)
            else:
                records.append(found)
        return records


class MemoryJournal:
    def __init__(self) -> None:
        self._records: dict[str, JournalRecord] = {}
        self._queues: dict[int, dict[str, None]] = defaultdict(dict)

    async def lookup(self, key: str) -> JournalRecord | None:
        return self._records.get(key)

    async def record(self, record: JournalRecord) -> None:
        self._records[record.key] = record
        self._queues[record.partition][record.key] = None

    async def finish(self, record: JournalRecord, state: str, result: str | None) -> None:
        current = self._records.get(record.key, record)
        self._records[record.key] = JournalRecord(
            current.key, state, current.partition, current.chat, current.method, current.data, result
        )
        self._queues[record.partition].pop(record.key, None)

    async def queued(self, partition: int) -> list[JournalRecord]:
        return [self._records[key] for key in self._queues[partition]]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# ------------------------------------------------------------------------------------------ middleware


@dataclass(slots=True)
class JournalStats:
    journaled: int = 0
    skipped_as_sent: int = 0
    replayed: int = 0
    unrecorded: int = 0


@dataclass(eq=False, slots=True)
class DurableOutbox:
    """The journal in front of the outbox (see the module docstring)."""

    journal: JournalStore
    partitions: int
    stats: JournalStats = field(default_factory=JournalStats)
    _inflight: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    _unrecorded: list[tuple[JournalRecord, str, str | None]] = field(default_factory=list)

    def request_middleware(self) -> BaseRequestMiddleware:
        return _JournalMiddleware(self)

    def _next_key(self, method: TelegramMethod[Any], chat: int | str) -> tuple[str, int, bool]:
        """(key, partition, deterministic)."""
        scope = _scope.get()
        fallback = partition_of(chat, self.partitions) if isinstance(chat, int) else 0
        if scope is None:
            return f"x:{uuid.uuid4().hex}", fallback, False
        print_ = content_fingerprint(method)
        occurrence = scope.counters.get(print_, 0)
        scope.counters[print_] = occurrence + 1
        key = f"{scope.name}:{print_}:{occurrence}"
        return key, scope.partition if scope.partition is not None else fallback, True

    async def send(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Any:
        chat = chat_key(method)
        assert chat is not None
        replay_key = _replaying.get()
        if replay_key is not None:
            record = JournalRecord(replay_key, QUEUED, 0, str(chat), type(method).__name__, "")
            found = await self.journal.lookup(replay_key)
            record = found or record
        else:
            key, partition, deterministic = self._next_key(method, chat)
            found = await self.journal.lookup(key) if deterministic else None
            if found is not None and found.state == SENT:
                self.stats.skipped_as_sent += 1
                log.info("not sending %s again: already sent before a restart", key)
                if found.result is None:
                    return True
                try:
                    return result_from_json(method, found.result, bot)
                except Exception:
                    log.warning("recorded result of %s unreadable", key, exc_info=True)
                    return True
            waiting = self._inflight.get(key)
            if waiting is not None:
                return await asyncio.shield(waiting)
            record = found or JournalRecord(
                key, QUEUED, partition, str(chat), type(method).__name__, method_json(method)
            )
            if found is None:
                await self.journal.record(record)  # raises when the store is down: nothing is sent then
                self.stats.journaled += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._inflight[record.key] = future
        try:
            result = await make_request(bot, method)
        except _DEFINITIVE as error:
            await self._finish(record, FAILED, None)
            future.set_exception(error)
            raise
        except BaseException as error:  # stopped or cancelled: stays queued and is replayed later
            if not future.done():
                future.set_exception(error if isinstance(error, Exception) else asyncio.CancelledError())
            raise
        finally:
            self._inflight.pop(record.key, None)
        try:
            encoded: str | None = result_json(result)
        except Exception:  # sent: recording it matters more than keeping its exact result
            log.warning("result of %s could not be encoded; recording it as sent", record.key, exc_info=True)
            encoded = None
        await self._finish(record, SENT, encoded)
        future.set_result(result)
        return result

    async def _finish(self, record: JournalRecord, state: str, result: str | None) -> None:
        try:
            await self.journal.finish(record, state, result)
        except Exception as exc:  # sent, but not recorded: keep trying in the background
            log.warning("could not record %s as %s (%s); will retry", record.key, state, type(exc).__name__)
            self.stats.unrecorded += 1
            self._unrecorded.append((record, state, result))

    async def flush_unrecorded(self) -> int:
        """Record outcomes that could not be written earlier (the store was down); returns how many remain."""
        pending, self._unrecorded = self._unrecorded, []
        for index, (record, state, result) in enumerate(pending):
            try:
                await self.journal.finish(record, state, result)
            except Exception:
                self._unrecorded.extend(pending[index:])
                break
        return len(self._unrecorded)

    async def replay(self, bot: Bot, partition: int, timeout: float = 30.0) -> int:
        """Send what a previous owner of ``partition`` journaled but did not send, per chat in order."""
        await self.flush_unrecorded()
        records = await self.journal.queued(partition)
        if not records:
            return 0
        by_chat: dict[str, list[JournalRecord]] = defaultdict(list)
        for record in records:
            by_chat[record.chat].append(record)
        log.info("replaying %d unsent message(s) of partition %s", len(records), partition)

        async def chat_replay(items: list[JournalRecord]) -> None:
            for record in items:
                if record.key in self._inflight:
                    continue
                try:
                    method = method_from_json(record.method, record.data)
                except Exception:
                    log.exception("journal entry %s cannot be rebuilt; dropping it", record.key)
                    await self._finish(record, FAILED, None)
                    continue
                token = _replaying.set(record.key)
                try:
                    await bot(method)
                    self.stats.replayed += 1
                except _DEFINITIVE:
                    pass  # recorded as failed by the middleware
                finally:
                    _replaying.reset(token)

        tasks = [asyncio.create_task(chat_replay(items)) for items in by_chat.values()]
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        if pending:
            log.warning("replay of partition %s still running after %.0fs; continuing", partition, timeout)
        for task in done:
            if task.exception() is not None:
                log.warning("replay failed: %s", task.exception())
        return len(records)


class _JournalMiddleware(BaseRequestMiddleware):
    def __init__(self, durable: DurableOutbox) -> None:
        self._durable = durable

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if not is_outgoing_method(method):
            return await make_request(bot, method)
        result: Response[TelegramType] = await self._durable.send(make_request, bot, method)
        return result


# ---------------------------------------------------------------------------------- shared rate budget

_TAKE_SLOT = """
local now = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(period) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, math.ceil(tonumber(oldest[2]) + period - now))
"""


class RedisRateBudget:
    """Telegram's bot-wide limit (about 30 messages/s per token) shared by every replica: a sliding window
    in Redis. If Redis cannot be reached, each process falls back on its own pacing (logged once)."""

    def __init__(self, redis: Redis, bot_id: int, *, rate: float = 30.0, period: float = 1.0) -> None:
        self._redis = redis
        self._key = f"kmbot:tg:budget:{bot_id}"
        self._limit = max(1, round(rate * period))
        self._period_ms = int(period * 1000)
        self._take = redis.register_script(_TAKE_SLOT)
        self._degraded = False

    async def acquire(self) -> None:
        while True:
            try:
                seconds, micros = await self._redis.time()
                now_ms = int(seconds) * 1000 + int(micros) // 1000
                wait_ms = int(
                    await self._take(
                        keys=[self._key], args=[now_ms, self._period_ms, self._limit, uuid.uuid4().hex]
                    )
                )
            except Exception as exc:
                if not self._degraded:
                    log.warning(
                        "shared Telegram budget unavailable (%s); pacing per process", type(exc).__name__
                    )
                    self._degraded = True
                return
            self._degraded = False
            if wait_ms <= 0:
                return
            await asyncio.sleep(wait_ms / 1000)
