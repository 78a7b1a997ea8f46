from __future__ import annotations

import json

import httpx
import pytest

from integrations.rasa import RasaBadResponse, RasaClient, RasaUnavailable


def client_with(handler: httpx.MockTransport) -> RasaClient:
    return RasaClient("http://rasa.test", transport=handler)


async def test_sends_sender_text_and_metadata_and_parses_replies() -> None:
    seen: dict[str, object] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["path"] = request.url.path
        seen["body"] = json.loads(request.content)
        return httpx.Response(
            200,
            json=[
                {
                    "recipient_id": "tg-1",
                    "text": "订单处理中",
                    "buttons": [{"title": "转人工", "payload": "/human_handoff"}],
                },
                {"recipient_id": "tg-1"},
            ],
        )

    client = client_with(httpx.MockTransport(handler))
    replies = await client.send("tg-1", "我的订单到哪了", {"language": "zh", "telegram_user_id": 1})
    await client.aclose()
    assert seen["path"] == "/webhooks/rest/webhook"
    assert seen["body"] == {
        "sender": "tg-1",
        "message": "我的订单到哪了",
        "metadata": {"language": "zh", "telegram_user_id": 1},
    }
    assert len(replies) == 1  # the empty reply is dropped
    assert replies[0].text == "订单处理中"
    assert replies[0].buttons[0].payload == "/human_handoff"


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (lambda r: httpx.Response(503, text="down"), RasaUnavailable),
        (lambda r: httpx.Response(200, text="<html>"), RasaBadResponse),
        (lambda r: httpx.Response(200, json={"not": "a list"}), RasaBadResponse),
        (lambda r: httpx.Response(404), RasaBadResponse),
    ],
)
async def test_bad_answers_map_to_the_rasa_error_tree(handler: object, error: type[Exception]) -> None:
    client = client_with(httpx.MockTransport(handler))  # type: ignore[arg-type]
    with pytest.raises(error):
        await client.send("s", "hi", {})
    await client.aclose()


async def test_connection_errors_are_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    for handler in (refuse, slow):
        client = client_with(httpx.MockTransport(handler))
        with pytest.raises(RasaUnavailable):
            await client.send("s", "hi", {})
        await client.aclose()


async def test_huge_text_is_truncated_before_sending() -> None:
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sizes.append(len(json.loads(request.content)["message"]))
        return httpx.Response(200, json=[])

    client = client_with(httpx.MockTransport(handler))
    assert await client.send("s", "x" * 100_000, {}) == []
    await client.aclose()
    assert sizes == [4000]
