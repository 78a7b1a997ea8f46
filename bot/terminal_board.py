"""Button numbers shared by the buyer's terminal chat and the staff terminal (no aiogram import here, so
``make demo-staff`` starts fast)."""

from __future__ import annotations

from collections import OrderedDict

Buttons = list[list[tuple[str, str]]]
"""Rows of (title, callback data)."""


class ButtonBoard:
    """Numbers the buttons of recent messages so each ``#N`` names exactly one button.

    Numbers only grow; a message whose keyboard changes gets new numbers (its old ones stop working), and
    only the keyboards of the last ``keep`` messages stay pressable.
    """

    def __init__(self, keep: int = 30) -> None:
        self._keep = keep
        self._next = 1
        self._numbers: dict[int, tuple[int, int, str]] = {}
        self._by_message: OrderedDict[tuple[int, int], list[int]] = OrderedDict()

    def number(self, chat_id: int, message_id: int, rows: Buttons | None) -> str | None:
        """Register a message's keyboard (None removes it); the line showing its numbered buttons."""
        self.clear(chat_id, message_id)
        if not rows:
            return None
        numbers: list[int] = []
        shown: list[str] = []
        for row in rows:
            for title, data in row:
                number, self._next = self._next, self._next + 1
                self._numbers[number] = (chat_id, message_id, data)
                numbers.append(number)
                shown.append(f"[#{number}] {title}")
        self._by_message[(chat_id, message_id)] = numbers
        while len(self._by_message) > self._keep:
            _, old = self._by_message.popitem(last=False)
            for number in old:
                self._numbers.pop(number, None)
        return "  ".join(shown)

    def clear(self, chat_id: int, message_id: int) -> None:
        for number in self._by_message.pop((chat_id, message_id), []):
            self._numbers.pop(number, None)

    def press(self, number: int) -> tuple[int, int, str] | None:
        """(chat id, message id, callback data) of button ``number``, if it is still there."""
        return self._numbers.get(number)
