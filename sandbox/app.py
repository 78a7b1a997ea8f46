"""The sandbox application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from sandbox.api import admin, orders, v1
from sandbox.api.deps import RuntimeDep
from sandbox.errors import ApiError, install_error_handlers
from sandbox.runtime import Runtime
from sandbox.schemas import ErrorEnvelope, HealthOut
from sandbox.settings import SandboxSettings

API_VERSION = "1.0.0"
DESCRIPTION = (
    "Platform API of a 卡盟 marketplace as the customer-service bot uses it (docs/platform-api.md). "
    'Errors are always `{"error": {"code", "message"}}`.'
)


def create_app(settings: SandboxSettings | None = None) -> FastAPI:
    """Build the app; the database is migrated (and seeded) when the app starts, not here."""
    runtime = Runtime.build(settings or SandboxSettings())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="卡盟 platform API (sandbox)", version=API_VERSION, description=DESCRIPTION, lifespan=lifespan
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    app.include_router(orders.router)
    app.include_router(v1.router)
    app.include_router(admin.router)
    app.add_api_route(
        "/health",
        health,
        methods=["GET"],
        response_model=HealthOut,
        responses={503: {"model": ErrorEnvelope}},
        tags=["health"],
    )
    return app


async def health(runtime: RuntimeDep) -> HealthOut:
    """`ok` once the schema is migrated and the database answers (no auth)."""
    if not await runtime.healthy():
        raise ApiError("unavailable", "database not reachable")
    return HealthOut(status="ok")
