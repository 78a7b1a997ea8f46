"""Running simulated conversations: buyers and orders on the sandbox, messages through Rasa's REST channel
(with the metadata the bot sends), the dialogue state from Rasa's tracker, the truth from the platform."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from integrations.hygiene import for_rasa
from integrations.rasa.client import RasaClient
from integrations.rasa.errors import RasaError
from sim.goals import PRODUCTS, Button, Buyer, Goal, Observation
from sim.metrics import ConversationRecord, TurnRecord
from sim.phrases import SLA_MINUTES

MAX_TURNS = 12


class Sandbox:
    """The platform sandbox: admin calls to lay out buyers and orders, v1 calls to read the truth."""

    def __init__(self, url: str, api_key: str, admin_key: str) -> None:
        self._http = httpx.AsyncClient(base_url=url.rstrip("/"), timeout=httpx.Timeout(15.0))
        self._v1 = {"X-API-Key": api_key}
        self._admin = {"X-Admin-Key": admin_key}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, admin: bool = False, **kwargs: Any) -> Any:
        headers = self._admin if admin else self._v1
        for attempt in range(5):
            try:
                response = await self._http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError:  # a busy machine drops a connection now and then
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            if response.status_code == 429 or response.status_code >= 500:
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            if response.status_code >= 400:
                raise RuntimeError(
                    f"sandbox {method} {path}: HTTP {response.status_code} {response.text[:300]}"
                )
            return response.json() if response.content else None
        raise RuntimeError(f"sandbox {method} {path}: still failing after retries")

    async def now(self) -> datetime:
        body = await self._call("GET", "/admin/clock", admin=True)
        return datetime.fromisoformat(str(body["now"]).replace("Z", "+00:00"))

    async def create_buyer(self, buyer_id: str, telegram_user_id: int) -> None:
        await self._call(
            "POST",
            "/admin/buyers",
            admin=True,
            json={
                "buyer_id": buyer_id,
                "name": f"模拟买家{buyer_id[-4:]}",
                "telegram_user_id": telegram_user_id,
            },
        )

    async def stock_up(self, products: dict[str, dict[str, Any]], stock: int = 100_000) -> None:
        """Enough stock for every order a run creates (the seeds hold a few hundred units)."""
        for sku, product in products.items():
            await self._call(
                "POST", "/admin/products", admin=True, json={"sku": sku, **product, "stock": stock}
            )

    async def create_order(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", "/admin/orders", admin=True, json=body)
        return result

    async def cancel(self, buyer_id: str, order_id: str, tag: str) -> None:
        await self._call(
            "POST", f"/v1/buyers/{buyer_id}/orders/{order_id}/cancel", json={"reason_tag": tag, "by": "buyer"}
        )

    async def order(self, buyer_id: str, order_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", f"/v1/buyers/{buyer_id}/orders/{order_id}")
        return result

    async def tickets(self, buyer_id: str) -> int:
        body = await self._call("GET", "/v1/escalations", params={"buyer_id": buyer_id, "limit": 200})
        return len(body["escalations"])


class Rasa:
    """Rasa's REST channel (the bot's own client) plus the tracker for the dialogue state."""

    def __init__(self, url: str, token: str | None = None, metadata_secret: str | None = None) -> None:
        self.client = RasaClient(url, timeout=60.0, auth_token=token, metadata_secret=metadata_secret)
        self._http = httpx.AsyncClient(base_url=url.rstrip("/"), timeout=httpx.Timeout(30.0))
        self._params = {"include_events": "AFTER_RESTART", **({"token": token} if token else {})}

    async def aclose(self) -> None:
        await self.client.aclose()
        await self._http.aclose()

    async def model_id(self) -> str:
        response = await self._http.get(
            "/status", params={k: v for k, v in self._params.items() if k == "token"}
        )
        return str(response.json().get("model_id", "?"))

    async def tracker(self, sender: str) -> dict[str, Any]:
        response = await self._http.get(
            f"/conversations/{quote(sender, safe='')}/tracker", params=self._params
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


@dataclass
class RunContext:
    sandbox: Sandbox
    rasa: Rasa
    seed: int
    run_tag: int
    """Keeps buyers, senders and order ids of this run apart from earlier runs on a reused stack."""


def _ids(ctx: RunContext, index: int) -> tuple[str, int, str, str]:
    buyer_id = f"SIM{ctx.run_tag:03d}{index:05d}"
    telegram_user_id = 6_000_000_000 + ctx.run_tag * 100_000 + index
    base = (ctx.run_tag % 10) * 100_000 + index * 2  # KM + 11 digits, like the platform's ids
    return buyer_id, telegram_user_id, f"KM20269{base:06d}", f"KM20269{base + 1:06d}"


async def setup(
    ctx: RunContext, index: int, goal: Goal, now: datetime
) -> tuple[str, int, str, dict[str, Any]]:
    """A fresh buyer linked to its own Telegram user, the goal's order and a delivered order beside it."""
    buyer_id, telegram_user_id, order_id, other_id = _ids(ctx, index)
    await ctx.sandbox.create_buyer(buyer_id, telegram_user_id)
    plan, product = goal.plan, PRODUCTS[goal.plan.sku]
    body: dict[str, Any] = {
        "order_id": order_id,
        "buyer_id": buyer_id,
        "sku": plan.sku,
        "account": product.account,
        "region": product.region,
        "state": plan.state,
        "outcome": plan.outcome,
        "created_at": _iso(
            now - timedelta(minutes=(plan.paid_minutes_ago or plan.submitted_minutes_ago or 1) + 1)
        ),
    }
    if plan.paid_minutes_ago is not None:
        body["paid_at"] = _iso(now - timedelta(minutes=plan.paid_minutes_ago))
    if plan.submitted_minutes_ago is not None:
        body["payment_submitted_at"] = _iso(now - timedelta(minutes=plan.submitted_minutes_ago))
    await ctx.sandbox.create_order(body)
    other_sku = "YS-60" if product.kind != "game_card" else "IQY-VIP-M"
    await ctx.sandbox.create_order(
        {
            "order_id": other_id,
            "buyer_id": buyer_id,
            "sku": other_sku,
            "account": "108700001" if other_sku == "YS-60" else "13600001234",
            "region": "国服" if other_sku == "YS-60" else "中国大陆",
            "state": "delivered",
            "created_at": _iso(now - timedelta(days=2)),
            "paid_at": _iso(now - timedelta(days=2)),
        }
    )
    if plan.cancelled_by_buyer:
        await ctx.sandbox.cancel(buyer_id, order_id, "user_mistake")
    order = await ctx.sandbox.order(buyer_id, order_id)
    return buyer_id, telegram_user_id, order_id, order


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _expected_minutes(goal: Goal, key: str, now: datetime) -> int | None:
    """The promise a general question should state: the one in force now (night is 23:00–07:00 UTC+8)."""
    if goal.kind != "general":
        return None
    hour = (now.astimezone(UTC) + timedelta(hours=8)).hour
    night = goal.variant == "night" or hour >= 23 or hour < 7
    if goal.variant == "kind":
        return SLA_MINUTES.get((key, None, night), SLA_MINUTES.get((key, None, False)))
    if goal.variant == "carrier":
        return SLA_MINUTES.get(("phone_topup", key if key == "telecom" or not night else None, night))
    return SLA_MINUTES.get(("phone_topup", "telecom" if key == "telecom" else None, True))


