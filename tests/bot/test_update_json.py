"""Updates are stored as Telegram's JSON before they are processed (bot/receiving.py)."""

from __future__ import annotations

from aiogram.client.default import Default
from aiogram.types import Update

from bot.receiving import update_json


def test_a_button_press_on_the_bots_own_message_is_stored_and_read_back() -> None:
    """The poller stopped at the first button press: the bot's message in a callback query carries aiogram's
    ``Default`` markers, which JSON serialisation refused."""
    update = Update.model_validate(
        {
            "update_id": 5,
            "callback_query": {
                "id": "1",
                "from": {"id": 1, "is_bot": False, "first_name": "a"},
                "chat_instance": "x",
                "data": "lang:en",
                "message": {
                    "message_id": 3,
                    "date": 1700000000,
                    "chat": {"id": 1, "type": "private"},
                    "text": "hi",
                },
            },
        }
    )
    assert update.callback_query is not None and update.callback_query.message is not None
    update.callback_query.message.__dict__["link_preview_options"] = Default("link_preview")
    stored = update_json(update)
    assert "link_preview_options" not in stored["callback_query"]["message"]
    again = Update.model_validate(stored)
    assert again.callback_query is not None
    assert again.callback_query.data == "lang:en"
    assert stored["callback_query"]["from"]["id"] == 1
