"""The order card (with secrets masked) and the bot-conversation transcript that staff see."""

from __future__ import annotations

import html
from collections.abc import Sequence

from bot.handoff.masking import MASKED_SECRET, mask_number, mask_text
from integrations.platform.models import Order
from integrations.storage.handoff import HandoffTicket
from integrations.storage.models import ChatMessage

CARD_LIMIT = 4000
STATE_LABELS = {
    "pending_payment": "待支付",
    "paid": "已支付",
    "processing": "处理中",
    "delivered": "已到账",
    "failed": "失败",
    "cancelled": "已取消",
    "refunded": "已退款",
}
REASON_LABELS = {
    "human_request": "买家要求人工",
    "complaint": "投诉",
    "not_understood": "机器人未能理解",
    "assistant_unavailable": "智能助手不可用",
}


def _e(value: object) -> str:
    return html.escape(str(value), quote=False)


def split_summary(summary: str) -> tuple[list[str], list[str]]:
    """(what the buyer said, what the bot tried) from the escalation summary the action server wrote."""
    asked: list[str] = []
    tried: list[str] = []
    for line in summary.splitlines():
        if line.startswith("buyer "):
            asked.append(line.partition(": ")[2] or line)
        elif line.startswith("bot: "):
            name = line.removeprefix("bot: ").strip()
            if name not in tried:
                tried.append(name)
        elif line.strip():
            asked.append(line.strip())
    return asked, tried


def order_lines(order: Order) -> list[str]:
    target = order.recharge_target
    lines = [
        f"📦 订单 <code>{_e(order.order_id)}</code> · {_e(order.product.name)} · {_e(order.amount)} {_e(order.currency)}",
        f"状态：{_e(STATE_LABELS.get(order.state, order.state))} · {_e(mask_text(order.progress.note))}",
        f"充值账号：{_e(mask_number(target.account))}"
        + (f" · 区服：{_e(target.region)}" if target.region else ""),
    ]
    if order.card_secret is not None:
        lines.append(f"卡密：{MASKED_SECRET}（已隐藏）")
    if order.promised_by is not None:
        overdue = f" · 已超时 {order.overdue_minutes} 分钟" if order.is_overdue else ""
        lines.append(f"承诺到账：{order.promised_by.strftime('%m-%d %H:%M')} UTC{overdue}")
    guarantee = order.refund_guarantee
    if guarantee.status != "none":
        lines.append(f"超时退款：{_e(guarantee.status)} {_e(guarantee.refund_amount)}")
    if order.cancel is not None:
        lines.append(f"取消：{_e(order.cancel.tag)}（{_e(order.cancel.by)}）")
    lines.append(f"商家：{_e(order.merchant.name)}（{_e(order.merchant.merchant_id)}）")
    return lines


def render_card(ticket: HandoffTicket, order: Order | None, *, holder: str = "") -> str:
    """The order card: ticket, order (secrets and numbers masked), the buyer's problem, what the bot tried."""
    reason = REASON_LABELS.get(ticket.reason, ticket.reason or "-")
    lines = [f"🎫 工单 <code>{_e(ticket.ticket_id)}</code> · {_e(reason)}"]
    if ticket.accuses_merchant:
        lines.append("⚠️ 买家投诉商家（欺诈/恶意等）：仅由平台处理，勿转给商家")
    if holder:
        lines.append(_e(holder))
    if order is not None:
        lines += order_lines(order)
    elif ticket.order_id:
        lines.append(f"📦 订单 <code>{_e(ticket.order_id)}</code>（暂时无法读取详情）")
    else:
        lines.append("📦 未关联订单")
    asked, tried = split_summary(ticket.summary)
    if asked:
        lines.append("🗣 买家问题：" + _e(mask_text(" / ".join(asked[-3:]))[:600]))
    if tried:
        lines.append("🤖 机器人已尝试：" + _e(", ".join(tried[-8:])))
    return "\n".join(lines)


def render_transcript(messages: Sequence[ChatMessage], limit: int) -> str:
    """The bot conversation, newest last, masked, at most ``limit`` characters (oldest lines dropped)."""
    lines: list[str] = []
    for item in messages:
        who = "👤" if item.direction == "in" else "🧑‍💼" if item.kind.startswith("human") else "🤖"
        body = mask_text(item.text or f"[{item.kind}]").replace("\n", " ")
        lines.append(f"{who} {_e(body[:300])}")
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        if used + len(line) + 1 > limit:
            break
        kept.append(line)
        used += len(line) + 1
    return "\n".join(reversed(kept))


STATE_NAMES = {
    "merchant": "商家处理中",
    "queued": "排队中",
    "assigned": "处理中",
    "resolved": "已解决",
    "closed": "已关闭",
}


def render_history(earlier: Sequence[HandoffTicket]) -> str:
    """This buyer's earlier handoffs about the same order, newest last (at most 5)."""
    lines = []
    for old in list(earlier)[-5:]:
        who = "商家" if old.route == "merchant" else "平台客服"
        parts = [
            f"<code>{_e(old.ticket_id)}</code>",
            old.created_at.strftime("%m-%d %H:%M"),
            _e(REASON_LABELS.get(old.reason, old.reason or "-")),
            who,
            STATE_NAMES.get(old.state, old.state),
        ]
        if old.csat is not None:
            parts.append(f"{old.csat}★")
        lines.append(" · ".join(parts))
    return "\n".join(lines)


def first_post(
    ticket: HandoffTicket,
    order: Order | None,
    transcript: Sequence[ChatMessage],
    holder: str,
    *,
    earlier: Sequence[HandoffTicket] = (),
) -> str:
    card = render_card(ticket, order, holder=holder)
    if earlier:
        card += "\n🗂 <b>此前的人工服务</b>（同一买家、同一订单）：\n" + render_history(earlier)
    room = CARD_LIMIT - len(card) - 40
    body = render_transcript(transcript, max(0, room)) if room > 100 else ""
    if not body:
        return card
    return f"{card}\n\n💬 <b>对话记录</b>\n<blockquote expandable>{body}</blockquote>"
