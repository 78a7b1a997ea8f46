"""The operators' business numbers, read from the bot's database (PostgreSQL or SQLite, same SQL).

Every number of the ``/ops`` page and its JSON comes from here; README ("The operators' numbers")
describes each one. Inputs are the rows the bot and the action server already write:

- ``cancellation_outcomes``: one row per cancellation request's outcome (``saved`` with the way it was
  saved, ``cancelled`` with the tag, ``escalated`` to a person) and one per ``restored`` order, each with
  the order's merchant and product kind, the buyer's language and whether the save offer was made;
- ``conversations``: one row per buyer conversation (kept by the conversation log);
- ``handoff_tickets`` / ``handoff_relay`` / ``handoff_audit``: tickets, what was relayed to the buyer
  (the first human reply) and who did what (routing, SLA expiry, takes, CSAT).

Periods are whole days in the operators' time zone, ``start`` and ``end`` inclusive.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from statistics import median
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement as Column

from integrations.storage.handoff import HandoffAudit, HandoffRelay, HandoffTicket
from integrations.storage.models import CancellationOutcome, Conversation
from integrations.storage.repositories import CONVERSATION_GAP

T = TypeVar("T")
REQUEST_OUTCOMES = ("saved", "cancelled", "escalated")
SAVE_KINDS = ("fixed_account", "fixed_region", "kept_waiting", "payment_help", "restored")
REOPEN_WINDOW = timedelta(days=7)
CSAT_SCALE = (1, 2, 3, 4, 5)


@dataclass(frozen=True, slots=True)
class Filters:
    """A period (local days, inclusive) and optional merchant, product kind and buyer language."""

    start: date
    end: date
    merchant_id: str | None = None
    product_kind: str | None = None
    language: str | None = None
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("the period ends before it starts")
        if (self.end - self.start).days > 366:
            raise ValueError("the period is longer than a year")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, self.zone).astimezone(UTC)

    @property
    def until(self) -> datetime:
        """Exclusive: midnight after ``end``."""
        return datetime.combine(self.end + timedelta(days=1), time.min, self.zone).astimezone(UTC)

    @property
    def by_order(self) -> bool:
        """Merchant or product kind filters apply to order-bound rows only (not to whole conversations)."""
        return self.merchant_id is not None or self.product_kind is not None

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


def _rate(part: int | float, whole: int | float) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(slots=True)
class FunnelRow:
    """One reason tag's cancellation funnel (or the total over tags)."""

    reason_tag: str
    requests: int = 0
    offers: int = 0
    saved: int = 0
    fixed_account: int = 0
    fixed_region: int = 0
    kept_waiting: int = 0
    payment_help: int = 0
    restored: int = 0
    cancelled: int = 0
    escalated: int = 0

    @property
    def save_rate(self) -> float | None:
        return _rate(self.saved, self.requests)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "save_rate": self.save_rate}

    def add(self, other: FunnelRow) -> None:
        for name in ("requests", "offers", "saved", *SAVE_KINDS, "cancelled", "escalated"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(slots=True)
class Funnel:
    total: FunnelRow
    by_tag: list[FunnelRow]

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total.as_dict(), "by_tag": [row.as_dict() for row in self.by_tag]}


@dataclass(slots=True)
class SaveRatePoint:
    day: date
    reason_tag: str
    requests: int
    saved: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "reason_tag": self.reason_tag,
            "requests": self.requests,
            "saved": self.saved,
            "save_rate": _rate(self.saved, self.requests),
        }


@dataclass(slots=True)
class Containment:
    conversations: int | None  # None when a merchant / product kind filter is set
    handed_off: int | None
    tickets: int
    accepted: int
    resolved: int
    reopened: int
    first_reply_count: int
    first_reply_median_seconds: float | None
    first_reply_average_seconds: float | None
    routed_to_merchant: int
    merchant_sla_expired: int

    def as_dict(self) -> dict[str, Any]:
        contained = None
        if self.conversations is not None and self.handed_off is not None:
            contained = self.conversations - self.handed_off
        return {
            **asdict(self),
            "contained": contained,
            "containment_rate": _rate(contained, self.conversations or 0) if contained is not None else None,
            "handoff_rate": _rate(self.handed_off or 0, self.conversations or 0)
            if self.conversations is not None
            else None,
            "merchant_sla_hit_rate": _rate(
                self.routed_to_merchant - self.merchant_sla_expired, self.routed_to_merchant
            ),
            "reopen_rate": _rate(self.reopened, self.resolved),
        }


