"""One send queue for everything the bot sends, paced to Telegram's flood limits.

Telegram allows about 30 messages/s overall, about 1 message/s per chat (short bursts are tolerated) and
20 messages/minute per group; above that it answers 429 and, if ignored, throttles the bot for longer.
Buyers judge us by "fast, never silent, never double", so the outbox:

* keeps one FIFO lane per chat: a message being retried holds back later messages of *its* chat only;
* paces message sends with a per-chat token bucket, a per-group window and a global window;
* honours ``retry_after`` for that chat, or for everyone when several chats are throttled at once;
* retries network errors and 5xx with exponential backoff and jitter, without a limit (never drops);
* gives up at once on a chat that blocked the bot (``on_blocked``), dropping its queue with a log line;
* resends a message whose formatting Telegram cannot parse once as plain text, so the content arrives.

Wiring: ``outbox = Outbox(bot)``, ``await outbox.start()``; then ``await outbox.send(method)`` (result
needed, e.g. a message id to edit later), ``outbox.submit(method)`` (fire and forget), or route every
``bot.send_message(...)``/``message.answer(...)`` through the queue with
``session.middleware(outbox.request_middleware())``. Shutdown: stop taking updates, then
``await outbox.drain(timeout)`` and ``await outbox.stop()``.

A request that fails on the network or with a 5xx may have reached Telegram anyway; it is retried, because
Telegram offers no idempotency key and a missing reply is worse than a rare repeated one.
"""

from __future__ import annotations

import asyncio
import enum
import html
import logging
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from aiogram import Bot
from aiogram.client.default import Default
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from pydantic import ValidationError

log = logging.getLogger(__name__)

ChatKey = int | str
"""A ``chat_id`` as Telegram methods take it: a numeric id or an ``@username`` of a channel."""

Perform = Callable[[TelegramMethod[Any]], Awaitable[Any]]

_FORWARDING_METHODS = frozenset({"copyMessage", "copyMessages", "forwardMessage", "forwardMessages"})
_OUTGOING_PREFIXES = (
    "send",
    "copy",
    "forward",
    "edit",
    "delete",
    "pin",
    "unpin",
    "stop",
    "setMessageReaction",
)
_TELEGRAM_HTML_TAG = re.compile(
    r"</?(?:b|strong|i|em|u|ins|s|strike|del|span|tg-spoiler|tg-emoji|a|code|pre|blockquote)(?:\s[^<>]*)?>",
    re.IGNORECASE,
)
_GLOBAL_429_WINDOW = 1.0
_PRUNE_EVERY = 5.0


class OutboxClosed(RuntimeError):
    """The outbox is stopped: it takes no new messages, and ones left undelivered at stop get this."""


class SharedBudget(Protocol):
    """A message-rate budget shared by every process sending with one bot token."""

    async def acquire(self) -> None: ...


