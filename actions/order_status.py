"""Order status: the order's state, its promised arrival time, how late it is and the refund guarantee."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import ActionDeps, AskAction, Events, Turn
from actions.context import Language, normalise_order_id
from actions.exits import FormSubmitAction, escalate_late_refund
from actions.texts import BUTTONS, clock, kind_label, message, minutes, state_label
from integrations.platform.models import Order

UNDELIVERED = {"pending_payment", "paid", "processing"}


ID_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "I": "1", "l": "1", "L": "1", "i": "1"})


def suggest_order_ids(typed: str, candidates: list[str]) -> list[str]:
    """The buyer's orders a mistyped id most likely means: l/O for 1/0, a digit missing, extra or swapped."""
    body = re.sub(r"[\s\-_#]", "", typed).upper().removeprefix("KM").translate(ID_LOOKALIKES)
    digits = re.sub(r"\D", "", body)
    if len(digits) < 6:
        return []
    scored = sorted((_distance(digits, c.removeprefix("KM")), c) for c in candidates)
    return [candidate for distance, candidate in scored if distance <= 1][:3]


def _distance(a: str, b: str) -> int:
    """Edit distance with adjacent swaps (Damerau-Levenshtein, optimal string alignment)."""
    rows = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[len(a)][len(b)]


def describe_order(order: Order, language: Language, timezone: str, now: datetime | None = None) -> str:
    """The order in a few lines, with its real numbers."""
    now = now or datetime.now(UTC)
    zh = language == "zh"
    lines = [
        f"订单 {order.order_id}（{order.product.name}）"
        if zh
        else f"Order {order.order_id} ({order.product.name})",
        ("状态：" if zh else "Status: ") + state_label(order.state, language),
    ]
    if order.state == "delivered" and order.delivered_at is not None:
        lines.append(
            ("到账时间：" if zh else "Delivered at: ") + clock(order.delivered_at, timezone, language)
        )
    elif order.state in UNDELIVERED and order.promised_by is not None:
        lines.append(_promise_line(order, language, timezone, now))
    elif order.state == "pending_payment":
        lines.append("付款后开始处理。" if zh else "Processing starts once it is paid.")
    lines.extend(_guarantee_lines(order, language, timezone))
    if order.cancel is not None and order.state == "cancelled":
        lines.append(_cancel_line(order, language, timezone))
    return "\n".join(lines)


