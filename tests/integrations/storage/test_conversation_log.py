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
