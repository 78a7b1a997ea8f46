"""The action server's /metrics: per-action latency, platform calls by operation/outcome, outcomes recorded."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rasa_sdk import Action, Tracker
from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
from sanic import Sanic

from actions.metrics import ActionMetrics, MeteredOutcomes
from integrations.metrics import MeteredTransport, operation_of
from integrations.storage.db import make_engine, make_sessionmaker, upgrade_to_head
from integrations.storage.repositories import Outcome


class Hello(Action):  # type: ignore[misc]
    def name(self) -> str:
        return "action_hello"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[Any]:
        dispatcher.utter_message(text="hi")
        return []


def values(text: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "le" in sample.labels:
                continue
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def webhook_body(action: str) -> dict[str, Any]:
    tracker = {
        "sender_id": "tg-1",
        "slots": {},
        "latest_message": {},
        "events": [],
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": None,
    }
    return {"next_action": action, "sender_id": "tg-1", "tracker": tracker, "domain": {}, "version": "3.6.21"}


async def test_actions_platform_calls_and_outcomes_are_counted(tmp_path: Path) -> None:
    metrics = ActionMetrics()
    executor = ActionExecutor()
    executor.register_action(Hello())
    Sanic.test_mode = True
    app: Sanic[Any, Any] = create_app(executor)
    metrics.install(app, executor.actions)
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)
    assert server is not None
    await server.startup()
    task = asyncio.create_task(server.serve_forever())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(3):
                assert (await http.post("/webhook", json=webhook_body("action_hello"))).status_code == 200
            assert (await http.post("/webhook", json=webhook_body("action_guess_9f1"))).status_code == 404

            def platform(request: httpx.Request) -> httpx.Response:
                return httpx.Response(429 if request.url.path.endswith("/score") else 200, json={})

            transport = MeteredTransport(metrics.platform, httpx.MockTransport(platform))
            async with httpx.AsyncClient(base_url="http://platform.test", transport=transport) as client:
                await client.get("/v1/buyers/B1001/orders/KM20261127001")
                await client.get("/v1/buyers/B1002/orders/KM20261127002")
                await client.get("/v1/merchants/M01/score")

            url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
            await upgrade_to_head(url)
            engine = make_engine(url)
            outcomes = MeteredOutcomes(make_sessionmaker(engine), metrics)
            await outcomes.record(Outcome("c1", "O1", "wrong_account", "saved", "fix_account"))
            await outcomes.record(Outcome("c2", "O2", "made-up tag", "cancelled", "x"))
            await engine.dispose()

            response = await http.get("/metrics")
            assert response.status_code == 200
            found = values(response.text)
    finally:
        server.close()
        await server.wait_closed()
        task.cancel()
    assert found['kmbot_action_seconds_count{action="action_hello",status="200"}'] == 3
    assert found['kmbot_action_seconds_count{action="unknown",status="404"}'] == 1
    order = 'operation="GET /v1/buyers/{id}/orders/{id}"'
    assert found[f'kmbot_platform_requests_total{{{order},outcome="2xx"}}'] == 2
    assert found['kmbot_platform_requests_total{operation="GET /v1/merchants/{id}/score",outcome="429"}'] == 1
    assert found['kmbot_cancellation_outcomes_total{outcome="saved",reason_tag="wrong_account"}'] == 1
    assert found['kmbot_cancellation_outcomes_total{outcome="cancelled",reason_tag="other"}'] == 1
    assert not any("B1001" in key or "KM2026" in key for key in found)


def test_operations_are_route_templates() -> None:
    assert (
        operation_of("POST", "/v1/buyers/B1/orders/KM1/cancel") == "POST /v1/buyers/{id}/orders/{id}/cancel"
    )
    assert operation_of("GET", "/v1/telegram-links/12345") == "GET /v1/telegram-links/{id}"
    assert operation_of("GET", "/health") == "GET /health"
    assert operation_of("GET", "/anything/else") == "GET other"


def test_several_workers_are_merged_in_multiprocess_mode(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR (chosen before prometheus_client is imported), /metrics sums workers."""
    import os
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from prometheus_client import CollectorRegistry\n"
        "from integrations.metrics import Exposition, PlatformMetrics\n"
        "registry = CollectorRegistry()\n"
        "PlatformMetrics(registry).observe('GET /v1/slas', 200, 0.2)\n"
        "sys.stdout.write(Exposition(registry).render().decode())\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    root = Path(__file__).resolve().parents[2]
    for _ in range(2):  # two worker processes, each observing once
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
    found = values(out.stdout)
    assert found['kmbot_platform_requests_total{operation="GET /v1/slas",outcome="2xx"}'] == 2
