"""/ops in a real browser: headless Chromium (Debian's ``chromium``) driven over the DevTools protocol.

The known mix of ``tests/support/ops_scenario`` is seeded; the browser is refused with a wrong token, signs in
with the right one, and the funnel and the tiles must show the scenario's numbers on a phone-sized screen.
A screenshot is saved as ``var/ops-screenshot.png``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from bot.config import BotSettings
from bot.metrics import BotMetrics
from bot.ops.setup import build_observability
from integrations.storage.db import make_engine, make_sessionmaker, upgrade_to_head
from integrations.storage.handoff import HandoffRepository
from tests.support import ops_scenario
from tests.support.ops_scenario import DAY

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "var" / "ops-screenshot.png"
TOKEN = "browser-test-ops-token-0123456789"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-port=0",
]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")


class Page:
    """One browser tab over the DevTools protocol (only what this test needs)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self._waiting:
                self._waiting.pop(data["id"]).set_result(data)
            elif "method" in data:
                await self._events.put(data)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[number] = future
        await self._ws.send_str(json.dumps({"id": number, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, 30)
        assert "error" not in reply, reply
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def loaded(self) -> None:
        while True:
            event = await asyncio.wait_for(self._events.get(), 30)
            if event["method"] == "Page.loadEventFired":
                return

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.loaded()

    async def run(self, script: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=script, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    async def submit_token(self, token: str) -> None:
        await self.run(
            f"document.getElementById('token').value = {json.dumps(token)};"
            "document.getElementById('login').click();"
        )
        await self.loaded()

    def close(self) -> None:
        self._reader.cancel()


@pytest_asyncio.fixture
async def ops_url(tmp_path: Path) -> AsyncIterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await upgrade_to_head(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    await ops_scenario.seed(sessions, HandoffRepository(sessions))
    observability = build_observability(BotSettings(ops_token=SecretStr(TOKEN)), BotMetrics(), engine, None)
    app = web.Application()
    for add in observability.routes:
        add(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()
        await engine.dispose()


@pytest_asyncio.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    assert CHROMIUM is not None
    profile = tmp_path / "chromium-profile"
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        *FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    drained: list[asyncio.Task[bytes]] = []
    try:
        assert process.stderr is not None
        endpoint = await asyncio.wait_for(_devtools_endpoint(process.stderr), 120)
        drained.append(asyncio.create_task(process.stderr.read()))  # later log lines must not fill the pipe
        port = re.search(r":(\d+)/", endpoint)
        assert port is not None
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port.group(1)}/json/list") as response:
                targets = await response.json()
            target = next(t for t in targets if t["type"] == "page")
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                tab = Page(ws)
                await tab.send("Page.enable")
                await tab.send(  # a phone: the page must read well at 412 CSS pixels
                    "Emulation.setDeviceMetricsOverride",
                    width=412,
                    height=915,
                    deviceScaleFactor=2,
                    mobile=True,
                )
                try:
                    yield tab
                finally:
                    tab.close()
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
            await asyncio.wait_for(asyncio.gather(*drained), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _devtools_endpoint(stderr: asyncio.StreamReader) -> str:
    async for raw in stderr:
        line = raw.decode(errors="replace")
        if "DevTools listening on" in line:
            return line.split("DevTools listening on", 1)[1].strip()
    raise AssertionError("chromium did not start its DevTools endpoint")


READ_PAGE = """(() => {
  const stages = {};
  document.querySelectorAll('[data-stage]').forEach(g => stages[g.dataset.stage] = g.querySelector('.value').textContent);
  const tiles = {};
  document.querySelectorAll('.tile[data-metric]').forEach(t => tiles[t.dataset.metric] = t.querySelector('.value').textContent);
  return {
    title: document.title,
    stages, tiles,
    saveRate: document.querySelector('[data-metric="funnel_save_rate"]').textContent,
    saved: document.querySelector('[data-metric="save_kinds"]').textContent,
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    height: document.documentElement.scrollHeight,
  };
})()"""


async def test_the_ops_page_in_chromium(ops_url: str, page: Page) -> None:
    address = f"{ops_url}/ops?from={DAY}&to={DAY}&ui=zh"
    await page.goto(address)
    assert await page.run("document.querySelector('#token') !== null")  # not signed in: the login form
    await page.submit_token("not-the-token-0123456789")
    text = await page.run("document.body.innerText")
    assert "令牌不正确" in text
    assert await page.run("document.querySelectorAll('[data-stage]').length") == 0

    await page.submit_token(TOKEN)
    await page.goto(address)  # the login lands on the default period; open the scenario's day
    seen = await page.run(READ_PAGE)
    assert seen["title"] == "运营看板"
    assert seen["stages"] == {
        "requests": "9",
        "offers": "5 · 56%",
        "saved": "5 · 56%",
        "cancelled": "4 · 44%",
        "escalated": "1 · 11%",
    }
    assert seen["saveRate"] == "55.6%"
    assert "改账号 1" in seen["saved"] and "恢复订单 1" in seen["saved"]
    assert seen["tiles"] == {
        "containment_rate": "72.7%",
        "handoff_rate": "27.3%",
        "first_reply": "60 s",
        "sla_hit_rate": "50.0%",
        "reopen_rate": "50.0%",
        "csat_average": "4.00",
        "csat_response_rate": "100.0%",
    }
    assert seen["overflow"] <= 0, "the page scrolls sideways on a phone"

    await page.send(
        "Emulation.setDeviceMetricsOverride",
        width=412,
        height=int(seen["height"]),
        deviceScaleFactor=1,
        mobile=True,
    )
    shot = await page.send("Page.captureScreenshot", format="png")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))
    assert SCREENSHOT.stat().st_size > 10_000
