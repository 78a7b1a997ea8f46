"""The registry against the domain, and the slot extraction that runs on every buyer turn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rasa_sdk import Action

from actions.base import ActionDeps
from actions.registry import build_actions
from integrations.platform import PlatformClient
from tests.actions.support import Chat, only

Actions = dict[str, Action]
NewChat = Callable[..., Chat]


def test_every_action_is_registered_once_and_declared_in_the_domain(
    platform: PlatformClient, domain: dict[str, Any]
) -> None:
    names = [action.name() for action in build_actions(ActionDeps(platform=platform))]
    assert len(names) == len(set(names))
    assert set(names) == set(domain["actions"])


def test_every_slot_a_form_can_ask_for_has_a_question(
    actions_by_name: Actions, domain: dict[str, Any]
) -> None:
    """Rasa asks with action_ask_<form>_<slot>, else action_ask_<slot>, else the utter_ask_… response."""
    responses = domain.get("responses", {})
    for form, spec in domain["forms"].items():
        for slot in spec["required_slots"]:
            askers = (
                f"action_ask_{form}_{slot}",
                f"action_ask_{slot}",
                f"utter_ask_{form}_{slot}",
                f"utter_ask_{slot}",
            )
            assert any(a in actions_by_name or a in responses for a in askers), (form, slot)
        assert f"validate_{form}" in actions_by_name, form


@pytest.mark.parametrize(
    ("metadata_language", "slot", "expected"),
    [("en", None, {"language": "en"}), ("zh", "en", {"language": "zh"}), ("en", "en", {}), ("fr", None, {})],
)
async def test_the_buyers_language_comes_from_the_telegram_metadata(
    actions_by_name: Actions,
    new_chat: NewChat,
    metadata_language: str,
    slot: str | None,
    expected: dict[str, str],
) -> None:
    chat = new_chat(metadata_language, slots={"language": slot})
    chat.say("hello", "greet")
    assert await chat.run(actions_by_name["action_validate_slot_mappings"]) == []
    assert chat.returned_slots() == expected


async def test_the_language_slot_then_speaks_for_the_conversation(
    actions_by_name: Actions, new_chat: NewChat
) -> None:
    chat = new_chat("en", slots={"order_id": "KM20261127001"})
    chat.say("status KM20261127001", "order_status")
    await chat.run(actions_by_name["action_validate_slot_mappings"])
    chat.latest_message["metadata"].pop("language")  # a later message without a language hint
    reply = only(await chat.run(actions_by_name["action_order_status"]))
    assert reply["text"].startswith("Order KM20261127001 (王者荣耀 点券 60)\nStatus: being processed")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("KM20261127001", "KM20261127001"),
        ("km-2026-1127-001", "KM20261127001"),
        ("#KM 20261127 001", "KM20261127001"),
        ("KM2026", None),
        ("20261127001", None),
        ("KM2026112700199999", None),
    ],
)
async def test_an_order_id_entity_is_normalised_or_dropped(
    actions_by_name: Actions, new_chat: NewChat, typed: str, expected: str | None
) -> None:
    chat = new_chat()
    chat.say(f"{typed} 到哪了", "order_status", entities=[{"entity": "order_id", "value": typed}])
    await chat.run(actions_by_name["action_validate_slot_mappings"])
    assert chat.returned_slots()["order_id"] == expected