def _promise_line(order: Order, language: Language, timezone: str, now: datetime) -> str:
    assert order.promised_by is not None
    promised = clock(order.promised_by, timezone, language)
    kind = kind_label(order.product.kind, language)
    if order.overdue_minutes > 0:
        late = minutes(order.overdue_minutes, language)
        if language == "zh":
            return f"承诺到账：{promised} 前（{kind} {order.promised_minutes} 分钟内），已超时 {late}。"
        return f"Promised by {promised} ({kind}: within {order.promised_minutes} min) - now {late} late."
    left = max(0, int((order.promised_by - now).total_seconds() // 60))
    if language == "zh":
        return f"承诺到账：{promised} 前（{kind} {order.promised_minutes} 分钟内），还剩约 {left} 分钟。"
    return f"Promised by {promised} ({kind}: within {order.promised_minutes} min), about {left} min left."


def guarantee_lines(order: Order, language: Language, timezone: str) -> list[str]:
    """The refund guarantee of this order as the platform states it now."""
    return _guarantee_lines(order, language, timezone)


def refund_is_late(order: Order, now: datetime | None = None) -> bool:
    """The guarantee's refund was due and has not been issued: never to be stated as still coming."""
    guarantee = order.refund_guarantee
    eta = guarantee.refund_eta
    return guarantee.status != "issued" and eta is not None and eta < (now or datetime.now(UTC))


def _guarantee_lines(order: Order, language: Language, timezone: str) -> list[str]:
    guarantee = order.refund_guarantee
    zh = language == "zh"
    amount = f"¥{guarantee.refund_amount or order.amount}"
    if refund_is_late(order) and guarantee.refund_eta is not None:
        due = clock(guarantee.refund_eta, timezone, language)
        return [message("refund_overdue", language, order_id=order.order_id, due=due, amount=amount)]
    if guarantee.status == "issued":
        when = clock(guarantee.refunded_at, timezone, language) if guarantee.refunded_at else ""
        return [
            f"超时全额退款 {amount} 已于 {when} 原路退回。"
            if zh
            else f"Full refund of {amount} issued {when}."
        ]
    if guarantee.status == "scheduled" or (guarantee.applies and order.overdue_minutes > 0):
        eta = (
            f"，预计 {clock(guarantee.refund_eta, timezone, language)} 前到账" if guarantee.refund_eta else ""
        )
        eta_en = (
            f", expected by {clock(guarantee.refund_eta, timezone, language)}" if guarantee.refund_eta else ""
        )
        if zh:
            return [
                f"按全额退款保障，超时未到账将自动全额退款 {amount}{eta}，无需申请。您也可以继续等待到账。"
            ]
        return [
            f"Under the full-refund guarantee, {amount} is refunded automatically{eta_en}; no request needed."
        ]
    return []


def _cancel_line(order: Order, language: Language, timezone: str) -> str:
    assert order.cancel is not None
    until = order.cancel.restorable_until
    if until is not None and until > datetime.now(UTC):
        when = clock(until, timezone, language)
        return (
            f"如是误取消，{when} 前可以恢复订单。"
            if language == "zh"
            else f"Cancelled by mistake? Restorable until {when}."
        )
    return "该订单已过恢复期限。" if language == "zh" else "The restore window of this order has passed."


def promise_text(order: Order, language: Language, timezone: str) -> str:
    """One sentence on when the order arrives (or arrived)."""
    if order.state == "delivered" and order.delivered_at is not None:
        when = clock(order.delivered_at, timezone, language)
        return f"已于 {when} 到账。" if language == "zh" else f"Delivered at {when}."
    if order.state in UNDELIVERED and order.promised_by is not None:
        return _promise_line(order, language, timezone, datetime.now(UTC))
    if order.state == "pending_payment":  # the promise starts at payment
        return "付款后开始处理。" if language == "zh" else "Processing starts once it is paid."
    return ""


def money(order: Order) -> str:
    return f"¥{order.amount}" if order.currency == "CNY" else f"{order.amount} {order.currency}"


def next_step_buttons(order: Order, language: Language) -> list[dict[str, str]]:
    buttons = []
    if order.state in UNDELIVERED:
        buttons.append({"title": BUTTONS["arrival_time"][language], "payload": "/arrival_time"})
        buttons.append({"title": BUTTONS["refund_guarantee"][language], "payload": "/refund_guarantee"})
    buttons.append({"title": BUTTONS["human"][language], "payload": "/human_handoff"})
    return buttons


class ActionOrderStatus(FormSubmitAction):
    def name(self) -> str:
        return "action_order_status"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        if tracker.get_slot("order_problem"):  # already explained by the form (not linked, platform down…)
            return [SlotSet("order_id", None), SlotSet("order_problem", None)]
        order_id = normalise_order_id(tracker.get_slot("order_id"))
        if order_id is None:
            dispatcher.utter_message(text=message("ask_order_id", turn.language))
            return [SlotSet("order_id", None)]
        order = await turn.order(order_id)
        dispatcher.utter_message(
            text=describe_order(order, turn.language, self.deps.timezone),
            buttons=next_step_buttons(order, turn.language),
        )
        # order_id is the form's question, asked afresh next time; current_order_id keeps the context
        events = [SlotSet("order_id", None), SlotSet("current_order_id", order.order_id)]
        if refund_is_late(order):
            events += await escalate_late_refund(self.deps, dispatcher, tracker, order)
        return events


OrderFilter = Callable[[Order], bool]


def _any_order(order: Order) -> bool:
    return True


class ActionAskOrderId(AskAction):
    """Asks which order a form is about: the buyer's recent matching orders as buttons, the one in context
    first, or a plain question when there is none."""

    def __init__(self, deps: ActionDeps, form: str | None = None, keep: OrderFilter = _any_order) -> None:
        super().__init__(deps)
        self._form = form
        self._keep = keep

    def name(self) -> str:
        return f"action_ask_{self._form}_order_id" if self._form else "action_ask_order_id"

    async def ask(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        orders = [
            o for o in await self.deps.platform.list_orders(await turn.buyer_id(), limit=10) if self._keep(o)
        ]
        current = tracker.get_slot("current_order_id")
        orders.sort(key=lambda order: order.order_id != current)
        if not orders:
            dispatcher.utter_message(text=message("ask_order_id", turn.language))
            return []
        buttons = [
            {
                "title": f"{order.order_id} · {order.product.name} · {state_label(order.state, turn.language)}",
                "payload": "/inform" + json.dumps({"order_id": order.order_id}, separators=(",", ":")),
            }
            for order in orders[:5]
        ]
        dispatcher.utter_message(text=message("ask_order_pick", turn.language), buttons=buttons)
        return []
