"""Answers without a form: arrival times, the refund guarantee, merchant rating, payment guidance."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import BuyerNotLinked, Events, PlatformAction, Turn, done, human_button
from actions.context import Language, latest_entity, normalise_order_id
from actions.exits import FormSubmitAction, escalate_late_refund
from actions.order_status import (
    UNDELIVERED,
    _guarantee_lines,
    describe_order,
    money,
    promise_text,
    refund_is_late,
)
from actions.texts import BUTTONS, KIND_LABELS, clock, message, minutes
from integrations.platform.errors import NotFound, NotLinked
from integrations.platform.models import Order, ProductKind, Sla


def order_in_context(tracker: Tracker) -> str | None:
    """The order id in this message, else the order the conversation is about."""
    return normalise_order_id(
        latest_entity(tracker, "order_id")
        or tracker.get_slot("order_id")
        or tracker.get_slot("current_order_id")
    )


async def context_order(tracker: Tracker, turn: Turn) -> Order | None:
    """The order in context when the buyer is linked and it is theirs; None otherwise (general answer)."""
    order_id = order_in_context(tracker)
    if order_id is None:
        return None
    try:
        return await turn.order(order_id)
    except (BuyerNotLinked, NotLinked, NotFound):
        return None


# Entity values of the NLU (nlu/domain.yml) → the platform's names.
CARRIER_NAMES = {"mobile": "中国移动", "unicom": "中国联通", "telecom": "中国电信"}
PRODUCT_KINDS = ("game_card", "phone_topup", "membership")


def asks_in_general(tracker: Tracker) -> bool:
    """A question about a kind of product, a carrier or the time of day, not about one of the buyer's orders."""
    named = any(latest_entity(tracker, name) for name in ("product_kind", "carrier", "time_of_day"))
    about_an_order = latest_entity(tracker, "order_id") or latest_entity(tracker, "order_ref")
    return bool(named) and not about_an_order


class ActionArrivalTime(PlatformAction):
    """When an order arrives: the order in context, or the promise table by kind, carrier and time of day."""

    def name(self) -> str:
        return "action_arrival_time"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        language = turn.language
        order = None if asks_in_general(tracker) else await context_order(tracker, turn)
        if order is not None and order.state in UNDELIVERED | {"delivered"}:
            lines = [promise_text(order, language, self.deps.timezone)]
            if order.state in UNDELIVERED:
                lines += _guarantee_lines(order, language, self.deps.timezone) or [
                    message("sla_outro", language)
                ]
            late = refund_is_late(order)
            dispatcher.utter_message(
                text=f"{order.order_id}: " + "\n".join(lines),
                buttons=[] if late else [human_button(language)],
            )
            if late:
                return done(order.order_id) + await escalate_late_refund(
                    self.deps, dispatcher, tracker, order
                )
            return done(order.order_id)
        dispatcher.utter_message(
            text=await self._general_answer(tracker, language),
            buttons=[{"title": BUTTONS["refund_guarantee"][language], "payload": "/refund_guarantee"}],
        )
        return []

    async def _general_answer(self, tracker: Tracker, language: Language) -> str:
        kind = latest_entity(tracker, "product_kind")
        carrier = CARRIER_NAMES.get(latest_entity(tracker, "carrier") or "")
        if carrier and kind not in PRODUCT_KINDS:
            kind = "phone_topup"  # carriers sell phone credit
        kind_filter: ProductKind | None = kind if kind in PRODUCT_KINDS else None  # type: ignore[assignment]
        slas = await self.deps.platform.get_slas(product_kind=kind_filter, carrier=carrier)
        if not slas and carrier:  # a carrier the platform has no rule for: the kind's rule applies
            slas = await self.deps.platform.get_slas(product_kind=kind_filter)
        night_asked = latest_entity(tracker, "time_of_day") == "night"
        now_is_night = any(sla.night for sla in await self.deps.platform.get_slas(at=datetime.now(UTC)))
        lines = sla_table(slas, language, night_first=night_asked or now_is_night)
        intro = "sla_intro_kind" if kind_filter or carrier else "sla_intro_all"
        return "\n".join([message(intro, language), *lines, message("sla_outro", language)])


