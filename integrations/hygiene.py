"""Input hygiene at the edge: text that PostgreSQL, Telegram or Rasa would refuse or misread is made safe.

- NUL and the other C0/C1 control characters (except tab and newlines) are removed: PostgreSQL refuses NUL
  in text columns, Telegram refuses some controls, none of them carry meaning in a chat message.
- Lone surrogates (``\\ud800`` sent as a JSON escape) become U+FFFD: they cannot be encoded as UTF-8, so
  PostgreSQL, Redis clients and Telegram would all fail on them. Non-characters U+FFFE/U+FFFF go too.
- Length is capped.
- ``for_rasa``: buyer text that starts with ``/`` is not passed to Rasa as ``/intent{entities}`` (Rasa reads
  such a message as that intent with confidence 1.0): the leading slashes are removed so it is understood
  as words. Only the bot's own commands and signed button payloads are sent as intents.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

MAX_TEXT_CHARS: Final = 4096  # Telegram's own limit for a message text
REPLACEMENT: Final = "\ufffd"

_CONTROLS: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
_SURROGATES: Final = re.compile("[\ud800-\udfff]")
# what Rasa strips (str.strip) before it looks for the intent prefix, then the prefix itself
_INTENT_PREFIX: Final = re.compile(r"^[\s/]*/")


def clean_text(text: str, max_chars: int | None = MAX_TEXT_CHARS) -> str:
    """``text`` without characters any of our stores or Telegram refuse, at most ``max_chars`` long."""
    text = _SURROGATES.sub(REPLACEMENT, _CONTROLS.sub("", text))
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars]
    return text


def clean_json(value: Any) -> Any:
    """Every string (keys too) of a decoded JSON value cleaned; lengths are not capped here."""
    if isinstance(value, str):
        return clean_text(value, None)
    if isinstance(value, list):
        return [clean_json(item) for item in value]
    if isinstance(value, dict):
        return {clean_text(key, None): clean_json(item) for key, item in value.items()}
    return value


def clean_json_loads(raw: str | bytes) -> Any:
    """``json.loads`` for what Telegram sends us (the aiogram session's ``json_loads``): cleaned strings."""
    return clean_json(json.loads(raw))


def for_rasa(text: str) -> str:
    """Buyer-typed text as Rasa must see it: plain words, never an ``/intent`` (see module docstring)."""
    if not _INTENT_PREFIX.match(text):
        return text
    stripped = _INTENT_PREFIX.sub("", text).lstrip("/").strip()
    # a message of slashes only still says something ("/"): keep it visible but harmless
    return stripped or text.strip().replace("/", "\uff0f")
