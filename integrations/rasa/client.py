"""Async client of Rasa's REST channel (``/webhooks/rest/webhook``).

The bot sends the buyer's text (or a button payload) with Telegram metadata; Rasa runs NLU, the dialogue
policies and, through them, the action server, and answers with the list of messages to send.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError

from integrations.rasa.errors import RasaBadResponse, RasaUnavailable
from integrations.rasa.identity import sign_metadata
from integrations.rasa.models import BotReply

log = logging.getLogger(__name__)

_REPLIES = TypeAdapter(list[BotReply])
MAX_MESSAGE_CHARS = 4_000


class RasaClient:
    """One pooled HTTP client per process; safe to share between concurrent handlers.

    ``auth_token`` is Rasa's ``--auth-token`` (sent as ``?token=`` on every call); with ``metadata_secret``
    the Telegram identity in the metadata is signed for the action server (see ``identity``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        auth_token: str | None = None,
        metadata_secret: str | None = None,
    ) -> None:
        self._metadata_secret = metadata_secret
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=3.0),
            transport=transport,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            params={"token": auth_token} if auth_token else None,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, sender_id: str, text: str, metadata: Mapping[str, Any]) -> list[BotReply]:
        """Send one buyer message; return the assistant's replies (possibly empty)."""
        signed = (
            sign_metadata(self._metadata_secret, sender_id, metadata)
            if self._metadata_secret
            else dict(metadata)
        )
        body = {"sender": sender_id, "message": text[:MAX_MESSAGE_CHARS], "metadata": signed}
        try:
            response = await self._http.post("/webhooks/rest/webhook", json=body)
        except httpx.TimeoutException as exc:
            raise RasaUnavailable(f"Rasa timed out: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise RasaUnavailable(f"Rasa unreachable: {exc!r}") from exc
        if response.status_code >= 500:
            raise RasaUnavailable(f"Rasa answered HTTP {response.status_code}")
        if response.status_code != 200:
            raise RasaBadResponse(f"Rasa answered HTTP {response.status_code}: {response.text[:200]}")
        try:
            replies = _REPLIES.validate_json(response.content)
        except ValidationError as exc:
            raise RasaBadResponse(f"unexpected Rasa reply: {exc.errors()[:3]}") from exc
        return [reply for reply in replies if not reply.is_empty]

    async def is_ready(self) -> bool:
        """True when Rasa is up and has a model loaded."""
        try:
            response = await self._http.get("/status")
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
        try:
            return bool(response.json().get("model_id"))
        except ValueError:
            return False


class ActionServerProbe:
    """Is the action server up? Rasa answers an empty list both when it is down and when a turn ends silently."""

    def __init__(self, webhook_url: str, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._health_url = webhook_url.rstrip("/").removesuffix("/webhook") + "/health"
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(3.0), transport=transport)

    async def healthy(self) -> bool:
        try:
            response = await self._http.get(self._health_url)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def aclose(self) -> None:
        await self._http.aclose()
