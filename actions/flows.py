"""What the forms lead to: cancel (or save the order), fix the recharge target, restore, refund."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import ActionDeps, Events, Turn, done, human_button
from actions.context import Language
from actions.escalation import ActionEscalate
from actions.exits import CANCEL_SLOTS, FIX_SLOTS, REPAIR_SLOTS, FormSubmitAction, escalate_late_refund
from actions.forms import SAVEABLE_REASONS
from actions.order_status import UNDELIVERED, describe_order, money, promise_text, refund_is_late
from actions.repair import Turn as ReadTurn
from actions.texts import (
    ACCOUNT_WHAT,
    BUTTONS,
    CANCEL_REASON_LABELS,
    REGION_WHAT,
    clock,
    message,
    state_label,
)
from integrations.platform.errors import InvalidInput, NotAllowed
from integrations.platform.models import CANCEL_REASON_TAGS, CancelReasonTag, Order
from integrations.storage.repositories import Outcome

log = logging.getLogger(__name__)

MERCHANT_FAULT = {"merchant_out_of_stock", "merchant_malicious"}


class ActionSubmitCancel(FormSubmitAction):
    """Cancel with the tag, keep the order, or hand over to the fix form; every outcome is recorded."""

    def name(self) -> str:
        return "action_submit_cancel"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        order_id = tracker.get_slot("order_id")
        if tracker.get_slot("order_problem") or not order_id:
            return done(order_id, *CANCEL_SLOTS)
        raw_tag = tracker.get_slot("cancel_reason") or "other"
        tag: CancelReasonTag = raw_tag if raw_tag in CANCEL_REASON_TAGS else "other"
        decision = tracker.get_slot("cancel_decision")
        # the save offer is asked only for saveable reasons (the operators' funnel counts offers)
        offered = tracker.get_slot("cancel_reason") in SAVEABLE_REASONS
        confirmed = (
            tracker.get_slot("cancel_confirm") is True
            or decision == "cancel"
            or tracker.get_slot("cancel_insisted") is True
        )
        if decision in ("keep", "undecided") or (
            decision not in ("fix_account", "fix_region") and not confirmed
        ):
            # never cancel without a clear yes: anything short of one keeps the order
            await self._record(turn, order_id, tag, "saved", "kept", offered=offered)
            key = (
                "kept"
                if decision == "keep" or tracker.get_slot("cancel_confirm") is False
                else "kept_undecided"
            )
            dispatcher.utter_message(text=message(key, turn.language, order_id=order_id))
            return done(order_id, *CANCEL_SLOTS, *REPAIR_SLOTS)
        if decision in ("fix_account", "fix_region"):
            await self._record(turn, order_id, tag, "saved", decision, offered=offered)
            field = "account" if decision == "fix_account" else "region"
            # order_id stays for the fix form that follows (rule); cancel_decision is set again for that rule
            return [
                SlotSet("cancel_reason", None),
                SlotSet("cancel_decision", decision),
                SlotSet("fix_field", field),
                SlotSet("fix_confirm", None),
                SlotSet("requested_slot", None),
            ]
        return await self._cancel(dispatcher, tracker, turn, order_id, tag, offered)

    async def _cancel(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        turn: Turn,
        order_id: str,
        tag: CancelReasonTag,
        offered: bool,
    ) -> Events:
        language = turn.language
        try:
            order = await self.deps.platform.cancel_order(
                await turn.buyer_id(),
                order_id,
                tag,
                idempotency_key=turn.idempotency_key("cancel", order_id, tag),
            )
        except NotAllowed as exc:
            order = await turn.order(order_id)
            text = message(
                "order_not_cancellable",
                language,
                order_id=order_id,
                state=state_label(order.state, language),
                hint="",
            )
            log.info("cancel of %s refused: %s", order_id, exc.code)
            dispatcher.utter_message(text=text.strip(), buttons=[human_button(language)])
            return done(order_id, *CANCEL_SLOTS)
        if order.state != "cancelled":  # only what the platform did is said to be done
            log.warning("cancel of %s answered with state %s", order_id, order.state)
            text = message(
                "cancel_unconfirmed", language, order_id=order_id, state=state_label(order.state, language)
            )
            dispatcher.utter_message(text=text, buttons=[human_button(language)])
            return done(order_id, *CANCEL_SLOTS, *REPAIR_SLOTS)
        await self._record(turn, order_id, tag, "cancelled", tag, order=order, offered=offered)
        reason = CANCEL_REASON_LABELS[tag][language]
        refund = message("cancel_refund_paid", language, amount=money(order)) if order.paid_at else ""
        if (
            tag in MERCHANT_FAULT
        ):  # the seller's fault: cancelled with its tag, and a ticket for platform agents
            text = message(
                "cancelled_merchant_fault", language, order_id=order_id, reason=reason, refund=refund
            )
            dispatcher.utter_message(text=text)
            # the outcome is "cancelled" (recorded above); the ticket that follows is not a cancellation outcome
            tracker.slots.update({"escalation_reason": "merchant_fault", "cancel_reason": None})
            ticket = await ActionEscalate(self.deps).run_now(dispatcher, tracker)
            return [*ticket, *done(order_id, *CANCEL_SLOTS, *REPAIR_SLOTS, "escalation_reason")]
        text = message("cancelled", language, order_id=order_id, reason=reason, refund=refund)
        until = order.cancel.restorable_until if order.cancel else None
        if until is not None:
            text += "\n" + message(
                "cancel_restore_hint", language, until=clock(until, self.deps.timezone, language)
            )
        dispatcher.utter_message(text=text)
        return done(order_id, *CANCEL_SLOTS, *REPAIR_SLOTS)

    async def _record(
        self,
        turn: Turn,
        order_id: str,
        tag: str,
        outcome: str,
        detail: str,
        *,
        order: Order | None = None,
        offered: bool = False,
    ) -> None:
        await record_outcome(self.deps, turn, order_id, tag, outcome, detail, order=order, offered=offered)


async def record_outcome(
    deps: ActionDeps,
    turn: Turn,
    order_id: str,
    tag: str,
    outcome: str,
    detail: str,
    *,
    order: Order | None = None,
    offered: bool = False,
) -> None:
    """One row of the operators' cancellation funnel, with the order's merchant and product kind."""
    if deps.outcomes is None:
        return
    try:
        if order is None:
            order = await turn.order(order_id)
        await deps.outcomes.record(
            Outcome(
                conversation_id=turn.conversation_id,
                buyer_id=await turn.buyer_id(),
                order_id=order_id,
                reason_tag=tag,
                outcome=outcome,
                detail=detail,
                merchant_id=order.merchant.merchant_id,
                product_kind=order.product.kind,
                language=turn.language,
                offered=offered,
            )
        )
    except Exception:  # the buyer's request matters more than the statistics
        log.exception("could not record the cancellation outcome of %s", order_id)


class ActionSubmitFix(FormSubmitAction):
    """Change the account or region on the platform; an invalid value is explained and asked again."""

    def name(self) -> str:
        return "action_submit_fix"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        order_id = tracker.get_slot("order_id")
        language = turn.language
        if tracker.get_slot("order_problem") or not order_id:
            return done(order_id, *FIX_SLOTS, *CANCEL_SLOTS)
        if tracker.get_slot("fix_confirm") is not True:
            dispatcher.utter_message(text=message("fix_cancelled", language, order_id=order_id))
            return done(order_id, *FIX_SLOTS, *CANCEL_SLOTS)
        field = tracker.get_slot("fix_field") or "account"
        value = tracker.get_slot(field)
        before = await turn.order(order_id)
        try:
            after = await self.deps.platform.fix_recharge_target(
                await turn.buyer_id(),
                order_id,
                **{field: value},
                idempotency_key=turn.idempotency_key("fix", order_id, field, value),
            )
            applied = after.recharge_target.region if field == "region" else after.recharge_target.account
            previous = before.recharge_target.region if field == "region" else before.recharge_target.account
        except InvalidInput as exc:
            dispatcher.utter_message(
                text=message("fix_refused", language, reason=self._reason(exc, language))
            )
            return [SlotSet(field, None), SlotSet("fix_confirm", None), FollowupAction("fix_target_form")]
        except NotAllowed:
            current = await turn.order(order_id)
            state = state_label(current.state, language)
            text = message("not_fixable", language, order_id=order_id, state=state, hint="")
            dispatcher.utter_message(text=text.strip(), buttons=[human_button(language)])
            return done(order_id, *FIX_SLOTS, *CANCEL_SLOTS)
        if (
            applied == previous and applied != value
        ):  # the platform's answer is the truth: never report a change it does not show
            log.warning("fix of %s: platform shows %s, asked for another value", order_id, field)
            dispatcher.utter_message(
                text=message("fix_unconfirmed", language, order_id=order_id, current=applied or "-"),
                buttons=[human_button(language)],
            )
            return done(order_id, *FIX_SLOTS, *CANCEL_SLOTS, *REPAIR_SLOTS)
        dispatcher.utter_message(text=self._fixed_text(before, after, field, language))
        return done(order_id, *FIX_SLOTS, *CANCEL_SLOTS, *REPAIR_SLOTS)

    def _fixed_text(self, before: Order, after: Order, field: str, language: Language) -> str:
        kind = after.product.kind
        names = REGION_WHAT if field == "region" else ACCOUNT_WHAT
        old = before.recharge_target.region if field == "region" else before.recharge_target.account
        new = after.recharge_target.region if field == "region" else after.recharge_target.account
        return message(
            "fixed",
            language,
            order_id=after.order_id,
            what=names[kind][language],
            old=old or "-",
            new=new or "-",
            promise=promise_text(after, language, self.deps.timezone),
        )

    @staticmethod
    def _reason(exc: InvalidInput, language: Language) -> str:
        if language == "zh":
            return exc.message
        return {
            "invalid_account": "the account is not valid for this product.",
            "unknown_region": "this region/server is not one the seller serves.",
        }.get(exc.code, "the value is not valid.")


class ActionSubmitRestore(FormSubmitAction):
    def name(self) -> str:
        return "action_submit_restore"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        order_id = tracker.get_slot("order_id")
        language = turn.language
        if tracker.get_slot("order_problem") or not order_id:
            return done(order_id, "restore_confirm")
        if tracker.get_slot("restore_confirm") is not True:
            dispatcher.utter_message(text=message("restore_declined", language, order_id=order_id))
            return done(order_id, "restore_confirm")
        try:
            order = await self.deps.platform.restore_order(
                await turn.buyer_id(), order_id, idempotency_key=turn.idempotency_key("restore", order_id)
            )
        except NotAllowed as exc:
            reason = exc.message if language == "zh" else exc.code.replace("_", " ")
            dispatcher.utter_message(
                text=message("restore_refused", language, order_id=order_id, reason=reason),
                buttons=[human_button(language)],
            )
            return done(order_id, "restore_confirm")
        state = state_label(order.state, language)
        if order.state == "cancelled":  # the platform did not restore it: say what it shows
            dispatcher.utter_message(
                text=message("restore_unconfirmed", language, order_id=order_id),
                buttons=[human_button(language)],
            )
            return done(order_id, "restore_confirm")
        await record_outcome(
            self.deps, turn, order_id, await self._cancel_tag(order), "restored", "restored", order=order
        )
        promise = promise_text(order, language, self.deps.timezone)
        dispatcher.utter_message(
            text=message("restored", language, order_id=order_id, state=state, promise=promise)
        )
        return done(order_id, "restore_confirm")

    async def _cancel_tag(self, order: Order) -> str:
        """Why the restored order had been cancelled: the platform's tag, else the bot's own record."""
        if order.cancel is not None:
            return order.cancel.tag
        if self.deps.outcomes is not None:
            for row in reversed(await self.deps.outcomes.for_order(order.order_id)):
                if row.outcome == "cancelled":
                    return row.reason_tag
        return "other"


def _states_a_cancel_reason(tracker: Tracker) -> bool:
    """Whether the latest message says why the buyer wants out (the reason classifier's reading)."""
    return ReadTurn.of(tracker).entities.get("cancel_reason") in CANCEL_REASON_TAGS


class ActionSubmitRefund(FormSubmitAction):
    """A refund request, answered by the order's state: the guarantee, cancelling, or a platform request."""

    def name(self) -> str:
        return "action_submit_refund"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        order_id = tracker.get_slot("order_id")
        if tracker.get_slot("order_problem") or not order_id:
            return done(order_id)
        order = await turn.order(order_id)
        language = turn.language
        cancel_button = {"title": BUTTONS["cancel_order"][language], "payload": "/cancel_order"}
        if order.state == "pending_payment":
            dispatcher.utter_message(
                text=message("refund_not_needed", language, order_id=order_id), buttons=[cancel_button]
            )
        elif order.state in UNDELIVERED and order.overdue_minutes > 0:
            dispatcher.utter_message(text=describe_order(order, language, self.deps.timezone))
            if refund_is_late(order):
                return done(order_id) + await escalate_late_refund(self.deps, dispatcher, tracker, order)
        elif order.state in UNDELIVERED and _states_a_cancel_reason(tracker):
            # "取消 KM…，退款，手机号填错了": before delivery a refund is a cancellation, and the buyer said why;
            # the cancel form takes that reason and offers the fix (or the read-back) instead of a bare choice
            return [*done(order_id), FollowupAction("cancel_form")]
        elif order.state in UNDELIVERED:
            promise = promise_text(order, language, self.deps.timezone)
            dispatcher.utter_message(
                text=message("refund_in_progress", language, order_id=order_id, promise=promise),
                buttons=[
                    {"title": BUTTONS["keep_waiting"][language], "payload": "/keep_order"},
                    cancel_button,
                ],
            )
        elif order.state == "delivered":
            dispatcher.utter_message(
                text=message("refund_delivered", language, order_id=order_id),
                buttons=[human_button(language)],
            )
        elif order.state in ("refunded", "cancelled"):
            state = state_label(order.state, language)
            dispatcher.utter_message(
                text=message("refund_already", language, order_id=order_id, state=state, amount=money(order))
            )
        else:
            await self._request(dispatcher, turn, order)
        return done(order_id)

    async def _request(self, dispatcher: CollectingDispatcher, turn: Turn, order: Order) -> None:
        language = turn.language
        try:
            request = await self.deps.platform.request_refund(
                await turn.buyer_id(),
                order.order_id,
                "buyer asked through the customer-service bot",
                idempotency_key=turn.idempotency_key("refund", order.order_id),
            )
        except NotAllowed:
            dispatcher.utter_message(
                text=message("refund_delivered", language, order_id=order.order_id),
                buttons=[human_button(language)],
            )
            return
        dispatcher.utter_message(
            text=message(
                "refund_requested",
                language,
                order_id=order.order_id,
                request_id=request.refund_request_id,
                state=request.state,
            )
        )
