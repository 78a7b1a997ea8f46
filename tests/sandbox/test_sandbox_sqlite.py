"""The default SQLite database: startup from nothing, seeds, and the same concurrency guarantees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from integrations.platform import PlatformClient
from sandbox.settings import SandboxSettings
from sandbox.testing import LiveSandbox, SandboxAdmin


@pytest.fixture
async def sqlite_sandbox(
    tmp_path: Path, settings_factory: Callable[..., SandboxSettings]
) -> AsyncIterator[LiveSandbox]:
    settings = settings_factory(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'sandbox.db'}")
    with LiveSandbox(settings) as live:
        yield live
    assert (tmp_path / "var" / "sandbox.db").exists()


async def test_sqlite_sandbox_serves_seeds_and_survives_concurrent_writes(
    sqlite_sandbox: LiveSandbox,
) -> None:
    settings = sqlite_sandbox.settings
    async with (
        PlatformClient(sqlite_sandbox.url, settings.api_key, backoff=0) as platform,
        SandboxAdmin(sqlite_sandbox.url, settings.admin_key) as admin,
        httpx.AsyncClient(base_url=sqlite_sandbox.url, headers={"X-API-Key": settings.api_key}) as http,
    ):
        assert (await platform.get_order("B1001", "KM20261127001")).state == "processing"

        accounts = [f"40000000{i:02d}" for i in range(6)]
        await asyncio.gather(
            *(platform.fix_recharge_target("B1001", "KM20261127001", account=a) for a in accounts)
        )
        changes = await platform.recharge_target_history("B1001", "KM20261127001")
        assert [c.old for c in changes][1:] == [c.new for c in changes][:-1]
        assert len(changes) == len(accounts)

        path = "/v1/buyers/B1001/orders/KM20261127003/restore"
        restores = await asyncio.gather(
            *(http.post(path, headers={"Idempotency-Key": "one"}) for _ in range(5))
        )
        assert {r.status_code for r in restores} == {200}
        assert len({r.text for r in restores}) == 1

        tick = await admin.tick()
        assert any(t["order_id"] == "KM20261127004" for t in tick["transitions"])
