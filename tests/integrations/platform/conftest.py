"""Fixtures for the platform client tests: a mock transport for unit tests, and the real sandbox (over HTTP,
on a throwaway PostgreSQL database) for contract tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from integrations.platform import PlatformClient
from sandbox.settings import SandboxSettings
from sandbox.testing import DEFAULT_POSTGRES_ADMIN_URL, LiveSandbox, SandboxAdmin, temporary_postgres_database

API_KEY = "contract-api-key"
ADMIN_KEY = "contract-admin-key"
FROZEN_AT = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)

Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class RecordingTransport:
    """A MockTransport that answers with ``responses`` in turn (an exception is raised instead) and keeps
    every request it saw."""

    responses: list[httpx.Response | Exception]
    requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        outcome = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


MockFactory = Callable[..., tuple[PlatformClient, RecordingTransport]]


@pytest.fixture
async def mock_platform() -> AsyncIterator[MockFactory]:
    """Build clients whose HTTP goes to a RecordingTransport; no sleeping between retries."""
    clients: list[PlatformClient] = []

    def build(
        *responses: httpx.Response | Exception, retries: int = 2
    ) -> tuple[PlatformClient, RecordingTransport]:
        recorder = RecordingTransport(list(responses))
        client = PlatformClient(
            "http://platform.test", "k", retries=retries, transport=recorder.transport, backoff=0
        )
        clients.append(client)
        return client, recorder

    yield build
    for client in clients:
        await client.aclose()


@pytest.fixture
def order_payload() -> dict[str, Any]:
    """An Order as the API sends it, with a field a newer platform might add."""
    return {
        "order_id": "KM20261127001",
        "buyer_id": "B1001",
        "state": "delivered",
        "product": {"kind": "game_card", "name": "王者荣耀 点券 60", "sku": "WZRY-60", "carrier": None},
        "amount": "6.00",
        "currency": "CNY",
        "created_at": "2026-11-27T03:58:00Z",
        "paid_at": "2026-11-27T03:58:10Z",
        "delivered_at": "2026-11-27T04:00:00Z",
        "promised_minutes": 5,
        "promised_by": "2026-11-27T04:03:10Z",
        "overdue_minutes": 0,
        "progress": {"step": "delivered", "note": "已到账"},
        "recharge_target": {"account": "2876543210", "region": "安卓QQ区"},
        "refund_guarantee": {
            "applies": True, "overdue": False, "status": "none", "refund_amount": "6.00",
            "refund_eta": None, "refunded_at": None, "terms": "…",
        },
        "cancel": None,
        "merchant": {"merchant_id": "M01", "name": "星辰游戏点卡"},
        "card_secret": "ABCD-EFGH-JKLM-NPQR",
        "a_field_added_later": {"anything": 1},
    }  # fmt: skip


@pytest.fixture(scope="session")
def contract_sandbox() -> Iterator[LiveSandbox]:
    """The sandbox over real HTTP for the client's contract tests (webhook delivery off: not tested here)."""
    admin_url = os.environ.get("SANDBOX_TEST_POSTGRES_URL", DEFAULT_POSTGRES_ADMIN_URL)
    with temporary_postgres_database(admin_url, prefix="platform_contract") as url:
        settings = SandboxSettings(
            _env_file=None,
            database_url=url,
            api_key=API_KEY,
            admin_key=ADMIN_KEY,
            rate_limit_per_second=0,
            webhook_delivery=False,
        )
        with LiveSandbox(settings) as live:
            yield live


@pytest.fixture
async def admin(contract_sandbox: LiveSandbox) -> AsyncIterator[SandboxAdmin]:
    async with SandboxAdmin(contract_sandbox.url, ADMIN_KEY) as client:
        await client.reset(FROZEN_AT)
        yield client


@pytest.fixture
async def platform(contract_sandbox: LiveSandbox, admin: SandboxAdmin) -> AsyncIterator[PlatformClient]:
    async with PlatformClient(contract_sandbox.url, API_KEY, backoff=0) as client:
        yield client
