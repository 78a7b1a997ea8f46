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
    "order_not_cancellable": {
        "zh": "订单 {order_id} 当前状态是「{state}」，已无法取消。{hint}",
        "en": "Order {order_id} is {state} and can no longer be cancelled. {hint}",
    },
    "hint_delivered": {
        "zh": "如果实际没有到账，请点「转人工」，我们会核实处理。",
        "en": "If it did not actually arrive, tap 'Talk to a person' and we will check.",
    },
    "hint_closed": {"zh": "", "en": ""},
    "ask_cancel_reason": {
        "zh": "可以告诉我为什么要取消订单 {order_id} 吗？很多问题不用取消就能解决 👇",
        "en": "May I ask why you want to cancel order {order_id}? Many problems can be fixed without cancelling 👇",
    },
    "offer_fix_account": {
        "zh": "账号填错不用取消订单哦！订单还没到账（{state}），我可以帮您直接把充值账号改成正确的，马上就能按新账号充值。改账号就行吗？（也可以直接发新账号给我）",
        "en": "No need to cancel for a wrong account! The order is not delivered yet ({state}), so I can change the recharge account right now. Fix it instead? (You can also just send me the new account.)",
    },
    "offer_fix_region": {
        "zh": "区服选错不用取消订单哦！订单还没到账（{state}），我可以帮您直接改成正确的区服/地区。要修改吗？",
        "en": "No need to cancel for a wrong region! The order is not delivered yet ({state}), so I can change the region/server right now. Fix it instead?",
    },
    "offer_wait": {
        "zh": "{promise}\n而且有超时全额退款保障：超过承诺时间没到账，{amount} 会自动原路退回，不用申请，也不会有损失。要继续等待吗？",
        "en": "{promise}\nAnd the full-refund guarantee applies: if it misses the promised time, {amount} comes back automatically - no request, no loss. Keep the order?",
    },
    "offer_payment_help": {
        "zh": "付款的问题通常不用取消订单就能解决：余额不足可以充值后继续支付；验证码延迟请等 60 秒后重新获取；支付页报错可换一种支付方式再试；已扣款但订单未更新，请先等平台确认，不要重复付款。要保留订单，按上面的方法再试一次吗？",
        "en": "Payment problems can usually be solved without cancelling: top up and pay again if the balance was short; wait 60 s and request a new SMS code; try another payment method if the page failed; if you were charged but the order did not update, wait for the platform to confirm it and do not pay twice. Keep the order and try again?",
    },
    "cancelled": {
        "zh": "已为您取消订单 {order_id}（原因：{reason}）。{refund}",
        "en": "Order {order_id} is cancelled (reason: {reason}).{refund}",
    },
    # joins the sentence before it: English carries its own leading space, Chinese needs none
    "cancel_refund_paid": {
        "zh": "已付款项 {amount} 会原路退回，一般几分钟内到账。",
        "en": " The {amount} you paid goes back to your payment method, usually within minutes.",
    },
    "cancel_restore_hint": {
        "zh": "如果是误操作，{until} 前可以说「恢复订单」找回。",
        "en": "Cancelled by mistake? Say 'restore my order' before {until}.",
    },
    "cancelled_merchant_fault": {
        "zh": "非常抱歉给您带来不便 🙏 订单 {order_id} 已按「{reason}」取消，{refund}这个问题我们会记录在商家的履约评分里。需要的话可以转人工，平台客服会跟进处理。",
        "en": "We're very sorry 🙏 Order {order_id} is cancelled as '{reason}'.{refund} This counts against the seller's fulfilment score. Tap below if you want a person to follow up.",
    },
    "kept": {
        "zh": "好的，订单 {order_id} 继续为您处理，有进展我会第一时间通知您 👍",
        "en": "Great, order {order_id} stays active - I'll let you know as soon as it moves 👍",
    },
    "ask_fix_field": {
        "zh": "订单 {order_id} 要改哪一项？",
        "en": "What should be changed on order {order_id}?",
    },
    "ask_account": {
        "zh": "请发送正确的{what}（当前是 {current}）。",
        "en": "Please send the correct {what} (now: {current}).",
    },
    "ask_region": {
        "zh": "请发送正确的{what}（当前是 {current}），例如：{examples}。",
        "en": "Please send the correct {what} (now: {current}), e.g. {examples}.",
    },
    "ask_fix_confirm": {
        "zh": "请核对：订单 {order_id} 的{what}\n从「{old}」改为「{new}」\n确认修改吗？",
        "en": "Please check: order {order_id}, {what}\nfrom '{old}' to '{new}'\nChange it?",
    },
    "invalid_account": {
        "zh": "「{value}」不是有效的{what}，{rule}请重新发送。",
        "en": "'{value}' is not a valid {what}: {rule} Please send it again.",
    },
    "fixed": {
        "zh": "✅ 已修改：订单 {order_id} 的{what}现在是「{new}」（原为「{old}」），将按新信息充值。{promise}",
        "en": "✅ Done: order {order_id} now has {what} '{new}' (was '{old}') and will be recharged to it. {promise}",
    },
    "fix_cancelled": {
        "zh": "好的，没有修改订单 {order_id}。",
        "en": "OK, order {order_id} was not changed.",
    },
    "not_fixable": {
        "zh": "订单 {order_id} 当前状态是「{state}」，充值信息已不能修改。{hint}",
        "en": "Order {order_id} is {state}; its recharge details can no longer be changed. {hint}",
    },
    "fix_refused": {
        "zh": "平台没有接受这个修改：{reason}",
        "en": "The platform refused the change: {reason}",
    },
    "ask_restore_confirm": {
        "zh": "订单 {order_id}（{product}，{amount}）于 {cancelled_at} 取消，{until} 前可以恢复。恢复后会重新扣款并继续充值，确认恢复吗？",
        "en": "Order {order_id} ({product}, {amount}) was cancelled at {cancelled_at} and can be restored until {until}. Restoring charges it again and continues the recharge. Restore it?",
    },
    "not_restorable_state": {
        "zh": "订单 {order_id} 当前状态是「{state}」，不是已取消的订单，不需要恢复。",
        "en": "Order {order_id} is {state}, not cancelled - nothing to restore.",
    },
    "restore_window_passed": {
        "zh": "订单 {order_id} 已超过恢复期限（{until} 截止），无法恢复了。可以重新下单，或转人工看看有没有办法。",
        "en": "Order {order_id} is past its restore window (ended {until}). You can place it again, or ask a person.",
    },
    "restored": {
        "zh": "✅ 订单 {order_id} 已恢复，状态：{state}。{promise}",
        "en": "✅ Order {order_id} is restored, now {state}. {promise}",
    },
    "restore_refused": {
        "zh": "订单 {order_id} 没能恢复：{reason}",
        "en": "Order {order_id} could not be restored: {reason}",
    },
    "restore_declined": {
        "zh": "好的，订单 {order_id} 保持取消状态。",
        "en": "OK, order {order_id} stays cancelled.",
    },
    "ask_payment_issue": {
        "zh": "付款遇到了哪种问题？",
        "en": "What went wrong with the payment?",
    },
    "payment_balance": {
        "zh": "余额不足时订单会保留 15 分钟：充值余额或换用支付宝/微信/银行卡后，在「我的订单」里点「继续支付」即可，不用重新下单。",
        "en": "An unpaid order is kept for 15 minutes: top up or switch to another payment method, then tap 'Continue payment' in My orders - no need to order again.",
    },
    "payment_sms_code": {
        "zh": "验证码一般 1 分钟内到达：请确认手机号正确、没有被拦截（查看垃圾短信），60 秒后可重新获取；多次收不到可以换一种支付方式。",
        "en": "SMS codes usually arrive within a minute: check the phone number and your spam folder, request a new one after 60 s, or pay another way.",
    },
    "payment_gateway": {
        "zh": "支付页面报错多是通道临时波动：请稍等 1-2 分钟重试，或换一种支付方式。只要没扣款就不会有损失；如果已经扣款，请不要重复付款，等平台确认后订单会自动继续，没确认的话点下面转人工核实。",
        "en": "A payment-page error is usually a brief gateway hiccup: retry in 1-2 minutes or use another method. Nothing is lost if you were not charged; if you were, do not pay again - the order continues once the platform confirms the payment, and a person can check it if it does not.",
    },
    "payment_charged_no_order": {
        "zh": "扣款成功但订单没更新，一般是支付通知延迟：请不要重复付款，平台确认后订单会自动继续，我也会通知您。如果一直没确认，点下面转人工，客服会核实这笔扣款。{order}",
        "en": "Charged but the order did not update: the payment notice is delayed. Please do not pay again - the order continues once the platform confirms it, and I'll tell you. If it is never confirmed, tap below and a person will check the charge. {order}",
    },
    "payment_other": {
        "zh": "付款问题我记下了。常见情况：余额不足可充值后继续支付；验证码延迟请 60 秒后重新获取；支付页报错请换一种方式；已扣款但订单没更新时不要重复付款，等平台确认。没解决的话点下面转人工。",
        "en": "Noted. Usual fixes: top up and continue paying; request a new SMS code after 60 s; try another payment method; if you were charged but the order did not update, do not pay again and wait for the platform to confirm. Still stuck? Tap below for a person.",
    },
    "sla_intro": {
        "zh": "现在下单的承诺到账时间：",
        "en": "Promised arrival times for orders placed now:",
    },
    "sla_outro": {
        "zh": "超过承诺时间未到账的订单，系统自动全额退款，原路退回。",
        "en": "An order that misses its promised time is refunded in full automatically.",
    },
    "guarantee_terms": {
        "zh": "超时全额退款保障：订单未在承诺时间内到账，系统自动全额退款，原路退回，无需申请。余额/支付宝/微信一般几分钟内到账，银行卡 1-3 个工作日。",
        "en": "Full-refund guarantee: if an order is not delivered by its promised time, the whole amount is refunded automatically to the original payment method - no request needed. Wallets get it within minutes, bank cards in 1-3 working days.",
    },
    "guarantee_not_due": {
        "zh": "订单 {order_id} 还在承诺时间内（{by} 前到账），暂不触发退款；如果到 {by} 仍未到账，会自动全额退款 {amount}，无需申请。",
        "en": "Order {order_id} is still within its promised time (due by {by}); if it is not delivered by then, {amount} is refunded automatically - no request needed.",
    },
    "refund_delivered": {
        "zh": "订单 {order_id} 已到账，虚拟商品到账后不支持直接退款。如果实际没收到或有问题，请转人工，我们会核实后处理。",
        "en": "Order {order_id} was delivered; delivered virtual goods cannot be refunded directly. If it did not actually arrive or is wrong, talk to a person and we will check.",
    },
    "refund_in_progress": {
        "zh": "订单 {order_id} 还在处理中（{promise}）。两种选择：继续等待——超时会自动全额退款；或者取消订单，款项原路退回。",
        "en": "Order {order_id} is still in progress ({promise}). Either wait - if it runs late the refund is automatic - or cancel it and get your money back.",
    },
    "refund_already": {
        "zh": "订单 {order_id} 已经退款（{state}），{amount} 已原路退回。",
        "en": "Order {order_id} is already refunded ({state}); {amount} went back to your payment method.",
    },
    "refund_requested": {
        "zh": "已为订单 {order_id} 提交退款申请（编号 {request_id}，状态：{state}），审核通过后原路退回。",
        "en": "Refund requested for order {order_id} (no. {request_id}, {state}); it goes back to your payment method once approved.",
    },
    "refund_not_needed": {
        "zh": "订单 {order_id} 还没付款，不需要退款；不想要的话直接取消即可。",
        "en": "Order {order_id} is not paid yet, so there is nothing to refund; you can simply cancel it.",
    },
    "merchant_score": {
        "zh": "订单 {order_id} 的商家「{name}」近 {days} 天履约情况（{orders} 单）：取消率 {cancel_rate}，到账时间中位数 {arrival}，响应速度中位数 {response}，综合评级 {grade}。{verdict}",
        "en": "Seller '{name}' of order {order_id}, last {days} days ({orders} orders): cancel rate {cancel_rate}, median arrival {arrival}, median response {response}, grade {grade}. {verdict}",
    },
    "verdict_good": {"zh": "整体很靠谱 👍", "en": "A reliable seller 👍"},
    "verdict_ok": {
        "zh": "表现中等，有问题可以随时找我。",
        "en": "Average - ask me any time if something goes wrong.",
    },
    "verdict_bad": {
        "zh": "表现偏弱；您的订单仍受超时全额退款保障。",
        "en": "Below average; your order is still covered by the full-refund guarantee.",
    },
    "no_data": {"zh": "暂无数据", "en": "no data"},
    "escalated": {
        "zh": "已为您转人工（工单 {ticket}）。{who}会在这个对话里直接回复您，一般 10 分钟内；期间您可以继续发送截图或补充说明。",
        "en": "A person is on the way (ticket {ticket}). {who} will reply right here, usually within 10 minutes; meanwhile you can send screenshots or details.",
    },
    "who_merchant": {"zh": "商家客服", "en": "The seller's support"},
    "who_agent": {"zh": "平台客服", "en": "A platform agent"},
    "escalation_failed": {
        "zh": "转人工暂时没有成功，我已记录您的问题，会尽快重试并通知您；也可以稍后再发送 /human。",
        "en": "The handover did not go through just now. Your request is noted and will be retried; you can also send /human again later.",
    },
    "clarify": {
        "zh": "抱歉，我不太确定您的意思。您是想：",
        "en": "Sorry, I'm not sure what you mean. Did you want to:",
    },
    "out_of_scope": {
        "zh": "这个我帮不上忙哦 😅 我只能处理本平台的订单问题：查进度、到账时间、退款、改充值账号/区服、恢复订单。",
        "en": "I can't help with that, sorry 😅 I handle orders on this marketplace: status, arrival time, refunds, fixing an account or region, restoring an order.",
    },
    "out_of_scope_again": {
        "zh": "看来我没能帮到您 😥 如果是订单相关的问题，可以转人工客服帮您看看：",
        "en": "Looks like I couldn't help 😥 If it is about an order, a person can take a look:",
    },
    "clarify_again": {
        "zh": "抱歉，我还是没理解 😥 要不要转人工客服帮您处理？",
        "en": "Sorry, I still don't understand 😥 Shall I get a person to help you?",
    },
    "ask_cancel_confirm": {
        "zh": "请确认：取消订单 {order_id}（{product}，{amount}）吗？{refund}",
        "en": "Please confirm: cancel order {order_id} ({product}, {amount})?{refund}",
    },
    # joins the sentence before it: English carries its own leading space, Chinese needs none
    "confirm_refund_note": {
        "zh": "取消后已付的 {amount} 原路退回。",
        "en": " The {amount} you paid goes back to your payment method.",
    },
    "refund_overdue_plain": {
        "zh": "超时退款 {amount} 原定 {due} 前到账，现在已经晚了，可以点「转人工」让客服马上跟进。",
        "en": "The {amount} refund was due by {due} and is late; tap 'Talk to a person' to have it followed up now.",
    },
    "offer_wait_overdue": {
        "zh": "不取消也不会有损失。要继续等待吗？",
        "en": "Keeping the order costs you nothing. Keep waiting?",
    },
    "kept_undecided": {
        "zh": "我先为您保留订单 {order_id}，它会继续处理。如果还是想取消，直接说「取消订单」就行。",
        "en": "I'll keep order {order_id} for now; it goes on being processed. If you still want to cancel, just say 'cancel my order'.",
    },
    "cancel_unconfirmed": {
        "zh": "订单 {order_id} 没有取消成功，平台显示当前状态是「{state}」。我没有改动它；需要的话点下面转人工处理。",
        "en": "Order {order_id} was not cancelled: the platform shows it as {state}. Nothing was changed; tap below if you want a person to look at it.",
    },
    "fix_unconfirmed": {
        "zh": "平台没有确认这次修改，订单 {order_id} 目前登记的仍是「{current}」。我没有改动它；请稍后再试，或点下面转人工。",
        "en": "The platform did not confirm the change: order {order_id} still shows '{current}'. Nothing was changed; try again later or tap below for a person.",
    },
    "restore_unconfirmed": {
        "zh": "订单 {order_id} 没有恢复成功，平台显示它仍是已取消状态。需要的话点下面转人工处理。",
        "en": "Order {order_id} was not restored: the platform still shows it as cancelled. Tap below if you want a person to look at it.",
    },
    "flow_stopped_order": {
        "zh": "好的，已停下，订单 {order_id} 没有任何改动。还有别的需要随时说～",
        "en": "OK, stopped - nothing was changed on order {order_id}. Anything else, just ask.",
    },
    "flow_stopped": {
        "zh": "好的，已停下，没有做任何改动。还有别的需要随时说～",
        "en": "OK, stopped - nothing was changed. Anything else, just ask.",
    },
    "flow_unclear_order": {
        "zh": "抱歉我没能理解，先不动订单 {order_id}。您可以换个说法再告诉我，或者点下面转人工。",
        "en": "Sorry, I didn't get that, so I left order {order_id} as it is. Tell me again in other words, or tap below for a person.",
    },
    "flow_unclear": {
        "zh": "抱歉我没能理解，先停在这里，没有做任何改动。您可以换个说法再告诉我，或者点下面转人工。",
        "en": "Sorry, I didn't get that, so I stopped here without changing anything. Tell me again in other words, or tap below for a person.",
    },
    "repair_unclear": {
        "zh": "抱歉，我没太明白您的意思 🙏",
        "en": "Sorry, I didn't quite get that 🙏",
    },
    "reason_unclear": {
        "zh": "没关系，不方便细说也可以——点一个最接近的原因就好，都不是就选「其他原因」。",
        "en": "No problem if you'd rather not go into it - just tap the closest reason below, or 'Other reason'.",
    },
    "cancel_or_stop": {
        "zh": "您是想取消订单 {order_id}，还是不改了、保留订单？",
        "en": "Do you want to cancel order {order_id}, or stop here and keep it as it is?",
    },
    "did_you_mean": {
        "zh": "没找到「{typed}」这个订单号，您是指下面这笔吗？",
        "en": "I couldn't find '{typed}'. Did you mean this order?",
    },
    "digress_greet": {"zh": "您好～", "en": "Hi!"},
    "digress_thank": {"zh": "不客气～", "en": "You're welcome!"},
    "anything_else": {
        "zh": "好的～还有什么可以帮您？",
        "en": "OK! Anything else I can help with?",
    },
    "bot_identity": {
        "zh": "我是平台的智能客服机器人 🤖，可以马上帮您查订单、改充值账号/区服、取消或恢复订单。需要真人客服的话，点下面的按钮或发送 /human。",
        "en": "I'm the marketplace's support bot 🤖 - I can check orders, fix an account or region, cancel or restore an order right away. For a real person, tap below or send /human.",
    },
    "handoff_none": {
        "zh": "您目前没有等待人工的工单。需要真人客服的话点下面按钮，我马上为您转接。",
        "en": "You have no request waiting for a person right now. Tap below and I'll get one for you.",
    },
    "handoff_waiting": {
        "zh": "您的工单 {ticket} 状态：{state}，已等待 {waited}，前面还有 {ahead} 个工单在排队。{who}会在这个对话里直接回复您。",
        "en": "Your ticket {ticket}: {state}, waiting for {waited}, {ahead} ahead of you in the queue. {who} will reply right here.",
    },
    "ticket_open": {"zh": "已创建，正在分配", "en": "opened, being assigned"},
    "ticket_merchant_notified": {"zh": "已通知商家", "en": "the seller has been notified"},
    "ticket_agent_assigned": {"zh": "平台客服已接手", "en": "a platform agent has it"},
    "ticket_reused": {
        "zh": "这笔订单已经有一个人工工单（{ticket}）在处理中，我已把您的新消息补充进去，{who}会在这里回复您。",
        "en": "There is already a ticket for this order ({ticket}); I've added your new message to it. {who} will reply right here.",
    },
    "sla_intro_all": {
        "zh": "各类商品的承诺到账时间（以平台规则为准）：",
        "en": "Promised arrival times by product (the platform's rules):",
    },
    "sla_intro_kind": {
        "zh": "承诺到账时间（以平台规则为准）：",
        "en": "Promised arrival time (the platform's rules):",
    },
    "sla_day": {"zh": "白天", "en": "daytime"},
    "sla_night": {"zh": "夜间 23:00–07:00", "en": "at night (23:00-07:00)"},
    "refund_overdue": {
        "zh": "订单 {order_id} 的超时退款原定 {due} 前到账，现在已经晚了，这不应该发生。我已为您转人工跟进，{amount} 的退款会优先处理。",
        "en": "The refund for order {order_id} was due by {due} and is late - that should not happen. I've asked a person to follow up; your {amount} refund gets priority.",
    },
}

