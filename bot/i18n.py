"""Bot-level texts (not Rasa's): zh-CN first, English second."""

from __future__ import annotations

from typing import Literal

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")

_TEXTS: dict[str, dict[Language, str]] = {
    "assistant_unavailable": {
        "zh": "抱歉，智能客服暂时无法回复。您的消息已保存，恢复后会第一时间答复您；也可以发送 /human 转人工。",
        "en": "Sorry, the assistant cannot answer right now. Your message is saved and will be answered as "
        "soon as it is back; send /human to reach a person.",
    },
    "handed_over": {
        "zh": "抱歉让您久等了，智能客服暂时无法恢复，您的消息已转给人工客服（工单 {ticket}），客服会在这里直接回复您。",
        "en": "Sorry for the wait - the assistant is still down, so your messages went to a person (ticket {ticket}), "
        "who will reply right here.",
    },
    "handed_over_no_ticket": {
        "zh": "抱歉让您久等了，智能客服暂时无法恢复。您的消息已保存，人工客服上线后会尽快联系您；也可以发送 /human。",
        "en": "Sorry for the wait - the assistant is still down. Your messages are saved and a person will contact "
        "you as soon as possible; you can also send /human.",
    },
    "assistant_confused": {
        "zh": "抱歉，我没能处理这条消息。可以换个说法，或发送 /human 转人工客服。",
        "en": "Sorry, I could not handle that message. Try other words, or send /human to reach a person.",
    },
    "unsupported_content": {
        "zh": "目前我只能看懂文字消息哦～请用文字描述您的问题。",
        "en": "I can only read text messages for now - please describe your question in words.",
    },
    "linked": {
        "zh": "✅ 绑定成功！现在可以直接问我您的订单了。",
        "en": "✅ Linked! You can ask me about your orders now.",
    },
    "token_unknown": {
        "zh": "这个绑定链接无效。请回到平台「我的-客服」页面重新获取绑定链接。",
        "en": "This link is not valid. Please get a new one from 'My account → Support' on the platform.",
    },
    "invalid": {
        "zh": "这个绑定链接无效。请回到平台「我的-客服」页面重新获取绑定链接。",
        "en": "This link is not valid. Please get a new one from 'My account → Support' on the platform.",
    },
    "token_expired": {
        "zh": "绑定链接已过期（有效期 15 分钟）。请在平台上重新获取一个。",
        "en": "This link has expired (links last 15 minutes). Please get a new one on the platform.",
    },
    "token_used": {
        "zh": "这个绑定链接已经用过了。如果不是您本人操作，请联系平台客服。",
        "en": "This link was already used. If that was not you, please contact platform support.",
    },
    "unavailable": {
        "zh": "暂时无法完成绑定，请稍后再点一次链接。",
        "en": "Linking is not possible right now; please open the link again in a moment.",
    },
    "attachment_kept": {
        "zh": "收到，图片/文件已保存到本次对话，转人工时客服会看到。请再用文字说明一下遇到的问题～",
        "en": "Got it - the file is saved with this conversation and a person will see it if you are handed over. "
        "Please also tell me in words what the problem is.",
    },
    "lang_menu": {"zh": "请选择语言 / Choose a language:", "en": "Choose a language / 请选择语言:"},
    "lang_set": {"zh": "好的，之后用中文为您服务。", "en": "OK, I'll answer in English from now on."},
    "button_expired": {
        "zh": "这个按钮已过期，请重新发送您的问题。",
        "en": "This button has expired, please ask again.",
    },
}


def language_from_telegram(language_code: str | None) -> Language:
    """Chinese unless the buyer's Telegram speaks another language (then English)."""
    if not language_code:
        return "zh"
    return "zh" if language_code.lower().startswith("zh") else "en"


def text(key: str, language: Language) -> str:
    return _TEXTS[key][language]
