from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from integrations.storage.db import make_engine, make_sessionmaker, upgrade_to_head
from integrations.storage.repositories import ConversationLog, LoggedMessage


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'var' / 'bot.db'}"
    return str(request.getfixturevalue("pg_url"))


async def test_migrations_create_the_schema_and_the_log_keeps_order(database_url: str) -> None:
    await upgrade_to_head(database_url)
    await upgrade_to_head(database_url)  # idempotent
    engine = make_engine(database_url)
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    assert "chat_messages" in tables
    log = ConversationLog(make_sessionmaker(engine))
    await log.append(
        LoggedMessage(chat_id=7, direction="in", kind="text", text="我的订单到哪了", telegram_user_id=7)
    )
    await log.append(
        LoggedMessage(chat_id=7, direction="out", kind="text", text="处理中", telegram_message_id=3)
    )
    await log.append(LoggedMessage(chat_id=8, direction="in", kind="text", text="other chat"))
    transcript = await log.transcript(7)
    await engine.dispose()
    assert [(m.direction, m.text) for m in transcript] == [("in", "我的订单到哪了"), ("out", "处理中")]


async def test_the_log_keeps_clean_masked_text_and_purges_by_retention(database_url: str) -> None:
    """A NUL or a lone surrogate never fails the insert (PostgreSQL refuses NUL); card secrets and phone
    numbers are kept masked for the humans who read the log; old messages are purged."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from bot.retention import purge_once
    from integrations.storage.models import ChatMessage

    await upgrade_to_head(database_url)
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    log = ConversationLog(sessions)
    raw = "充值号码13912340000\x00 卡密：X7KQ-9M2P-LT4W-8ZRB 订单 KM20261127001 \ud800"
    await log.append(LoggedMessage(chat_id=9, direction="in", kind="text", text=raw, telegram_user_id=9))
    await log.append(
        LoggedMessage(chat_id=9, direction="in", kind="photo", text="[photo] file_id=AgAC1234abcd5678XYZ")
    )
    stored = [m.text for m in await log.transcript(9)]
    assert stored[0] == "充值号码139****0000 卡密：•••••• 订单 KM20261127001 \ufffd"
    assert stored[1] == "[photo] file_id=AgAC1234abcd5678XYZ"  # a file reference, not buyer words

    async with sessions.begin() as session:
        await session.execute(
            update(ChatMessage)
            .where(ChatMessage.kind == "photo")
            .values(created_at=datetime.now(UTC) - timedelta(days=91))
        )
    assert await purge_once(log, days=90) == 1
    assert await purge_once(log, days=90) == 0
    assert [m.kind for m in await log.transcript(9)] == ["text"]
    await engine.dispose()