class BlockedHandler(Protocol):
    """Told once per failure that a chat refuses the bot (buyer blocked it, bot removed from a group).

    It runs in that chat's queue: it must not wait for a message to the same chat.
    """

    async def __call__(self, chat_id: ChatKey) -> None: ...


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Counters since start, for metrics. ``pending`` is queued plus in flight right now."""

    sent: int
    retried: int
    retry_after_waits: int
    dropped_blocked: int
    failed: int
    plain_text_fallbacks: int
    abandoned: int
    pending: int
    tracked_chats: int


@dataclass(slots=True)
class _Counters:
    sent: int = 0
    retried: int = 0
    retry_after_waits: int = 0
    dropped_blocked: int = 0
    failed: int = 0
    plain_text_fallbacks: int = 0
    abandoned: int = 0


class TokenBucket:
    """``burst`` sends at once, then one every ``interval`` seconds (``interval <= 0``: unlimited)."""

    def __init__(self, interval: float, burst: int, now: float) -> None:
        self.interval = interval
        self.capacity = float(max(1, burst))
        self._tokens = self.capacity
        self._stamp = now

    def _refill(self, now: float) -> None:
        if self.interval <= 0:
            self._tokens = self.capacity
        elif now > self._stamp:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) / self.interval)
        self._stamp = max(self._stamp, now)

    def delay(self, now: float) -> float:
        """Seconds until a send is allowed (0: now)."""
        self._refill(now)
        missing = 1.0 - self._tokens
        return 0.0 if missing <= 1e-9 else missing * self.interval

    def take(self, now: float) -> None:
        self._refill(now)
        self._tokens = max(0.0, self._tokens - 1.0)

    def empty(self, now: float) -> None:
        """After a 429 the chat gets no burst: the next sends are a full interval apart."""
        self._refill(now)
        self._tokens = 0.0

    def is_full(self, now: float) -> bool:
        self._refill(now)
        return self._tokens >= self.capacity - 1e-9


class SlidingWindow:
    """At most ``limit`` events in any ``period`` seconds, the way Telegram counts (``limit <= 0``: none)."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self._times: deque[float] = deque()

    def _forget(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.period:
            self._times.popleft()

    def delay(self, now: float) -> float:
        """Seconds until one more event fits (0: now)."""
        if self.limit <= 0:
            return 0.0
        self._forget(now)
        if len(self._times) < self.limit:
            return 0.0
        return max(0.0, self._times[-self.limit] + self.period - now)

    def record(self, now: float) -> None:
        if self.limit > 0:
            self._times.append(now)

    def is_idle(self, now: float) -> bool:
        self._forget(now)
        return not self._times


class _GlobalGate:
    """The bot-wide limit: at most ``limit`` requests in flight or answered within the last ``period``.

    Counting a request until ``period`` after its answer (not after its start) means that however late
    the requests reach Telegram, no ``period`` there ever sees more than ``limit`` of them. Waiters are
    served one at a time in FIFO order, so no chat starves.
    """

    def __init__(
        self, rate: float, clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]]
    ) -> None:
        self._limit = max(1, round(rate)) if rate > 0 else 0
        self._period = self._limit / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._in_flight = 0
        self._answered: deque[float] = deque()
        self._released = asyncio.Event()
        self.paused_until = 0.0

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                while self._answered and self._answered[0] <= now - self._period:
                    self._answered.popleft()
                if self.paused_until > now:
                    await self._sleep(self.paused_until - now)
                elif self._limit <= 0 or self._in_flight + len(self._answered) < self._limit:
                    self._in_flight += 1
                    return
                elif self._answered:
                    await self._sleep(self._answered[0] + self._period - now)
                else:  # all slots are in flight: a slot frees ``period`` after the first answer
                    self._released.clear()
                    await self._released.wait()

    def release(self) -> None:
        """The request was answered (or failed): it keeps its slot for another ``period``."""
        self._in_flight -= 1
        if self._limit > 0:
            self._answered.append(self._clock())
        self._released.set()

    def pause_until(self, moment: float) -> None:
        self.paused_until = max(self.paused_until, moment)


class _Outcome(enum.Enum):
    DELIVERED = "delivered"
    FAILED = "failed"
    BLOCKED = "blocked"


@dataclass(eq=False, slots=True)
class _Job:
    method: TelegramMethod[Any]
    perform: Perform
    bot: Bot
    future: asyncio.Future[Any] | None
    limited: bool
    attempts: int = 0
    not_before: float = 0.0
    plain_text_tried: bool = False
    migrated: bool = False
    error: BaseException | None = None


@dataclass(eq=False, slots=True)
class _Lane:
    """A chat's FIFO queue, its worker and its pacing state (kept a while after the queue empties)."""

    key: ChatKey
    bucket: TokenBucket
    group: SlidingWindow | None
    jobs: deque[_Job] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None


def chat_key(method: TelegramMethod[Any]) -> ChatKey | None:
    """The chat a method writes to; None for chat-less methods (callback answers, inline edits...)."""
    value = getattr(method, "chat_id", None)
    return value if isinstance(value, int | str) else None


