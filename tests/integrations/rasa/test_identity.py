"""The bot signs the Telegram identity it sends through Rasa; Rasa's HTTP API gets its auth token."""

from __future__ import annotations

import json

import httpx

from integrations.rasa import RasaClient
from integrations.rasa.identity import IDENTITY_KEY, sign_metadata, verify_metadata

SECRET = "metadata-secret-for-tests-0123"
NOW = 1_800_000_000


def test_a_signed_identity_verifies_for_its_conversation_only() -> None:
    signed = sign_metadata(SECRET, "tg-42", {"telegram_user_id": 42, "language": "zh"}, now=NOW)
    assert signed["language"] == "zh" and set(signed[IDENTITY_KEY]) == {"ts", "sig"}
    assert verify_metadata(SECRET, "tg-42", signed, now=NOW + 5)
    assert not verify_metadata(SECRET, "tg-43", signed, now=NOW)  # replayed into another conversation
    assert not verify_metadata("another-secret-entirely", "tg-42", signed, now=NOW)
    assert not verify_metadata(SECRET, "tg-42", signed, now=NOW + 3600)  # too old


def test_a_forged_or_unsigned_identity_does_not_verify() -> None:
    signed = sign_metadata(SECRET, "tg-42", {"telegram_user_id": 42}, now=NOW)
    forged = {**signed, "telegram_user_id": 7}
    assert not verify_metadata(SECRET, "tg-42", forged, now=NOW)
    assert not verify_metadata(SECRET, "tg-7", {"telegram_user_id": 7}, now=NOW)
    assert not verify_metadata(SECRET, "tg-7", {"telegram_user_id": True, IDENTITY_KEY: "x"}, now=NOW)
    assert sign_metadata(SECRET, "tg-1", {"language": "en"}) == {"language": "en"}  # nothing to vouch for


async def test_the_client_sends_the_token_and_signed_metadata() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/status":
            return httpx.Response(200, json={"model_id": "m1"})
        return httpx.Response(200, json=[{"recipient_id": "tg-42", "text": "好的"}])

    client = RasaClient(
        "http://rasa.test",
        transport=httpx.MockTransport(handler),
        auth_token="rasa-token-0123456789",
        metadata_secret=SECRET,
    )
    await client.send("tg-42", "到哪了", {"telegram_user_id": 42, "language": "zh"})
    assert await client.is_ready()
    await client.aclose()
    assert all(request.url.params["token"] == "rasa-token-0123456789" for request in seen)
    metadata = json.loads(seen[0].content)["metadata"]
    assert verify_metadata(SECRET, "tg-42", metadata)
