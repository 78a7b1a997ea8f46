"""Typed views of the platform API's resources (docs/platform-api.md).

Models ignore unknown fields so the platform can add fields without breaking the bot. ``card_secret`` is a
``SecretStr``: it prints as ``**********`` in logs and reprs; call ``.get_secret_value()`` to show it to the
buyer who owns the order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final, Literal, TypeVar, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, SecretStr, ValidationError

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
RefundStatus = Literal["none", "scheduled", "issued"]
RefundRequestState = Literal["pending", "approved", "rejected"]
Grade = Literal["A", "B", "C", "D"]

PRODUCT_KINDS: Final[tuple[ProductKind, ...]] = get_args(ProductKind)
ORDER_STATES: Final[tuple[OrderState, ...]] = get_args(OrderState)
CANCEL_REASON_TAGS: Final[tuple[CancelReasonTag, ...]] = get_args(CancelReasonTag)
ESCALATION_STATES: Final[tuple[EscalationState, ...]] = get_args(EscalationState)
EVENT_TYPES: Final[tuple[EventType, ...]] = get_args(EventType)
OPEN_ORDER_STATES: Final[frozenset[OrderState]] = frozenset({"pending_payment", "paid", "processing"})


class PlatformModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


M = TypeVar("M", bound=PlatformModel)


class Product(PlatformModel):
    kind: ProductKind
    name: str
    sku: str
    carrier: str | None = None


class Progress(PlatformModel):
    step: str
    note: str


class RechargeTarget(PlatformModel):
    account: str
    region: str | None = None


class RefundGuarantee(PlatformModel):
    applies: bool
    overdue: bool
    status: RefundStatus
    refund_amount: Decimal
    refund_eta: AwareDatetime | None = None
    refunded_at: AwareDatetime | None = None
    terms: str


class CancelInfo(PlatformModel):
    tag: CancelReasonTag
    by: CancelledBy
    at: AwareDatetime
    restorable_until: AwareDatetime | None = None
    note: str | None = None


class MerchantRef(PlatformModel):
    merchant_id: str
    name: str


class Order(PlatformModel):
    order_id: str
    buyer_id: str
    state: OrderState
    product: Product
    amount: Decimal
    currency: str
    created_at: AwareDatetime
    payment_submitted_at: AwareDatetime | None = None
    paid_at: AwareDatetime | None = None
    delivered_at: AwareDatetime | None = None
    promised_minutes: int | None = None
    promised_by: AwareDatetime | None = None
    overdue_minutes: int = 0
    progress: Progress
    recharge_target: RechargeTarget
    refund_guarantee: RefundGuarantee
    cancel: CancelInfo | None = None
    merchant: MerchantRef
    card_secret: SecretStr | None = None

    @property
    def is_open(self) -> bool:
        """Still on its way: the target can be fixed and the order cancelled."""
        return self.state in OPEN_ORDER_STATES

    @property
    def is_overdue(self) -> bool:
        return self.overdue_minutes > 0


class RechargeTargetChange(PlatformModel):
    field: Literal["account", "region"]
    old: str | None = None
    new: str | None = None
    at: AwareDatetime
    by: str


class Merchant(PlatformModel):
    merchant_id: str
    name: str
    telegram_chat_id: int | None = None
    support_hours: str


class MerchantScore(PlatformModel):
    merchant_id: str
    window_days: int = 30
    orders_considered: int
    cancel_rate: float
    median_arrival_minutes: float | None = None
    median_response_minutes: float | None = None
    grade: Grade | None = None


class Escalation(PlatformModel):
    escalation_id: str
    order_id: str | None = None
    buyer_id: str
    merchant_id: str | None = None
    reason: str
    summary: str
    state: EscalationState
    created_at: AwareDatetime
    updated_at: AwareDatetime
    csat: int | None = None
    accuses_merchant: bool = False
    """The buyer accuses the order's merchant: the ticket goes to platform agents only."""
    appended: bool = False
    """This request was added to the buyer's open ticket for the same order (one open ticket per order)."""


class Sla(PlatformModel):
    product_kind: ProductKind
    carrier: str | None = None
    promised_minutes: int
    night: bool
    note: str


class BuyerLink(PlatformModel):
    buyer_id: str
    telegram_user_id: int
    linked_at: AwareDatetime


class MerchantLinkToken(PlatformModel):
    token: str
    merchant_id: str
    expires_at: AwareDatetime
    deep_link: str


class LinkToken(PlatformModel):
    token: str
    buyer_id: str
    expires_at: AwareDatetime
    deep_link: str


class RefundRequest(PlatformModel):
    refund_request_id: str
    state: RefundRequestState
    reason: str
    created_at: AwareDatetime
    order: Order


class WebhookSubscription(PlatformModel):
    subscription_id: str
    url: str
    events: list[EventType]
    created_at: AwareDatetime


class PlatformEvent(PlatformModel):
    """A webhook delivery body. Verify the signature (``signing.verify``) before parsing it."""

    event_id: str
    type: EventType
    occurred_at: AwareDatetime
    data: dict[str, Any]

    @property
    def order(self) -> Order | None:
        """The order as the API showed it when the event fired (``order.*`` events)."""
        return _optional(Order, self.data.get("order"))

    @property
    def escalation(self) -> Escalation | None:
        return _optional(Escalation, self.data.get("escalation"))

    @property
    def telegram_user_ids(self) -> list[int]:
        """Telegram users linked to the buyer concerned, so the bot can notify them directly."""
        ids = self.data.get("telegram_user_ids")
        return [i for i in ids if isinstance(i, int)] if isinstance(ids, list) else []


def _optional(model: type[M], value: object) -> M | None:
    if value is None:
        return None
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


# List envelopes of the API (internal to the client).
class OrderList(PlatformModel):
    orders: list[Order]


class RechargeTargetHistory(PlatformModel):
    changes: list[RechargeTargetChange]


class EscalationList(PlatformModel):
    escalations: list[Escalation]


class SlaList(PlatformModel):
    slas: list[Sla]
