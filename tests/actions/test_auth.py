"""The action server runs actions only for Rasa (shared token) and believes only identities the bot signed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from rasa_sdk import Action, Tracker
from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
from sanic import Sanic

from actions.auth import distrust_unsigned, protect
from actions.context import telegram_user_id
from integrations.rasa.identity import sign_metadata

TOKEN = "action-server-token-0123456789"
SECRET = "metadata-secret-for-tests-0123"


class WhoAmI(Action):  # type: ignore[misc]
    def name(self) -> str:
        return "action_who_am_i"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(text=f"user={telegram_user_id(tracker)}")
        return []


def action_call(sender: str, metadata: dict[str, Any]) -> dict[str, Any]:
    user_event = {"event": "user", "text": "取消订单", "metadata": metadata, "parse_data": {}}
    return {
        "next_action": "action_who_am_i",
        "sender_id": sender,
        "tracker": {
            "sender_id": sender,
            "slots": {},
            "latest_message": {"text": "取消订单", "intent": {}, "entities": [], "metadata": dict(metadata)},
            "events": [user_event],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
        "domain": {},
        "version": "3.6.21",
    }


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(Sanic, "test_mode", True)  # one rasa_sdk app per test
    executor = ActionExecutor()
    executor.register_action(WhoAmI())
    app = create_app(executor)
    app.config.TOUCHUP = False
    protect(app, TOKEN, SECRET)
    events: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    started = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()

    # the ASGI lifespan that a server would run: Sanic sets its app up there
    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, events.get, send))
    await events.put({"type": "lifespan.startup"})
    await asyncio.wait_for(started.wait(), 10)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://actions.test") as client:
        yield client
    await events.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(lifespan, 10)


async def test_requests_without_the_token_are_refused(server: httpx.AsyncClient) -> None:
    body = action_call("tg-42", sign_metadata(SECRET, "tg-42", {"telegram_user_id": 42}))
    assert (await server.post("/webhook", json=body)).status_code == 401
    assert (await server.post("/webhook", json=body, params={"token": "wrong"})).status_code == 401
    assert (await server.get("/actions")).status_code == 401
    assert (await server.get("/health")).status_code == 200  # health stays open for probes


async def test_a_signed_identity_is_believed(server: httpx.AsyncClient) -> None:
    body = action_call("tg-42", sign_metadata(SECRET, "tg-42", {"telegram_user_id": 42}))
    response = await server.post("/webhook", json=body, params={"token": TOKEN})
    assert response.status_code == 200, response.text
    assert response.json()["responses"][0]["text"] == "user=42"


async def test_a_forged_identity_is_not_trusted(server: httpx.AsyncClient) -> None:
    signed_for_42 = sign_metadata(SECRET, "tg-42", {"telegram_user_id": 42})
    for metadata in (
        {"telegram_user_id": 7},  # plain forgery, as anyone reaching Rasa's REST channel could send
        {**signed_for_42, "telegram_user_id": 7},  # someone else's signature
        sign_metadata("not-the-shared-secret-at-all", "tg-7", {"telegram_user_id": 7}),
    ):
        response = await server.post("/webhook", json=action_call("tg-7", metadata), params={"token": TOKEN})
        assert response.status_code == 200, response.text
        assert response.json()["responses"][0]["text"] == "user=None"


def test_every_carrier_of_the_identity_is_checked() -> None:
    good = sign_metadata(SECRET, "tg-1", {"telegram_user_id": 1}, now=time.time())
    call = action_call("tg-1", good)
    call["tracker"]["events"].insert(0, {"event": "user", "metadata": {"telegram_user_id": 99}})
    assert distrust_unsigned(call, SECRET) == 1
    assert call["tracker"]["events"][0]["metadata"] == {}
    assert call["tracker"]["latest_message"]["metadata"]["telegram_user_id"] == 1
    assert distrust_unsigned({"tracker": "nonsense"}, SECRET) == 0
