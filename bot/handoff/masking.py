"""Masking of card secrets (卡密) and phone/account numbers for merchant and agent views and for logs."""

from __future__ import annotations

import re

_PHONE = re.compile(r"(?<![0-9A-Za-z])(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_LONG_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{3})(\d{2,})(\d{2})(?!\d)")
_SECRET_LABEL = re.compile(
    r"((?:卡密|密码|激活码|兑换码|card secret|password|code)\s*[:：=]\s*)(\S+)", re.IGNORECASE
)
_CARD_CODE = re.compile(r"\b[A-Za-z0-9]{4,}(?:-[A-Za-z0-9]{4,}){2,}\b")

MASKED_SECRET = "••••••"


def mask_number(value: str) -> str:
    """``13800138000`` → ``138****8000``; other long numbers keep 3 leading and 2 trailing digits."""
    if _PHONE.fullmatch(value):
        return _PHONE.sub(r"\1****\3", value)
    if len(value) >= 7 and value.isdigit():
        return value[:3] + "*" * (len(value) - 5) + value[-2:]
    if len(value) >= 6:
        return value[:2] + "*" * (len(value) - 4) + value[-2:]
    return value[:1] + "*" * max(0, len(value) - 1)


def mask_text(text: str) -> str:
    """Mask phone numbers, long digit runs (accounts, QQ, UIDs), labelled secrets and card codes in free text.

    Order ids such as ``KM20261127001`` stay readable (digits glued to letters are left alone).
    """
    text = _SECRET_LABEL.sub(lambda m: m.group(1) + MASKED_SECRET, text)
    text = _CARD_CODE.sub(MASKED_SECRET, text)
    text = _PHONE.sub(r"\1****\3", text)
    return _LONG_NUMBER.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)
