"""Receiver of the platform's signed webhooks: proactive messages to buyers about their orders and tickets.

The platform POSTs every event (docs/platform-api.md, "Webhook delivery") at least once, signed with
HMAC-SHA256 over ``f"{timestamp}.{raw body}"``. :class:`PlatformEventsReceiver` checks, in this order:

1. the body size (read with a cap; over it → 413);
2. the signature and the timestamp's freshness (``signing``; missing, bad, stale or future → 401);
3. the JSON and the event's shape (→ 400 with a reason; never a 500, never a stack trace);
4. the event id, claimed atomically in the key-value store (already processed → 200 ``duplicate``, so the
   platform stops retrying; being processed right now by a concurrent delivery → 503 ``in_progress``);

then composes one short message per buyer language and hands it to the :class:`BuyerNotifier` for every
Telegram user linked to the buyer (``telegram_user_ids``; none → logged, 200).

**A failure after acceptance answers 503 and releases the event id** (rather than queueing the event in
the bot). The platform already keeps every event in a transactional outbox and redelivers the very same
signed bytes with exponential backoff until a 2xx; a second queue in the bot would be either in memory
(lost on restart, which is exactly what must not happen) or one more Redis structure needing its own
worker, retry policy and dead-letter handling. So the platform's outbox stays the one durable record of
what is not yet handled: the bot answers 5xx, releases the dedupe claim so the redelivery is processed,
and remembers per recipient who was already told, so a retry after a partial failure never tells a buyer
twice. (With the production notifier, :class:`OutboxNotifier`, the only failures are a stopping outbox or
an unreachable Redis; Telegram's own errors are retried inside the outbox.)

Dedupe uses only ``get``/``set``/``set_if_absent`` (:class:`AtomicStore`, e.g. ``bot.kv``'s stores). The
key ``platform-event:<id>`` holds ``busy:<token>`` while a delivery is processed (a lease that expires,
so a crash only delays the event), ``done`` once handled, or ``free:<token>`` after a failure; a released
event is re-claimed through ``set_if_absent`` on ``…:retry:<token>``, so exactly one redelivery wins.

Messages are Telegram HTML with every dynamic value escaped. Buttons carry Rasa payloads as the buyer
router expects them (``callback_data = "p:" + payload``, at most 64 bytes); order-specific buttons carry
the order as an entity (``/human_handoff{"order_id":"KM…"}``) so the conversation that follows is about
that order. Card secrets are never logged and reach the buyer only masked (last 4 characters); phone
numbers and e-mail addresses are masked in logs (``138****8000``).
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Literal, Protocol
from zoneinfo import ZoneInfo

from aiogram.enums import ParseMode
from aiogram.methods import SendMessage, TelegramMethod
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiohttp import web
from pydantic import ValidationError

from bot.i18n import Language
from integrations.platform.models import EVENT_TYPES, Escalation, EventType, Order, PlatformEvent
from integrations.platform.signing import (
    DEFAULT_TOLERANCE,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)
from integrations.privacy import mask_phones_and_emails

log = logging.getLogger(__name__)

DEFAULT_PATH: Final = "/platform/events"
DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024
DEFAULT_TIMEZONE: Final = "Asia/Shanghai"
DEFAULT_DEDUPE_TTL_SECONDS: Final = 3 * 24 * 3600
"""How long a handled event id is remembered; the platform's retries span about 20 minutes."""
DEFAULT_PROCESSING_TIMEOUT_SECONDS: Final = 10.0
CALLBACK_DATA_LIMIT: Final = 64
MIN_SECRET_LENGTH: Final = 16

_EVENT_ID: Final = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_REASON_LIMIT: Final = 300
_STALE_TYPES: Final[frozenset[str]] = frozenset({"order.paid", "order.payment_stalled", "escalation.updated"})
"""Progress notes that mean nothing once a later event about the same order/ticket was handled."""

LanguageLookup = Callable[[int], Awaitable[Language]]


# ---------------------------------------------------------------------------------------------- protocols


class AtomicStore(Protocol):
    """What the receiver needs of a key-value store (``bot.kv.MemoryKeyValueStore``/``RedisKeyValueStore``)."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl_seconds: int) -> None: ...

    async def set_if_absent(self, key: str, value: str, ttl_seconds: int) -> bool: ...


class BuyerNotifier(Protocol):
    """Delivers one message to a buyer's private chat. Raising means "not delivered": the event is retried."""

    async def notify(
        self, telegram_user_id: int, text: str, keyboard: InlineKeyboardMarkup | None
    ) -> None: ...


class MethodSubmitter(Protocol):
    """``bot.outbox.Outbox`` as far as :class:`OutboxNotifier` needs it."""

    def submit(self, method: TelegramMethod[Any]) -> None: ...


