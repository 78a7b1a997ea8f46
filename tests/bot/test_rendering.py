from __future__ import annotations

import pytest

from bot.kv import MemoryKeyValueStore
from bot.payloads import CALLBACK_DATA_LIMIT, PayloadCodec
from bot.rendering import TELEGRAM_TEXT_LIMIT, render_reply, split_text
from integrations.rasa import BotButton, BotReply


def test_split_text_respects_limit_and_keeps_everything() -> None:
    text = "\n\n".join(f"第{i}段 " + "字" * 900 for i in range(12))
    parts = split_text(text)
    assert len(parts) > 1
    assert all(len(part) <= TELEGRAM_TEXT_LIMIT for part in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")


def test_split_text_hard_cuts_a_single_long_word() -> None:
    parts = split_text("x" * 10_000)
    assert [len(p) for p in parts] == [4096, 4096, 1808]


async def test_reply_is_html_escaped_and_keyboard_rides_on_last_part() -> None:
    codec = PayloadCodec(MemoryKeyValueStore())
    reply = BotReply(
        text="<b>hi</b> & " + "y" * 5000,
        buttons=[
            BotButton(title="查订单", payload="/order_status"),
            BotButton(title="转人工", payload="/human_handoff"),
        ],
    )
    messages = await render_reply(reply, codec)
    assert messages[0].text.startswith("&lt;b&gt;hi&lt;/b&gt; &amp;")
    assert messages[0].keyboard is None
    assert messages[-1].keyboard is not None
    titles = [b.text for row in messages[-1].keyboard.inline_keyboard for b in row]
    assert titles == ["查订单", "转人工"]


@pytest.mark.parametrize(
    "payload", ["/order_status", '/inform{"order_id":"KM20261127001","account":"13800138000"}']
)
async def test_payload_round_trip_within_telegram_limit(payload: str) -> None:
    codec = PayloadCodec(MemoryKeyValueStore())
    data = await codec.encode(payload)
    assert len(data.encode()) <= CALLBACK_DATA_LIMIT
    assert await codec.decode(data) == payload


async def test_unknown_payload_is_none() -> None:
    codec = PayloadCodec(MemoryKeyValueStore())
    assert await codec.decode("h:deadbeef") is None
    assert await codec.decode("garbage") is None


def test_hard_cut_never_splits_an_entity() -> None:
    text = "x" * 4093 + "&amp;" + "y" * 10
    parts = split_text(text)
    assert parts[0] == "x" * 4093
    assert parts[1].startswith("&amp;")
