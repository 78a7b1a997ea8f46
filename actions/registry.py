"""All actions of the assistant, built with their dependencies."""

from __future__ import annotations

from rasa_sdk import Action

from actions import asks, escalation, flows, info
from actions.base import ActionDeps
from actions.forms import (
    ValidateCancelForm,
    ValidateFixTargetForm,
    ValidateMerchantRatingForm,
    ValidateOrderStatusForm,
    ValidatePaymentForm,
    ValidateRefundForm,
    ValidateRestoreForm,
)
from actions.order_status import UNDELIVERED, ActionAskOrderId, ActionOrderStatus
from actions.slots import ValidateSlotMappings
from integrations.platform.models import Order


def _open(order: Order) -> bool:
    return order.state in UNDELIVERED


def _cancelled(order: Order) -> bool:
    return order.state == "cancelled"


def build_actions(deps: ActionDeps) -> list[Action]:
    return [
        ActionOrderStatus(deps),
        ActionAskOrderId(deps),
        ActionAskOrderId(deps, "cancel_form", _open),
        ActionAskOrderId(deps, "fix_target_form", _open),
        ActionAskOrderId(deps, "restore_form", _cancelled),
        ActionAskOrderId(deps, "refund_form"),
        ActionAskOrderId(deps, "merchant_rating_form"),
        asks.ActionAskCancelReason(deps),
        asks.ActionAskCancelDecision(deps),
        asks.ActionAskFixField(deps),
        asks.ActionAskAccount(deps),
        asks.ActionAskRegion(deps),
        asks.ActionAskFixConfirm(deps),
        asks.ActionAskRestoreConfirm(deps),
        asks.ActionAskPaymentIssue(deps),
        asks.ActionAskCancelConfirm(deps),
        flows.ActionSubmitCancel(deps),
        flows.ActionSubmitFix(deps),
        flows.ActionSubmitRestore(deps),
        flows.ActionSubmitRefund(deps),
        info.ActionArrivalTime(deps),
        info.ActionRefundGuarantee(deps),
        info.ActionMerchantRating(deps),
        info.ActionPaymentGuidance(deps),
        escalation.ActionEscalate(deps),
        escalation.ActionClarify(deps),
        escalation.ActionOutOfScope(deps),
        escalation.ActionBotIdentity(deps),
        escalation.ActionHandoffWait(deps),
        info.ActionKeepOrder(deps),
        ValidateSlotMappings(),
        ValidateOrderStatusForm(deps),
        ValidateCancelForm(deps),
        ValidateFixTargetForm(deps),
        ValidateRestoreForm(deps),
        ValidateRefundForm(deps),
        ValidateMerchantRatingForm(deps),
        ValidatePaymentForm(deps),
    ]
