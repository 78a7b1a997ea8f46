"""The questions forms ask: which reason, the one save offer, which field, the new value, confirmations."""

from __future__ import annotations

import json
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.base import AskAction, Events, Turn, human_button
from actions.context import Language
from actions.forms import confirm_buttons
from actions.order_status import guarantee_lines, money, promise_text, refund_is_late
from actions.texts import (
    ACCOUNT_WHAT,
    BUTTONS,
    CANCEL_REASON_LABELS,
    PAYMENT_ISSUE_LABELS,
    REGION_EXAMPLES,
    REGION_WHAT,
    clock,
    message,
    state_label,
)


def payload_buttons(
    entity: str, labels: dict[str, dict[Language, str]], language: Language
) -> list[dict[str, str]]:
    """Buttons that send the value itself (``/inform{"cancel_reason":"found_cheaper"}``), never the label."""
    return [
        {"title": label[language], "payload": "/inform" + json.dumps({entity: key}, separators=(",", ":"))}
        for key, label in labels.items()
    ]


class ActionAskCancelReason(AskAction):
    def name(self) -> str:
        return "action_ask_cancel_reason"

    async def ask(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        text = message("ask_cancel_reason", turn.language, order_id=tracker.get_slot("order_id"))
        dispatcher.utter_message(
            text=text, buttons=payload_buttons("cancel_reason", CANCEL_REASON_LABELS, turn.language)
        )
        return []


class ActionAskCancelDecision(AskAction):
    """The one save offer, chosen by the reason the buyer gave."""

    def name(self) -> str:
        return "action_ask_cancel_decision"

    async def ask(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        language = turn.language
        order = await turn.order(tracker.get_slot("order_id"))
        reason = tracker.get_slot("cancel_reason")
        cancel = {"title": BUTTONS["cancel_anyway"][language], "payload": "/cancel_order"}
        keep = {"title": BUTTONS["keep_waiting"][language], "payload": "/keep_order"}
        state = state_label(order.state, language)
        if reason == "wrong_account":
            text = message("offer_fix_account", language, state=state)
            buttons = [{"title": BUTTONS["fix_account"][language], "payload": "/wrong_account"}, cancel]
        elif reason == "wrong_region":
            text = message("offer_fix_region", language, state=state)
            buttons = [{"title": BUTTONS["fix_region"][language], "payload": "/wrong_region"}, cancel]
        elif reason == "arrival_too_slow" and order.overdue_minutes > 0:
            # already late: the guarantee as the platform has it now (refund due, or late and followed up)
            lines = [promise_text(order, language, self.deps.timezone)]
            if refund_is_late(order) and order.refund_guarantee.refund_eta is not None:
                due = clock(order.refund_guarantee.refund_eta, self.deps.timezone, language)
                lines.append(message("refund_overdue_plain", language, due=due, amount=money(order)))
            else:
                lines += guarantee_lines(order, language, self.deps.timezone)
            text = "\n".join([*lines, message("offer_wait_overdue", language)])
            buttons = [keep, cancel, human_button(language)]
        elif reason == "arrival_too_slow":
            promise = promise_text(order, language, self.deps.timezone)
            text = message("offer_wait", language, promise=promise, amount=money(order))
            buttons = [keep, cancel]
        else:
            text = message("offer_payment_help", language)
            buttons = [{"title": BUTTONS["keep_and_pay"][language], "payload": "/keep_order"}, cancel]
        dispatcher.utter_message(text=text, buttons=buttons)
        return []


class ActionAskFixField(AskAction):
    def name(self) -> str:
        return "action_ask_fix_field"

    async def ask(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        language = turn.language
        dispatcher.utter_message(
            text=message("ask_fix_field", language, order_id=tracker.get_slot("order_id")),
            buttons=[
                {"title": BUTTONS["fix_account"][language], "payload": "/wrong_account"},
                {"title": BUTTONS["fix_region"][language], "payload": "/wrong_region"},
            ],
        )
        return []


class ActionAskAccount(AskAction):
    def name(self) -> str:
        return "action_ask_account"

    async def ask(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        order = await turn.order(tracker.get_slot("order_id"))
        what = ACCOUNT_WHAT[order.product.kind][turn.language]
        current = order.recharge_target.account
        dispatcher.utter_message(text=message("ask_account", turn.language, what=what, current=current))
        return []


class ActionAskRegion(AskAction):
    def name(self) -> str:
        return "action_ask_region"

    async def ask(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        order = await turn.order(tracker.get_slot("order_id"))
        kind = order.product.kind
        text = message(
            "ask_region",
            turn.language,
            what=REGION_WHAT[kind][turn.language],
            current=order.recharge_target.region or "-",
            examples=REGION_EXAMPLES[kind],
        )
        dispatcher.utter_message(text=text)
        return []


class ActionAskFixConfirm(AskAction):
    """Reads the change back before anything is changed."""

    def name(self) -> str:
        return "action_ask_fix_confirm"

    async def ask(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        order = await turn.order(tracker.get_slot("order_id"))
        field = tracker.get_slot("fix_field") or "account"
        kind = order.product.kind
        if field == "region":
            what, old, new = (
                REGION_WHAT[kind][turn.language],
                order.recharge_target.region,
                tracker.get_slot("region"),
            )
        else:
            what, old, new = (
                ACCOUNT_WHAT[kind][turn.language],
                order.recharge_target.account,
                tracker.get_slot("account"),
            )
        text = message(
            "ask_fix_confirm", turn.language, order_id=order.order_id, what=what, old=old or "-", new=new
        )
        dispatcher.utter_message(text=text, buttons=confirm_buttons(turn.language, "yes_change", "no_change"))
        return []


class ActionAskRestoreConfirm(AskAction):
    def name(self) -> str:
        return "action_ask_restore_confirm"

    async def ask(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        order = await turn.order(tracker.get_slot("order_id"))
        cancel = order.cancel
        tz, language = self.deps.timezone, turn.language
        text = message(
            "ask_restore_confirm",
            language,
            order_id=order.order_id,
            product=order.product.name,
            amount=money(order),
            cancelled_at=clock(cancel.at, tz, language) if cancel else "-",
            until=clock(cancel.restorable_until, tz, language) if cancel and cancel.restorable_until else "-",
        )
        dispatcher.utter_message(text=text, buttons=confirm_buttons(language, "yes_restore", "no_restore"))
        return []


class ActionAskPaymentIssue(AskAction):
    def name(self) -> str:
        return "action_ask_payment_issue"

    async def ask(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        dispatcher.utter_message(
            text=message("ask_payment_issue", turn.language),
            buttons=payload_buttons("payment_issue", PAYMENT_ISSUE_LABELS, turn.language),
        )
        return []


class ActionAskCancelConfirm(AskAction):
    """The read-back: nothing is cancelled until the buyer says yes to this exact order and amount."""

    def name(self) -> str:
        return "action_ask_cancel_confirm"

    async def ask(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        language = turn.language
        order = await turn.order(tracker.get_slot("order_id"))
        refund = message("confirm_refund_note", language, amount=money(order)) if order.paid_at else ""
        text = message(
            "ask_cancel_confirm",
            language,
            order_id=order.order_id,
            product=order.product.name,
            amount=money(order),
            refund=refund,
        )
        dispatcher.utter_message(
            text=text,
            buttons=[
                {"title": BUTTONS["yes_cancel"][language], "payload": "/affirm"},
                {"title": BUTTONS["keep_waiting"][language], "payload": "/keep_order"},
            ],
        )
        return []