class LoggedMessageView(Protocol):
    @property
    def direction(self) -> str: ...

    @property
    def language(self) -> str | None: ...


class TranscriptSource(Protocol):
    """``integrations.storage.repositories.ConversationLog`` as far as the language lookup needs it."""

    async def transcript(self, chat_id: int, limit: int = 100) -> Sequence[LoggedMessageView]: ...


class PreferenceSource(Protocol):
    """``bot.services.preferences.LanguagePreferences``: an explicit ``/lang`` choice wins over the code."""

    async def language_for(self, user_id: int, telegram_language_code: str | None) -> Language: ...


# ------------------------------------------------------------------------------------------ production glue


class OutboxNotifier:
    """The production :class:`BuyerNotifier`: queues a ``SendMessage`` in the bot's single outbox."""

    def __init__(self, outbox: MethodSubmitter) -> None:
        self._outbox = outbox

    async def notify(self, telegram_user_id: int, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
        self._outbox.submit(
            SendMessage(chat_id=telegram_user_id, text=text, parse_mode=ParseMode.HTML, reply_markup=keyboard)
        )


def languages_from_conversation_log(
    conversation_log: TranscriptSource,
    *,
    preferences: PreferenceSource | None = None,
    default: Language = "zh",
    lookback: int = 50,
) -> LanguageLookup:
    """The buyer's language: their ``/lang`` choice (with ``preferences``), else the language of their
    latest message in the conversation log (private chat id = user id), else ``default``.

    A webhook carries no Telegram language code, so the logged one stands in for it.
    """

    async def language_of(telegram_user_id: int) -> Language:
        seen: Language | None = None
        for message in reversed(await conversation_log.transcript(telegram_user_id, limit=lookback)):
            if message.direction == "in" and message.language in ("zh", "en"):
                seen = "en" if message.language == "en" else "zh"
                break
        if preferences is not None:
            return await preferences.language_for(telegram_user_id, seen or default)
        return seen or default

    return language_of


async def _chinese(telegram_user_id: int) -> Language:
    return "zh"


# ------------------------------------------------------------------------------------------------- masking


def mask_personal(text: str) -> str:
    """Phone numbers → ``138****8000``, e-mail addresses → ``a***@example.com`` (for logs; the shared rule)."""
    return mask_phones_and_emails(text)


def mask_card_secret(secret: str, visible: int = 4) -> str:
    """``ABCD-EFGH-JKLM-NPQR`` → ``****-****-****-NPQR``; short secrets are hidden entirely."""
    total = sum(1 for char in secret if char.isalnum())
    keep = visible if total >= 2 * visible else 0
    seen = 0
    out: list[str] = []
    for char in secret:
        if char.isalnum():
            seen += 1
            out.append(char if seen > total - keep else "*")
        else:
            out.append(char)
    return "".join(out) or "****"


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, mask_card_secret(secret))
    return mask_personal(text)


# ------------------------------------------------------------------------------------------------ messages


@dataclass(frozen=True, slots=True)
class BuyerNotice:
    """One message for a buyer: Telegram HTML text and an optional inline keyboard."""

    text: str
    keyboard: InlineKeyboardMarkup | None = None


@dataclass(frozen=True, slots=True)
class _Button:
    titles: dict[Language, str]
    intent: str
    order_entity: bool = True


_HANDOFF = _Button({"zh": "转人工", "en": "Talk to a person"}, "human_handoff")
_PAYMENT_PROBLEM = _Button({"zh": "付款问题", "en": "Payment problem"}, "payment_problem")
_ORDER_STATUS = _Button({"zh": "查看订单", "en": "View the order"}, "order_status")
_GUARANTEE = _Button({"zh": "超时退款保障", "en": "Refund guarantee"}, "refund_guarantee")
_NOT_RECEIVED = _Button({"zh": "没收到？转人工", "en": "Not received? Get help"}, "human_handoff")

# Same wording as actions.texts.KIND_LABELS (a test keeps them equal; importing actions would pull the
# Rasa SDK and its web server into the bot process).
KIND_LABELS: Final[dict[str, dict[Language, str]]] = {
    "game_card": {"zh": "游戏点卡", "en": "game card"},
    "phone_topup": {"zh": "话费充值", "en": "phone top-up"},
    "membership": {"zh": "会员", "en": "membership"},
}

_REFUND_ARRIVAL: Final[dict[Language, str]] = {
    "zh": "余额/支付宝/微信一般几分钟内到账，银行卡 1-3 个工作日。",
    "en": "Wallets usually receive it within minutes, bank cards within 1-3 working days.",
}

