"""``make demo-staff``: the merchant's and the agents' chats of the terminal demo, in a second terminal.

It renders what the bot sends to the staff chats (read from the demo bot's ``/demo/staff/feed``) and sends what
is typed as that chat's staff user (``/demo/staff/say``, ``/demo/staff/press``). It knows no handoff logic and
imports no aiogram, so it starts fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from typing import Any

import httpx

from bot.terminal_board import ButtonBoard


def chat_name(chat_id: int, thread_id: int | None, agents_chat_id: int | None) -> str:
    if chat_id == agents_chat_id:
        return f"客服群 agents · 话题 topic {thread_id}" if thread_id else "客服群 agents"
    return f"商家 merchant {chat_id}"


class StaffTerminal:
    """Shows the staff chats and sends what is typed as the staff user of the current chat."""

    PROMPT_HELP = (
        "卡盟客服 · staff terminal: you are the merchant (商家) and the platform agent (客服) of the demo.\n"
        "What the bot sends to their chats appears here. Text goes to the current chat (in the prompt) as that\n"
        "chat's staff user; #N presses a button; staff commands: /take /release /close /note /order /fix\n"
        "/restore /refund /pass; /chats lists the chats, /chat N switches; Ctrl-D quits."
    )

    def __init__(self, base_url: str, out: Any = sys.stdout) -> None:
        self._base = base_url.rstrip("/")
        self._out = out
        self._board = ButtonBoard()
        self._seq = 0
        self._agents: int | None = None
        self._chats: list[tuple[int, int | None]] = []
        self._current: tuple[int, int | None] | None = None
        self._waiting = False

    @property
    def prompt(self) -> str:
        if self._current is None:
            return "staff (no chat yet) > "
        return f"[{chat_name(*self._current, self._agents)}] > "

    def _show(self, text: str) -> None:
        if self._waiting:
            self._out.write("\r\x1b[K" if self._out.isatty() else "\n")
        self._out.write(text + "\n")
        if self._waiting:
            self._out.write(self.prompt)
        self._out.flush()

    def _render(self, event: dict[str, Any]) -> None:
        chat_id, thread_id = int(event["chat_id"]), event.get("thread_id")
        where = chat_name(chat_id, thread_id, self._agents)
        if (chat_id, thread_id) not in self._chats:
            self._chats.append((chat_id, thread_id))
        kind = event["kind"]
        buttons = event.get("buttons")
        if kind == "topic":
            self._show(
                f"🧵 [{chat_name(chat_id, None, self._agents)}] new topic {thread_id}: {event['text']}"
            )
            return
        if kind == "notice":
            self._show(f"   ({where}) {event['text']}")
            return
        line = self._board.number(chat_id, int(event["message_id"]), buttons)
        if kind == "buttons":
            self._show(f"   ✏️  [{where}] buttons {'changed: ' + line if line else 'removed'}")
            return
        sender = event.get("sender", "bot")
        head = {"bot": "🤖", "bot (copy)": "🤖 ↪️"}.get(sender, f"🧑 {sender}:")
        if kind == "edit":
            head = "✏️  (edited)"
        text = str(event["text"]).replace("\n", "\n   ")
        self._show(f"[{where}]\n{head} {text}" + (f"\n   {line}" if line else ""))
        if sender.startswith("bot") and kind == "message":
            self._current = (chat_id, thread_id)

    async def _follow(self, client: httpx.AsyncClient) -> None:
        while True:
            try:
                response = await client.get(
                    f"{self._base}/demo/staff/feed", params={"after": self._seq}, timeout=30
                )
                response.raise_for_status()
            except httpx.HTTPError:
                self._show("   (the demo bot is not answering; is `make demo` running?) retrying…")
                await asyncio.sleep(3)
                continue
            body = response.json()
            self._agents = body.get("agents_chat_id")
            for event in body["events"]:
                self._seq = max(self._seq, int(event["seq"]))
                self._render(event)

    async def _handle(self, client: httpx.AsyncClient, line: str) -> None:
        if line == "/chats":
            for n, (chat_id, thread_id) in enumerate(self._chats, 1):
                self._show(f"   {n}. {chat_name(chat_id, thread_id, self._agents)}")
            return
        if line.startswith("/chat "):
            index = line.split()[1]
            if index.isdigit() and 0 < int(index) <= len(self._chats):
                self._current = self._chats[int(index) - 1]
            else:
                self._show("   (no such chat; /chats lists them)")
            return
        if line.startswith("#") and line[1:].isdigit():
            pressed = self._board.press(int(line[1:]))
            if pressed is None:
                self._show("   (no such button)")
                return
            chat_id, message_id, data = pressed
            payload = {"chat_id": chat_id, "message_id": message_id, "data": data}
            response = await client.post(f"{self._base}/demo/staff/press", json=payload, timeout=60)
            if response.status_code != 200:
                self._show(f"   (press failed: {response.text})")
            return
        if self._current is None:
            self._show("   (no staff chat yet: ask for a person in the buyer's terminal first, e.g. 转人工)")
            return
        chat_id, thread_id = self._current
        payload = {"chat_id": chat_id, "thread_id": thread_id, "text": line}
        response = await client.post(f"{self._base}/demo/staff/say", json=payload, timeout=60)
        if response.status_code != 200:
            self._show(f"   (send failed: {response.text})")

    async def run(self) -> None:
        self._show(self.PROMPT_HELP)
        async with httpx.AsyncClient() as client:
            follower = asyncio.create_task(self._follow(client))
            try:
                while True:
                    self._waiting = True
                    try:
                        line = await asyncio.to_thread(input, self.prompt)
                    except EOFError:
                        return
                    finally:
                        self._waiting = False
                    if line.strip():
                        try:
                            await self._handle(client, line.strip())
                        except httpx.HTTPError as exc:
                            self._show(f"   (the demo bot did not answer: {exc})")
            finally:
                follower.cancel()


def main() -> None:
    port = os.environ.get("BOT_HTTP_PORT", "8080")
    base = os.environ.get("DEMO_BOT_URL", f"http://127.0.0.1:{port}")
    try:
        with httpx.Client() as probe:
            probe.get(f"{base}/healthz", timeout=3).raise_for_status()
    except httpx.HTTPError:
        raise SystemExit(
            f"error: no demo bot at {base}; start `make demo` first (in another terminal)"
        ) from None
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(StaffTerminal(base).run())


if __name__ == "__main__":
    main()
