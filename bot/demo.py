"""``/demo``: the demo world's controls, registered only in the terminal demo (never with a real token).

It lists the demo buyer's orders with their states and the sandbox clock, makes a fresh order of each kind
(through the sandbox's ``/admin`` API), and jumps the sandbox clock so the simulation (payments confirm,
merchants accept, orders deliver, overdue orders are refunded) moves on at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, User
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.i18n import Language
from bot.services.preferences import LanguagePreferences
from integrations.platform.client import PlatformClient
from integrations.platform.errors import PlatformError

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")


class DemoSettings(BaseSettings):
    """The sandbox's admin key (the demo's stack passes the sandbox's own), and when the stack wants the chat
    to open at the latest (seconds since the epoch; unset: at once)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")
    sandbox_admin_key: SecretStr = Field(default=SecretStr("sandbox-admin"), alias="SANDBOX_ADMIN_KEY")
    terminal_open_by: float | None = Field(default=None, alias="TERMINAL_OPEN_BY")


@dataclass(frozen=True, slots=True)
class Scenario:
    """A fresh order the newcomer can make, and what the simulation will do with it."""

    key: str
    sku: str
    account: str
    region: str | None
    body: dict[str, Any]
    title: dict[Language, str]


SCENARIOS = (
    Scenario(
        "game",
        "WZRY-60",
        "2876543210",
        "安卓QQ区",
        {"state": "paid", "response_seconds": 30, "fulfil_seconds": 150},
        {"zh": "🎮 游戏点卡（约 3 分钟到账）", "en": "🎮 game card (arrives in ~3 min)"},
    ),
    Scenario(
        "topup",
        "CU-50",
        "13100001111",
        "北京联通",
        {"state": "paid", "response_seconds": 60, "outcome": "stall"},
        {"zh": "📱 话费（卡住，超时自动退款）", "en": "📱 phone top-up (stalls → refunded when late)"},
    ),
    Scenario(
        "member",
        "TXSP-VIP-M",
        "13912345678",
        "中国大陆",
        {"state": "paid", "response_seconds": 120, "fulfil_seconds": 900},
        {"zh": "🎬 会员（商家较慢，约 17 分钟）", "en": "🎬 membership (slow seller, ~17 min)"},
    ),
    Scenario(
        "unpaid",
        "CT-50",
        "13312345678",
        "上海电信",
        {"state": "pending_payment", "outcome": "payment_stall"},
        {"zh": "💳 支付未确认（5 分钟后提醒）", "en": "💳 payment not confirmed (alert after 5 min)"},
    ),
)
JUMPS = (5, 30)
FAST = 10.0
_TEXTS: dict[str, dict[Language, str]] = {
    "title": {
        "zh": "🧪 演示世界 · 平台时间 {clock}（北京时间，{speed}）\n"
        "订单会自己推进：支付确认、商家接单、到账，超时的自动全额退款。",
        "en": "🧪 Demo world · platform time {clock} (Beijing, {speed})\nOrders move on their own: payments "
        "confirm, sellers accept, orders arrive, late ones are refunded in full.",
    },
    "order": {"zh": "{id} {name} · {state}{due}", "en": "{id} {name} · {state}{due}"},
    "due": {"zh": " · 承诺 {time} 前", "en": " · promised by {time}"},
    "made": {
        "zh": "✅ 已新建订单 {id}（{name}）。问问机器人：“{id} 到哪了？”",
        "en": "✅ New order {id} ({name}). Ask the bot: “where is {id}?”",
    },
    "jumped": {"zh": "⏩ 平台时间前进了 {minutes} 分钟。", "en": "⏩ Platform time moved on {minutes} min."},
    "jump": {"zh": "⏩ +{minutes} 分钟", "en": "⏩ +{minutes} min"},
    "realtime": {"zh": "实时", "en": "real time"},
    "fast": {"zh": "{speed:g} 倍速", "en": "×{speed:g} speed"},
    "go_fast": {"zh": "⏩ {speed:g} 倍速", "en": "⏩ ×{speed:g} speed"},
    "go_real": {"zh": "▶️ 恢复实时", "en": "▶️ real time"},
    "speed_set": {"zh": "平台时间现在是{speed}。", "en": "Platform time now runs at {speed}."},
    "unavailable": {
        "zh": "演示控制暂时不可用（沙箱没有回应）。",
        "en": "The demo controls are unavailable (the sandbox did not answer).",
    },
    "not_linked": {
        "zh": "这个 Telegram 账号没有绑定演示买家。",
        "en": "This Telegram user is not the demo buyer.",
    },
}
_STATES: dict[str, dict[Language, str]] = {
    "pending_payment": {"zh": "待支付", "en": "awaiting payment"},
    "paid": {"zh": "已支付，等商家接单", "en": "paid, seller to accept"},
    "processing": {"zh": "充值处理中", "en": "processing"},
    "delivered": {"zh": "已到账", "en": "delivered"},
    "failed": {"zh": "充值失败", "en": "failed"},
    "cancelled": {"zh": "已取消", "en": "cancelled"},
    "refunded": {"zh": "已退款", "en": "refunded"},
}


def _text(key: str, language: Language, **values: Any) -> str:
    return _TEXTS[key][language].format(**values)


