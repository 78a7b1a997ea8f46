"""Typed configuration of the action server."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(Exception):
    """One line naming the bad variable."""


class ActionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    platform_api_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8000")
    platform_api_key: SecretStr = SecretStr("sandbox-key")
    platform_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    action_server_host: str = "127.0.0.1"
    action_server_port: int = Field(default=5055, ge=1, le=65535)
    display_timezone: str = "Asia/Shanghai"
    database_url: str | None = None
    var_dir: str = "var"
    # Rasa sends it (endpoints.yml action_endpoint.token); requests without it are refused
    action_server_token: SecretStr | None = None
    # shared with the bot, which signs the Telegram identity in the message metadata
    metadata_secret: SecretStr | None = None

    def secrets(self) -> list[str]:
        """Every secret value this process knows, for the log redaction filter."""
        values = (self.platform_api_key, self.action_server_token, self.metadata_secret)
        return [value.get_secret_value() for value in values if value is not None]


def load_settings() -> ActionSettings:
    try:
        return ActionSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first.get("loc") else "config"
        raise ConfigError(f"config error: {name}: {first['msg']}") from None
