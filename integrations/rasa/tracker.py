"""Pause and resume a Rasa conversation while a human holds it (Rasa HTTP API, needs ``--enable-api``).

``POST /conversations/{sender_id}/tracker/events`` with ``{"event": "pause"}`` / ``{"event": "resume"}``.
Failures map onto the Rasa error tree (``RasaUnavailable``, ``RasaBadResponse``).
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from integrations.rasa.errors import RasaBadResponse, RasaUnavailable


class RasaTracker:
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._token = token
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=httpx.Timeout(timeout, connect=3.0), transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def pause(self, sender_id: str) -> None:
        """The assistant stops answering ``sender_id`` (a human holds the conversation)."""
        await self._append(sender_id, "pause")

    async def resume(self, sender_id: str) -> None:
        """The assistant answers ``sender_id`` again."""
        await self._append(sender_id, "resume")

    async def _append(self, sender_id: str, event: str) -> None:
        path = f"/conversations/{quote(sender_id, safe='')}/tracker/events"
        params = {"token": self._token} if self._token else None
        try:
            response = await self._http.post(path, json={"event": event}, params=params)
        except httpx.TimeoutException as exc:
            raise RasaUnavailable(f"Rasa timed out on {event}: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise RasaUnavailable(f"Rasa unreachable on {event}: {exc!r}") from exc
        if response.status_code >= 500:
            raise RasaUnavailable(f"Rasa answered HTTP {response.status_code} on {event}")
        if response.status_code != 200:
            raise RasaBadResponse(f"Rasa refused {event}: HTTP {response.status_code} {response.text[:200]}")