_ESCALATION_LINES: Final[dict[str, dict[Language, str]]] = {
    "open": {
        "zh": "📝 工单 {ticket}{about} 已创建，客服会尽快处理。",
        "en": "📝 Ticket {ticket}{about} is open; support will pick it up shortly.",
    },
    "merchant_notified": {
        "zh": "📨 工单 {ticket}{about}：已通知商家处理，请稍候，有进展会在这里告诉您。",
        "en": "📨 Ticket {ticket}{about}: the seller has been notified; updates will come here.",
    },
    "agent_assigned": {
        "zh": "👤 工单 {ticket}{about}：客服人员已接手您的问题，会在这个对话里直接回复您。",
        "en": "👤 Ticket {ticket}{about}: a person has taken your case and will reply right here.",
    },
    "resolved": {
        "zh": "✅ 工单 {ticket}{about} 已处理完成。还有问题的话直接回复我即可。",
        "en": "✅ Ticket {ticket}{about} is resolved. Anything else? Just reply here.",
    },
    "closed": {
        "zh": "工单 {ticket}{about} 已关闭。",
        "en": "Ticket {ticket}{about} is closed.",
    },
}


def _e(value: object) -> str:
    return html.escape(str(value), quote=False)


def _money(amount: Decimal, currency: str) -> str:
    return f"¥{amount}" if currency == "CNY" else f"{amount} {_e(currency)}"


def _minutes(value: int, language: Language) -> str:
    if language == "zh":
        return f"{value} 分钟" if value < 120 else f"{value // 60} 小时 {value % 60} 分钟"
    return f"{value} min" if value < 120 else f"{value // 60} h {value % 60} min"