async def run_conversation(ctx: RunContext, index: int, goal: Goal) -> ConversationRecord:
    now = await ctx.sandbox.now()
    buyer_id, telegram_user_id, order_id, order = await setup(ctx, index, goal, now)
    product = PRODUCTS[goal.plan.sku]
    sender = f"tg-{telegram_user_id}"
    record = ConversationRecord(
        index=index,
        kind=goal.kind,
        variant=goal.variant,
        lang=goal.lang,
        reason=goal.reason,
        savable=goal.savable,
        insisted=goal.insisted,
        sender=sender,
        buyer_id=buyer_id,
        order_id=order_id,
        initial_state=order["state"],
        expected_account=product.new_account if goal.kind == "keep_fix" else None,
        expected_region=product.new_region if goal.kind == "keep_fix" else None,
    )
    buyer = Buyer(
        goal,
        random.Random(f"{ctx.seed}:{index}"),
        order_id,
        account=product.new_account,
        region=product.new_region,
    )
    observation = Observation(None, None, [], [], 0, order["state"])
    try:
        for number in range(1, MAX_TURNS + 1):
            move = buyer.next_move(observation)
            if move is None:
                break
            metadata = {
                "telegram_user_id": telegram_user_id,
                "chat_id": telegram_user_id,
                "language": goal.lang,
                "message_id": number,
                "channel": "telegram",
            }
            # as the bot does: a tapped button's payload goes as is, typed text never as an /intent
            text = move.text if move.tapped else for_rasa(move.text)
            replies = await ctx.rasa.client.send(sender, text, metadata)
            tracker = await ctx.rasa.tracker(sender)
            order = await ctx.sandbox.order(buyer_id, order_id)
            clock = await ctx.sandbox.now()
            loop = (tracker.get("active_loop") or {}).get("name")
            slots = tracker.get("slots") or {}
            # what the NLU read from this message: the parse data of the last user event
            users = [e for e in tracker.get("events") or [] if e.get("event") == "user"]
            latest = (users[-1].get("parse_data") if users else None) or {}
            bot = [
                {
                    "text": r.text,
                    "buttons": [{"title": b.title, "payload": b.payload} for b in r.buttons],
                }
                for r in replies
            ]
            record.turns.append(
                TurnRecord(
                    buyer=move.text,
                    meaning=move.meaning,
                    tapped=move.tapped,
                    bot=bot,
                    active_loop=loop,
                    requested_slot=slots.get("requested_slot") if loop else None,
                    intent=(latest.get("intent") or {}).get("name"),
                    entities=[
                        {"entity": e.get("entity"), "value": e.get("value")}
                        for e in latest.get("entities") or []
                    ],
                    order_state=order["state"],
                    now=_iso(clock),
                )
            )
            observation = Observation(
                active_loop=loop,
                requested_slot=slots.get("requested_slot") if loop else None,
                buttons=[Button(b.title, b.payload) for r in replies for b in r.buttons],
                texts=[r.text or "" for r in replies],
                turn=number,
                order_state=order["state"],
            )
    except (RasaError, httpx.HTTPError, RuntimeError) as exc:
        record.error = f"{type(exc).__name__}: {exc}"
    record.expected_minutes = _expected_minutes(goal, buyer.general_key, now)
    final = await ctx.sandbox.order(buyer_id, order_id)
    record.final_state = final["state"]
    record.final_tag = (final.get("cancel") or {}).get("tag")
    target = final.get("recharge_target") or {}
    record.final_account, record.final_region = target.get("account"), target.get("region")
    record.tickets = await ctx.sandbox.tickets(buyer_id)
    return record