def _local(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%H:%M:%S")


class DemoWorld:
    """The sandbox's admin API, as the demo uses it."""

    def __init__(
        self,
        platform: PlatformClient,
        base_url: str,
        admin_key: str,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.platform = platform
        self._client = client or httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/admin", headers={"X-Admin-Key": admin_key}, timeout=10
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self._client.request(method, path, json=body)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def clock(self) -> tuple[datetime, float]:
        """The platform's time and how many times faster than real time it runs."""
        found = await self._call("GET", "/clock")
        return datetime.fromisoformat(found["now"]), float(found.get("speed", 1.0))

    async def set_speed(self, speed: float) -> None:
        await self._call("POST", "/clock", {"speed": speed, "frozen": False})

    async def new_order(self, buyer_id: str, scenario: Scenario) -> dict[str, Any]:
        body: dict[str, Any] = {
            "buyer_id": buyer_id,
            "sku": scenario.sku,
            "account": scenario.account,
            "region": scenario.region,
            **scenario.body,
        }
        now, _ = await self.clock()
        if body["state"] == "paid":
            body["paid_at"] = now.isoformat()
        else:
            body["payment_submitted_at"] = now.isoformat()
        return await self._call("POST", "/orders", body)

    async def jump(self, minutes: int) -> None:
        """Move the platform clock on and run the simulation at once (it also runs on its own)."""
        await self._call("POST", "/clock", {"advance_seconds": minutes * 60, "frozen": False})
        await self._call("POST", "/tick")


async def _buyer_id(platform: PlatformClient, user: User | None) -> str | None:
    if user is None:
        return None
    try:
        return (await platform.get_link(user.id)).buyer_id
    except PlatformError:
        return None


async def _overview(world: DemoWorld, buyer_id: str, language: Language) -> tuple[str, InlineKeyboardMarkup]:
    now, speed = await world.clock()
    pace = _text("realtime", language) if speed == 1 else _text("fast", language, speed=speed)
    lines = [_text("title", language, clock=_local(now), speed=pace)]
    for order in reversed(await world.platform.list_orders(buyer_id, limit=12)):
        due = ""
        if order.is_open and order.promised_by is not None:
            due = _text("due", language, time=_local(order.promised_by)[:5])
        state = _STATES.get(order.state, {}).get(language, order.state)
        lines.append(
            _text("order", language, id=order.order_id, name=order.product.name, state=state, due=due)
        )
    rows = [
        [InlineKeyboardButton(text=s.title[language], callback_data=f"demo:new:{s.key}")] for s in SCENARIOS
    ]
    rows.append(
        [
            InlineKeyboardButton(text=_text("jump", language, minutes=m), callback_data=f"demo:jump:{m}")
            for m in JUMPS
        ]
        + [
            InlineKeyboardButton(text=_text("go_real", language), callback_data="demo:speed:1")
            if speed != 1
            else InlineKeyboardButton(
                text=_text("go_fast", language, speed=FAST), callback_data=f"demo:speed:{FAST:g}"
            )
        ]
    )
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


async def _language(user: User | None, preferences: LanguagePreferences) -> Language:
    if user is None:
        return "zh"
    return await preferences.language_for(user.id, user.language_code)


async def on_demo(
    message: Message,
    command: CommandObject,
    preferences: LanguagePreferences,
    demo_world: DemoWorld,
) -> None:
    language = await _language(message.from_user, preferences)
    buyer_id = await _buyer_id(demo_world.platform, message.from_user)
    if buyer_id is None:
        await message.answer(_text("not_linked", language))
        return
    try:
        args = (command.args or "").split()
        if args[:1] == ["jump"] and len(args) == 2 and args[1].isdigit():
            await demo_world.jump(int(args[1]))
            await message.answer(_text("jumped", language, minutes=int(args[1])))
        if args[:1] == ["speed"] and len(args) == 2 and args[1].isdigit() and 0 < int(args[1]) <= 600:
            await demo_world.set_speed(float(args[1]))
            pace = (
                _text("realtime", language) if args[1] == "1" else _text("fast", language, speed=int(args[1]))
            )
            await message.answer(_text("speed_set", language, speed=pace))
        scenario = next((s for s in SCENARIOS if args[:2] == ["new", s.key]), None)
        if scenario is not None:
            order = await demo_world.new_order(buyer_id, scenario)
            name = order["product"]["name"]
            await message.answer(_text("made", language, id=order["order_id"], name=name))
        text, keyboard = await _overview(demo_world, buyer_id, language)
    except (httpx.HTTPError, PlatformError):
        log.exception("/demo failed")
        await message.answer(_text("unavailable", language))
        return
    await message.answer(text, reply_markup=keyboard)


async def on_demo_button(
    query: CallbackQuery, preferences: LanguagePreferences, demo_world: DemoWorld
) -> None:
    language = await _language(query.from_user, preferences)
    _, action, value = (query.data or "demo::").split(":", 2)
    buyer_id = await _buyer_id(demo_world.platform, query.from_user)
    if buyer_id is None or not isinstance(query.message, Message):
        await query.answer(_text("not_linked", language))
        return
    try:
        if action == "jump" and value.isdigit():
            await demo_world.jump(int(value))
            await query.answer(_text("jumped", language, minutes=int(value)))
        if action == "speed" and value.isdigit():
            await demo_world.set_speed(float(value))
            await query.answer()
        scenario = next((s for s in SCENARIOS if action == "new" and s.key == value), None)
        if scenario is not None:
            order = await demo_world.new_order(buyer_id, scenario)
            await query.answer()
            await query.message.answer(
                _text("made", language, id=order["order_id"], name=order["product"]["name"])
            )
        text, keyboard = await _overview(demo_world, buyer_id, language)
    except (httpx.HTTPError, PlatformError):
        log.exception("/demo button failed")
        await query.answer(_text("unavailable", language))
        return
    await query.message.edit_text(text, reply_markup=keyboard)


def demo_router() -> Router:
    """Include first (before the handoff and buyer routers), and only in the terminal demo."""
    router = Router(name="demo")
    router.message.register(on_demo, F.chat.type == "private", Command("demo"))
    router.callback_query.register(on_demo_button, F.data.startswith("demo:"))
    return router
