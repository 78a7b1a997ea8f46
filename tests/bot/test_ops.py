"""Done means: a known mix of conversations, then the exact numbers on /ops/api/... and in /metrics.

Buyer messages go through the bot's real dispatcher (routers, conversation service, conversation log) with
the assistant faked; the cancellation outcomes, tickets, relays and CSAT of ``tests/support/ops_scenario``
are written through the real repositories (the handoff one being the metered repository the bot uses).
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import Chat, Message, Update
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from bot.app import build_dispatcher, build_services
from bot.config import BotSettings
from bot.kv import MemoryKeyValueStore
from bot.metrics import BotMetrics, MeteredAssistant, MeteredHandoffRepository, UpdateMetrics
from bot.middlewares import OutgoingLogMiddleware
from bot.ops.setup import Observability, build_observability
from bot.ordering import install_outermost
from integrations.rasa import BotReply
from integrations.storage.db import make_engine, make_sessionmaker, upgrade_to_head
from integrations.storage.repositories import ConversationLog
from tests.bot.test_dispatcher import platform_stub
from tests.support import ops_scenario
from tests.support.mocked_bot import buyer, make_bot
from tests.support.ops_scenario import DAY, EXPECTED

TOKEN = "ops-token-for-tests-0123456789"
Client = TestClient[web.Request, web.Application]
BUYERS = 4  # live buyer messages driven through the dispatcher today


class Assistant:
    async def send(self, sender_id: str, text: str, metadata: Mapping[str, Any]) -> list[BotReply]:
        return [BotReply(text=f"收到：{text}")]


def samples(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()) if k != "le")
            key = f"{sample.name}{{{labels}}}" if labels else sample.name
            if "le" not in sample.labels:
                values[key] = sample.value
    return values


async def serve(observability: Observability) -> Client:
    app = web.Application()
    for add in observability.routes:
        add(app)
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest_asyncio.fixture
async def stack(pg_url: str) -> AsyncIterator[tuple[Client, BotMetrics]]:
    await upgrade_to_head(pg_url)
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    metrics = BotMetrics()
    await ops_scenario.seed(sessions, MeteredHandoffRepository(sessions, metrics))

    log = ConversationLog(sessions)
    bot, session = make_bot()
    session.middleware(OutgoingLogMiddleware(log))
    observability = build_observability(BotSettings(ops_token=SecretStr(TOKEN)), metrics, engine, None)
    observability.watch_session(session)
    services = build_services(
        MeteredAssistant(Assistant(), metrics), log, MemoryKeyValueStore(), platform_stub()
    )
    dispatcher = build_dispatcher(MemoryStorage(), services)
    install_outermost(dispatcher, UpdateMetrics(metrics))  # as bot/__main__.py does
    for n in range(BUYERS):
        user = buyer(user_id=20001 + n)
        message = Message(
            message_id=n + 1,
            date=datetime.now(UTC),
            chat=Chat(id=user.id, type="private"),
            from_user=user,
            text=f"订单 {n} 到哪了",
        )
        await dispatcher.feed_update(bot, Update(update_id=500 + n, message=message))
    assert len(session.sent()) == BUYERS

    client = await serve(observability)
    try:
        yield client, metrics
    finally:
        await client.close()
        await engine.dispose()


def period(day: str = DAY.isoformat()) -> str:
    return f"from={day}&to={day}"


async def test_ops_api_and_metrics_show_the_exact_numbers(stack: tuple[Client, BotMetrics]) -> None:
    client, _ = stack
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    response = await client.get(f"/ops/api/overview?{period()}", headers=bearer)
    assert response.status == 200
    data = await response.json()
    assert {k: data["funnel"]["total"][k] for k in EXPECTED["funnel"]} == EXPECTED["funnel"]
    assert {k: data["containment"][k] for k in EXPECTED["containment"]} == EXPECTED["containment"]
    assert {k: data["csat"][k] for k in EXPECTED["csat"]} == EXPECTED["csat"]
    merchants = {row["merchant_id"]: row for row in data["merchants"]}
    assert merchants["M1"]["requests"] == 5 and merchants["M2"]["csat_average"] == 3.0
    assert merchants["M1"]["fulfilment"] is None  # no platform in this test: shown as "—"

    # today's conversations are the ones the dispatcher just handled, all contained
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    live = await (
        await client.get(f"/ops/api/containment?{period(today.isoformat())}", headers=bearer)
    ).json()
    assert live["containment"]["conversations"] == BUYERS
    assert live["containment"]["containment_rate"] == 1.0

    funnel = await (await client.get(f"/ops/api/funnel?{period()}&lang=en", headers=bearer)).json()
    assert funnel["funnel"]["total"]["requests"] == 3
    assert funnel["filters"]["lang"] == "en"

    metrics = await client.get("/metrics")
    assert metrics.headers["Content-Type"].startswith("text/plain")
    values = samples(await metrics.text())
    for name, value in EXPECTED["metrics"].items():
        assert values[name] == value, name
    assert values['kmbot_updates_total{type="message"}'] == BUYERS
    assert values['kmbot_replies_sent_total{method="sendMessage",outcome="ok"}'] == BUYERS
    assert values["kmbot_reply_latency_seconds_count"] == BUYERS
    assert values['kmbot_rasa_request_seconds_count{outcome="ok"}'] == BUYERS
    assert not any("20001" in key or "O-10" in key for key in values)  # no user or order ids as labels

    await csv_exports(client)
    await wrong_or_missing_token_is_refused(client)
    await login_then_the_page_shows_the_funnel_and_tiles(client)


async def csv_exports(client: Client) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    response = await client.get(f"/ops/api/funnel.csv?{period()}", headers=bearer)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO((await response.text()).lstrip("\ufeff"))))
    total = next(row for row in rows if row["reason_tag"] == "all")
    assert (total["requests"], total["saved"], total["cancelled"]) == ("9", "5", "4")
    merchants = await client.get(f"/ops/api/merchants.csv?{period()}", headers=bearer)
    rows = list(csv.DictReader(io.StringIO((await merchants.text()).lstrip("\ufeff"))))
    assert [row["merchant_id"] for row in rows] == ["M1", "M2"]
    bad = await client.get("/ops/api/funnel?from=yesterday", headers=bearer)
    assert bad.status == 400 and "from" in (await bad.json())["error"]


async def wrong_or_missing_token_is_refused(client: Client) -> None:
    assert (await client.get("/ops/api/overview")).status == 401
    assert (await client.get("/ops/api/overview", headers={"Authorization": "Bearer nope"})).status == 401
    assert (
        await client.get("/ops/api/funnel.csv", headers={"Authorization": f"Bearer {TOKEN}x"})
    ).status == 401
    page = await client.get("/ops")
    assert page.status == 401 and "OPS_TOKEN" in await page.text()
    wrong = await client.post("/ops/login", data={"token": "guess-guess-guess-guess"}, allow_redirects=False)
    assert wrong.status == 401 and "令牌不正确" in await wrong.text()
    basic = base64.b64encode(f"ops:{TOKEN}".encode()).decode()
    assert (await client.get("/ops/api/csat", headers={"Authorization": f"Basic {basic}"})).status == 200


async def login_then_the_page_shows_the_funnel_and_tiles(client: Client) -> None:
    login = await client.post("/ops/login", data={"token": TOKEN, "ui": "en"}, allow_redirects=False)
    assert login.status == 303
    assert "HttpOnly" in login.headers["Set-Cookie"] and TOKEN not in login.headers["Set-Cookie"]
    page = await client.get(f"/ops?{period()}&ui=en")
    assert page.status == 200
    html = await page.text()
    assert "data-stage='requests' data-value='9'" in html
    assert "data-stage='saved' data-value='5'" in html
    assert "55.6%" in html  # the save rate
    assert "72.7%" in html  # resolved without a person
    assert (
        "Cancellation funnel" in html
        and "<script" not in html
        and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    )
    zh = await (await client.get(f"/ops?{period()}&ui=zh")).text()
    assert "取消漏斗" in zh and "挽回率" in zh


async def test_no_token_no_page(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    engine = make_engine(url)
    observability = build_observability(BotSettings(), BotMetrics(), engine, None)
    client = await serve(observability)
    try:
        assert (await client.get("/ops")).status == 404
        assert (await client.get("/ops/api/overview")).status == 404
        assert (await client.get("/metrics")).status == 200
    finally:
        await client.close()
        await engine.dispose()


def test_ops_token_must_be_long() -> None:
    with pytest.raises(ValueError):
        BotSettings(ops_token=SecretStr("short"))
