"""Canned replies for staff (``/t <name>``), read from a TOML file in the project (``replies.toml``)."""

from __future__ import annotations

import html
import tomllib
from dataclasses import dataclass
from pathlib import Path

from bot.i18n import Language

DEFAULT_FILE = Path(__file__).with_name("replies.toml")


@dataclass(frozen=True, slots=True)
class CannedReply:
    name: str
    title: str
    texts: dict[Language, str]

    def text(self, language: Language) -> str:
        return self.texts.get(language) or self.texts["zh"]


class CannedReplies:
    def __init__(self, replies: dict[str, CannedReply]) -> None:
        self._replies = replies

    @classmethod
    def load(cls, path: Path = DEFAULT_FILE) -> CannedReplies:
        """Read and check the file; a malformed one fails at start with a clear message (ValueError)."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"canned replies file {path} unreadable: {exc}") from exc
        replies: dict[str, CannedReply] = {}
        for name, entry in data.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("zh"), str) or not entry["zh"].strip():
                raise ValueError(f"canned reply [{name}] in {path} needs a zh text")
            en = entry.get("en")
            texts: dict[Language, str] = {"zh": entry["zh"].strip()}
            if isinstance(en, str) and en.strip():
                texts["en"] = en.strip()
            replies[name.lower()] = CannedReply(name.lower(), str(entry.get("title") or name), texts)
        return cls(replies)

    def get(self, name: str) -> CannedReply | None:
        return self._replies.get(name.strip().lower())

    def listing(self) -> str:
        """The staff-facing list (Telegram HTML)."""
        lines = [
            f"<code>/t {html.escape(r.name)}</code> · {html.escape(r.title)}" for r in self._replies.values()
        ]
        return "📋 快捷回复（按买家语言发送）：\n" + "\n".join(lines) if lines else "（没有快捷回复）"
