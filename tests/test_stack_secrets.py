"""scripts/stack.py wires the inside's shared tokens: each process gets what it needs and nothing is printed."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import stack  # noqa: E402

TOKENS = {"RASA_AUTH_TOKEN": "r" * 32, "ACTION_SERVER_TOKEN": "a" * 32, "METADATA_SECRET": "m" * 32}


def test_every_process_gets_the_tokens_it_needs() -> None:
    services = stack.services(dict(TOKENS), None)
    rasa = services["rasa"]
    assert rasa.command[rasa.command.index("--auth-token") + 1] == TOKENS["RASA_AUTH_TOKEN"]
    assert rasa.env["ACTION_SERVER_TOKEN"] == TOKENS["ACTION_SERVER_TOKEN"]  # endpoints.yml expands it
    assert rasa.health_url.endswith(f"/status?token={TOKENS['RASA_AUTH_TOKEN']}")
    assert stack.shown(rasa.health_url).endswith("/status")
    actions = services["actions"].env
    assert (actions["ACTION_SERVER_TOKEN"], actions["METADATA_SECRET"]) == (
        TOKENS["ACTION_SERVER_TOKEN"],
        TOKENS["METADATA_SECRET"],
    )
    bot = services["bot"].env
    assert (bot["RASA_AUTH_TOKEN"], bot["METADATA_SECRET"]) == (
        TOKENS["RASA_AUTH_TOKEN"],
        TOKENS["METADATA_SECRET"],
    )
    assert "ACTION_SERVER_TOKEN" not in bot and "RASA_AUTH_TOKEN" not in actions


def test_rasa_sends_the_action_token_in_every_environment() -> None:
    for name in ("endpoints.yml", "endpoints.production.yml"):
        endpoint = yaml.safe_load((ROOT / "nlu" / name).read_text())["action_endpoint"]
        assert endpoint["token"] == "${ACTION_SERVER_TOKEN}", name


def test_compose_sets_the_inside_tokens() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert "--auth-token" in services["rasa"]["command"]
    for service, names in (
        ("rasa", {"ACTION_SERVER_TOKEN", "RASA_AUTH_TOKEN"}),
        ("action-server", {"ACTION_SERVER_TOKEN", "METADATA_SECRET"}),
        ("bot", {"RASA_AUTH_TOKEN", "METADATA_SECRET"}),
    ):
        assert names <= set(services[service]["environment"]), service
