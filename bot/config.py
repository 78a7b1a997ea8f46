"""Typed, validated configuration of the bot process (environment variables and ``.env``)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.handoff.hours import BusinessHours
from bot.handoff.replies import CannedReplies

PUBLIC_TELEGRAM_API = "https://api.telegram.org"


class BotMode(StrEnum):
    POLLING = "polling"
    WEBHOOK = "webhook"
    TERMINAL = "terminal"


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line naming the variable."""


class BotSettings(BaseSettings):
    """Every setting of DESIGN.md that the bot reads. Unset optional ones use embedded defaults."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: SecretStr | None = None
    telegram_api_base: AnyHttpUrl = AnyHttpUrl(PUBLIC_TELEGRAM_API)
    bot_mode: BotMode | None = None
    webhook_url: AnyHttpUrl | None = None
    webhook_secret: SecretStr | None = None
    agents_chat_id: int | None = None
    platform_api_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8000")
    platform_api_key: SecretStr = SecretStr("sandbox-key")
    platform_webhook_secret: SecretStr | None = None
    # where the platform can reach this bot's /platform/events; when set (with the secret) the bot subscribes
    platform_events_url: AnyHttpUrl | None = None
    rasa_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:5005")
    # the bot only probes its health, to tell "action server down" from "nothing to say"
    action_server_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:5055/webhook")
    database_url: str | None = None
    redis_url: str | None = None
    bot_http_host: str = "127.0.0.1"
    bot_http_port: int = Field(default=8080, ge=1, le=65535)
    rasa_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    var_dir: str = "var"
    handoff_merchant_sla_minutes: float = Field(default=10.0, gt=0, le=24 * 60)
    handoff_business_hours: str = "09:00-23:00"
    handoff_timezone: str = "Asia/Shanghai"
    handoff_minutes_per_ticket: float = Field(default=5.0, gt=0, le=24 * 60)
    # the conversation log (chat_messages) keeps this many days; older messages are purged hourly
    conversation_retention_days: int = Field(default=90, ge=1, le=3650)
    # Rasa's HTTP API token (rasa run --auth-token): sent on /status and the tracker calls
    rasa_auth_token: SecretStr | None = None
    # shared with the action server: the bot signs the Telegram identity it sends in Rasa message metadata
    metadata_secret: SecretStr | None = None
    # the operators' page /ops: served only when set (no default token; the page is never open)
    ops_token: SecretStr | None = None
    # durable intake: partitions of the update streams (fixed for a deployment; a chat stays in one)
    intake_partitions: int = Field(default=16, ge=1, le=1024)
    # SIGTERM: time for in-flight updates (60 %) and the outbox drain (40 %) before clients close
    shutdown_timeout_seconds: float = Field(default=8.0, gt=0, le=600)
    handoff_staff_first_names: bool = False
    """Show buyers a staff member's first name next to the role (never a username or phone number)."""
    handoff_replies_file: str | None = None
    """Canned replies for /t (TOML); default bot/handoff/replies.toml."""

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        left, sep, right = value.get_secret_value().partition(":")
        if not sep or not left.isdigit() or not right:
            raise ValueError("must look like 123456:ABC… (the token BotFather gave you)")
        return value

    @field_validator(
        "platform_webhook_secret", "webhook_secret", "metadata_secret", "rasa_auth_token", "ops_token"
    )
    @classmethod
    def _secret_strength(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    def secrets(self) -> list[str]:
        """Every secret value this process knows, for the log redaction filter."""
        values = (
            self.telegram_bot_token,
            self.webhook_secret,
            self.platform_api_key,
            self.platform_webhook_secret,
            self.rasa_auth_token,
            self.metadata_secret,
        )
        return [value.get_secret_value() for value in values if value is not None]

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value or None

    @model_validator(mode="after")
    def _handoff_hours(self) -> Self:
        try:
            BusinessHours.parse(self.handoff_business_hours, self.handoff_timezone)
        except ValueError as exc:
            raise ValueError(f"HANDOFF_BUSINESS_HOURS / HANDOFF_TIMEZONE: {exc}") from None
        if self.handoff_replies_file:
            try:
                CannedReplies.load(Path(self.handoff_replies_file))
            except ValueError as exc:
                raise ValueError(f"HANDOFF_REPLIES_FILE: {exc}") from None
        return self

    @model_validator(mode="after")
    def _mode_requirements(self) -> Self:
        mode = self.effective_mode
        if mode in (BotMode.POLLING, BotMode.WEBHOOK) and self.telegram_bot_token is None:
            raise ValueError(f"TELEGRAM_BOT_TOKEN is required when BOT_MODE={mode.value}")
        if mode is BotMode.WEBHOOK and self.webhook_url is None:
            raise ValueError("WEBHOOK_URL is required when BOT_MODE=webhook")
        if mode is BotMode.WEBHOOK and self.webhook_secret is None:
            raise ValueError("WEBHOOK_SECRET is required when BOT_MODE=webhook")
        return self

    @property
    def effective_mode(self) -> BotMode:
        """Explicit BOT_MODE, else polling with a token and the terminal chat without one."""
        if self.bot_mode is not None:
            return self.bot_mode
        return BotMode.POLLING if self.telegram_bot_token is not None else BotMode.TERMINAL


def load_settings() -> BotSettings:
    """Read settings; raise ConfigError with one line naming the first bad variable."""
    try:
        return BotSettings()
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    location = [str(part) for part in first.get("loc", ())]
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if location:
        return f"config error: {location[0].upper()}: {message}"
    return f"config error: {message}"
