"""Request and response bodies of the platform API; the OpenAPI document is generated from these."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl

from sandbox.domain import (
    CancelledBy,
    CancelReasonTag,
    Carrier,
    EscalationState,
    EventType,
    Grade,
    OrderState,
    ProductKind,
    RefundRequestState,
    RefundStatus,
    SimOutcome,
)

MIN_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_INSTANT = datetime(2100, 1, 1, tzinfo=UTC)
ID_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
TELEGRAM_ID_MAX = 2**53 - 1  # Telegram ids fit in 52 bits; keeps every id exact in JSON numbers


def _clean_text(value: str) -> str:
    """Refuse NUL/control characters and lone surrogates, which no database column can store."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode") from None
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in value):
        raise ValueError("text must not contain control characters")
    return value


def _in_range(value: datetime) -> datetime:
    if not MIN_INSTANT <= value <= MAX_INSTANT:
        raise ValueError("time must be between 2000-01-01 and 2100-01-01")
    return value.astimezone(UTC)


ShortText = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_clean_text)]
NoteText = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_clean_text)]
LongText = Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(_clean_text)]
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
Instant = Annotated[AwareDatetime, Field(strict=False), AfterValidator(_in_range)]
TelegramUserId = Annotated[int, Field(ge=1, le=TELEGRAM_ID_MAX)]
Money = Annotated[str, Field(pattern=r"^\d{1,7}\.\d{2}$", examples=["6.00"])]


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputModel(ApiModel):
    """Request bodies: unknown fields and type coercion (``false`` for 0, ``"3"`` for 3) are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


# ---------------------------------------------------------------- errors


class ErrorBody(ApiModel):
    code: str = Field(description="machine-readable reason, e.g. not_found, invalid_account")
    message: str = Field(description="human-readable text (English, for logs; not for buyers)")
    details: list[dict[str, Any]] | None = Field(default=None, description="field errors of validation_error")


class ErrorEnvelope(ApiModel):
    error: ErrorBody


# ---------------------------------------------------------------- orders


class ProductOut(ApiModel):
    kind: ProductKind
    name: str
    sku: str
    carrier: Carrier | None


class Progress(ApiModel):
    step: str
    note: str


class RechargeTargetOut(ApiModel):
    account: str
    region: str | None


class RefundGuaranteeOut(ApiModel):
    applies: bool
    overdue: bool
    status: RefundStatus
    refund_amount: Money
    refund_eta: datetime | None
    refunded_at: datetime | None
    terms: str


class CancelOut(ApiModel):
    tag: CancelReasonTag
    by: CancelledBy
    at: datetime
    restorable_until: datetime | None
    note: str | None = None


class MerchantRef(ApiModel):
    merchant_id: str
    name: str


class OrderOut(ApiModel):
    order_id: str
    buyer_id: str
    state: OrderState
    product: ProductOut
    amount: Money
    currency: Literal["CNY"]
    created_at: datetime
    payment_submitted_at: datetime | None
    paid_at: datetime | None
    delivered_at: datetime | None
    promised_minutes: int | None
    promised_by: datetime | None
    overdue_minutes: int
    progress: Progress
    recharge_target: RechargeTargetOut
    refund_guarantee: RefundGuaranteeOut
    cancel: CancelOut | None
    merchant: MerchantRef
    card_secret: str | None = Field(description="only for delivered game cards; mask it in logs")


class OrderList(ApiModel):
    orders: list[OrderOut]


class RechargeTargetPatch(InputModel):
    account: Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_clean_text)] | None = None
    region: ShortText | None = None


class RechargeTargetChange(ApiModel):
    field: Literal["account", "region"]
    old: str | None
    new: str | None
    at: datetime
    by: str


class RechargeTargetHistory(ApiModel):
    changes: list[RechargeTargetChange]


class CancelIn(InputModel):
    reason_tag: CancelReasonTag
    note: NoteText | None = None
    by: CancelledBy = "buyer"


class RefundRequestIn(InputModel):
    reason: NoteText


class RefundRequestOut(ApiModel):
    refund_request_id: str
    state: RefundRequestState
    reason: str
    created_at: datetime
    order: OrderOut


# ---------------------------------------------------------------- buyers and links


class LinkTokenOut(ApiModel):
    token: str
    buyer_id: str
    expires_at: datetime
    deep_link: str


class RedeemIn(InputModel):
    token: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    telegram_user_id: TelegramUserId


class MerchantLinkTokenOut(ApiModel):
    token: str
    merchant_id: str
    expires_at: datetime
    deep_link: str


class MerchantRedeemIn(InputModel):
    token: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    telegram_chat_id: Annotated[
        int,
        Field(
            ge=-TELEGRAM_ID_MAX,
            le=TELEGRAM_ID_MAX,
            description="the merchant's private chat with the bot (their user id) or a group (negative id)",
        ),
    ]


class BuyerLinkOut(ApiModel):
    buyer_id: str
    telegram_user_id: int
    linked_at: datetime


# ---------------------------------------------------------------- merchants


class MerchantOut(ApiModel):
    merchant_id: str
    name: str
    telegram_chat_id: int | None
    support_hours: str


class MerchantScoreOut(ApiModel):
    merchant_id: str
    window_days: int
    orders_considered: int
    cancel_rate: float = Field(ge=0, le=1)
    median_arrival_minutes: float | None
    median_response_minutes: float | None
    grade: Grade | None = Field(description="null while the merchant has no paid orders in the window")


# ---------------------------------------------------------------- escalations


class EscalationIn(InputModel):
    buyer_id: Identifier
    order_id: Identifier | None = None
    reason: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_clean_text)]
    summary: LongText
    accuses_merchant: bool = Field(
        default=False,
        description="the buyer accuses the order's merchant (fraud, bad faith): platform agents only, "
        "never that merchant",
    )


class EscalationOut(ApiModel):
    escalation_id: str
    order_id: str | None
    buyer_id: str
    merchant_id: str | None
    reason: str
    summary: str
    state: EscalationState
    created_at: datetime
    updated_at: datetime
    csat: int | None
    accuses_merchant: bool = False
    appended: bool = Field(
        default=False,
        description="true when this request was added to the buyer's open ticket for the same order "
        "(one open ticket per buyer and order) instead of opening a new one",
    )


class EscalationList(ApiModel):
    escalations: list[EscalationOut]


class EscalationPatch(InputModel):
    state: EscalationState


class CsatIn(InputModel):
    score: Annotated[int, Field(ge=1, le=5)]


# ---------------------------------------------------------------- SLAs


class SlaOut(ApiModel):
    product_kind: ProductKind
    carrier: Carrier | None
    promised_minutes: int
    night: bool
    note: str


class SlaList(ApiModel):
    slas: list[SlaOut]


# ---------------------------------------------------------------- webhooks


class SubscriptionIn(InputModel):
    url: Annotated[HttpUrl, Field(max_length=2048)]
    events: Annotated[list[EventType], Field(min_length=1, max_length=6)]
    secret: Annotated[str, Field(min_length=16, max_length=256), AfterValidator(_clean_text)]


class SubscriptionOut(ApiModel):
    subscription_id: str
    url: str
    events: list[EventType]
    created_at: datetime


class HealthOut(ApiModel):
    status: Literal["ok"]


# ---------------------------------------------------------------- admin


class BuyerIn(InputModel):
    buyer_id: Identifier
    name: ShortText
    telegram_user_id: TelegramUserId | None = None


class BuyerOut(ApiModel):
    buyer_id: str
    name: str
    created_at: datetime
    telegram_user_ids: list[int]


class MerchantIn(InputModel):
    merchant_id: Identifier
    name: ShortText
    telegram_chat_id: Annotated[int, Field(ge=-TELEGRAM_ID_MAX, le=TELEGRAM_ID_MAX)] | None = None
    support_hours: ShortText = "09:00–23:00"


class ProductIn(InputModel):
    sku: Identifier
    kind: ProductKind
    name: ShortText
    merchant_id: Identifier
    price: Money
    carrier: Carrier | None = None
    stock: Annotated[int, Field(ge=0, le=1_000_000)] = 100


class ProductAdminOut(ApiModel):
    sku: str
    kind: ProductKind
    name: str
    merchant_id: str
    price: Money
    carrier: Carrier | None
    stock: int


class AdminOrderIn(InputModel):
    """A test order; timestamps default to the sandbox clock, simulation timings to the kind's defaults."""

    order_id: Identifier | None = None
    buyer_id: Identifier
    sku: Identifier
    account: Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_clean_text)]
    region: ShortText | None = None
    state: Literal["pending_payment", "paid", "processing", "delivered"] = "paid"
    created_at: Instant | None = None
    paid_at: Instant | None = None
    payment_submitted_at: Instant | None = None
    outcome: SimOutcome = "deliver"
    response_seconds: Annotated[int, Field(ge=0, le=86_400)] | None = None
    fulfil_seconds: Annotated[int, Field(ge=0, le=86_400)] | None = None


