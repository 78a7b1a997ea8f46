"""The Rasa test stories (nlu/tests/) pass against the trained model: NLU and dialogue, in zh-CN and English.

``rasa test core --e2e`` runs every user text of a test story through the model's NLU (intent and entities
must match the story) and checks every predicted action; custom actions are not run, their recorded events
are replayed. The coverage test makes sure no flow and no language silently loses its stories.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.processes import ROOT, ensure_model

NLU = ROOT / "nlu"
TESTS = NLU / "tests"
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
# The actions a buyer flow ends in (or is driven by): each must be exercised in both languages.
FLOW_ACTIONS = (
    "order_status_form",
    "action_order_status",
    "action_arrival_time",
    "action_refund_guarantee",
    "cancel_form",
    "action_submit_cancel",
    "fix_target_form",
    "action_submit_fix",
    "restore_form",
    "action_submit_restore",
    "refund_form",
    "action_submit_refund",
    "payment_form",
    "action_payment_guidance",
    "merchant_rating_form",
    "action_merchant_rating",
    "action_escalate",
    "action_clarify",
    "action_bot_identity",
    "action_handoff_wait",
    "action_keep_order",
)


def story_files() -> list[Path]:
    # Rasa only treats files named test_*.yml as test stories; anything else here would be silently skipped
    return sorted(TESTS.glob("*.yml"))


def load_stories() -> list[dict[str, Any]]:
    stories: list[dict[str, Any]] = []
    for path in story_files():
        stories += yaml.safe_load(path.read_text(encoding="utf-8")).get("stories") or []
    return stories


def story_language(story: dict[str, Any]) -> str | None:
    name = str(story["story"])
    for language in ("zh", "en"):
        if name.endswith(f"({language})"):
            return language
    return None


def test_every_test_story_file_is_one_rasa_reads() -> None:
    files = story_files()
    assert files, "no test stories in nlu/tests/"
    assert [p.name for p in files if not p.name.startswith("test_")] == []


def test_every_story_names_its_language() -> None:
    assert [s["story"] for s in load_stories() if story_language(s) is None] == []


def test_every_flow_and_intent_is_covered_in_both_languages() -> None:
    seen: dict[str, set[str]] = {}
    typed_intents: dict[str, set[str]] = {}
    for story in load_stories():
        language = story_language(story)
        assert language is not None
        for step in story["steps"]:
            if "action" in step:
                seen.setdefault(step["action"], set()).add(language)
            if "intent" in step and "user" in step:
                typed_intents.setdefault(step["intent"], set()).add(language)
    missing = {a: sorted({"zh", "en"} - seen.get(a, set())) for a in FLOW_ACTIONS}
    assert {a: langs for a, langs in missing.items() if langs} == {}
    domain = yaml.safe_load((NLU / "domain.yml").read_text(encoding="utf-8"))
    untested = {
        intent: sorted({"zh", "en"} - typed_intents.get(intent, set()))
        for intent in domain["intents"]
        if {"zh", "en"} - typed_intents.get(intent, set())
    }
    assert untested == {}, "intents never typed by a buyer in a test story, by language"


@pytest.mark.timeout(300)
def test_rasa_data_validate_is_clean() -> None:
    """Domain, rules, stories and NLU data agree (no unknown intents/actions, no conflicting rules…)."""
    if not RASA.exists():
        pytest.fail(".venv-rasa is missing; run 'make venv-rasa'")
    command = [str(RASA), "data", "validate", "--fail-on-warnings"]
    result = subprocess.run(command, cwd=NLU, capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


@pytest.mark.timeout(900)
def test_test_stories_pass_against_the_trained_model(tmp_path: Path) -> None:
    if not RASA.exists():
        pytest.fail(".venv-rasa is missing; run 'make venv-rasa'")
    model = ensure_model()
    out = tmp_path / "results"
    command = [str(RASA), "test", "core", "--e2e", "--stories", str(TESTS), "--model", str(model)]
    command += ["--out", str(out), "--no-plot"]
    # run from nlu/ as Rasa always is: config.yml names the project's own components (nlu/kmbot_nlu)
    result = subprocess.run(command, cwd=NLU, capture_output=True, text=True, timeout=840)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "story_report.json").read_text(encoding="utf-8"))
    conversations = report["conversation_accuracy"]
    failed = (out / "failed_test_stories.yml").read_text(encoding="utf-8")
    assert conversations["total"] == len(load_stories()), "Rasa did not evaluate every test story"
    assert conversations["correct"] == conversations["total"], f"failed test stories:\n{failed}"
