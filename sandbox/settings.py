"""Sandbox configuration, read from ``SANDBOX_*`` environment variables (and ``.env``)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/sandbox.db"


class SandboxSettings(BaseSettings):
    """Everything the sandbox can be told; defaults give a self-contained demo server."""

    model_config = SettingsConfigDict(env_prefix="SANDBOX_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    api_key: str = Field(default="sandbox-key", min_length=1)
    admin_key: str = Field(default="sandbox-admin", min_length=1)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    seed: bool = True
    simulate: bool = False
    simulate_interval_seconds: float = Field(default=5.0, gt=0)
    clock_speed: float = Field(
        default=1.0, gt=0, le=3600, description="the demo's fast-forward; 1 is real time"
    )

    bot_username: str = "kameng_cs_bot"
    link_token_ttl_seconds: int = Field(default=15 * 60, gt=0)
    restore_window_minutes: int = Field(default=30, gt=0)

    rate_limit_per_second: float = Field(default=50.0, ge=0, description="0 disables rate limiting")
    rate_limit_burst: int = Field(default=100, ge=1)

    webhook_delivery: bool = True
    webhook_poll_seconds: float = Field(default=0.5, gt=0)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_base_seconds: float = Field(default=2.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=600.0, gt=0)
    webhook_max_attempts: int = Field(default=10, ge=1)
    webhook_allowed_hosts: str = Field(
        default="",
        description="Comma-separated host names a subscription URL may point at; empty allows any host.",
    )

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("SANDBOX_DATABASE_URL must use sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @property
    def allowed_webhook_hosts(self) -> frozenset[str]:
        """The parsed allow-list; empty means every host is allowed."""
        return frozenset(h.strip().lower() for h in self.webhook_allowed_hosts.split(",") if h.strip())
