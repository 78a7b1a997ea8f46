"""What Rasa's REST channel returns, validated before the bot renders it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_TEXT_CHARS = 20_000
MAX_BUTTONS = 40


class BotButton(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str = Field(min_length=1, max_length=200)
    payload: str = Field(min_length=1, max_length=2_000)


class BotReply(BaseModel):
    """One message the assistant wants to send (text, buttons, image or a custom payload)."""

    model_config = ConfigDict(extra="ignore")

    recipient_id: str | None = None
    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    buttons: list[BotButton] = Field(default_factory=list, max_length=MAX_BUTTONS)
    image: str | None = None
    custom: dict[str, Any] | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.text or self.buttons or self.image or self.custom)
