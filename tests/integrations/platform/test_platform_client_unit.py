"""PlatformClient against httpx.MockTransport: error mapping, retries only when idempotent, timeouts."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from integrations.platform import (
    InvalidInput,
    InvalidToken,
    NotAllowed,
    NotFound,
    NotLinked,
    NotOwner,
    PlatformClient,
    PlatformError,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from integrations.platform.errors import BUYER_MESSAGES, parse_retry_after
from sandbox.testing import BackgroundServer

MockFactory = Callable[..., tuple[PlatformClient, Any]]


def error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "message": f"server says {code}"}}, headers=headers
    )


def ok(body: dict[str, Any], status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


# ---------------------------------------------------------------- requests


async def test_sends_key_and_parses_the_order(
    mock_platform: MockFactory, order_payload: dict[str, Any]
) -> None:
    client, recorder = mock_platform(ok(order_payload))
    order = await client.get_order("B1001", "KM20261127001")
    assert order.order_id == "KM20261127001" and order.merchant.name == "星辰游戏点卡"
    request = recorder.requests[0]
    assert request.headers["x-api-key"] == "k"
    assert request.url.path == "/v1/buyers/B1001/orders/KM20261127001"


async def test_ids_typed_by_buyers_cannot_change_the_route(mock_platform: MockFactory) -> None:
    client, recorder = mock_platform(error(404, "not_found"))
    with pytest.raises(NotFound):
        await client.get_order("B1001", "../../B1002/orders/KM1?x=1")
    assert (
        recorder.requests[0].url.raw_path == b"/v1/buyers/B1001/orders/..%2F..%2FB1002%2Forders%2FKM1%3Fx%3D1"
    )


async def test_write_calls_send_bodies_and_auto_keys(
    mock_platform: MockFactory, order_payload: dict[str, Any]
) -> None:
    client, recorder = mock_platform(ok(order_payload))
    await client.cancel_order("B1001", "KM1", "wrong_region", note="选错区了")
    await client.fix_recharge_target("B1001", "KM1", region="国服", idempotency_key="fix-1")
    cancel, fix = recorder.requests
    assert json.loads(cancel.content) == {"reason_tag": "wrong_region", "by": "buyer", "note": "选错区了"}
    assert len(cancel.headers["idempotency-key"]) == 32
    assert (fix.method, json.loads(fix.content), fix.headers["idempotency-key"]) == (
        "PATCH",
        {"region": "国服"},
        "fix-1",
    )


async def test_query_parameters(mock_platform: MockFactory) -> None:
    from datetime import UTC, datetime

    client, recorder = mock_platform(ok({"slas": []}), ok({"escalations": []}), ok({"orders": []}))
    await client.get_slas("phone_topup", "中国电信", datetime(2026, 11, 27, 15, 30, tzinfo=UTC))
    await client.list_escalations("open", buyer_id="B1001")
    await client.list_orders("B1001", limit=3)
    slas, escalations, orders = (r.url.params for r in recorder.requests)
    assert dict(slas) == {
        "product_kind": "phone_topup",
        "carrier": "中国电信",
        "at": "2026-11-27T15:30:00+00:00",
    }
    assert dict(escalations) == {"limit": "50", "state": "open", "buyer_id": "B1001"}
    assert dict(orders) == {"limit": "3"}


async def test_deletes_return_nothing(mock_platform: MockFactory) -> None:
    client, recorder = mock_platform(httpx.Response(204))
    await client.unlink(10001)
    await client.unsubscribe_webhook("WH1")
    assert [r.method for r in recorder.requests] == ["DELETE", "DELETE"]


# ---------------------------------------------------------------- error mapping


@pytest.mark.parametrize(
    ("response", "expected", "code"),
    [
        (error(401, "unauthorized"), Unauthorized, "unauthorized"),
        (error(404, "not_found"), NotFound, "not_found"),
        (error(404, "not_linked"), NotLinked, "not_linked"),
        (error(404, "token_unknown"), InvalidToken, "token_unknown"),
        (error(410, "token_expired"), InvalidToken, "token_expired"),
        (error(409, "token_used"), InvalidToken, "token_used"),
        (error(409, "already_delivered"), NotAllowed, "already_delivered"),
        (error(409, "not_restorable"), NotAllowed, "not_restorable"),
        (error(409, "restore_window_passed"), NotAllowed, "restore_window_passed"),
        (error(409, "out_of_stock"), NotAllowed, "out_of_stock"),
        (error(409, "invalid_state_transition"), NotAllowed, "invalid_state_transition"),
        (error(422, "invalid_account"), InvalidInput, "invalid_account"),
        (error(422, "unknown_region"), InvalidInput, "unknown_region"),
        (error(422, "invalid_reason_tag"), InvalidInput, "invalid_reason_tag"),
        (error(422, "validation_error"), InvalidInput, "validation_error"),
        (error(409, "a_code_from_the_future"), NotAllowed, "a_code_from_the_future"),
        (httpx.Response(404, text="<html>nginx</html>"), NotFound, "http_404"),
        (httpx.Response(418), PlatformError, "http_418"),
        (error(500, "internal"), Unavailable, "internal"),
        (httpx.Response(502, text="Bad Gateway"), Unavailable, "unavailable"),
        (httpx.Response(200, text="not json"), Unavailable, "bad_response"),
        (ok({"order_id": "KM1"}), Unavailable, "bad_response"),
    ],
)
async def test_responses_map_to_one_exception_tree(
    mock_platform: MockFactory, response: httpx.Response, expected: type[PlatformError], code: str
) -> None:
    client, _ = mock_platform(response, retries=0)
    with pytest.raises(expected) as raised:
        await client.get_order("B1001", "KM1")
    assert type(raised.value) is expected
    assert raised.value.code == code
    assert raised.value.status == response.status_code
    assert raised.value.message and "server says" not in raised.value.message
    assert "http" not in raised.value.message


def test_not_owner_is_not_found_and_messages_are_chinese() -> None:
    assert NotOwner is NotFound
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in text) for text in BUYER_MESSAGES.values())


@pytest.mark.parametrize(
    ("exception", "code"),
    [
        (httpx.ConnectError("refused"), "unavailable"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.ConnectTimeout("slow"), "timeout"),
        (httpx.RemoteProtocolError("garbage"), "unavailable"),
        (httpx.ReadError("reset"), "unavailable"),
        (httpx.DecodingError("gzip"), "unavailable"),
        (httpx.TooManyRedirects("loop"), "unavailable"),
    ],
)
async def test_transport_failures_never_escape_raw(
    mock_platform: MockFactory, exception: Exception, code: str
) -> None:
    client, recorder = mock_platform(exception)
    with pytest.raises(Unavailable) as raised:
        await client.get_merchant("M01")
    assert raised.value.code == code and raised.value.status is None
    assert len(recorder.requests) == 3, "GET is idempotent: retried twice"


async def test_text_that_cannot_be_sent_is_a_platform_error(
    mock_platform: MockFactory, order_payload: dict[str, Any]
) -> None:
    client, recorder = mock_platform(ok(order_payload))
    with pytest.raises(PlatformError) as raised:
        await client.request_refund("B1001", "KM1", "lone \ud800 surrogate")
    assert raised.value.code == "invalid_request" and recorder.requests == []


# ---------------------------------------------------------------- retries


async def test_get_is_retried_until_it_succeeds(
    mock_platform: MockFactory, order_payload: dict[str, Any]
) -> None:
    client, recorder = mock_platform(error(503, "unavailable"), httpx.ConnectError("x"), ok(order_payload))
    assert (await client.get_order("B1001", "KM1")).order_id == "KM20261127001"
    assert len(recorder.requests) == 3


async def test_retries_are_bounded(mock_platform: MockFactory) -> None:
    client, recorder = mock_platform(error(503, "unavailable"), retries=1)
    with pytest.raises(Unavailable):
        await client.get_order("B1001", "KM1")
    assert len(recorder.requests) == 2


async def test_write_retries_reuse_one_idempotency_key(
    mock_platform: MockFactory, order_payload: dict[str, Any]
) -> None:
    client, recorder = mock_platform(
        httpx.ReadTimeout("lost reply"), error(502, "unavailable"), ok(order_payload)
    )
    await client.restore_order("B1001", "KM20261127003")
    keys = {r.headers["idempotency-key"] for r in recorder.requests}
    assert len(recorder.requests) == 3 and len(keys) == 1, "a replayed key makes the retry safe"


async def test_calls_without_a_key_are_never_retried(mock_platform: MockFactory) -> None:
    client, recorder = mock_platform(httpx.ReadTimeout("lost reply"), ok({}))
    with pytest.raises(Unavailable):
        await client._request("POST", "/v1/escalations", body={"buyer_id": "B1001"})
    assert len(recorder.requests) == 1


async def test_refusals_are_not_retried(mock_platform: MockFactory) -> None:
    client, recorder = mock_platform(error(409, "already_delivered"))
    with pytest.raises(NotAllowed):
        await client.cancel_order("B1001", "KM20261127002", "demand_changed")
    assert len(recorder.requests) == 1


async def test_short_rate_limits_are_waited_out_long_ones_raised(
    mock_platform: MockFactory, order_payload: dict[str, Any]
) -> None:
    client, recorder = mock_platform(error(429, "rate_limited", {"Retry-After": "0"}), ok(order_payload))
    await client.get_order("B1001", "KM1")
    assert len(recorder.requests) == 2
    client, recorder = mock_platform(error(429, "rate_limited", {"Retry-After": "30"}))
    with pytest.raises(RateLimited) as raised:
        await client.get_order("B1001", "KM1")
    assert raised.value.retry_after == 30 and len(recorder.requests) == 1


def test_retry_after_parsing() -> None:
    assert parse_retry_after("12") == 12
    assert parse_retry_after(None) == 1.0
    assert parse_retry_after("soon") == 1.0
    assert parse_retry_after("Fri, 27 Nov 2026 04:00:30 GMT", now=1_795_752_000.0) == 30


# ---------------------------------------------------------------- real sockets


def slow_app(delay: float) -> Starlette:
    async def slow(_: Request) -> JSONResponse:
        await asyncio.sleep(delay)
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/health", slow)])


async def test_timeouts_become_unavailable_after_retries() -> None:
    with BackgroundServer(slow_app(1.0)) as server:
        async with PlatformClient(server.url, "k", timeout=0.2, retries=1, backoff=0) as client:
            started = time.monotonic()
            with pytest.raises(Unavailable) as raised:
                await client.health()
            elapsed = time.monotonic() - started
    assert raised.value.code == "timeout"
    assert 0.35 < elapsed < 1.8, "two attempts of 0.2 s each, not the server's 1 s"


async def test_connection_refused_is_unavailable() -> None:
    with BackgroundServer(slow_app(0)) as server:
        url = server.url
    async with PlatformClient(url, "k", retries=0) as client:
        with pytest.raises(Unavailable) as raised:
            await client.get_link(10001)
    assert raised.value.code == "unavailable"


async def test_context_manager_closes_the_pool() -> None:
    async with PlatformClient("http://platform.test", "k") as client:
        pass
    with pytest.raises(PlatformError):
        await client.get_merchant("M01")
