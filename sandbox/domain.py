"""Domain vocabulary of the platform (names fixed by DESIGN.md)."""

from __future__ import annotations

from typing import Final, Literal, get_args

ProductKind = Literal["game_card", "phone_topup", "membership"]
OrderState = Literal["pending_payment", "paid", "processing", "delivered", "failed", "cancelled", "refunded"]
CancelReasonTag = Literal[
    "user_mistake",
    "demand_changed",
    "found_cheaper",
    "wrong_account",
    "wrong_region",
    "payment_problem",
    "arrival_too_slow",
    "unclear_description",
    "merchant_out_of_stock",
    "merchant_malicious",
    "duplicate_order",
    "other",
]
CancelledBy = Literal["buyer", "merchant", "platform", "system"]
EscalationState = Literal["open", "merchant_notified", "agent_assigned", "resolved", "closed"]
EventType = Literal[
    "order.paid",
    "order.delivered",
    "order.failed",
    "order.refunded",
    "order.payment_stalled",
    "escalation.updated",
]
Carrier = Literal["中国移动", "中国联通", "中国电信"]
RefundStatus = Literal["none", "scheduled", "issued"]
RefundRequestState = Literal["pending", "approved", "rejected"]
Grade = Literal["A", "B", "C", "D"]
SimOutcome = Literal["deliver", "fail", "stall", "payment_stall"]
"""What the fulfilment simulation does with an order: deliver it in time, fail it, never deliver it (so the
refund guarantee fires), or never confirm its payment (so ``order.payment_stalled`` fires)."""

PRODUCT_KINDS: Final = get_args(ProductKind)
ORDER_STATES: Final = get_args(OrderState)
CANCEL_REASON_TAGS: Final = get_args(CancelReasonTag)
ESCALATION_STATES: Final = get_args(EscalationState)
EVENT_TYPES: Final = get_args(EventType)
CARRIERS: Final = get_args(Carrier)

CANCELLABLE_STATES: Final = frozenset({"pending_payment", "paid", "processing"})
FIXABLE_STATES: Final = frozenset({"pending_payment", "paid", "processing", "cancelled"})
IN_FULFILMENT_STATES: Final = frozenset({"paid", "processing"})
RESTORABLE_BY: Final = frozenset({"buyer", "system"})
"""Cancellations a buyer may undo; merchant and platform decisions are final."""

CURRENCY: Final = "CNY"
REFUND_TERMS: Final = "未在承诺时间内到账，全额自动退款，原路返回"
