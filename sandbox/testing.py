"""Helpers to run the sandbox inside a test process: a throwaway PostgreSQL database, an in-process server
on a free loopback port, and an async client for the ``/admin`` controls.

    with temporary_postgres_database() as url, LiveSandbox(SandboxSettings(database_url=url)) as live:
        ...  # talk to live.url
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import httpx
import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.app import create_app
from sandbox.settings import SandboxSettings

DEFAULT_POSTGRES_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
STARTUP_TIMEOUT_SECONDS = 30.0


async def _admin_command(admin_url: str, sql: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE cannot run inside one)."""
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(sql))
    finally:
        await engine.dispose()


def _database_names(admin_url: str, prefix: str) -> tuple[str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    return name, make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@contextmanager
def temporary_postgres_database(
    admin_url: str = DEFAULT_POSTGRES_ADMIN_URL, prefix: str = "sandbox_test"
) -> Iterator[str]:
    """Create a uniquely named database next to ``admin_url``'s and drop it (forcibly) afterwards.

    For synchronous code (e.g. session fixtures); use :func:`temporary_postgres_database_async` inside a loop.
    """
    name, url = _database_names(admin_url, prefix)
    asyncio.run(_admin_command(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield url
    finally:
        asyncio.run(_admin_command(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@asynccontextmanager
async def temporary_postgres_database_async(
    admin_url: str = DEFAULT_POSTGRES_ADMIN_URL, prefix: str = "sandbox_test"
) -> AsyncIterator[str]:
    name, url = _database_names(admin_url, prefix)
    await _admin_command(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield url
    finally:
        await _admin_command(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class BackgroundServer:
    """An ASGI app served by uvicorn on a background thread (its own event loop) on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self._thread = threading.Thread(target=self._serve, name=f"server-{self.port}", daemon=True)

    def _serve(self) -> None:
        self._server.run(sockets=[self._socket])

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("server failed to start (see log output)")
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in time")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=STARTUP_TIMEOUT_SECONDS)
        self._socket.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class LiveSandbox(BackgroundServer):
    """The sandbox app built from ``settings``, served in-process over real HTTP."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        super().__init__(create_app(settings))


@dataclass(frozen=True, slots=True)
class ReceivedWebhook:
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookRecorder:
    """A webhook receiver for tests: records every POST and answers 500 to the first ``fail_first``.

    Serve :attr:`app` with :class:`BackgroundServer`; requests arrive on that server's thread.
    """

    fail_first: int = 0
    url: str = ""
    """Where the recorder is served, once it is (set by whoever starts the server)."""
    _received: list[ReceivedWebhook] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self._received.append(ReceivedWebhook(dict(request.headers), body))
            failing = len(self._received) <= self.fail_first
        return Response(status_code=500 if failing else 204)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._endpoint, methods=["POST"])])

    def received(self) -> list[ReceivedWebhook]:
        with self._lock:
            return list(self._received)


class SandboxAdmin:
    """Async client of the ``/admin`` endpoints; raises ``httpx.HTTPStatusError`` on refusal."""

    def __init__(
        self, base_url: str, admin_key: str, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, headers={"X-Admin-Key": admin_key}, timeout=30.0, transport=transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self._http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    async def reset(self, now: datetime | None = None) -> datetime:
        body = {"now": now.isoformat()} if now is not None else {}
        return datetime.fromisoformat((await self._post("/admin/reset", body))["now"])

    async def set_clock(self, now: datetime, *, frozen: bool = True) -> datetime:
        data = await self._post("/admin/clock", {"now": now.isoformat(), "frozen": frozen})
        return datetime.fromisoformat(data["now"])

    async def advance(self, seconds: float) -> datetime:
        return datetime.fromisoformat((await self._post("/admin/clock", {"advance_seconds": seconds}))["now"])

    async def tick(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._post("/admin/tick")
        return result

    async def create_buyer(
        self, buyer_id: str, name: str, telegram_user_id: int | None = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._post(
            "/admin/buyers", {"buyer_id": buyer_id, "name": name, "telegram_user_id": telegram_user_id}
        )
        return result

    async def create_merchant(self, merchant_id: str, name: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self._post(
            "/admin/merchants", {"merchant_id": merchant_id, "name": name, **fields}
        )
        return result

    async def upsert_product(self, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self._post("/admin/products", fields)
        return result

    async def create_order(self, **fields: Any) -> dict[str, Any]:
        body = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()}
        result: dict[str, Any] = await self._post("/admin/orders", body)
        return result

    async def events(self, *, type_: str | None = None, order_id: str | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("type", type_), ("order_id", order_id)) if v is not None}
        response = await self._http.get("/admin/events", params=params)
        response.raise_for_status()
        events: list[dict[str, Any]] = response.json()["events"]
        return events
