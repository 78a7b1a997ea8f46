"""Scoring and rendering of the independent-set report (scripts/nlu_independent.py), on hand-made parse results."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import nlu_independent as indep  # noqa: E402


def parsed(
    text: str,
    intent: str,
    confidence: float,
    entities: list[tuple[str, str, int, int]] = (),  # type: ignore[assignment]
    ranking: list[tuple[str, float]] | None = None,
    latency: float = 10.0,
) -> dict[str, Any]:
    return {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "intent_ranking": [{"name": n, "confidence": c} for n, c in (ranking or [(intent, confidence)])],
        "entities": [{"entity": e, "value": v, "start": s, "end": t} for e, v, s, t in entities],
        "latency_ms": latency,
    }


EXAMPLES = [
    indep.Example(
        1, "取消 KM20261127001 别家便宜", "cancel_order", {"order_id": ("KM20261127001",)}, "found_cheaper"
    ),
    indep.Example(2, "改成上海电信", "inform", {"region": ("上海电信",)}),
    indep.Example(3, "👍", "affirm"),
    indep.Example(4, "how long at night", "arrival_time", {"time_of_day": ("night",)}),
    indep.Example(5, "下重了", "cancel_order", {}, "duplicate_order"),
]
PARSED = [
    parsed(
        "取消 KM20261127001 别家便宜",
        "cancel_order",
        0.99,
        [
            ("order_id", "KM20261127001", 3, 16),
            ("order_id", "KM20261127001", 3, 16),
            ("cancel_reason", "found_cheaper", 17, 21),
        ],
        latency=8.0,
    ),
    # region found, and the carrier inside it (not an error); intent right
    parsed(
        "改成上海电信",
        "inform",
        0.8,
        [("region", "上海电信", 2, 6), ("carrier", "telecom", 4, 6)],
        latency=12.0,
    ),
    # emoji read as a cancellation, confidently: a confident error, and a destructive emoji reading
    parsed("👍", "cancel_order", 0.7, latency=9.0),
    # under the threshold: the bot sees nlu_fallback, the best domain intent is right
    parsed(
        "how long at night",
        "nlu_fallback",
        0.45,
        [("time_of_day", "night", 9, 17), ("carrier", "mobile", 0, 3)],
        ranking=[("nlu_fallback", 0.45), ("arrival_time", 0.4), ("greet", 0.3)],
        latency=30.0,
    ),
    parsed("下重了", "cancel_order", 0.95, [("cancel_reason", "user_mistake", 0, 3)], latency=11.0),
]


@pytest.fixture
def evaluation() -> indep.Evaluation:
    return indep.evaluate(EXAMPLES, PARSED)


def test_intent_scores(evaluation: indep.Evaluation) -> None:
    assert evaluation.accuracy() == pytest.approx(3 / 5)
    assert evaluation.accuracy(top=True) == pytest.approx(4 / 5)
    scores = evaluation.intent_scores()
    assert (scores["cancel_order"].tp, scores["cancel_order"].fp, scores["cancel_order"].fn) == (2, 1, 0)
    assert scores["affirm"].f1 == 0.0 and scores["arrival_time"].recall == 0.0
    # macro over the set's four intents: cancel_order 0.8, inform 1, affirm 0, arrival_time 0
    assert evaluation.macro_f1() == pytest.approx((0.8 + 1.0) / 4)
    assert [(g, p, len(items)) for g, p, items in evaluation.confusions()] == [
        ("affirm", "cancel_order", 1),
        ("arrival_time", "nlu_fallback", 1),
    ]


def test_entity_scores_ignore_nested_and_duplicate_predictions(evaluation: indep.Evaluation) -> None:
    scores = indep.entity_scores(evaluation.examples, evaluation.predictions)
    assert (scores["order_id"].tp, scores["order_id"].fp, scores["order_id"].fn) == (1, 0, 0)
    assert (scores["region"].tp, scores["region"].fp) == (1, 0)
    # 电信 inside 上海电信 is not counted; "how" read as the carrier mobile is a false positive
    assert (scores["carrier"].tp, scores["carrier"].fp, scores["carrier"].fn) == (0, 1, 0)
    assert scores["time_of_day"].f1 == 1.0
    assert indep.well_formed_order_id_recall(evaluation.examples, evaluation.predictions).recall == 1.0


def test_reason_tag_accuracy(evaluation: indep.Evaluation) -> None:
    reasons = indep.reason_tag_accuracy(evaluation.examples, evaluation.predictions)
    assert (reasons.correct, reasons.total) == (1, 2)
    assert reasons.per_tag["duplicate_order"] == (0, 1)
    assert reasons.confusions == {("duplicate_order", "user_mistake"): 1}
    assert reasons.tagged_without_reason == 0
    assert "0.500" in indep.reason_tag_line(reasons) and "(1/2)" in indep.reason_tag_line(reasons)


def test_calibration_and_confident_errors(evaluation: indep.Evaluation) -> None:
    rows = {bucket: (count, accuracy) for bucket, count, accuracy in evaluation.calibration()}
    assert rows["0.00–0.45"] == (1, 1.0)  # arrival_time at 0.40, right
    assert rows["0.60–0.80"] == (1, 0.0)  # the emoji read as cancel_order at 0.70
    assert rows["0.95–1.00"][0] == 2
    assert [e.index for e, _ in evaluation.confident_errors()] == [3]


def test_targets_and_report(evaluation: indep.Evaluation) -> None:
    targets = indep.IndependentTargets()
    failures = indep.check_targets(evaluation, targets)
    assert any("macro-F1" in f for f in failures) and any("affirm 0.00" in f for f in failures)
    report = indep.render_report(evaluation, "nlu-test.tar.gz", targets, failures, "2026-12-03 12:00 UTC")
    for heading in (
        "## Summary",
        "## Intents",
        "## Top confusions",
        "## Entities",
        "## Cancel reason tags",
        "## Confidence and calibration",
        "## Parse latency",
        "## Very long and emoji-only messages",
    ):
        assert heading in report
    assert "read as a cancellation or refund: 1 (must be 0)" in report
    assert "| parse latency p50 / p95 | 11.0 ms / 26.4 ms" in report
    assert "**Result: targets missed:**" in report


def test_evaluate_refuses_mismatched_results() -> None:
    with pytest.raises(ValueError, match="4 parse results for 5 messages"):
        indep.evaluate(EXAMPLES, PARSED[:4])


def test_reason_accuracy_line_for_the_cross_validation_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import nlu_report

    model = tmp_path / "nlu-abc.tar.gz"
    seen: list[str] = []

    def fake_parse(path: Path, texts: list[str]) -> list[dict[str, Any]]:
        assert path == model
        seen.extend(texts)
        # every message right except the first
        return [
            parsed(
                text, "cancel_order", 0.9, [("cancel_reason", "other" if i == 0 else e.reason or "", 0, 1)]
            )
            for i, (text, e) in enumerate(zip(texts, reasoned, strict=True))
        ]

    reasoned = [e for e in indep.load_set() if e.reason is not None]
    monkeypatch.setattr(nlu_report, "ensure_model", lambda quiet=False: model)
    monkeypatch.setattr(indep, "parse_with_rasa", fake_parse)
    line = nlu_report.reason_accuracy_line()
    assert seen == [e.text for e in reasoned]  # only the messages that state a reason are parsed
    total = len(reasoned)
    wrong = 0 if reasoned[0].reason == "other" else 1
    assert f"({total - wrong}/{total})" in line and "`nlu-abc.tar.gz`" in line