@dataclass(frozen=True, slots=True)
class _Composer:
    language: Language
    now: datetime
    """The receiver's time: only decides whether a time is shown with its date."""
    occurred_at: datetime
    """When the event happened on the platform's clock (which a demo or test may move)."""
    zone: ZoneInfo
    order_page_url: str | None

    @property
    def zh(self) -> bool:
        return self.language == "zh"

    def clock(self, moment: datetime) -> str:
        """Like ``actions.texts.clock``: local clock time, with the date when it is not today."""
        local = moment.astimezone(self.zone)
        if local.date() == self.now.astimezone(self.zone).date():
            return local.strftime("%H:%M")
        return local.strftime("%m-%d %H:%M") if self.zh else local.strftime("%b %d %H:%M")

    def kind(self, kind: str) -> str:
        return KIND_LABELS.get(kind, {}).get(self.language, kind)

    def keyboard(self, buttons: Sequence[_Button], order_id: str | None) -> InlineKeyboardMarkup:
        row = [
            InlineKeyboardButton(
                text=button.titles[self.language],
                callback_data=callback_data(button.intent, order_id if button.order_entity else None),
            )
            for button in buttons
        ]
        rows = [row] if len(row) <= 2 else [[item] for item in row]
        return InlineKeyboardMarkup(inline_keyboard=rows)

    def order_link(self, order: Order) -> str:
        """Where the buyer finds the full order (card secret included) on the platform."""
        if self.order_page_url:
            url = html.escape(self.order_page_url.format(order_id=order.order_id), quote=True)
            label = "平台订单详情" if self.zh else "the order page"
            return f'<a href="{url}">{label}</a>'
        oid = _e(order.order_id)
        return f"平台「我的订单」→ 订单 {oid} 详情" if self.zh else f"the platform's My orders → order {oid}"

    # --------------------------------------------------------------------------------------------- orders

    def order_notice(self, type_: EventType, order: Order) -> BuyerNotice:
        if type_ == "order.refunded" and _refunded_for_lateness(order):
            return self.overdue_refunded(order)
        if order.state != "delivered" and order.overdue_minutes > 0:
            return self.overdue_pending(order)
        if type_ == "order.paid":
            return self.paid(order)
        if type_ == "order.payment_stalled":
            return self.payment_stalled(order)
        if type_ == "order.delivered":
            return self.delivered(order)
        if type_ == "order.failed":
            return self.failed(order)
        return self.refunded(order)

    def paid(self, order: Order) -> BuyerNotice:
        oid, name, amount = _e(order.order_id), _e(order.product.name), _money(order.amount, order.currency)
        if self.zh:
            text = f"✅ 已收到付款：订单 {oid}（{name}，{amount}）。"
        else:
            text = f"✅ Payment received: order {oid} ({name}, {amount})."
        if order.promised_by is not None:
            by, kind = self.clock(order.promised_by), _e(self.kind(order.product.kind))
            within = _minutes(order.promised_minutes or 0, self.language)
            if self.zh:
                text += f"\n承诺 {by} 前到账（{kind} {within}内），超时未到账自动全额退款。"
            else:
                text += f"\nPromised by {by} ({kind}: within {within}); if it is late, you get a full refund automatically."
        return BuyerNotice(text, self.keyboard([_ORDER_STATUS], order.order_id))

    def payment_stalled(self, order: Order) -> BuyerNotice:
        oid, name, amount = _e(order.order_id), _e(order.product.name), _money(order.amount, order.currency)
        waited = 5
        if order.payment_submitted_at is not None:
            waited = max(1, round((self.occurred_at - order.payment_submitted_at).total_seconds() / 60))
        if self.zh:
            text = (
                f"⏳ 订单 {oid}（{name}，{amount}）的付款已提交 {_minutes(waited, 'zh')}，平台仍在核实确认，"
                "请不要重复付款。\n确认后订单立即开始处理；如果一直没有确认，点下面转人工，客服会核实这笔扣款。"
                "\n需要帮助可以点下面的按钮 👇"
            )
        else:
            text = (
                f"⏳ Your payment for order {oid} ({name}, {amount}) was submitted {_minutes(waited, 'en')} "
                "ago and the platform is still confirming it - please do not pay again.\nOnce confirmed, the order "
                "starts at once; if it is never confirmed, tap below and a person will check the charge.\n"
                "Need help? Tap below 👇"
            )
        return BuyerNotice(text, self.keyboard([_PAYMENT_PROBLEM, _HANDOFF], order.order_id))

    def delivered(self, order: Order) -> BuyerNotice:
        oid, name = _e(order.order_id), _e(order.product.name)
        when = self.clock(order.delivered_at) if order.delivered_at is not None else ""
        target = _e(mask_personal(order.recharge_target.account))
        if order.recharge_target.region:
            target += (
                f"（{_e(order.recharge_target.region)}）"
                if self.zh
                else f" ({_e(order.recharge_target.region)})"
            )
        if self.zh:
            lines = [
                f"🎉 订单 {oid}（{name}）已{'于 ' + when + ' ' if when else ''}到账。",
                f"充值账号：{target}",
            ]
        else:
            lines = [
                f"🎉 Order {oid} ({name}) was delivered{' at ' + when if when else ''}.",
                f"Account: {target}",
            ]
        if order.card_secret is not None:
            masked = _e(mask_card_secret(order.card_secret.get_secret_value()))
            if self.zh:
                lines.append(f"卡密：<code>{masked}</code>（仅显示末 4 位）")
                lines.append(f"完整卡密请在{self.order_link(order)}查看，请勿告诉任何人。")
            else:
                lines.append(f"Card code: <code>{masked}</code> (last 4 shown)")
                lines.append(f"See the full code on {self.order_link(order)}; never share it with anyone.")
        return BuyerNotice("\n".join(lines), self.keyboard([_NOT_RECEIVED], order.order_id))

    def failed(self, order: Order) -> BuyerNotice:
        oid, name = _e(order.order_id), _e(order.product.name)
        guarantee = order.refund_guarantee
        amount = _money(guarantee.refund_amount, order.currency)
        eta = self.clock(guarantee.refund_eta) if guarantee.refund_eta is not None else None
        if self.zh:
            when = f"（预计 {eta} 前）" if eta else ""
            text = f"😞 很抱歉，订单 {oid}（{name}）充值失败。\n{amount} 将自动全额退款，原路返回{when}，无需申请。"
        else:
            when = f" (expected by {eta})" if eta else ""
            text = (
                f"😞 Sorry - order {oid} ({name}) failed.\nThe full {amount} is refunded automatically to "
                f"your payment method{when}; no request needed."
            )
        return BuyerNotice(text, self.keyboard([_HANDOFF], order.order_id))

    def refunded(self, order: Order) -> BuyerNotice:
        oid, name = _e(order.order_id), _e(order.product.name)
        guarantee = order.refund_guarantee
        amount = _money(guarantee.refund_amount, order.currency)
        at = self.clock(guarantee.refunded_at) if guarantee.refunded_at is not None else None
        if self.zh:
            when = f"已于 {at} " if at else "已"
            text = f"💰 订单 {oid}（{name}）已退款：{amount} {when}原路退回。\n{_REFUND_ARRIVAL['zh']}"
        else:
            when = f" at {at}" if at else ""
            text = (
                f"💰 Order {oid} ({name}) is refunded: {amount} went back to your payment method{when}.\n"
                f"{_REFUND_ARRIVAL['en']}"
            )
        return BuyerNotice(text, self.keyboard([_ORDER_STATUS, _HANDOFF], order.order_id))

    def overdue_refunded(self, order: Order) -> BuyerNotice:
        assert order.promised_by is not None
        oid, name, by = _e(order.order_id), _e(order.product.name), self.clock(order.promised_by)
        guarantee = order.refund_guarantee
        amount = _money(guarantee.refund_amount, order.currency)
        at = self.clock(guarantee.refunded_at) if guarantee.refunded_at is not None else None
        if self.zh:
            when = f"已于 {at} " if at else "已"
            text = (
                f"🙏 非常抱歉，订单 {oid}（{name}）未能在承诺时间 {by} 前到账。\n按超时全额退款保障，"
                f"{amount} {when}全额原路退回，无需申请。{_REFUND_ARRIVAL['zh']}"
            )
        else:
            when = f" at {at}" if at else ""
            text = (
                f"🙏 We're very sorry - order {oid} ({name}) was not delivered by the promised {by}.\n"
                f"Under the full-refund guarantee, {amount} was refunded in full{when} to your payment "
                f"method - no request needed. {_REFUND_ARRIVAL['en']}"
            )
        return BuyerNotice(text, self.keyboard([_GUARANTEE, _HANDOFF], order.order_id))

    def overdue_pending(self, order: Order) -> BuyerNotice:
        oid, name = _e(order.order_id), _e(order.product.name)
        guarantee = order.refund_guarantee
        amount = _money(guarantee.refund_amount, order.currency)
        late = _minutes(order.overdue_minutes, self.language)
        by = self.clock(order.promised_by) if order.promised_by is not None else None
        eta = self.clock(guarantee.refund_eta) if guarantee.refund_eta is not None else None
        if self.zh:
            promised = f"承诺时间 {by}" if by else "承诺到账时间"
            expected = f"（预计 {eta} 前）" if eta else ""
            text = (
                f"🙏 非常抱歉，订单 {oid}（{name}）已超过{promised}（已超时 {late}）。\n按超时全额退款保障，"
                f"未到账的话 {amount} 会自动全额原路退回{expected}，无需申请；您也可以继续等待到账。"
            )
        else:
            promised = f"its promised time {by}" if by else "its promised time"
            expected = f" (expected by {eta})" if eta else ""
            text = (
                f"🙏 We're very sorry - order {oid} ({name}) missed {promised} ({late} late).\n"
                f"Under the full-refund guarantee, unless it arrives first, {amount} is refunded in full "
                f"automatically{expected} - no request needed."
            )
        return BuyerNotice(text, self.keyboard([_GUARANTEE, _HANDOFF], order.order_id))

    # ------------------------------------------------------------------------------------------ escalations

    def escalation_notice(self, escalation: Escalation) -> BuyerNotice | None:
        if escalation.csat is not None:
            return None  # the buyer's own rating (or a state change after it): nothing new to tell them
        line = _ESCALATION_LINES[escalation.state][self.language]
        about = ""
        if escalation.order_id:
            about = (
                f"（订单 {_e(escalation.order_id)}）" if self.zh else f" (order {_e(escalation.order_id)})"
            )
        return BuyerNotice(line.format(ticket=_e(escalation.escalation_id), about=about))


