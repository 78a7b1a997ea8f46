"""Form validation: which order a form is about (and whether it qualifies), and each answer the buyer gives.

An order that cannot go through a form (delivered when cancelling, not cancelled when restoring…) is
explained right away and flagged in ``order_problem``; the form then ends instead of trapping the buyer.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.base import ActionDeps, BuyerNotLinked, human_button, make_turn
from actions.context import Language, language_of
from actions.order_status import UNDELIVERED, normalise_order_id
from actions.texts import (
    ACCOUNT_RULES,
    ACCOUNT_WHAT,
    BUTTONS,
    CANCEL_REASON_LABELS,
    PAYMENT_ISSUE_LABELS,
    clock,
    message,
    state_label,
)
from integrations.platform.errors import NotFound, NotLinked, PlatformError
from integrations.platform.models import Order

log = logging.getLogger(__name__)

SlotValues = dict[str, Any]

# Reasons where one save offer comes before cancelling (DESIGN: fewer needless cancellations).
SAVEABLE_REASONS = {"wrong_account", "wrong_region", "arrival_too_slow", "payment_problem"}
# A free-text reason is read through the NLU intent of the message (never by keywords).
REASON_BY_INTENT = {
    "wrong_account": "wrong_account",
    "wrong_region": "wrong_region",
    "arrival_time": "arrival_too_slow",
    "refund_guarantee": "arrival_too_slow",
    "order_status": "arrival_too_slow",
    "payment_problem": "payment_problem",
    "complain": "merchant_malicious",
    "merchant_rating": "merchant_malicious",
    "restore_order": "user_mistake",
}
PHONE = re.compile(r"^1[3-9]\d{9}$")
DIGITS_5_12 = re.compile(r"^\d{5,12}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[A-Za-z]{2,}$")


def latest_intent(tracker: Tracker) -> str | None:
    intent = (tracker.latest_message or {}).get("intent") or {}
    name = intent.get("name")
    return name if isinstance(name, str) else None


def latest_entity(tracker: Tracker, entity: str) -> str | None:
    for item in (tracker.latest_message or {}).get("entities") or []:
        if item.get("entity") == entity and isinstance(item.get("value"), str):
            return str(item["value"])
    return None


def reason_tag_from(text: str, intent: str | None) -> str:
    """Our own button labels decode exactly; typed reasons go by the NLU intent; the rest is 'other'."""
    cleaned = text.strip()
    for tag, labels in CANCEL_REASON_LABELS.items():
        if cleaned in labels.values() or cleaned == tag:
            return tag
    return REASON_BY_INTENT.get(intent or "", "other")


def payment_issue_from(text: str) -> str:
    cleaned = text.strip()
    for issue, labels in PAYMENT_ISSUE_LABELS.items():
        if cleaned in labels.values() or cleaned == issue:
            return issue
    return "other"


def normalise_account(value: str, kind: str) -> str | None:
    """The account as the platform expects it, or None when it cannot be one for this product kind."""
    compact = re.sub(r"[\s\-()]", "", value.strip())
    if compact.startswith("+86"):
        compact = compact[3:]
    elif compact.startswith("86") and len(compact) == 13:
        compact = compact[2:]
    if kind == "phone_topup":
        return compact if PHONE.match(compact) else None
    if kind == "game_card":
        return compact if DIGITS_5_12.match(compact) else None
    if PHONE.match(compact) or DIGITS_5_12.match(compact):
        return compact
    return value.strip() if EMAIL.match(value.strip()) else None


class OrderFormValidation(FormValidationAction):  # type: ignore[misc]
    """Base of form validators whose first slot is ``order_id``."""

    form: str = ""

    def __init__(self, deps: ActionDeps) -> None:
        self.deps = deps

    def name(self) -> str:
        return f"validate_{self.form}"

    def order_problem(self, order: Order, language: Language) -> tuple[str, list[dict[str, str]]] | None:
        """Why this order cannot go through the form (text and buttons), or None when it can."""
        return None

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[str]:
        if tracker.get_slot("order_problem"):
            return ["order_id"]
        return await self.slots_after_order(domain_slots, tracker)

    async def slots_after_order(self, domain_slots: list[str], tracker: Tracker) -> list[str]:
        return domain_slots

    async def extract_order_id(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        """On the form's first turn, an order id in the message wins; else the order in context."""
        if tracker.get_slot("requested_slot") is not None or tracker.get_slot("order_id"):
            return {}
        current = tracker.get_slot("current_order_id")
        return {"order_id": current, "order_problem": None} if current else {"order_problem": None}

    async def validate_order_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        language = language_of(tracker)
        order_id = normalise_order_id(value)
        if order_id is None:
            dispatcher.utter_message(text=message("bad_order_id", language, value=value))
            return {"order_id": None}
        turn = make_turn(tracker, self.deps.platform)
        try:
            order = await turn.order(order_id)
        except (BuyerNotLinked, NotLinked):
            dispatcher.utter_message(text=message("not_linked", language))
            return {"order_id": order_id, "order_problem": "not_linked"}
        except NotFound:
            dispatcher.utter_message(text=message("order_not_found", language, order_id=order_id))
            return {"order_id": None}
        except PlatformError as exc:
            log.warning("%s: platform error validating %s: %s", self.name(), order_id, exc)
            dispatcher.utter_message(
                text=message("platform_down", language), buttons=[human_button(language)]
            )
            return {"order_id": order_id, "order_problem": "platform_down"}
        problem = self.order_problem(order, language)
        if problem is not None:
            text, buttons = problem
            dispatcher.utter_message(text=text, buttons=buttons)
            return {"order_id": order_id, "order_problem": "not_eligible", "current_order_id": order_id}
        return {"order_id": order_id, "order_problem": None, "current_order_id": order_id}


