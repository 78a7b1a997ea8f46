"""Texts of the handoff: buyer-facing ones in zh and en, staff-facing ones (merchants, agents) in Chinese."""

from __future__ import annotations

from bot.i18n import Language

_BUYER: dict[str, dict[Language, str]] = {
    "to_merchant": {
        "zh": "🙋 已通知商家「{merchant}」的客服，请稍候，对方会在这里直接回复您。{minutes} 分钟内未回复将自动转给平台客服。",
        "en": "🙋 The seller ({merchant}) has been notified and will reply right here. If they do not answer "
        "within {minutes} min, a platform agent takes over.",
    },
    "queued": {
        "zh": "🙋 人工客服马上就来。您当前排在第 {position} 位，预计等待约 {wait} 分钟。",
        "en": "🙋 A person is coming. You are number {position} in the queue; expected wait about {wait} min.",
    },
    "offline": {
        "zh": "🌙 现在是客服非工作时间（服务时间 {hours}）。您的问题已登记，客服将于 {when} 上线后优先处理，届时会在这里回复您。",
        "en": "🌙 Our agents are offline now (hours {hours}). Your case is registered; an agent will reply here "
        "after {when}, first thing.",
    },
    "while_human": {
        "zh": "期间智能助手暂停回复，您发的文字、图片和文件都会转给客服。发送 /end 可结束人工服务。",
        "en": "Meanwhile the assistant is paused; your texts, photos and files go to the person. Send /end to "
        "end the handoff.",
    },
    "sla_passed": {
        "zh": "⏱ 商家暂未回复，已为您转给平台客服。",
        "en": "⏱ The seller has not answered yet, so a platform agent takes over.",
    },
    "taken": {
        "zh": "👤 {name}已接入，正在为您处理。",
        "en": "👤 {name} has joined and is on your case.",
    },
    "ended": {
        "zh": "✅ 人工服务已结束，智能助手继续为您服务。请为本次人工服务打分（1 最差，5 最好）：",
        "en": "✅ The handoff has ended; the assistant is back. Please rate the help you got (1 worst, 5 best):",
    },
    "request_added": {
        "zh": "📎 您的新请求已补充到进行中的工单 {ticket}，同一位客服会一并处理。",
        "en": "📎 Your new request was added to your open ticket {ticket}; the same person handles both.",
    },
    "released": {
        "zh": "↩️ 刚才的客服暂时离开，您的问题已回到队列，下一位客服会接着处理，聊天记录都在。",
        "en": "↩️ The person helping you had to step away; your case is back in the queue and the next one "
        "continues with the full history.",
    },
    "reopened": {
        "zh": "🔄 {name} 重新打开了工单 {ticket}，会继续在这里为您处理。",
        "en": "🔄 {name} reopened ticket {ticket} and continues right here.",
    },
    "hours_begun": {
        "zh": "☀️ 客服已上线，正在按顺序处理夜间登记的问题。",
        "en": "☀️ Our agents are back online and are taking the cases registered overnight, in order.",
    },
    "refunded": {
        "zh": "✅ 客服已为订单 {order} 办理退款，款项原路退回。",
        "en": "✅ Order {order} has been refunded to the original payment method.",
    },
    "thanks": {"zh": "谢谢您的评价（{score} 分）！", "en": "Thank you for your rating ({score}/5)!"},
    "already_human": {
        "zh": "您已在人工服务中，客服会在这里回复您；发送 /end 可结束。",
        "en": "You are already with a person who will reply here; send /end to end it.",
    },
    "not_in_handoff": {"zh": "当前没有进行中的人工服务。", "en": "There is no handoff in progress."},
    "button_busy": {
        "zh": "人工客服处理中，请直接发送文字说明～",
        "en": "A person is handling your case; just type your message.",
    },
    "restored": {"zh": "✅ 客服已为您恢复订单 {order}。", "en": "✅ Your order {order} has been restored."},
    "fixed": {
        "zh": "✅ 客服已将订单 {order} 的充值信息改为：{target}",
        "en": "✅ The recharge details of order {order} are now: {target}",
    },
    "refund_requested": {
        "zh": "✅ 客服已为订单 {order} 提交退款申请，处理结果会通知您。",
        "en": "✅ A refund of order {order} has been requested; you will be told the result.",
    },
}