BUTTONS: dict[str, dict[Language, str]] = {
    "arrival_time": {"zh": "多久到账", "en": "When will it arrive"},
    "refund_guarantee": {"zh": "超时退款保障", "en": "Refund guarantee"},
    "human": {"zh": "转人工", "en": "Talk to a person"},
    "cancel_anyway": {"zh": "仍要取消", "en": "Cancel anyway"},
    "keep_waiting": {"zh": "不取消了，继续等", "en": "Keep the order"},
    "fix_account": {"zh": "改充值账号", "en": "Fix the account"},
    "fix_region": {"zh": "改区服/地区", "en": "Fix the region"},
    "yes_change": {"zh": "确认修改", "en": "Yes, change it"},
    "no_change": {"zh": "先不改", "en": "No"},
    "yes_restore": {"zh": "确认恢复", "en": "Yes, restore it"},
    "no_restore": {"zh": "不用了", "en": "No"},
    "cancel_order": {"zh": "取消订单", "en": "Cancel the order"},
    "rephrase": {"zh": "我换个说法", "en": "I'll rephrase"},
    "yes_cancel": {"zh": "确认取消", "en": "Yes, cancel it"},
    "keep_and_pay": {"zh": "保留订单，我再试试", "en": "Keep it, I'll try again"},
    "stop_here": {"zh": "不改了，保留订单", "en": "Stop, keep the order"},
    "none_of_these": {"zh": "都不是", "en": "None of these"},
}

