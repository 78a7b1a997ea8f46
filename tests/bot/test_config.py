from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import BotMode, ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]
VARIABLES = [
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_API_BASE",
    "BOT_MODE",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "RASA_URL",
    "REDIS_URL",
    "DATABASE_URL",
    "PLATFORM_API_URL",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_no_token_means_terminal_chat() -> None:
    assert load_settings().effective_mode is BotMode.TERMINAL


def test_token_means_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    settings = load_settings()
    assert settings.effective_mode is BotMode.POLLING
    assert "abc" not in repr(settings)  # secrets stay secret


def test_polling_without_token_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_MODE", "polling")
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN"):
        load_settings()


@pytest.mark.parametrize("name", ["RASA_URL", "TELEGRAM_API_BASE", "PLATFORM_API_URL"])
def test_malformed_url_names_the_variable(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "not a url")
    with pytest.raises(ConfigError, match=f"^config error: {name}:"):
        load_settings()


def test_malformed_token_and_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "nonsense")
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN"):
        load_settings()
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:x")
    monkeypatch.setenv("REDIS_URL", "localhost:6379")
    with pytest.raises(ConfigError, match="REDIS_URL"):
        load_settings()


def test_webhook_needs_url_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:x")
    monkeypatch.setenv("BOT_MODE", "webhook")
    with pytest.raises(ConfigError, match="WEBHOOK_URL"):
        load_settings()


def test_process_stops_with_one_clear_line(tmp_path: Path) -> None:
    """Bad config stops the real process at start: exit 2, one line on stderr naming the variable."""
    env = {"PATH": "/usr/bin:/bin", "BOT_MODE": "polling", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "TELEGRAM_BOT_TOKEN" in lines[0]