STAFF: dict[str, str] = {
    "accepted": "✅ {name} 已接手工单 {ticket}。",
    "released": "↩️ {name} 已释放工单 {ticket}，等待其他客服接手。",
    "closed": "✅ 工单 {ticket} 已结束（{name}），已恢复智能助手并请买家评分。",
    "closed_by_buyer": "✅ 买家结束了人工服务，工单 {ticket} 已结束。",
    "note_saved": "📝 内部备注已记录（不会发给买家）。",
    "passed": "➡️ 工单 {ticket} 已转平台客服（{why}）。",
    "sla_expired": "⏱ 商家 {minutes} 分钟内未回复",
    "passed_by_merchant": "商家转交",
    "merchant_unreachable": "商家会话不可用",
    "no_merchant": "无商家会话",
    "accuses_merchant": "买家对商家的投诉由平台客服处理",
    "kept_from_merchant": "ℹ️ 订单 {order} 的买家工单 {ticket} 由平台客服处理（涉及对商家的投诉，按规则不转商家）。如需您配合，平台客服会联系您。",
    "request_added": "📎 买家再次请求人工，已并入工单 {ticket}：\n{text}",
    "csat": "⭐ 买家为工单 {ticket} 评分：{score}/5",
    "already_yours": "工单 {ticket} 已由您处理中。",
    "note_usage": "请发送 <code>/note 内容</code>（仅内部可见）。",
    "no_template": "没有名为「{name}」的快捷回复。",
    "template_sent": "✅ 已按买家语言发送快捷回复「{name}」。",
    "still_open": "工单 {ticket} 仍在处理中，无需重新打开。",
    "buyer_busy": "买家目前在另一个人工工单 {ticket} 中，暂不能重新打开。",
    "reopened": "🔄 {name} 重新打开了工单 {ticket}，智能助手已暂停。",
    "woken": "🔔 工作时间开始：工单 {ticket} 在非工作时间登记，买家仍在等待，请优先处理（/take 接手）。",
    "link_failed": "⚠️ 绑定失败：{error}",
    "linked": "✅ 已绑定商家「{name}」。买家工单会发到这里：{where}。\n命令：/take 接手 · /release 释放 · /note 备注 · /order 订单 · /fix 改账号 · /restore 恢复 · /refund 退款 · /pass 转平台 · /t 快捷回复 · /close 结束",
    "restored": "✅ {name} 已恢复订单 {order}（状态：{state}）。",
    "fixed": "✅ {name} 已修改订单 {order} 的充值信息：{target}",
    "refund_requested": "✅ {name} 已为订单 {order} 提交退款申请（{state}）。",
    "action_failed": "⚠️ {action} 失败：{error}",
    "fix_usage": "请发送 <code>/fix 新账号 [新区服]</code>（在本话题/回复本工单消息）来修改充值信息。",
    "no_order": "该工单没有关联订单。",
    "reply_needed": "有多个进行中的工单，请「回复」对应工单的消息来指定买家。",
    "not_yours": "这个工单不在本会话处理。",
    "no_ticket_here": "当前没有进行中的工单。有新工单时会发到这里。",
    "ticket_closed": "工单 {ticket} 已结束，消息未转发。",
    "edited_by_buyer": "✏️ 买家修改了消息：\n{text}",
    "from_buyer": "👤 买家：{text}",
    "edited_by_human": "✏️ 客服更正：\n{text}",
    "topic_recreated": "♻️ 话题被删除，已重新创建。",
}

BUTTONS: dict[str, str] = {
    "take": "🙋 接手",
    "accept": "✅ 接单",
    "restore": "♻️ 恢复订单",
    "fix": "✏️ 改账号",
    "refund": "💰 退款",
    "pass": "➡️ 转平台",
    "close": "✅ 结束",
}


def buyer_text(key: str, language: Language, **values: object) -> str:
    return _BUYER[key][language].format(**values)


def staff_text(key: str, **values: object) -> str:
    return STAFF[key].format(**values)
