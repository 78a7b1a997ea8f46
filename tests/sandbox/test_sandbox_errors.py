"""Auth, the error envelope on every 4xx (FastAPI's own errors included), and the health check."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from sandbox.settings import SandboxSettings
from sandbox.testing import LiveSandbox

pytestmark = pytest.mark.integration

SettingsFactory = Callable[..., SandboxSettings]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


async def test_health_needs_no_key(live_sandbox: LiveSandbox) -> None:
    async with httpx.AsyncClient(base_url=live_sandbox.url) as client:
        response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}])
async def test_v1_refuses_missing_or_wrong_api_key(
    live_sandbox: LiveSandbox, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=live_sandbox.url, headers=headers) as client:
        assert_error(await client.get("/v1/buyers/B1001/orders"), 401, "unauthorized")
        assert_error(await client.post("/v1/buyers/B1001/orders/KM20261127003/restore"), 401, "unauthorized")


async def test_admin_refuses_the_api_key(live_sandbox: LiveSandbox) -> None:
    async with httpx.AsyncClient(
        base_url=live_sandbox.url, headers={"X-Admin-Key": "test-api-key"}
    ) as client:
        assert_error(await client.post("/admin/tick"), 401, "unauthorized")


async def test_unknown_route_and_wrong_method(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/v1/nothing-here"), 404, "not_found")
    response = await http.put("/v1/slas")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET"
    shared_path = await http.request("OPTIONS", "/v1/telegram-links/10001")
    assert_error(shared_path, 405, "method_not_allowed")
    assert shared_path.headers["allow"] == "DELETE, GET", "every route at the path, not just the first"


async def test_validation_errors_carry_details(http: httpx.AsyncClient) -> None:
    error = assert_error(
        await http.get("/v1/buyers/B1001/orders", params={"limit": 0}), 422, "validation_error"
    )
    assert error["details"] == [
        {
            "loc": ["query", "limit"],
            "msg": "Input should be greater than or equal to 1",
            "type": "greater_than_equal",
        }
    ]
    assert_error(await http.get("/v1/buyers/B 1001/orders"), 422, "validation_error")


async def test_unknown_reason_tag_has_its_own_code(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/buyers/B1001/orders/KM20261127001/cancel", json={"reason_tag": "bored"})
    assert_error(response, 422, "invalid_reason_tag")


async def test_malformed_json_and_nul_characters_are_validation_errors(http: httpx.AsyncClient) -> None:
    path = "/v1/buyers/B1001/orders/KM20261127001/refund-requests"
    malformed = await http.post(path, content=b'{"reason": ', headers={"Content-Type": "application/json"})
    assert_error(malformed, 422, "validation_error")
    assert_error(await http.post(path, json={"reason": "bad\x00byte"}), 422, "validation_error")
    surrogate = b'{"reason": "lone \\ud800 surrogate"}'
    response = await http.post(path, content=surrogate, headers={"Content-Type": "application/json"})
    assert_error(response, 422, "validation_error")


async def test_idempotency_key_longer_than_128_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v1/buyers/B1001/orders/KM20261127003/restore", headers={"Idempotency-Key": "k" * 129}
    )
    assert_error(response, 422, "validation_error")


async def test_rate_limit_answers_429_with_retry_after(
    postgres_url: str, settings_factory: SettingsFactory
) -> None:
    settings = settings_factory(postgres_url, rate_limit_per_second=0.5, rate_limit_burst=2, seed=False)
    with LiveSandbox(settings) as live:
        async with httpx.AsyncClient(base_url=live.url, headers={"X-API-Key": settings.api_key}) as client:
            statuses = [(await client.get("/v1/slas")).status_code for _ in range(2)]
            limited = await client.get("/v1/slas")
    assert statuses == [200, 200]
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["retry-after"]) >= 1
