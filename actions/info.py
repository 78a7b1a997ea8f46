"""Answers without a form: arrival times, the refund guarantee, merchant rating, payment guidance."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import BuyerNotLinked, Events, PlatformAction, Turn, human_button
from actions.flows import done
from actions.forms import latest_entity
from actions.order_status import UNDELIVERED, _guarantee_lines, money, normalise_order_id, promise_text
from actions.texts import BUTTONS, KIND_LABELS, clock, message, minutes
from integrations.platform.errors import NotFound, NotLinked
from integrations.platform.models import Order, Sla


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


def sla_lines(slas: list[Sla], language: str) -> list[str]:
    lines = []
    for sla in sorted(slas, key=lambda s: (s.product_kind, s.carrier or "")):
        kind = KIND_LABELS[sla.product_kind][language]  # type: ignore[index]
        label = f"{kind}（{sla.carrier}）" if sla.carrier and language == "zh" else kind
        if sla.carrier and language != "zh":
            label = f"{kind} ({sla.carrier})"
        within = minutes(sla.promised_minutes, language)  # type: ignore[arg-type]
        lines.append(f"• {label}：{within} 内" if language == "zh" else f"• {label}: within {within}")
    return lines


class ActionArrivalTime(PlatformAction):
    def name(self) -> str:
        return "action_arrival_time"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        language = turn.language
        order = await context_order(tracker, turn)
        if order is not None and order.state in UNDELIVERED | {"delivered"}:
            lines = [promise_text(order, language, self.deps.timezone)]
            if order.state in UNDELIVERED:
                lines += _guarantee_lines(order, language, self.deps.timezone) or [
                    message("sla_outro", language)
                ]
            dispatcher.utter_message(
                text=f"{order.order_id}: " + "\n".join(lines), buttons=[human_button(language)]
            )
            return done(order.order_id)
        slas = await self.deps.platform.get_slas(at=datetime.now(UTC))
        text = "\n".join(
            [message("sla_intro", language), *sla_lines(slas, language), message("sla_outro", language)]
        )
        dispatcher.utter_message(
            text=text,
            buttons=[{"title": BUTTONS["refund_guarantee"][language], "payload": "/refund_guarantee"}],
        )
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
            return done(order.order_id)
        if order is not None and order.refund_guarantee.status == "issued":
            dispatcher.utter_message(text="\n".join(_guarantee_lines(order, language, self.deps.timezone)))
            return done(order.order_id)
        dispatcher.utter_message(text=message("guarantee_terms", language))
        return []


class ActionMerchantRating(PlatformAction):
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


class ActionPaymentGuidance(PlatformAction):
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