def callback_data(intent: str, order_id: str | None = None) -> str:
    """``"p:" + Rasa payload``; the order rides along as an entity when it fits Telegram's 64 bytes."""
    plain = f"p:/{intent}"
    if order_id is None:
        return plain
    with_order = plain + json.dumps({"order_id": order_id}, ensure_ascii=False, separators=(",", ":"))
    return with_order if len(with_order.encode()) <= CALLBACK_DATA_LIMIT else plain


def _refunded_for_lateness(order: Order) -> bool:
    """A guarantee refund: never delivered, refunded at or after the promised time."""
    refunded_at = order.refund_guarantee.refunded_at
    return (
        order.delivered_at is None
        and order.promised_by is not None
        and refunded_at is not None
        and refunded_at >= order.promised_by
    )


def compose_notice(
    event: PlatformEvent,
    language: Language,
    *,
    now: datetime | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    order_page_url: str | None = None,
) -> BuyerNotice | None:
    """The buyer message for ``event`` (None when there is nothing to tell, or the event lacks its subject).

    ``order_page_url`` is a template such as ``https://shop.example/orders/{order_id}``.
    """
    composer = _Composer(
        language, now or datetime.now(UTC), event.occurred_at, ZoneInfo(timezone), order_page_url
    )
    return _compose(composer, event.type, event.order, event.escalation)


def _compose(
    composer: _Composer, type_: EventType, order: Order | None, escalation: Escalation | None
) -> BuyerNotice | None:
    if type_ == "escalation.updated":
        return composer.escalation_notice(escalation) if escalation is not None else None
    return composer.order_notice(type_, order) if order is not None else None


