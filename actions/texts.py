"""Buyer-facing texts of the actions, zh-CN first and English second, with the order's real numbers."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from actions.context import Language

STATE_LABELS: dict[str, dict[Language, str]] = {
    "pending_payment": {"zh": "待付款", "en": "awaiting payment"},
    "paid": {"zh": "已付款，等待处理", "en": "paid, waiting to be processed"},
    "processing": {"zh": "充值处理中", "en": "being processed"},
    "delivered": {"zh": "已到账", "en": "delivered"},
    "failed": {"zh": "充值失败", "en": "failed"},
    "cancelled": {"zh": "已取消", "en": "cancelled"},
    "refunded": {"zh": "已退款", "en": "refunded"},
}

KIND_LABELS: dict[str, dict[Language, str]] = {
    "game_card": {"zh": "游戏点卡", "en": "game card"},
    "phone_topup": {"zh": "话费充值", "en": "phone top-up"},
    "membership": {"zh": "会员", "en": "membership"},
}

MESSAGES: dict[str, dict[Language, str]] = {
    "not_linked": {
        "zh": "您的 Telegram 还没有绑定平台账号，暂时无法查看订单。请在平台「我的-客服」页面点击「绑定 Telegram」"
        "链接完成绑定，然后再来问我。一般问题（到账时间、退款保障）现在就可以问。",
        "en": "Your Telegram is not linked to a platform account yet, so I cannot see your orders. Open "
        "'My account → Support → Link Telegram' on the platform, then come back. General questions "
        "(arrival times, refund guarantee) work right away.",
    },
    "order_not_found": {
        "zh": "没有在您的账号下找到订单 {order_id}，请核对订单号（以 KM 开头）。",
        "en": "I could not find order {order_id} in your account. Please check the number (it starts with KM).",
    },
    "platform_down": {
        "zh": "订单系统暂时无法访问，请稍后再试；着急的话可以发送 /human 转人工。",
        "en": "The order system is unreachable right now. Please try again shortly, or send /human for a person.",
    },
    "platform_busy": {
        "zh": "查询太频繁了，请稍等片刻再试。",
        "en": "Too many requests right now - please wait a moment and try again.",
    },
    "ask_order_id": {
        "zh": "请告诉我订单号（以 KM 开头，例如 KM20261127001）。",
        "en": "Which order? Please send the order number (starts with KM, e.g. KM20261127001).",
    },
    "ask_order_pick": {
        "zh": "您要查询哪一笔订单？点选下面的订单，或直接发送订单号。",
        "en": "Which order do you mean? Tap one below or send the order number.",
    },
    "bad_order_id": {
        "zh": "「{value}」看起来不是订单号，订单号以 KM 开头，后面是 11-14 位数字。",
        "en": "'{value}' does not look like an order number: KM followed by 11-14 digits.",
    },
}

BUTTONS: dict[str, dict[Language, str]] = {
    "arrival_time": {"zh": "多久到账", "en": "When will it arrive"},
    "refund_guarantee": {"zh": "超时退款保障", "en": "Refund guarantee"},
    "human": {"zh": "转人工", "en": "Talk to a person"},
}


def message(key: str, language: Language, **values: object) -> str:
    return MESSAGES[key][language].format(**values)


def state_label(state: str, language: Language) -> str:
    return STATE_LABELS.get(state, {}).get(language, state)


def kind_label(kind: str, language: Language) -> str:
    return KIND_LABELS.get(kind, {}).get(language, kind)


def clock(moment: datetime, timezone: str, language: Language) -> str:
    """A time as the buyer reads it: local clock time, with the date when it is not today."""
    local = moment.astimezone(ZoneInfo(timezone))
    now = datetime.now(ZoneInfo(timezone))
    if local.date() == now.date():
        return local.strftime("%H:%M")
    return local.strftime("%m-%d %H:%M") if language == "zh" else local.strftime("%b %d %H:%M")


def minutes(value: int, language: Language) -> str:
    if language == "zh":
        return f"{value} 分钟" if value < 120 else f"{value // 60} 小时 {value % 60} 分钟"
    if value < 120:
        return f"{value} min"
    return f"{value // 60} h {value % 60} min"
