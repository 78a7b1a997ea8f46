"""Engine, sessions and transaction retries for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm.exc import StaleDataError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# PostgreSQL SQLSTATEs worth retrying: serialization failure and deadlock.
_RETRYABLE_PG_STATES = frozenset({"40001", "40P01"})
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0


def _prepare_sqlite_file(url: URL) -> None:
    """Create the parent directory of a file database (``var/`` on a fresh checkout)."""
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Serialise writers with ``BEGIN IMMEDIATE`` so concurrent transactions wait instead of failing.

    sqlite3's own transaction handling starts transactions lazily and upgrades read locks to write locks,
    which deadlocks two concurrent read-modify-write transactions; taking the write lock up front avoids it.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(database_url: str) -> AsyncEngine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        _configure_sqlite(engine)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, StaleDataError):
        return True
    if isinstance(exc, DBAPIError):
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return state in _RETRYABLE_PG_STATES or "database is locked" in str(exc.orig)
    return False


class Database:
    """Owns the engine; hands out sessions and runs units of work with retry on write conflicts."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.engine = create_engine(database_url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def prepare(self) -> None:
        """Filesystem preparation before first use (engines themselves connect lazily)."""
        url = make_url(self.url)
        if url.get_backend_name() == "sqlite":
            _prepare_sqlite_file(url)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on any exception."""
        async with self.sessions() as session, session.begin():
            yield session

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 5) -> T:
        """Run ``work`` in a fresh transaction, retrying optimistic-lock and serialization conflicts."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.transaction() as session:
                    return await work(session)
            except Exception as exc:
                if attempt == attempts or not _is_retryable(exc):
                    raise
                logger.info(
                    "retrying transaction after conflict (%s), attempt %d", type(exc).__name__, attempt
                )
                await asyncio.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")

    async def dispose(self) -> None:
        await self.engine.dispose()