# ------------------------------------------------------------------------------------------- dedupe ledger


@dataclass(frozen=True, slots=True)
class _Lease:
    key: str
    token: str


_Claim = _Lease | Literal["done", "busy"]


class _Ledger:
    """Atomic claim/complete/release of event ids on an :class:`AtomicStore` (see the module docstring)."""

    def __init__(self, store: AtomicStore, prefix: str, done_ttl: int, lease_ttl: int) -> None:
        self._store = store
        self._prefix = prefix
        self._done_ttl = done_ttl
        self._lease_ttl = lease_ttl

    async def claim(self, event_id: str) -> _Claim:
        key = self._prefix + event_id
        token = uuid.uuid4().hex
        for _ in range(2):  # a second try covers a lease that expired between the two calls
            if await self._store.set_if_absent(key, f"busy:{token}", self._lease_ttl):
                return _Lease(key, token)
            current = await self._store.get(key)
            if current == "done":
                return "done"
            if current is not None and current.startswith("free:"):
                # exactly one redelivery takes over a released event
                if await self._store.set_if_absent(f"{key}:retry:{current[5:]}", token, self._done_ttl):
                    await self._store.set(key, f"busy:{token}", self._lease_ttl)
                    return _Lease(key, token)
                return "busy"
            if current is not None:
                return "busy"
        return "busy"

    async def complete(self, lease: _Lease) -> None:
        await self._store.set(lease.key, "done", self._done_ttl)

    async def release(self, lease: _Lease) -> None:
        await self._store.set(lease.key, f"free:{lease.token}", self._done_ttl)

    async def was_sent(self, lease: _Lease, telegram_user_id: int) -> bool:
        return await self._store.get(f"{lease.key}:sent:{telegram_user_id}") is not None

    async def mark_sent(self, lease: _Lease, telegram_user_id: int) -> None:
        await self._store.set(f"{lease.key}:sent:{telegram_user_id}", "1", self._done_ttl)


# ---------------------------------------------------------------------------------------------- receiver