@dataclass(slots=True)
class CsatGroup:
    key: str
    answers: int = 0
    total: int = 0

    @property
    def average(self) -> float | None:
        return round(self.total / self.answers, 2) if self.answers else None

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "answers": self.answers, "average": self.average}


@dataclass(slots=True)
class Csat:
    resolved: int
    distribution: dict[int, int]
    by_merchant: list[CsatGroup] = field(default_factory=list)
    by_agent: list[CsatGroup] = field(default_factory=list)

    @property
    def answers(self) -> int:
        return sum(self.distribution.values())

    @property
    def average(self) -> float | None:
        total = sum(score * n for score, n in self.distribution.items())
        return round(total / self.answers, 2) if self.answers else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "resolved": self.resolved,
            "answers": self.answers,
            "response_rate": _rate(self.answers, self.resolved),
            "average": self.average,
            "distribution": {str(k): v for k, v in sorted(self.distribution.items())},
            "by_merchant": [g.as_dict() for g in self.by_merchant],
            "by_agent": [g.as_dict() for g in self.by_agent],
        }


@dataclass(slots=True)
class MerchantRow:
    merchant_id: str
    funnel: FunnelRow
    tickets: int = 0
    csat_answers: int = 0
    csat_average: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "merchant_id": self.merchant_id,
            "requests": self.funnel.requests,
            "saved": self.funnel.saved,
            "cancelled": self.funnel.cancelled,
            "escalated": self.funnel.escalated,
            "save_rate": self.funnel.save_rate,
            "cancel_share": _rate(self.funnel.cancelled, self.funnel.requests),
            "tickets": self.tickets,
            "csat_answers": self.csat_answers,
            "csat_average": self.csat_average,
        }


# ---------------------------------------------------------------------------------------------- SQL


def _n(expression: ColumnElement[Any]) -> Column[Any]:
    """count of rows where ``expression`` holds (portable: a sum of 1/0)."""
    return func.coalesce(func.sum(case((expression, 1), else_=0)), 0)


def _outcome_conditions(filters: Filters) -> list[ColumnElement[bool]]:
    o = CancellationOutcome
    conditions: list[ColumnElement[bool]] = [o.created_at >= filters.since, o.created_at < filters.until]
    if filters.merchant_id is not None:
        conditions.append(o.merchant_id == filters.merchant_id)
    if filters.product_kind is not None:
        conditions.append(o.product_kind == filters.product_kind)
    if filters.language is not None:
        conditions.append(o.language == filters.language)
    return conditions


def _in_period(c: Any, filters: Filters) -> list[ColumnElement[bool]]:
    """Conversations (``c``: the entity or an alias) started in the period, of the buyer language if set."""
    conditions: list[ColumnElement[bool]] = [c.started_at >= filters.since, c.started_at < filters.until]
    if filters.language is not None:
        conditions.append(c.language == filters.language)
    return conditions


def _ticket_conditions(filters: Filters) -> list[ColumnElement[bool]]:
    t = HandoffTicket
    conditions: list[ColumnElement[bool]] = [t.created_at >= filters.since, t.created_at < filters.until]
    if filters.merchant_id is not None:
        conditions.append(t.merchant_id == filters.merchant_id)
    if filters.language is not None:
        conditions.append(t.language == filters.language)
    if filters.product_kind is not None:  # tickets carry no product kind: none match such a filter
        conditions.append(literal(False))
    return conditions


def _funnel_columns() -> list[Column[Any]]:
    o = CancellationOutcome
    saved, kept = o.outcome == "saved", o.detail == "kept"
    payment = o.reason_tag == "payment_problem"
    return [
        _n(o.outcome.in_(REQUEST_OUTCOMES)).label("requests"),
        _n(and_(o.offered.is_(True), o.outcome.in_(REQUEST_OUTCOMES))).label("offers"),
        _n(and_(saved, o.detail == "fix_account")).label("fixed_account"),
        _n(and_(saved, o.detail == "fix_region")).label("fixed_region"),
        _n(and_(saved, kept, ~payment)).label("kept_waiting"),
        _n(and_(saved, kept, payment)).label("payment_help"),
        _n(o.outcome == "restored").label("restored"),
        _n(o.outcome == "cancelled").label("cancelled"),
        _n(o.outcome == "escalated").label("escalated"),
    ]


def _funnel_row(key: str, row: Any) -> FunnelRow:
    values = {name: int(getattr(row, name)) for name in ("requests", "offers", *SAVE_KINDS)}
    values["cancelled"] = int(row.cancelled)
    values["escalated"] = int(row.escalated)
    saved = sum(values[kind] for kind in SAVE_KINDS)
    return FunnelRow(reason_tag=key, saved=saved, **values)