async def run_all(
    ctx: RunContext, goals: Sequence[Goal], concurrency: int = 3, progress: bool = True
) -> list[ConversationRecord]:
    semaphore = asyncio.Semaphore(concurrency)
    done = 0
    started = time.monotonic()

    async def one(index: int, goal: Goal) -> ConversationRecord:
        nonlocal done
        async with semaphore:
            try:
                record = await run_conversation(ctx, index, goal)
            except (RuntimeError, httpx.HTTPError, KeyError, ValueError) as exc:
                # the platform side failed (setup or final read): keep the conversation as an error
                buyer_id, telegram_user_id, order_id, _ = _ids(ctx, index)
                record = ConversationRecord(
                    index=index,
                    kind=goal.kind,
                    variant=goal.variant,
                    lang=goal.lang,
                    reason=goal.reason,
                    savable=False,
                    insisted=False,
                    sender=f"tg-{telegram_user_id}",
                    buyer_id=buyer_id,
                    order_id=order_id,
                    initial_state="?",
                    error=f"{type(exc).__name__}: {exc}",
                )
        done += 1
        if progress and (done % 25 == 0 or done == len(goals)):
            rate = done / max(time.monotonic() - started, 1e-6)
            print(f"  {done}/{len(goals)} conversations ({rate * 60:.0f}/min)", flush=True)
        return record

    return list(await asyncio.gather(*(one(i, g) for i, g in enumerate(goals))))
