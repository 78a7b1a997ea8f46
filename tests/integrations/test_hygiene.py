"""Text PostgreSQL, Telegram or Rasa would refuse or misread is made safe at the edge."""

from __future__ import annotations

import json

import pytest

from integrations.hygiene import MAX_TEXT_CHARS, clean_json_loads, clean_text, for_rasa


def test_nul_controls_and_lone_surrogates_are_removed() -> None:
    raw = "我的手机13912340000\x00\x07 ok\ud800\tline\nnext\r\ufffe"
    cleaned = clean_text(raw)
    assert cleaned == "我的手机13912340000 ok\ufffd\tline\nnext\r"
    cleaned.encode("utf-8")  # encodable: PostgreSQL, Redis and Telegram accept it


def test_emoji_and_chinese_survive_and_length_is_capped() -> None:
    assert clean_text("到账了吗😀？") == "到账了吗😀？"
    assert len(clean_text("啊" * (MAX_TEXT_CHARS + 50))) == MAX_TEXT_CHARS
    assert clean_text("abc", max_chars=None) == "abc"


def test_telegram_json_is_cleaned_as_it_is_decoded() -> None:
    raw = json.dumps(
        {"update_id": 1, "message": {"text": "hi\x00 \ud83d\ude00 \udc00", "k\x00": [1, "a\x01"]}}
    )
    decoded = clean_json_loads(raw)
    assert decoded == {"update_id": 1, "message": {"text": "hi \U0001f600 \ufffd", "k": [1, "a"]}}


@pytest.mark.parametrize(
    ("typed", "seen_by_rasa"),
    [
        ('/cancel_order{"order_id":"KM20261127001"}', 'cancel_order{"order_id":"KM20261127001"}'),
        ("  /restore_order", "restore_order"),
        ("\u3000/human_handoff", "human_handoff"),  # Rasa strips ideographic spaces too
        ("//greet", "greet"),
        ("/ cancel", "cancel"),
        ("/", "\uff0f"),
        ("我的订单 KM20261127001 到哪了/", "我的订单 KM20261127001 到哪了/"),
        ("1/2 到账", "1/2 到账"),
    ],
)
def test_buyer_text_never_reaches_rasa_as_an_intent(typed: str, seen_by_rasa: str) -> None:
    assert for_rasa(typed) == seen_by_rasa
    assert not for_rasa(typed).strip().startswith("/")