def is_message_method(method: TelegramMethod[Any]) -> bool:
    """Methods that put a new message in a chat, the ones Telegram's per-chat/global limits count."""
    name = method.__api_method__
    return (name.startswith("send") and name != "sendChatAction") or name in _FORWARDING_METHODS


def is_outgoing_method(method: TelegramMethod[Any]) -> bool:
    """What the request middleware queues: chat-bound writes (sends, edits, deletes, pins...)."""
    return chat_key(method) is not None and method.__api_method__.startswith(_OUTGOING_PREFIXES)


def _is_group(key: ChatKey) -> bool:
    return isinstance(key, str) or key < 0


def _is_parse_error(error: TelegramBadRequest) -> bool:
    message = error.message.lower()
    return "can't parse" in message or "can't find end of" in message or "unsupported parse_mode" in message


def _is_unreadable_body(error: ClientDecodeError) -> bool:
    """A body that is not JSON (a proxy's error page) is transient; JSON that does not fit aiogram's model
    most likely means the message was sent, and repeating it would send it again."""
    return not isinstance(error.original, ValidationError)


def strip_telegram_html(text: str) -> str:
    """Telegram-HTML to what a reader would see: known tags removed, entities decoded, other ``<`` kept."""
    return html.unescape(_TELEGRAM_HTML_TAG.sub("", text))


def plain_text_variant(method: TelegramMethod[Any], bot: Bot) -> TelegramMethod[Any] | None:
    """The same method without formatting (None if it has none to remove)."""
    fields = type(method).model_fields
    if "parse_mode" not in fields:
        return None
    parse_mode = getattr(method, "parse_mode", None)
    if isinstance(parse_mode, Default):
        parse_mode = bot.default[parse_mode.name]
    is_html = isinstance(parse_mode, str) and parse_mode.lower() == "html"
    update: dict[str, Any] = {"parse_mode": None}
    for entities_field in ("entities", "caption_entities"):
        if entities_field in fields:
            update[entities_field] = None
    for text_field in ("text", "caption"):
        value = getattr(method, text_field, None)
        if isinstance(value, str) and is_html:
            update[text_field] = strip_telegram_html(value)
    return method.model_copy(update=update)


def _describe(method: TelegramMethod[Any]) -> str:
    text = getattr(method, "text", None) or getattr(method, "caption", None)
    head = f" text={text[:80]!r}" if isinstance(text, str) else ""
    return f"{method.__api_method__} to chat {chat_key(method)}{head}"


def _mark_retrieved(future: asyncio.Future[Any]) -> None:
    """A caller that gave up waiting must not produce "exception was never retrieved" noise."""
    if not future.cancelled():
        future.exception()