def _local_day(connection: AsyncConnection, column: Any, filters: Filters) -> Column[Any]:
    """The local calendar day of a UTC timestamp column (a date on PostgreSQL: hashed, not collated text)."""
    if connection.dialect.name == "postgresql":
        return func.date(func.timezone(filters.timezone, column))
    offset = filters.zone.utcoffset(datetime.combine(filters.start, time(12)))
    minutes = int(offset.total_seconds() // 60) if offset else 0
    return func.strftime("%Y-%m-%d", column, f"{minutes:+d} minutes")


def _minus(connection: AsyncConnection, column: Any, delta: timedelta) -> Column[Any]:
    """``column - delta`` on both backends (SQLite keeps timestamps as text: its arithmetic would be wrong)."""
    if connection.dialect.name == "postgresql":
        return cast(Column[Any], column - delta)
    return func.strftime("%Y-%m-%d %H:%M:%f", column, f"-{int(delta.total_seconds())} seconds")


def _seconds_between(connection: AsyncConnection, later: Any, earlier: Any) -> Column[Any]:
    if connection.dialect.name == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


class Analytics:
    """The query module: one method per block of the ops page. Read-only; one connection per call."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def funnel(self, filters: Filters) -> Funnel:
        async with self._engine.connect() as connection:
            return await self._funnel(connection, filters)

    async def save_rate_series(self, filters: Filters) -> list[SaveRatePoint]:
        async with self._engine.connect() as connection:
            return await self._series(connection, filters)

    async def csat(self, filters: Filters) -> Csat:
        async with self._engine.connect() as connection:
            return await self._csat(connection, filters)

    async def merchants(self, filters: Filters) -> list[MerchantRow]:
        async with self._engine.connect() as connection:
            return await self._merchants(connection, filters)

    async def overview(self, filters: Filters) -> dict[str, Any]:
        """Everything the page shows; the blocks run side by side, each on a pooled connection."""
        funnel, series, containment, csat, merchants = await asyncio.gather(
            self.funnel(filters),
            self.save_rate_series(filters),
            self.containment(filters),
            self.csat(filters),
            self.merchants(filters),
        )
        return {
            "funnel": funnel.as_dict(),
            "save_rate_series": [point.as_dict() for point in series],
            "containment": containment.as_dict(),
            "csat": csat.as_dict(),
            "merchants": [row.as_dict() for row in merchants],
        }

    async def merchant_ids(self) -> list[str]:
        """Merchants seen in outcomes or tickets (for the filter's choices)."""
        o, t = CancellationOutcome, HandoffTicket
        query = (
            select(o.merchant_id)
            .where(o.merchant_id.is_not(None))
            .distinct()
            .union(select(t.merchant_id).where(t.merchant_id.is_not(None)).distinct())
        )
        async with self._engine.connect() as connection:
            rows = await connection.execute(query)
            return sorted(str(value) for value in rows.scalars().all())

    # ------------------------------------------------------------------ blocks

    async def _funnel(self, connection: AsyncConnection, filters: Filters) -> Funnel:
        o = CancellationOutcome
        query = (
            select(o.reason_tag, *_funnel_columns())
            .where(*_outcome_conditions(filters))
            .group_by(o.reason_tag)
        )
        by_tag = [_funnel_row(row.reason_tag, row) for row in (await connection.execute(query)).all()]
        by_tag.sort(key=lambda row: (-row.requests, row.reason_tag))
        total = FunnelRow(reason_tag="all")
        for row in by_tag:
            total.add(row)
        return Funnel(total=total, by_tag=by_tag)

    async def _series(self, connection: AsyncConnection, filters: Filters) -> list[SaveRatePoint]:
        o = CancellationOutcome
        day = _local_day(connection, o.created_at, filters).label("day")
        saved = or_(o.outcome == "saved", o.outcome == "restored")
        query = (
            select(
                day,
                o.reason_tag,
                _n(o.outcome.in_(REQUEST_OUTCOMES)).label("requests"),
                _n(saved).label("saved"),
            )
            .where(*_outcome_conditions(filters))
            .group_by(day, o.reason_tag)
        )
        points = [
            SaveRatePoint(_as_date(row.day), row.reason_tag, int(row.requests), int(row.saved))
            for row in (await connection.execute(query)).all()
        ]
        points.sort(key=lambda point: (point.day, point.reason_tag))  # in Python: no collated sort in SQL
        return points

    async def containment(self, filters: Filters) -> Containment:
        """The containment block: the conversation counts on a connection of their own, beside the ticket
        queries (small, one after the other on one connection)."""

        async def ticket_parts(
            connection: AsyncConnection, filters: Filters
        ) -> tuple[tuple[int, int], int, tuple[int, int, int], tuple[int, float | None, float | None]]:
            return (
                await self._ticket_counts(connection, filters),
                await self._reopened(connection, filters),
                await self._audit_counts(connection, filters),
                await self._first_reply_waits(connection, filters),
            )

        (conversations, handed_off), (counts, reopened, audit_counts, waits) = await asyncio.gather(
            self._on(self._conversation_counts, filters), self._on(ticket_parts, filters)
        )
        return Containment(
            conversations=conversations,
            handed_off=handed_off,
            tickets=counts[0],
            accepted=audit_counts[0],
            resolved=counts[1],
            reopened=reopened,
            first_reply_count=waits[0],
            first_reply_median_seconds=waits[1],
            first_reply_average_seconds=waits[2],
            routed_to_merchant=audit_counts[1],
            merchant_sla_expired=audit_counts[2],
        )

    async def _on(self, part: Callable[[AsyncConnection, Filters], Awaitable[T]], filters: Filters) -> T:
        async with self._engine.connect() as connection:
            return await part(connection, filters)

    async def _conversation_counts(
        self, connection: AsyncConnection, filters: Filters
    ) -> tuple[int | None, int | None]:
        """(conversations started in the period, those in which a ticket was opened); None with an order
        filter (a conversation is not tied to one merchant or product kind)."""
        if filters.by_order:
            return None, None
        t = HandoffTicket
        conversations = int(
            await connection.scalar(select(func.count()).where(*_in_period(Conversation, filters))) or 0
        )
        # driven by the tickets (few): each finds the conversation it was opened in through the
        # (chat_id, last_message_at) index, if that conversation is one of the period's (a chat's conversations
        # never overlap, so at most one matches)
        inner = aliased(Conversation)
        opened_in = (
            select(inner.id)
            .where(
                inner.chat_id == t.buyer_chat_id,
                inner.last_message_at >= _minus(connection, t.created_at, CONVERSATION_GAP),
                inner.started_at <= t.created_at,
                *_in_period(inner, filters),
            )
            .order_by(inner.last_message_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        handed_off = await connection.scalar(
            select(func.count(func.distinct(opened_in))).where(t.created_at >= filters.since)
        )
        return conversations, int(handed_off or 0)

    async def _ticket_counts(self, connection: AsyncConnection, filters: Filters) -> tuple[int, int]:
        t = HandoffTicket
        row = (
            await connection.execute(
                select(func.count(), _n(t.resolved_at.is_not(None))).where(*_ticket_conditions(filters))
            )
        ).one()
        return int(row[0]), int(row[1])

    async def _audit_counts(self, connection: AsyncConnection, filters: Filters) -> tuple[int, int, int]:
        """(tickets taken by someone, routed to their merchant, moved on because the merchant's SLA expired)."""
        a, t = HandoffAudit, HandoffTicket
        expired = and_(a.action == "routed_agents", a.detail == "sla_expired")
        row = (
            await connection.execute(
                select(
                    func.count(func.distinct(case((a.action == "take", a.ticket_id)))),
                    func.count(func.distinct(case((a.action == "routed_merchant", a.ticket_id)))),
                    func.count(func.distinct(case((expired, a.ticket_id)))),
                )
                .select_from(t)
                .join(a, a.ticket_id == t.ticket_id)
                .where(
                    a.action.in_(("take", "routed_merchant", "routed_agents")), *_ticket_conditions(filters)
                )
            )
        ).one()
        return int(row[0]), int(row[1]), int(row[2])

    async def _first_reply_waits(
        self, connection: AsyncConnection, filters: Filters
    ) -> tuple[int, float | None, float | None]:
        """Seconds from each ticket's creation to the first message a person relayed to the buyer:
        (how many tickets got one, median, average). PostgreSQL aggregates them; SQLite (no percentile) here."""
        t, r = HandoffTicket, HandoffRelay
        waits = (
            select(_seconds_between(connection, func.min(r.created_at), t.created_at).label("seconds"))
            .select_from(t)
            .join(r, and_(r.ticket_id == t.ticket_id, r.direction == "to_buyer"))
            .where(*_ticket_conditions(filters))
            .group_by(t.ticket_id, t.created_at)
            .subquery()
        )
        if connection.dialect.name == "postgresql":
            n, middle, mean = (
                await connection.execute(
                    select(
                        func.count(waits.c.seconds),
                        func.percentile_cont(0.5).within_group(waits.c.seconds),
                        func.avg(waits.c.seconds),
                    )
                )
            ).one()
            return (
                int(n),
                round(float(middle), 1) if middle is not None else None,
                round(float(mean), 1) if mean is not None else None,
            )
        values = [
            float(v)
            for v in (await connection.execute(select(waits.c.seconds))).scalars().all()
            if v is not None
        ]
        if not values:
            return 0, None, None
        return len(values), round(median(values), 1), round(sum(values) / len(values), 1)

    async def _reopened(self, connection: AsyncConnection, filters: Filters) -> int:
        """Resolved tickets followed by another ticket of the same buyer and order within REOPEN_WINDOW
        (the window is checked in Python to keep the SQL portable; only such pairs are read)."""
        t = HandoffTicket
        later = t.__table__.alias("later")
        query = (
            select(t.ticket_id, t.resolved_at, func.min(later.c.created_at))
            .select_from(t)
            .join(
                later,
                and_(
                    later.c.buyer_chat_id == t.buyer_chat_id,
                    later.c.ticket_id != t.ticket_id,
                    later.c.created_at > t.resolved_at,
                    or_(
                        later.c.order_id == t.order_id,
                        and_(later.c.order_id.is_(None), t.order_id.is_(None)),
                    ),
                ),
            )
            .where(*_ticket_conditions(filters), t.resolved_at.is_not(None))
            .group_by(t.ticket_id, t.resolved_at)
        )
        count = 0
        for _, resolved_at, next_at in (await connection.execute(query)).all():
            if _aware(next_at) - _aware(resolved_at) <= REOPEN_WINDOW:
                count += 1
        return count

    async def _csat(self, connection: AsyncConnection, filters: Filters) -> Csat:
        t = HandoffTicket
        tickets = _ticket_conditions(filters)
        resolved = int(
            await connection.scalar(select(func.count()).where(*tickets, t.resolved_at.is_not(None))) or 0
        )
        distribution = dict.fromkeys(CSAT_SCALE, 0)
        rated = [*tickets, t.csat.is_not(None)]
        for score, n in (
            await connection.execute(select(t.csat, func.count()).where(*rated).group_by(t.csat))
        ).all():
            if score in distribution:
                distribution[int(score)] = int(n)

        async def grouped(column: Any) -> list[CsatGroup]:
            rows = await connection.execute(
                select(column, func.count(), func.sum(t.csat))
                .where(*rated, column.is_not(None))
                .group_by(column)
                .order_by(column)
            )
            return [CsatGroup(str(key), int(n), int(total or 0)) for key, n, total in rows.all()]

        return Csat(
            resolved=resolved,
            distribution=distribution,
            by_merchant=await grouped(t.merchant_id),
            by_agent=await grouped(t.assignee_name),
        )

    async def _merchants(self, connection: AsyncConnection, filters: Filters) -> list[MerchantRow]:
        o, t = CancellationOutcome, HandoffTicket
        rows: dict[str, MerchantRow] = {}
        query = (
            select(o.merchant_id, *_funnel_columns())
            .where(*_outcome_conditions(filters), o.merchant_id.is_not(None))
            .group_by(o.merchant_id)
        )
        for row in (await connection.execute(query)).all():
            rows[row.merchant_id] = MerchantRow(row.merchant_id, _funnel_row("all", row))
        tickets = await connection.execute(
            select(t.merchant_id, func.count(), func.count(t.csat), func.sum(t.csat))
            .where(*_ticket_conditions(filters), t.merchant_id.is_not(None))
            .group_by(t.merchant_id)
        )
        for merchant_id, n, answers, total in tickets.all():
            key = str(merchant_id)
            merchant = rows.setdefault(key, MerchantRow(key, FunnelRow("all")))
            merchant.tickets = int(n)
            merchant.csat_answers = int(answers)
            merchant.csat_average = round(int(total or 0) / int(answers), 2) if answers else None
        return sorted(rows.values(), key=lambda row: (-row.funnel.requests, row.merchant_id))


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive UTC timestamps; PostgreSQL aware ones."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def group_series(points: list[SaveRatePoint]) -> dict[str, list[SaveRatePoint]]:
    by_tag: dict[str, list[SaveRatePoint]] = defaultdict(list)
    for point in points:
        by_tag[point.reason_tag].append(point)
    return dict(by_tag)
