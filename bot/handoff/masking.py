"""Masking of card secrets (卡密) and phone/account numbers for merchant and agent views and for logs."""

from __future__ import annotations

import re

from integrations.privacy import MASKED_SECRET, mask_personal_data

__all__ = ["MASKED_SECRET", "mask_number", "mask_text"]

_PHONE = re.compile(r"(?<![0-9A-Za-z])(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


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
    """Mask phone numbers, account numbers, labelled secrets and card codes in free text (the shared rule)."""
    return mask_personal_data(text)
