"""ORM rows to API representations. Time-dependent fields (overdue, refund status) use the sandbox clock."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Final

from sandbox.domain import CURRENCY, IN_FULFILMENT_STATES, REFUND_TERMS
from sandbox.schemas import (
    BuyerLinkOut,
    CancelOut,
    EscalationOut,
    MerchantOut,
    MerchantRef,
    OrderOut,
    ProductOut,
    Progress,
    RechargeTargetOut,
    RefundGuaranteeOut,
)
from sandbox.services.common import OrderBundle, money
from sandbox.tables import Escalation, Merchant, Order, TelegramLink

REFUND_PROCESSING: Final = timedelta(minutes=5)
"""How long after the promised time (or a failure) the automatic refund is issued at the latest."""

_STATE_NOTES: Final = {
    "pending_payment": "等待付款",
    "paid": "已付款，等待商户接单",
    "processing": "商户处理中",
    "delivered": "已到账",
    "failed": "充值失败，将全额退款",
    "cancelled": "订单已取消",
    "refunded": "已全额退款，原路返回",
}


def is_overdue(order: Order, now: datetime) -> bool:
    return order.state in IN_FULFILMENT_STATES and order.promised_by is not None and now > order.promised_by


def overdue_minutes(order: Order, now: datetime) -> int:
    if not is_overdue(order, now) or order.promised_by is None:
        return 0
    return max(1, math.ceil((now - order.promised_by).total_seconds() / 60))


def _progress(order: Order, now: datetime) -> Progress:
    note = _STATE_NOTES[order.state]
    if order.state == "pending_payment" and order.payment_submitted_at is not None:
        note = "支付确认延迟，平台正在核实" if order.payment_stalled_at else "已支付，等待平台确认"
    elif is_overdue(order, now):
        note = "已超过承诺到账时间，将全额自动退款"
    return Progress(step=order.state, note=note)


def _refund_eta(order: Order, now: datetime) -> datetime | None:
    if order.state == "failed" and order.failed_at is not None:
        return order.failed_at + REFUND_PROCESSING
    if is_overdue(order, now) and order.promised_by is not None:
        return order.promised_by + REFUND_PROCESSING
    return None


def _refund_guarantee(order: Order, now: datetime) -> RefundGuaranteeOut:
    eta = _refund_eta(order, now)
    status = "issued" if order.state == "refunded" else "scheduled" if eta is not None else "none"
    return RefundGuaranteeOut(
        applies=order.paid_at is not None,
        overdue=is_overdue(order, now),
        status=status,
        refund_amount=money(order.amount_cents),
        refund_eta=eta,
        refunded_at=order.refunded_at,
        terms=REFUND_TERMS,
    )


def _cancel(order: Order) -> CancelOut | None:
    if order.state != "cancelled" or order.cancelled_at is None:
        return None
    return CancelOut.model_validate(
        {
            "tag": order.cancel_tag,
            "by": order.cancel_by,
            "at": order.cancelled_at,
            "restorable_until": order.restorable_until,
            "note": order.cancel_note,
        }
    )


def order_out(item: OrderBundle, now: datetime) -> OrderOut:
    order, product = item.order, item.product
    return OrderOut.model_validate(
        {
            "order_id": order.order_id,
            "buyer_id": order.buyer_id,
            "state": order.state,
            "product": ProductOut.model_validate(
                {"kind": product.kind, "name": product.name, "sku": product.sku, "carrier": product.carrier}
            ),
            "amount": money(order.amount_cents),
            "currency": CURRENCY,
            "created_at": order.created_at,
            "payment_submitted_at": order.payment_submitted_at,
            "paid_at": order.paid_at,
            "delivered_at": order.delivered_at,
            "promised_minutes": order.promised_minutes,
            "promised_by": order.promised_by,
            "overdue_minutes": overdue_minutes(order, now),
            "progress": _progress(order, now),
            "recharge_target": RechargeTargetOut(account=order.account, region=order.region),
            "refund_guarantee": _refund_guarantee(order, now),
            "cancel": _cancel(order),
            "merchant": MerchantRef(merchant_id=item.merchant.merchant_id, name=item.merchant.name),
            "card_secret": order.card_secret if order.state == "delivered" else None,
        }
    )


def merchant_out(merchant: Merchant) -> MerchantOut:
    return MerchantOut(
        merchant_id=merchant.merchant_id,
        name=merchant.name,
        telegram_chat_id=merchant.telegram_chat_id,
        support_hours=merchant.support_hours,
    )


def escalation_out(escalation: Escalation) -> EscalationOut:
    return EscalationOut.model_validate(
        {
            "escalation_id": escalation.escalation_id,
            "order_id": escalation.order_id,
            "buyer_id": escalation.buyer_id,
            "merchant_id": escalation.merchant_id,
            "reason": escalation.reason,
            "summary": escalation.summary,
            "state": escalation.state,
            "created_at": escalation.created_at,
            "updated_at": escalation.updated_at,
            "csat": escalation.csat,
            "accuses_merchant": bool(escalation.accuses_merchant),
        }
    )


def link_out(link: TelegramLink) -> BuyerLinkOut:
    return BuyerLinkOut(
        buyer_id=link.buyer_id, telegram_user_id=link.telegram_user_id, linked_at=link.linked_at
    )
