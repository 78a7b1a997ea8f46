"""What must not leak: personal data masked for human eyes, secrets removed from every log record.

One masking function (``mask_personal_data``) for everything stored or shown for humans: the conversation log,
ticket summaries, escalations sent to the platform, merchant and agent views. The platform keeps the real
values in its orders; we keep only what a person needs to recognise them (``138****8000``).

``SecretRedactor`` is a ``logging.Filter`` that every process installs in its composition root
(``install_log_redaction``): bot token (also inside ``/bot<token>/`` URLs), API keys, webhook secrets and
shared tokens never reach a log line, whether in the message, its arguments or an exception's traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any, Final

MASKED_SECRET: Final = "••••••"
REDACTED: Final = "[redacted]"

# labelled secrets: "卡密：XXXX", "card code: XXXX", "password=XXXX"
_SECRET_LABEL: Final = re.compile(
    r"((?<![A-Za-z])(?:卡密|密码|密钥|激活码|兑换码|充值码|card\s*secret|card\s*code|card\s*pin|password|passcode"
    r"|pin|code)\s*(?:[:：=]|是|为|is\b)\s*)([A-Za-z0-9][A-Za-z0-9\-]{3,})",
    re.IGNORECASE,
)
# dashed card codes: ABCD-EFGH-JKLM-NPQR
_DASHED_CODE: Final = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{4,}(?:-[A-Za-z0-9]{4,}){2,}(?![A-Za-z0-9])")
# long undashed codes that mix letters and digits (16+, card PIN length; ticket ids such as ES3F9A0C1B2D4E
# are shorter and stay readable): X7KQ9M2PLT4W8ZRB
_LONG_CODE: Final = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{16,}(?![A-Za-z0-9])")
# order ids and similar references stay readable: a letter prefix then digits only (KM20261127001)
_REFERENCE: Final = re.compile(r"[A-Za-z]{1,6}\d+")
_PHONE: Final = re.compile(r"(?<![0-9])(\+?86[ -]?)?(1[3-9][0-9])[ -]?[0-9]{4}[ -]?([0-9]{4})(?![0-9])")
_EMAIL: Final = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*(@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
# account numbers: 7+ digits not glued to letters (QQ numbers, game UIDs, bank-like numbers)
_LONG_NUMBER: Final = re.compile(r"(?<![0-9A-Za-z])(\d{3})(\d{2,})(\d{2})(?![0-9A-Za-z])")


def _is_card_code(token: str) -> bool:
    if _REFERENCE.fullmatch(token):
        return False
    letters = sum(char.isalpha() for char in token)
    digits = sum(char.isdigit() for char in token)
    return letters >= 3 and digits >= 3


def mask_secrets(text: str) -> str:
    """Card secrets only: labelled ones, dashed codes, long mixed letter-digit codes."""
    text = _SECRET_LABEL.sub(lambda m: m.group(1) + MASKED_SECRET, text)
    text = _DASHED_CODE.sub(MASKED_SECRET, text)
    return _LONG_CODE.sub(lambda m: MASKED_SECRET if _is_card_code(m.group(0)) else m.group(0), text)


def mask_phones_and_emails(text: str) -> str:
    """Phone numbers → ``138****8000`` (with +86 and separators), e-mail addresses → ``a***@example.com``."""
    text = _PHONE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(3)}", text)
    return _EMAIL.sub(r"\1***\2", text)


def mask_personal_data(text: str) -> str:
    """Everything stored or shown for humans: card secrets, phones, e-mails and account numbers masked.

    Order ids such as ``KM20261127001`` stay readable (digits glued to letters are left alone).
    """
    text = mask_phones_and_emails(mask_secrets(text))
    return _LONG_NUMBER.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)


# --------------------------------------------------------------------------------------- log redaction

# anything shaped like a Telegram bot token, even one this process was not told about
_BOT_TOKEN: Final = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")


class SecretRedactor(logging.Filter):
    """Replaces every known secret (and anything shaped like a bot token) by ``[redacted]`` in a record."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        # longest first, so a secret containing another is removed whole; short values would redact noise
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return _BOT_TOKEN.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what we can, redacted
            message = f"{record.msg!r} {record.args!r}"
        redacted = self.redact(message)
        if (
            redacted != message
        ):  # untouched records keep their args (some formatters, e.g. uvicorn's, read them)
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        # the formatted (and redacted) traceback is what handlers print; the live exception, which any
        # handler could format again with the secret in it, is dropped from the record
        record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        record._redacted = True
        return True


def install_log_redaction(secrets: Iterable[str | None]) -> SecretRedactor:
    """Redact every record of this process: on the root handlers and at record creation (covers handlers
    that libraries such as uvicorn add later). Call once from the composition root, after logging is set up."""
    redactor = SecretRedactor(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)
    previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redactor.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    return redactor