class ClockIn(InputModel):
    now: Instant | None = None
    advance_seconds: Annotated[float, Field(ge=-366 * 86_400, le=366 * 86_400)] | None = None
    frozen: bool | None = Field(default=None, description="freeze (true) or let run (false); default: freeze")
    speed: Annotated[float, Field(gt=0, le=3600)] | None = Field(
        default=None, description="run this many times faster than real time (1: real time)"
    )


class ClockOut(ApiModel):
    now: datetime
    frozen: bool
    speed: float = 1.0


class Transition(ApiModel):
    order_id: str
    from_state: OrderState
    to_state: OrderState
    at: datetime


class TickOut(ApiModel):
    now: datetime
    transitions: list[Transition]
    events: list[str]


class ResetIn(InputModel):
    now: Instant | None = Field(default=None, description="freeze the clock here before seeding")


class ResetOut(ApiModel):
    status: Literal["ok"]
    now: datetime


class DeliveryOut(ApiModel):
    subscription_id: str
    status: Literal["pending", "delivered", "dead", "cancelled"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None


class EventOut(ApiModel):
    event_id: str
    type: EventType
    occurred_at: datetime
    order_id: str | None
    escalation_id: str | None
    data: dict[str, Any]
    deliveries: list[DeliveryOut]


class EventList(ApiModel):
    events: list[EventOut]