class Outbox:
    """The bot's single outgoing queue (see the module docstring)."""

    def __init__(
        self,
        bot: Bot,
        *,
        global_rate: float = 30.0,
        private_interval: float = 1.0,
        private_burst: int = 3,
        group_per_minute: int = 20,
        group_period: float = 60.0,
        max_in_flight: int = 32,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        global_retry_after_chats: int = 3,
        on_blocked: BlockedHandler | None = None,
        shared_budget: SharedBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        """
        :param global_rate: message sends per second for the whole bot (Telegram: about 30).
        :param private_interval: seconds between messages in one chat once the burst is used (Telegram: 1).
        :param private_burst: messages a chat may get at once (a reply is often 2-3 messages).
        :param group_per_minute: message sends per ``group_period`` in one group, supergroup or channel.
        :param global_retry_after_chats: this many chats throttled within a second means the limit is the
            bot-wide one, so every chat pauses, not just those.
        :param on_blocked: told when a chat refuses the bot (403); its queued messages are dropped.
        :param shared_budget: the bot-wide budget shared by every replica of this token (Redis), taken
            before this process's own global gate.
        """
        self._shared_budget = shared_budget
        self._bot = bot
        self._private_interval = private_interval
        self._private_burst = private_burst
        self._group_per_minute = group_per_minute
        self._group_period = group_period
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._global_retry_after_chats = global_retry_after_chats
        self._on_blocked = on_blocked
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._global = _GlobalGate(global_rate, clock, sleep)
        self._request_slots = asyncio.Semaphore(max_in_flight)
        self._lanes: dict[ChatKey, _Lane] = {}
        self._free_backlog: list[_Job] = []
        self._free_tasks: set[asyncio.Task[None]] = set()
        self._open_jobs: set[_Job] = set()
        self._in_transit: set[int] = set()
        self._recent_429: deque[tuple[float, ChatKey]] = deque()
        self._idle = asyncio.Event()
        self._idle.set()
        self._counters = _Counters()
        self._running = False
        self._closed = False
        self._last_prune = clock()

    # ------------------------------------------------------------------------------------------ public API

    async def start(self) -> None:
        """Start delivering (messages queued before start are delivered now, in order)."""
        if self._closed:
            raise OutboxClosed("the outbox was stopped")
        if self._running:
            return
        self._running = True
        for lane in self._lanes.values():
            self._wake(lane)
        backlog, self._free_backlog = self._free_backlog, []
        for job in backlog:
            self._spawn_free(job)

    def send(self, method: TelegramMethod[TelegramType]) -> asyncio.Future[TelegramType]:
        """Queue ``method`` now; await the result for Telegram's answer (e.g. the sent ``Message``).

        The message takes its place in the chat's queue at the call, not when the result is awaited. The
        future fails with what Telegram finally said when the message cannot be delivered
        (``TelegramForbiddenError`` for a blocked chat, ``TelegramBadRequest``...) or ``OutboxClosed``.
        Cancelling the waiter does not cancel the delivery.
        """
        future = self._enqueue(method, self._via_bot, self._bot, want_result=True)
        assert future is not None
        shielded = asyncio.shield(future)
        shielded.add_done_callback(_mark_retrieved)
        return cast("asyncio.Future[TelegramType]", shielded)

    def submit(self, method: TelegramMethod[Any]) -> None:
        """Queue ``method`` and return at once; the outcome is only logged and counted."""
        self._enqueue(method, self._via_bot, self._bot, want_result=False)

    def request_middleware(self) -> BaseRequestMiddleware:
        """A session middleware that sends every chat-bound write of the bot through this outbox."""
        return OutboxRequestMiddleware(self)

    async def drain(self, timeout: float) -> bool:
        """Wait until everything queued so far is delivered (or given up); False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self, timeout: float = 5.0) -> None:
        """Refuse new messages, deliver what is queued within ``timeout``, then cancel the rest (logged)."""
        self._closed = True
        deadline = self._clock() + timeout
        if self._running and self._open_jobs:
            await self.drain(timeout)
        self._running = False
        tasks: set[asyncio.Task[None]] = {lane.worker for lane in self._lanes.values() if lane.worker}
        tasks |= self._free_tasks
        if tasks:  # drained workers are only finishing up (e.g. an on_blocked callback): let them
            _, unfinished = await asyncio.wait(tasks, timeout=max(0.0, deadline - self._clock()))
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        self._abandon_open_jobs()

    def stats(self) -> OutboxStats:
        counters = self._counters
        return OutboxStats(
            sent=counters.sent,
            retried=counters.retried,
            retry_after_waits=counters.retry_after_waits,
            dropped_blocked=counters.dropped_blocked,
            failed=counters.failed,
            plain_text_fallbacks=counters.plain_text_fallbacks,
            abandoned=counters.abandoned,
            pending=len(self._open_jobs),
            tracked_chats=len(self._lanes),
        )

    @property
    def accepting(self) -> bool:
        """Started and not stopped: the request middleware queues only then."""
        return self._running and not self._closed

    def is_in_transit(self, method: TelegramMethod[Any]) -> bool:
        """True while the outbox itself is sending this very object (its request must not be re-queued)."""
        return id(method) in self._in_transit

    # ------------------------------------------------------------------------------------------- queueing

    async def _via_bot(self, method: TelegramMethod[Any]) -> Any:
        return await self._bot(method)

    async def _enqueue_and_wait(self, method: TelegramMethod[Any], perform: Perform, bot: Bot) -> Any:
        future = self._enqueue(method, perform, bot, want_result=True)
        assert future is not None
        return await asyncio.shield(future)

    def _enqueue(
        self, method: TelegramMethod[Any], perform: Perform, bot: Bot, *, want_result: bool
    ) -> asyncio.Future[Any] | None:
        if self._closed:
            raise OutboxClosed(f"the outbox is stopped; not sending {_describe(method)}")
        future: asyncio.Future[Any] | None = None
        if want_result:
            future = asyncio.get_running_loop().create_future()
            future.add_done_callback(_mark_retrieved)
        job = _Job(method, perform, bot, future, limited=is_message_method(method))
        self._open_jobs.add(job)
        self._idle.clear()
        key = chat_key(method)
        if key is None and self._running:
            self._spawn_free(job)
        elif key is None:
            self._free_backlog.append(job)
        else:
            lane = self._lane(key)
            lane.jobs.append(job)
            self._wake(lane)
        return future

    def _lane(self, key: ChatKey) -> _Lane:
        lane = self._lanes.get(key)
        if lane is None:
            now = self._clock()
            self._prune(now)
            group = SlidingWindow(self._group_per_minute, self._group_period) if _is_group(key) else None
            lane = _Lane(key, TokenBucket(self._private_interval, self._private_burst, now), group)
            self._lanes[key] = lane
        return lane

    def _prune(self, now: float) -> None:
        """Forget chats that are idle and fully recharged, so the table does not grow without end."""
        if now - self._last_prune < _PRUNE_EVERY:
            return
        self._last_prune = now
        idle = [
            key
            for key, lane in self._lanes.items()
            if not lane.jobs
            and lane.worker is None
            and lane.bucket.is_full(now)
            and (lane.group is None or lane.group.is_idle(now))
        ]
        for key in idle:
            del self._lanes[key]

    def _wake(self, lane: _Lane) -> None:
        if self._running and lane.worker is None and lane.jobs:
            lane.worker = asyncio.create_task(self._drive_lane(lane), name=f"outbox-chat-{lane.key}")

    def _spawn_free(self, job: _Job) -> None:
        task = asyncio.create_task(self._drive_free(job), name="outbox-free")
        self._free_tasks.add(task)
        task.add_done_callback(self._free_tasks.discard)

    async def _drive_free(self, job: _Job) -> None:
        """A chat-less method (e.g. answerCallbackQuery): no lane, no pacing, same retry rules."""
        if await self._deliver(job, None) is _Outcome.BLOCKED:
            self._counters.failed += 1
            log.warning("Telegram refused %s: %s", _describe(job.method), job.error)

    async def _drive_lane(self, lane: _Lane) -> None:
        """Deliver the chat's messages one by one; no await between the emptiness check and the exit."""
        try:
            while lane.jobs:
                job = lane.jobs[0]
                outcome = await self._deliver(job, lane)
                lane.jobs.popleft()
                if outcome is _Outcome.BLOCKED:
                    await self._drop_blocked_chat(lane, job)
        finally:
            lane.worker = None

    # ------------------------------------------------------------------------------------------- delivery

    async def _deliver(self, job: _Job, lane: _Lane | None) -> _Outcome:
        """Attempt until Telegram accepts the message or says it never will."""
        while True:
            await self._wait_turn(job, lane)
            try:
                result = await self._attempt(job, lane)
            except TelegramRetryAfter as error:
                self._note_retry_after(job, lane, error)
            except TelegramMigrateToChat as error:
                if job.migrated:
                    self._give_up(job, error)
                    return _Outcome.FAILED
                self._follow_migration(job, error)
            except TelegramForbiddenError as error:
                self._settle(job, error=error)
                return _Outcome.BLOCKED
            except TelegramBadRequest as error:
                if not self._fall_back_to_plain_text(job, error):
                    self._give_up(job, error)
                    return _Outcome.FAILED
            except TelegramEntityTooLarge as error:
                self._give_up(job, error)
                return _Outcome.FAILED
            except (TelegramNetworkError, TelegramServerError) as error:
                self._schedule_backoff(job, error)
            except ClientDecodeError as error:
                if not _is_unreadable_body(error):  # a readable answer with an unexpected shape: it was sent
                    self._give_up(job, error)
                    return _Outcome.FAILED
                self._schedule_backoff(job, error)
            except Exception as error:
                self._give_up(job, error)
                return _Outcome.FAILED
            else:
                self._counters.sent += 1
                self._settle(job, result=result)
                return _Outcome.DELIVERED
            job.attempts += 1
            self._counters.retried += 1

    async def _wait_turn(self, job: _Job, lane: _Lane | None) -> None:
        """Sleep until this job's own delay, a global pause and its chat's pacing all allow it."""
        while True:
            now = self._clock()
            wait = max(job.not_before - now, self._global.paused_until - now)
            if lane is not None and job.limited:
                wait = max(wait, lane.bucket.delay(now), lane.group.delay(now) if lane.group else 0.0)
            if wait <= 0:
                return
            await self._sleep(wait)

    async def _attempt(self, job: _Job, lane: _Lane | None) -> Any:
        """One request. The chat's pacing counts it when the answer is back: Telegram counts arrivals,
        and the next request of the chat then surely arrives a full interval after this one did."""
        async with self._request_slots:
            if job.limited and self._shared_budget is not None:
                await self._shared_budget.acquire()
            if job.limited:
                await self._global.acquire()
            method = job.method
            self._in_transit.add(id(method))
            try:
                return await job.perform(method)
            finally:
                self._in_transit.discard(id(method))
                if job.limited:
                    self._global.release()
                    if lane is not None:
                        self._count_chat_send(lane)

    def _count_chat_send(self, lane: _Lane) -> None:
        now = self._clock()
        lane.bucket.take(now)
        if lane.group is not None:
            lane.group.record(now)

    def _note_retry_after(self, job: _Job, lane: _Lane | None, error: TelegramRetryAfter) -> None:
        self._counters.retry_after_waits += 1
        now = self._clock()
        until = now + error.retry_after
        job.not_before = until
        if lane is not None:
            lane.bucket.empty(now)
        if lane is None or self._limit_looks_global(lane.key, now):
            self._global.pause_until(until)
            log.warning("flood limit looks bot-wide: all chats pause for %ss", error.retry_after)
        log.warning("429 for %s: retrying in %ss", _describe(job.method), error.retry_after)

    def _limit_looks_global(self, key: ChatKey, now: float) -> bool:
        """Telegram does not say which limit was hit; many chats throttled at once means the global one."""
        recent = self._recent_429
        recent.append((now, key))
        while recent and recent[0][0] < now - _GLOBAL_429_WINDOW:
            recent.popleft()
        return len({chat for _, chat in recent}) >= self._global_retry_after_chats

    def _schedule_backoff(self, job: _Job, error: Exception) -> None:
        """Exponential backoff with "equal jitter": half the step fixed, half random, capped."""
        step = min(self._backoff_max, self._backoff_base * 2 ** min(job.attempts, 30))
        delay = step / 2 + self._rng.uniform(0, step / 2)
        job.not_before = self._clock() + delay
        level = logging.WARNING if job.attempts < 3 or job.attempts % 10 == 0 else logging.DEBUG
        log.log(
            level,
            "transient error on %s (attempt %d), retrying in %.2fs: %s",
            _describe(job.method),
            job.attempts + 1,
            delay,
            error,
        )

    def _follow_migration(self, job: _Job, error: TelegramMigrateToChat) -> None:
        """A group upgraded to a supergroup has a new id; the message goes there (once)."""
        log.warning(
            "chat %s is now supergroup %s; resending there", chat_key(job.method), error.migrate_to_chat_id
        )
        job.migrated = True
        job.method = job.method.model_copy(update={"chat_id": error.migrate_to_chat_id})

    def _fall_back_to_plain_text(self, job: _Job, error: TelegramBadRequest) -> bool:
        if job.plain_text_tried or not _is_parse_error(error):
            return False
        plain = plain_text_variant(job.method, job.bot)
        if plain is None:
            return False
        log.warning(
            "Telegram could not parse the formatting of %s (%s); resending as plain text",
            _describe(job.method),
            error.message,
        )
        job.plain_text_tried = True
        job.method = plain
        self._counters.plain_text_fallbacks += 1
        return True

    def _give_up(self, job: _Job, error: Exception) -> None:
        self._counters.failed += 1
        if isinstance(error, TelegramBadRequest) and "message is not modified" in error.message:
            log.info("nothing to change for %s", _describe(job.method))
        elif isinstance(error, TelegramAPIError):
            log.error("Telegram rejected %s: %s", _describe(job.method), error.message)
        else:
            log.error("could not send %s", _describe(job.method), exc_info=error)
        self._settle(job, error=error)

    async def _drop_blocked_chat(self, lane: _Lane, failed: _Job) -> None:
        """The chat refuses the bot: drop what is queued for it (each with the same error) and say so."""
        message = failed.error.message if isinstance(failed.error, TelegramAPIError) else "Forbidden"
        dropped = [failed, *lane.jobs]
        lane.jobs.clear()
        for job in dropped[1:]:
            self._settle(job, error=TelegramForbiddenError(method=job.method, message=message))
        self._counters.dropped_blocked += len(dropped)
        log.warning("chat %s refuses the bot (%s): dropped %d message(s)", lane.key, message, len(dropped))
        if self._on_blocked is not None:
            try:
                await self._on_blocked(lane.key)
            except Exception:
                log.exception("on_blocked failed for chat %s", lane.key)

    def _settle(self, job: _Job, *, result: Any = None, error: BaseException | None = None) -> None:
        job.error = error
        self._open_jobs.discard(job)
        if not self._open_jobs:
            self._idle.set()
        future = job.future
        if future is None or future.done():
            return
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)

    def _abandon_open_jobs(self) -> None:
        leftover = list(self._open_jobs)
        if not leftover:
            return
        self._counters.abandoned += len(leftover)
        log.error(
            "outbox stopped with %d undelivered message(s): %s",
            len(leftover),
            "; ".join(_describe(job.method) for job in leftover[:20]),
        )
        for job in leftover:
            self._settle(job, error=OutboxClosed(f"not delivered before stop: {_describe(job.method)}"))
        for lane in self._lanes.values():
            lane.jobs.clear()
        self._free_backlog.clear()


class OutboxRequestMiddleware(BaseRequestMiddleware):
    """Session middleware: chat-bound writes made with ``bot.*``/``message.answer`` go through the outbox.

    Everything else (getUpdates, getMe, answerCallbackQuery, reads) passes straight through, and so does
    everything while the outbox is not running, so startup and shutdown calls are never stuck in a queue.
    """

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        outbox = self._outbox
        if not outbox.accepting or outbox.is_in_transit(method) or not is_outgoing_method(method):
            return await make_request(bot, method)

        async def perform(queued: TelegramMethod[Any]) -> Any:
            return await make_request(bot, queued)

        # aiogram types the chain as Response, but the session hands back the bare result.
        return cast(Response[TelegramType], await outbox._enqueue_and_wait(method, perform, bot))
