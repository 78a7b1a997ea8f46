"""Labels of the ops page, zh-CN first and English second."""

from __future__ import annotations

from typing import Literal

UiLanguage = Literal["zh", "en"]

TEXTS: dict[str, tuple[str, str]] = {
    "title": ("运营看板", "Operations"),
    "login_title": ("运营看板登录", "Operations sign-in"),
    "login_hint": ("请输入运营令牌（OPS_TOKEN）。", "Enter the operations token (OPS_TOKEN)."),
    "login_button": ("登录", "Sign in"),
    "login_wrong": ("令牌不正确。", "Wrong token."),
    "logout": ("退出", "Sign out"),
    "token": ("令牌", "Token"),
    "period": ("时间", "Period"),
    "from": ("开始", "From"),
    "to": ("结束", "To"),
    "merchant": ("商家", "Merchant"),
    "kind": ("商品类型", "Product kind"),
    "lang": ("买家语言", "Buyer language"),
    "all": ("全部", "All"),
    "apply": ("筛选", "Apply"),
    "export": ("导出 CSV", "Export CSV"),
    "funnel": ("取消漏斗", "Cancellation funnel"),
    "funnel_by_tag": ("各取消原因", "By reason tag"),
    "save_rate_over_time": ("各原因挽回率（按天）", "Save rate per tag over time"),
    "containment": ("自助解决", "Containment"),
    "csat": ("满意度", "CSAT"),
    "merchants": ("商家", "Merchants"),
    "agents": ("客服", "Agents"),
    "requests": ("取消请求", "Cancel requests"),
    "offers": ("挽回提议", "Save offers"),
    "saved": ("挽回", "Saved"),
    "cancelled": ("已取消", "Cancelled"),
    "escalated": ("转人工", "Escalated"),
    "fixed_account": ("改账号", "Fixed account"),
    "fixed_region": ("改区服", "Fixed region"),
    "kept_waiting": ("继续等待", "Kept waiting"),
    "payment_help": ("支付协助后保留", "Kept after payment help"),
    "restored": ("恢复订单", "Restored"),
    "save_rate": ("挽回率", "Save rate"),
    "conversations": ("会话", "Conversations"),
    "containment_rate": ("无需人工", "Resolved without a person"),
    "handoff_rate": ("转人工率", "Handoff rate"),
    "first_reply": ("首次人工回复（中位）", "First human reply (median)"),
    "sla_hit_rate": ("商家 SLA 达成率", "Merchant SLA hit rate"),
    "reopen_rate": ("工单重开率", "Tickets reopened"),
    "tickets": ("工单", "Tickets"),
    "csat_average": ("平均评分", "Average rating"),
    "csat_response_rate": ("评分率", "Response rate"),
    "answers": ("评分数", "Answers"),
    "cancel_share": ("取消占比", "Cancelled share"),
    "grade": ("履约评级", "Fulfilment grade"),
    "platform_cancel_rate": ("平台取消率（30 天）", "Platform cancel rate (30 d)"),
    "median_arrival": ("到账中位（分钟）", "Median arrival (min)"),
    "no_data": ("此期间没有数据。", "No data in this period."),
    "by_order_note": (
        "按商家或商品类型筛选时，会话数无法归属，自助解决率不显示。",
        "With a merchant or product-kind filter, conversations cannot be attributed: containment is not shown.",
    ),
    "reason": ("原因", "Reason"),
    "day": ("日期", "Day"),
}

TAG_LABELS: dict[str, tuple[str, str]] = {
    "user_mistake": ("误操作", "Mistake"),
    "demand_changed": ("不想要了", "Changed mind"),
    "found_cheaper": ("别家更便宜", "Found cheaper"),
    "wrong_account": ("账号填错", "Wrong account"),
    "wrong_region": ("区服选错", "Wrong region"),
    "payment_problem": ("支付问题", "Payment problem"),
    "arrival_too_slow": ("到账太慢", "Too slow"),
    "unclear_description": ("描述不清", "Unclear description"),
    "merchant_out_of_stock": ("商家缺货", "Out of stock"),
    "merchant_malicious": ("商家恶意", "Merchant misconduct"),
    "duplicate_order": ("重复下单", "Duplicate order"),
    "other": ("其他", "Other"),
}

KIND_LABELS: dict[str, tuple[str, str]] = {
    "game_card": ("游戏点卡", "Game card"),
    "phone_topup": ("话费充值", "Phone top-up"),
    "membership": ("会员", "Membership"),
}


def t(key: str, ui: UiLanguage) -> str:
    zh, en = TEXTS[key]
    return zh if ui == "zh" else en


def tag_label(tag: str, ui: UiLanguage) -> str:
    zh, en = TAG_LABELS.get(tag, (tag, tag))
    return zh if ui == "zh" else en


def kind_label(kind: str, ui: UiLanguage) -> str:
    zh, en = KIND_LABELS.get(kind, (kind, kind))
    return zh if ui == "zh" else en
