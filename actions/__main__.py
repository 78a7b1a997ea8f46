"""Composition root of the action server: one platform client, every action registered with it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, cast

from pydantic import SecretStr
from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic

from actions.auth import protect
from actions.base import ActionDeps
from actions.config import ActionSettings, ConfigError, load_settings
from actions.metrics import ActionMetrics, MeteredOutcomes
from actions.registry import build_actions
from integrations.metrics import MeteredTransport
from integrations.platform.client import PlatformClient
from integrations.privacy import install_log_redaction
from integrations.storage.db import default_database_url, make_engine, make_sessionmaker, upgrade_to_head_sync

log = logging.getLogger("actions")


def build_app(settings: ActionSettings, metrics: ActionMetrics | None = None) -> Sanic[Any, Any]:
    metrics = metrics or ActionMetrics()
    platform = PlatformClient(
        str(settings.platform_api_url),
        settings.platform_api_key.get_secret_value(),
        timeout=settings.platform_timeout_seconds,
        transport=MeteredTransport(metrics.platform),
    )
    database_url = settings.database_url or default_database_url(Path(settings.var_dir))
    upgrade_to_head_sync(database_url)
    engine = make_engine(database_url)
    outcomes = MeteredOutcomes(make_sessionmaker(engine), metrics)
    executor = ActionExecutor()
    deps = ActionDeps(platform=platform, outcomes=outcomes, timezone=settings.display_timezone)
    for action in build_actions(deps):
        executor.register_action(action)
    app = cast("Sanic[Any, Any]", create_app(executor))
    protect(
        app,
        _secret(settings.action_server_token),
        _secret(settings.metadata_secret),
    )
    metrics.install(app, executor.actions)  # GET /metrics; /webhook timed per action

    async def close_clients(*_: object) -> None:
        await platform.aclose()
        await engine.dispose()

    app.register_listener(close_clients, "after_server_stop")
    return app


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    install_log_redaction(settings.secrets())
    app = build_app(settings)
    log.info("action server on %s:%s", settings.action_server_host, settings.action_server_port)
    app.run(
        host=settings.action_server_host,
        port=settings.action_server_port,
        single_process=True,
        access_log=False,
        motd=False,
    )


if __name__ == "__main__":
    main()