class _Reject(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class _NotifyFailed(Exception):
    def __init__(self, telegram_user_id: int, cause: BaseException) -> None:
        super().__init__(f"notifying {telegram_user_id} failed: {type(cause).__name__}: {cause}")
        self.telegram_user_id = telegram_user_id


@dataclass(frozen=True, slots=True)
class _Accepted:
    event: PlatformEvent
    order: Order | None
    escalation: Escalation | None

    @property
    def subject(self) -> str:
        if self.order is not None:
            return f"order:{self.order.order_id}"
        assert self.escalation is not None
        return f"escalation:{self.escalation.escalation_id}"

    @property
    def secrets(self) -> list[str]:
        secret = self.order.card_secret if self.order is not None else None
        return [secret.get_secret_value()] if secret is not None else []


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def _summarise(exc: ValidationError, where: str = "") -> str:
    """Field paths and messages only: pydantic's messages do not echo the input values."""
    parts = []
    for error in exc.errors()[:3]:
        location = ".".join(str(part) for part in error.get("loc", ())) or "body"
        parts.append(f"{where}{location}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)[:_REASON_LIMIT]


def _microseconds(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class PlatformEventsReceiver:
    """aiohttp handler of the platform's webhooks (see the module docstring)."""

    def __init__(
        self,
        secret: str,
        store: AtomicStore,
        notifier: BuyerNotifier,
        *,
        language_of: LanguageLookup | None = None,
        tolerance_seconds: int = DEFAULT_TOLERANCE,
        clock: Callable[[], float] = time.time,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        timezone: str = DEFAULT_TIMEZONE,
        order_page_url: str | None = None,
        dedupe_ttl_seconds: int = DEFAULT_DEDUPE_TTL_SECONDS,
        processing_timeout_seconds: float = DEFAULT_PROCESSING_TIMEOUT_SECONDS,
        key_prefix: str = "platform-event:",
    ) -> None:
        """
        :param secret: the subscription's webhook secret (``PLATFORM_WEBHOOK_SECRET``), 16+ characters.
        :param store: where event ids are deduplicated (Redis in production, shared by all bot replicas).
        :param language_of: the buyer's language by Telegram user id; Chinese when not given or failing.
        :param clock: unix time, for the timestamp check and for showing times ("today" or with a date).
        :param order_page_url: template of the platform's order page, ``…{order_id}…`` (optional).
        :param processing_timeout_seconds: a slower notification is abandoned and the event retried.
        """
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"the platform webhook secret must have at least {MIN_SECRET_LENGTH} characters")
        self._zone = ZoneInfo(timezone)  # fails at start on a bad zone name
        self._secret = secret
        self._notifier = notifier
        self._language_of = language_of or _chinese
        self._tolerance = tolerance_seconds
        self._clock = clock
        self._max_body = max_body_bytes
        self._order_page_url = order_page_url
        self._store = store
        self._ttl = dedupe_ttl_seconds
        self._timeout = processing_timeout_seconds
        self._prefix = key_prefix
        lease_ttl = math.ceil(processing_timeout_seconds * 3) + 30
        self._ledger = _Ledger(store, key_prefix, dedupe_ttl_seconds, lease_ttl)

    def register(self, app: web.Application, path: str = DEFAULT_PATH) -> None:
        app.router.add_post(path, self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        try:
            body = await self._read_body(request)
            self._authenticate(request, body)
            accepted = self._parse(request, body)
        except _Reject as reject:
            log.warning(
                "platform event refused (%s %s) from %s: %s",
                reject.status,
                reject.code,
                request.remote,
                mask_personal(reject.message),
            )
            return _error(reject.status, reject.code, reject.message)
        return await self._accept(accepted)

    # ------------------------------------------------------------------------------------------ checks

    async def _read_body(self, request: web.Request) -> bytes:
        declared = request.content_length
        if declared is not None and declared > self._max_body:
            raise _Reject(413, "payload_too_large", f"body over {self._max_body} bytes")
        body = bytearray()
        while chunk := await request.content.read(self._max_body + 1 - len(body)):
            body += chunk
            if len(body) > self._max_body:
                raise _Reject(413, "payload_too_large", f"body over {self._max_body} bytes")
        return bytes(body)

    def _authenticate(self, request: web.Request, body: bytes) -> None:
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        signature = request.headers.get(SIGNATURE_HEADER)
        if not timestamp or not signature:
            raise _Reject(401, "unauthorized", "missing signature or timestamp header")
        text = timestamp.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 12):
            raise _Reject(401, "unauthorized", "malformed timestamp")
        now = self._clock()
        if abs(now - int(text)) > self._tolerance:
            raise _Reject(401, "unauthorized", f"timestamp outside the {self._tolerance} s tolerance")
        if not verify(self._secret, timestamp, signature, body, now=now, tolerance=self._tolerance):
            raise _Reject(401, "unauthorized", "bad signature")

    def _parse(self, request: web.Request, body: bytes) -> _Accepted:
        try:
            raw: object = json.loads(body)
        except (ValueError, RecursionError):
            raise _Reject(400, "bad_request", "body is not valid JSON") from None
        if not isinstance(raw, dict):
            raise _Reject(400, "bad_request", "body must be a JSON object")
        type_ = raw.get("type")
        if type_ not in EVENT_TYPES:
            shown = type_ if isinstance(type_, str) else type(type_).__name__
            raise _Reject(400, "bad_request", f"unknown event type {str(shown)[:64]!r}")
        try:
            event = PlatformEvent.model_validate(raw)
        except ValidationError as exc:
            raise _Reject(400, "bad_request", "invalid event: " + _summarise(exc)) from None
        if not _EVENT_ID.fullmatch(event.event_id):
            raise _Reject(400, "bad_request", "malformed event_id")
        header_id = request.headers.get(EVENT_ID_HEADER)
        if header_id is not None and header_id.strip() != event.event_id:
            raise _Reject(400, "bad_request", f"{EVENT_ID_HEADER} does not match the event_id of the body")
        try:
            if event.type == "escalation.updated":
                escalation = Escalation.model_validate(event.data.get("escalation"))
                return _Accepted(event, None, escalation)
            order = Order.model_validate(event.data.get("order"))
        except ValidationError as exc:
            where = "data.escalation." if event.type == "escalation.updated" else "data.order."
            raise _Reject(400, "bad_request", "invalid event: " + _summarise(exc, where)) from None
        return _Accepted(event, order, None)

    # --------------------------------------------------------------------------------------- processing

    async def _accept(self, accepted: _Accepted) -> web.Response:
        event = accepted.event
        try:
            claim = await self._ledger.claim(event.event_id)
        except Exception as exc:
            log.error("platform event %s: dedupe store unavailable: %s", event.event_id, type(exc).__name__)
            return _error(503, "unavailable", "cannot record the event right now", {"Retry-After": "5"})
        if claim == "done":
            log.info("platform event %s (%s) is a duplicate; already handled", event.event_id, event.type)
            return web.json_response({"status": "duplicate", "event_id": event.event_id})
        if claim == "busy":
            log.info("platform event %s is being handled by another delivery", event.event_id)
            return _error(503, "in_progress", "the event is being processed", {"Retry-After": "5"})
        try:
            async with asyncio.timeout(self._timeout):
                status = await self._process(accepted, claim)
        except asyncio.CancelledError:
            await self._release(claim, event.event_id)
            raise
        except _NotifyFailed as exc:
            log.warning(
                "platform event %s (%s): %s; released for redelivery",
                event.event_id,
                event.type,
                _redact(str(exc), accepted.secrets),
            )
            await self._release(claim, event.event_id)
            return _error(503, "notify_failed", "the buyer could not be notified; retry later")
        except TimeoutError:
            log.warning("platform event %s (%s): notifying timed out; released", event.event_id, event.type)
            await self._release(claim, event.event_id)
            return _error(503, "timeout", "processing took too long; retry later")
        except Exception as exc:
            log.error(
                "platform event %s (%s) failed: %s: %s",
                event.event_id,
                event.type,
                type(exc).__name__,
                _redact(str(exc), accepted.secrets),
            )
            await self._release(claim, event.event_id)
            return _error(503, "processing_failed", "the event could not be processed; retry later")
        try:
            await self._ledger.complete(claim)
        except Exception as exc:  # the buyers were told: answering 5xx now would tell them twice
            log.error("platform event %s handled but not recorded: %s", event.event_id, type(exc).__name__)
        return web.json_response({"status": status, "event_id": event.event_id})

    async def _release(self, lease: _Lease, event_id: str) -> None:
        try:
            await self._ledger.release(lease)
        except Exception as exc:  # the lease expires by itself; the redelivery after that is processed
            log.error("platform event %s could not be released: %s", event_id, type(exc).__name__)

    async def _process(self, accepted: _Accepted, lease: _Lease) -> str:
        event, order = accepted.event, accepted.order
        about = f"order {order.order_id}" if order is not None else accepted.subject.replace(":", " ")
        recipients = list(
            dict.fromkeys(i for i in event.telegram_user_ids if not isinstance(i, bool) and i > 0)
        )
        if not recipients:
            log.info("platform event %s (%s, %s): no linked Telegram user", event.event_id, event.type, about)
            await self._note_latest(accepted)
            return "no_recipients"
        if await self._superseded(accepted):
            log.info(
                "platform event %s (%s, %s) superseded by a later one", event.event_id, event.type, about
            )
            return "superseded"
        now = datetime.fromtimestamp(self._clock(), UTC)
        notices: dict[Language, BuyerNotice | None] = {}

        def notice_in(language: Language) -> BuyerNotice | None:
            if language not in notices:
                composer = _Composer(language, now, event.occurred_at, self._zone, self._order_page_url)
                notices[language] = _compose(composer, event.type, accepted.order, accepted.escalation)
            return notices[language]

        if notice_in("zh") is None:
            log.info(
                "platform event %s (%s, %s): nothing to tell the buyer", event.event_id, event.type, about
            )
            await self._note_latest(accepted)
            return "nothing_to_send"
        sent = 0
        for user_id in recipients:
            if await self._ledger.was_sent(lease, user_id):
                continue  # told during an earlier, partly failed delivery
            notice = notice_in(await self._language(user_id))
            assert notice is not None
            try:
                await self._notifier.notify(user_id, notice.text, notice.keyboard)
            except Exception as exc:
                raise _NotifyFailed(user_id, exc) from exc
            await self._ledger.mark_sent(lease, user_id)
            sent += 1
        await self._note_latest(accepted)
        log.info(
            "platform event %s (%s, %s): notified %d of %d Telegram users",
            event.event_id,
            event.type,
            about,
            sent,
            len(recipients),
        )
        return "processed"

    async def _language(self, telegram_user_id: int) -> Language:
        try:
            language = await self._language_of(telegram_user_id)
        except Exception as exc:
            log.warning(
                "language of Telegram user %s unknown (%s); using zh", telegram_user_id, type(exc).__name__
            )
            return "zh"
        return "en" if language == "en" else "zh"

    def _latest_key(self, accepted: _Accepted) -> str:
        return f"{self._prefix}latest:{accepted.subject}"

    async def _superseded(self, accepted: _Accepted) -> bool:
        """A late progress note (payment received, ticket status) after a later event was handled."""
        if accepted.event.type not in _STALE_TYPES:
            return False
        latest = await self._store.get(self._latest_key(accepted))
        return (
            latest is not None
            and latest.isdigit()
            and int(latest) > _microseconds(accepted.event.occurred_at)
        )

    async def _note_latest(self, accepted: _Accepted) -> None:
        key, moment = self._latest_key(accepted), _microseconds(accepted.event.occurred_at)
        latest = await self._store.get(key)
        if latest is None or not latest.isdigit() or int(latest) < moment:
            await self._store.set(key, str(moment), self._ttl)