# Buyer-facing labels of DESIGN.md's 12 cancel reason tags (button titles and payloads).
CANCEL_REASON_LABELS: dict[str, dict[Language, str]] = {
    "wrong_account": {"zh": "充值账号填错了", "en": "Wrong recharge account"},
    "wrong_region": {"zh": "区服/地区选错了", "en": "Wrong region or server"},
    "arrival_too_slow": {"zh": "到账太慢/怕不到账", "en": "Too slow / may not arrive"},
    "payment_problem": {"zh": "付款遇到问题", "en": "Payment problem"},
    "user_mistake": {"zh": "下错单了", "en": "Ordered by mistake"},
    "duplicate_order": {"zh": "重复下单", "en": "Duplicate order"},
    "demand_changed": {"zh": "不想要了", "en": "Don't need it now"},
    "found_cheaper": {"zh": "别家更便宜", "en": "Found it cheaper"},
    "unclear_description": {"zh": "商品描述不清楚", "en": "Description unclear"},
    "merchant_out_of_stock": {"zh": "商家说没货", "en": "Seller out of stock"},
    "merchant_malicious": {"zh": "商家不诚信", "en": "Seller acting in bad faith"},
    "other": {"zh": "其他原因", "en": "Other reason"},
}

PAYMENT_ISSUE_LABELS: dict[str, dict[Language, str]] = {
    "balance": {"zh": "余额不足", "en": "Insufficient balance"},
    "sms_code": {"zh": "收不到验证码", "en": "SMS code late"},
    "gateway": {"zh": "支付页面报错", "en": "Payment page error"},
    "charged_no_order": {"zh": "扣款了但没订单", "en": "Charged, no order"},
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


INTENT_LABELS: dict[str, dict[Language, str]] = {
    "order_status": {"zh": "查订单进度", "en": "Check an order"},
    "arrival_time": {"zh": "问到账时间", "en": "Arrival time"},
    "refund_guarantee": {"zh": "超时退款保障", "en": "Refund guarantee"},
    "cancel_order": {"zh": "取消订单", "en": "Cancel an order"},
    "wrong_account": {"zh": "改充值账号", "en": "Fix the account"},
    "wrong_region": {"zh": "改区服/地区", "en": "Fix the region"},
    "restore_order": {"zh": "恢复已取消订单", "en": "Restore an order"},
    "payment_problem": {"zh": "付款问题", "en": "Payment problem"},
    "request_refund": {"zh": "申请退款", "en": "Request a refund"},
    "merchant_rating": {"zh": "商家靠不靠谱", "en": "Is the seller reliable"},
    "complain": {"zh": "投诉", "en": "Complain"},
    "human_handoff": {"zh": "转人工", "en": "Talk to a person"},
}

ACCOUNT_WHAT: dict[str, dict[Language, str]] = {
    "phone_topup": {"zh": "充值手机号", "en": "phone number"},
    "game_card": {"zh": "游戏账号（UID/QQ号）", "en": "game account (UID or QQ number)"},
    "membership": {"zh": "会员账号（手机号/QQ号/邮箱）", "en": "membership account (phone, QQ or e-mail)"},
}
REGION_WHAT: dict[str, dict[Language, str]] = {
    "phone_topup": {"zh": "号码归属地和运营商", "en": "carrier area"},
    "game_card": {"zh": "游戏区服", "en": "game region/server"},
    "membership": {"zh": "地区", "en": "region"},
}
REGION_EXAMPLES: dict[str, str] = {
    "phone_topup": "广东移动、北京联通、上海电信",
    "game_card": "安卓QQ区、安卓微信区、iOS QQ区、iOS微信区",
    "membership": "国服、港服",
}
ACCOUNT_RULES: dict[str, dict[Language, str]] = {
    "phone_topup": {
        "zh": "手机号是 1 开头的 11 位数字。",
        "en": "a mobile number is 11 digits starting with 1.",
    },
    "game_card": {"zh": "游戏 UID 或 QQ 号是 5-12 位数字。", "en": "a game UID or QQ number is 5-12 digits."},
    "membership": {
        "zh": "请填手机号、QQ 号或邮箱。",
        "en": "use a mobile number, QQ number or e-mail address.",
    },
}
