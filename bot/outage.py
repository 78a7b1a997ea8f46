"""Which errors mean "our own storage is down" (Redis, the SQL database, the durable outbox).

An update that fails with one of these is neither answered nor acknowledged: it stays in the durable intake
and is processed again, in order, once the store is back. The buyer is never told "saved" because of it.
"""

from __future__ import annotations

from asyncpg.exceptions import (  # type: ignore[import-untyped]
    ConnectionDoesNotExistError,
    OperatorInterventionError,
    PostgresConnectionError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError as RedisReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

_OUTAGE_TYPES: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    RedisReadOnlyError,
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeoutError,
    # PostgreSQL starting up or recovering ("not yet accepting connections"), a dropped connection
    PostgresConnectionError,
    ConnectionDoesNotExistError,
    OperatorInterventionError,  # "not yet accepting connections", admin or crash shutdown
    ConnectionError,  # the builtin: refused/reset sockets from drivers that do not wrap them
)


class StoreUnavailable(RuntimeError):
    """A durable store (intake, outbox journal) could not be written; try again later."""


def is_outage(error: BaseException) -> bool:
    """True when ``error`` (or what caused it) says a store we depend on is unreachable."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (StoreUnavailable, *_OUTAGE_TYPES)):
            return True
        if isinstance(current, DBAPIError) and (
            current.connection_invalidated or isinstance(current.orig, _OUTAGE_TYPES)
        ):
            return True
        current = current.__cause__ or current.__context__
    return False