def sla_table(slas: list[Sla], language: Language, night_first: bool) -> list[str]:
    """Day and night promises side by side, per kind (and carrier), from the platform's own table."""
    rows: dict[tuple[str, str | None], dict[bool, Sla]] = {}
    for sla in slas:
        rows.setdefault((sla.product_kind, sla.carrier), {})[sla.night] = sla
    lines = []
    for (kind, carrier), by_time in sorted(rows.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        label = KIND_LABELS[kind][language] + (f"（{carrier}）" if carrier and language == "zh" else "")
        if carrier and language != "zh":
            label += f" ({CARRIER_EN.get(carrier, carrier)})"
        parts = []
        for night in (True, False) if night_first else (False, True):
            if night in by_time:
                when = message("sla_night" if night else "sla_day", language)
                parts.append(f"{when} {minutes(by_time[night].promised_minutes, language)}")
        lines.append(
            f"• {label}：" + "，".join(parts) if language == "zh" else f"• {label}: " + ", ".join(parts)
        )
    return lines


CARRIER_EN = {"中国移动": "China Mobile", "中国联通": "China Unicom", "中国电信": "China Telecom"}


class ActionOrderSummary(PlatformAction):
    """The order a form is about, described again (a status question asked in the middle of a form)."""

    def name(self) -> str:
        return "action_order_summary"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        order = await context_order(tracker, turn)
        if order is None:
            dispatcher.utter_message(text=message("ask_order_id", turn.language))
            return []
        dispatcher.utter_message(text=describe_order(order, turn.language, self.deps.timezone))
        return []


class ActionRefundGuarantee(PlatformAction):
    def name(self) -> str:
        return "action_refund_guarantee"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        language = turn.language
        order = await context_order(tracker, turn)
        if order is not None and order.state in UNDELIVERED and order.promised_by is not None:
            lines = _guarantee_lines(order, language, self.deps.timezone)
            if not lines:
                lines = [
                    message(
                        "guarantee_not_due",
                        language,
                        order_id=order.order_id,
                        by=clock(order.promised_by, self.deps.timezone, language),
                        amount=money(order),
                    )
                ]
            dispatcher.utter_message(text="\n".join(lines))
            if refund_is_late(order):
                return done(order.order_id) + await escalate_late_refund(
                    self.deps, dispatcher, tracker, order
                )
            return done(order.order_id)
        if order is not None and order.refund_guarantee.status == "issued":
            dispatcher.utter_message(text="\n".join(_guarantee_lines(order, language, self.deps.timezone)))
            return done(order.order_id)
        dispatcher.utter_message(text=message("guarantee_terms", language))
        return []


class ActionMerchantRating(FormSubmitAction):
    def name(self) -> str:
        return "action_merchant_rating"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        order_id = tracker.get_slot("order_id")
        if tracker.get_slot("order_problem") or not order_id:
            return done(order_id)
        language = turn.language
        order = await turn.order(order_id)
        score = await self.deps.platform.get_merchant_score(order.merchant.merchant_id)
        none = message("no_data", language)
        if score.grade in ("A", "B"):
            verdict = message("verdict_good", language)
        elif score.grade == "C" or score.grade is None:
            verdict = message("verdict_ok", language)
        else:
            verdict = message("verdict_bad", language)
        text = message(
            "merchant_score",
            language,
            order_id=order.order_id,
            name=order.merchant.name,
            days=score.window_days,
            orders=score.orders_considered,
            cancel_rate=f"{score.cancel_rate:.0%}",
            arrival=minutes(round(score.median_arrival_minutes), language)
            if score.median_arrival_minutes is not None
            else none,
            response=minutes(round(score.median_response_minutes), language)
            if score.median_response_minutes is not None
            else none,
            grade=score.grade or none,
            verdict=verdict,
        )
        dispatcher.utter_message(text=text)
        return done(order_id)


class ActionPaymentGuidance(FormSubmitAction):
    def name(self) -> str:
        return "action_payment_guidance"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        language = turn.language
        issue = tracker.get_slot("payment_issue") or "other"
        if issue == "charged_no_order":
            order = await context_order(tracker, turn)
            note = f"（{order.order_id}）" if order is not None and language == "zh" else ""
            if order is not None and language != "zh":
                note = f"({order.order_id})"
            text = message("payment_charged_no_order", language, order=note)
        elif issue in ("balance", "sms_code", "gateway"):
            text = message(f"payment_{issue}", language)
        else:
            text = message("payment_other", language)
        dispatcher.utter_message(text=text.strip(), buttons=[human_button(language)])
        return [SlotSet("payment_issue", None)]


class ActionKeepOrder(PlatformAction):
    """ "不取消了 / fine I'll wait" outside any question: the order in context simply goes on."""

    def name(self) -> str:
        return "action_keep_order"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        order_id = order_in_context(tracker)
        if not order_id:
            dispatcher.utter_message(text=message("anything_else", turn.language))
            return []
        order = await turn.order(order_id)  # say it goes on only if it really does
        if order.state in UNDELIVERED:
            dispatcher.utter_message(text=message("kept", turn.language, order_id=order_id))
        else:
            dispatcher.utter_message(text=describe_order(order, turn.language, self.deps.timezone))
        return []
