"""The Rasa pause/resume client: the request it makes and its error tree."""

from __future__ import annotations

import json

import httpx
import pytest

from integrations.rasa.errors import RasaBadResponse, RasaUnavailable
from integrations.rasa.tracker import RasaTracker


async def test_pause_and_resume_post_tracker_events() -> None:
    seen: list[tuple[str, dict[str, str]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200, json={"sender_id": "tg-1"})

    tracker = RasaTracker("http://rasa", transport=httpx.MockTransport(handler))
    await tracker.pause("tg-1")
    await tracker.resume("tg-1")
    await tracker.aclose()
    assert seen == [
        ("/conversations/tg-1/tracker/events", {"event": "pause"}),
        ("/conversations/tg-1/tracker/events", {"event": "resume"}),
    ]


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(503), RasaUnavailable),
        (httpx.Response(403, text="no api"), RasaBadResponse),
    ],
)
async def test_failures_map_onto_the_rasa_errors(response: httpx.Response, error: type[Exception]) -> None:
    tracker = RasaTracker("http://rasa", transport=httpx.MockTransport(lambda _: response))
    with pytest.raises(error):
        await tracker.pause("tg-1")
    await tracker.aclose()


async def test_unreachable_rasa_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    tracker = RasaTracker("http://rasa", transport=httpx.MockTransport(refuse))
    with pytest.raises(RasaUnavailable):
        await tracker.resume("tg-1")
    await tracker.aclose()
