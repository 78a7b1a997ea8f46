"""Engine, sessions and schema upgrades for the bot's database."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
DEFAULT_SQLITE_PATH = Path("var") / "bot.db"


def default_database_url(var_dir: Path = Path("var")) -> str:
    """The embedded default: a SQLite file under ``var/`` (created on demand)."""
    return f"sqlite+aiosqlite:///{(var_dir / 'bot.db').as_posix()}"


def make_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: a failed statement's error never carries the row's values (buyer text) into a log
    return create_async_engine(url, pool_pre_ping=parsed.get_backend_name() != "sqlite", hide_parameters=True)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_to_head_sync(url: str) -> None:
    """Apply every Alembic revision (run in a thread: Alembic's env drives its own event loop)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")


async def upgrade_to_head(url: str) -> None:
    await asyncio.to_thread(upgrade_to_head_sync, url)
