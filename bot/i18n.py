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
    "assistant_confused": {
        "zh": "抱歉，我没能处理这条消息。可以换个说法，或发送 /human 转人工客服。",
        "en": "Sorry, I could not handle that message. Try other words, or send /human to reach a person.",
    },
    "unsupported_content": {
        "zh": "目前我只能看懂文字消息哦～请用文字描述您的问题。",
        "en": "I can only read text messages for now - please describe your question in words.",
    },
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
