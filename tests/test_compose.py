"""docker-compose.yml is validated here without a Docker engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_production_services_with_health_checks() -> None:
    services = compose()["services"]
    assert {"bot", "rasa", "action-server", "redis", "postgres", "sandbox"} <= set(services)
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no health check"
        assert service.get("restart") == "unless-stopped", f"{name} does not restart"
    assert services["sandbox"]["profiles"] == ["demo"]
    for name in ("bot", "rasa", "action-server", "redis", "postgres"):
        assert "profiles" not in services[name], f"{name} must run without a profile"


def test_dependencies_wait_for_health() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert condition == {"condition": "service_healthy"}


def test_state_lives_in_volumes() -> None:
    data = compose()
    assert set(data["volumes"]) == {"postgres-data", "redis-data", "prometheus-data", "grafana-data"}
    assert any("postgres-data" in v for v in data["services"]["postgres"]["volumes"])
    assert any("redis-data" in v for v in data["services"]["redis"]["volumes"])


def test_bot_gets_every_design_variable() -> None:
    env = compose()["services"]["bot"]["environment"]
    design = {
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_API_BASE",
        "BOT_MODE",
        "WEBHOOK_URL",
        "WEBHOOK_SECRET",
        "AGENTS_CHAT_ID",
        "PLATFORM_API_URL",
        "PLATFORM_API_KEY",
        "PLATFORM_WEBHOOK_SECRET",
        "RASA_URL",
        "ACTION_SERVER_URL",
        "DATABASE_URL",
        "REDIS_URL",
    }
    assert design <= set(env)
    assert env["REDIS_URL"].startswith("redis://redis:")
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")


def test_images_copy_only_existing_paths() -> None:
    services = compose()["services"]
    for name in ("bot", "rasa"):
        dockerfile = services[name]["build"]["dockerfile_inline"]
        for line in dockerfile.splitlines():
            if line.strip().startswith("COPY"):
                for source in line.split()[1:-1]:
                    base = ROOT / ("nlu" if name == "rasa" and not source.startswith("nlu") else "") / source
                    assert base.exists(), f"{name}: COPY source {source} missing"