class ValidateOrderStatusForm(OrderFormValidation):
    form = "order_status_form"

    async def extract_order_id(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        return {}  # "where is my order?" without a number always offers the list


class ValidateRefundForm(OrderFormValidation):
    form = "refund_form"


class ValidateMerchantRatingForm(OrderFormValidation):
    form = "merchant_rating_form"


class ValidateCancelForm(OrderFormValidation):
    form = "cancel_form"

    def order_problem(self, order: Order, language: Language) -> tuple[str, list[dict[str, str]]] | None:
        if order.state in UNDELIVERED:
            return None
        hint = message("hint_delivered", language) if order.state == "delivered" else ""
        text = message(
            "order_not_cancellable",
            language,
            order_id=order.order_id,
            state=state_label(order.state, language),
            hint=hint,
        )
        return text.strip(), [human_button(language)] if order.state == "delivered" else []

    async def slots_after_order(self, domain_slots: list[str], tracker: Tracker) -> list[str]:
        reason = tracker.get_slot("cancel_reason")
        slots = ["order_id", "cancel_reason"]
        if reason in SAVEABLE_REASONS:
            slots.append("cancel_decision")
        return slots

    async def validate_cancel_reason(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        return {"cancel_reason": reason_tag_from(str(value or ""), latest_intent(tracker))}

    async def validate_cancel_decision(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        account = latest_entity(tracker, "account")
        if account is not None and str(value) == account:
            # a new account typed in answer to the offer: Rasa's from_entity mapping fills this slot with the
            # entity's own value (a mapping's `value` only applies to from_intent); it means "fix it"
            value = "fix_account"
        decision = decision_from(str(value), tracker.get_slot("cancel_reason"))
        if decision == "fix_account" and account:
            return {"cancel_decision": decision, "account": account}
        return {"cancel_decision": decision}


# What a plain yes / no to the save offer means, by the reason the offer answered.
OFFER_ANSWERS = {
    "wrong_account": {"yes": "fix_account", "no": "cancel"},  # "fix the account instead?"
    "wrong_region": {"yes": "fix_region", "no": "cancel"},  # "fix the region instead?"
    "arrival_too_slow": {"yes": "keep", "no": "cancel"},  # "keep waiting?"
    "payment_problem": {"yes": "cancel", "no": "keep"},  # "still cancel?"
}


def decision_from(value: str, reason: str | None) -> str:
    return OFFER_ANSWERS.get(reason or "", {}).get(value, value if value not in ("yes", "no") else "cancel")


class ValidateFixTargetForm(OrderFormValidation):
    form = "fix_target_form"

    def order_problem(self, order: Order, language: Language) -> tuple[str, list[dict[str, str]]] | None:
        if order.state in UNDELIVERED:
            return None
        hint = message("hint_delivered", language) if order.state == "delivered" else ""
        text = message(
            "not_fixable",
            language,
            order_id=order.order_id,
            state=state_label(order.state, language),
            hint=hint,
        )
        return text.strip(), [human_button(language)]

    async def slots_after_order(self, domain_slots: list[str], tracker: Tracker) -> list[str]:
        field = tracker.get_slot("fix_field")
        value_slot = ["region"] if field == "region" else ["account"]
        return ["order_id", "fix_field", *value_slot, "fix_confirm"]

    async def extract_account(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        return self._fresh_value(tracker, "account")

    async def extract_region(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        return self._fresh_value(tracker, "region")

    @staticmethod
    def _fresh_value(tracker: Tracker, slot: str) -> SlotValues:
        """A value left from an earlier turn is not the new one: on the first turn only this message counts."""
        if tracker.get_slot("requested_slot") is None and tracker.get_slot(slot) is not None:
            return {slot: latest_entity(tracker, slot)}
        return {}

    async def validate_account(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        if value is None:  # a stale account dropped on the form's first turn: ask for it, nothing to explain
            return {"account": None}
        language = language_of(tracker)
        order = await self._order(tracker)
        kind = order.product.kind if order else "game_card"
        account = normalise_account(str(value or ""), kind)
        if account is None:
            what = ACCOUNT_WHAT[kind][language]
            rule = ACCOUNT_RULES[kind][language]
            dispatcher.utter_message(
                text=message("invalid_account", language, value=value, what=what, rule=rule)
            )
            return {"account": None}
        return {"account": account}

    async def validate_region(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        region = str(value or "").strip()
        # the platform knows the real list of regions; here only what cannot be a region is asked again
        return {"region": region if 2 <= len(region) <= 24 else None}

    async def _order(self, tracker: Tracker) -> Order | None:
        order_id = tracker.get_slot("order_id")
        if not order_id:
            return None
        try:
            return await make_turn(tracker, self.deps.platform).order(order_id)
        except (PlatformError, BuyerNotLinked):
            return None


class ValidateRestoreForm(OrderFormValidation):
    form = "restore_form"

    def order_problem(self, order: Order, language: Language) -> tuple[str, list[dict[str, str]]] | None:
        if order.state != "cancelled":
            state = state_label(order.state, language)
            return message("not_restorable_state", language, order_id=order.order_id, state=state), []
        until = order.cancel.restorable_until if order.cancel else None
        if until is None or until <= datetime.now(UTC):
            when = clock(until, self.deps.timezone, language) if until else "-"
            text = message("restore_window_passed", language, order_id=order.order_id, until=when)
            return text, [human_button(language)]
        return None


class ValidatePaymentForm(FormValidationAction):  # type: ignore[misc]
    def name(self) -> str:
        return "validate_payment_form"

    async def validate_payment_issue(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        return {"payment_issue": payment_issue_from(str(value or ""))}


def confirm_buttons(language: Language, yes: str, no: str) -> list[dict[str, str]]:
    return [
        {"title": BUTTONS[yes][language], "payload": "/affirm"},
        {"title": BUTTONS[no][language], "payload": "/deny"},
    ]
