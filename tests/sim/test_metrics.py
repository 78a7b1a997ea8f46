"""The simulator's judges, without Rasa: untrue times, leaks, traps, cancels after neutral messages, tag
accuracy, and the buyers' own logic (buttons read by payload, goals cover every kind and reason)."""

from __future__ import annotations

import random
import sys
from datetime import datetime

import pytest

from tests.support.processes import ROOT

sys.path.insert(0, str(ROOT / "scripts"))

from sim.app import internal_names
from sim.goals import REASON_TAGS, Button, Buyer, Goal, Observation, button_meaning, make_goals
from sim.metrics import (
    ConversationRecord,
    TurnRecord,
    cancels_after_neutral,
    judge,
    leaks,
    reason_asked_again,
    summarise,
    traps,
    untrue_times,
)

NOW = datetime(2026, 11, 27, 8, 48)  # China time


@pytest.mark.parametrize(
    "text",
    [
        "超时退款已安排，预计 08:10 前到账。",
        "退款预计08:10前原路退回",
        "The refund should arrive by 08:10.",
        "You can restore it until 08:30.",
        "expected 8:40 at the latest",
        "预计 11-27 08:10 前到账",
        "按全额退款保障，超时未到账将自动全额退款 ¥49.80，预计 08:10 前到账，无需申请。",
        "Under the guarantee the ¥49.80 comes back automatically, expected by 08:10.",
    ],
)
def test_a_past_time_stated_as_coming_is_untrue(text: str) -> None:
    assert untrue_times(text, NOW)


@pytest.mark.parametrize(
    "text",
    [
        "预计 09:10 前到账。",
        "The refund should arrive by 09:15.",
        "订单于 08:10 付款，已超时 38 分钟。",  # a past time stated as past is true
        "Paid at 08:10, now 38 minutes late.",
        "预计明天 07:00 前到账",  # tomorrow
        "by 08:48",  # now, inside the grace minute
        "预计 11-28 08:10 前到账",  # another (future) date
        "承诺到账 08:10 前（话费充值 10 分钟内），已超时 38 分钟。",  # a broken promise said to be broken
        "Promised by 08:10 (phone top-up: within 10 min), now 38 min late.",
        "订单 KM20261127008 的超时退款原定 08:10 前到账，现在已经晚了，这不应该发生。",  # a late refund said late
        "The refund for order KM20261127008 was due by 08:10 and is late - that should not happen.",
    ],
)
def test_future_and_past_tense_times_are_fine(text: str) -> None:
    assert untrue_times(text, NOW) == []


def test_leaks_find_reprs_placeholders_and_internal_names() -> None:
    names = {"cancel_decision", "order_problem", "found_cheaper"}
    assert leaks("「None」看起来不是订单号", names) == ["None"]
    assert "cancel_decision" in leaks("please set cancel_decision first", names)
    assert leaks("原因：found_cheaper", names) == ["found_cheaper"]
    assert leaks("订单 {order_id} 已取消", names) == ["{order_id}"]
    assert leaks("value is null", names) == ["null"]
    assert leaks("已为您取消订单 KM20261127001（¥6.00）。", names) == []
    assert leaks("Nonetheless, your order is fine", names) == []


def test_internal_names_come_from_the_domain() -> None:
    names = internal_names()
    assert {"cancel_form", "cancel_decision", "order_problem", "found_cheaper", "human_handoff"} <= names
    assert all("_" in n for n in names)


def turn(
    meaning: str, loop: str | None, slot: str | None, state: str = "processing", text: str = ""
) -> TurnRecord:
    bot = [{"text": text or f"question about {slot}", "buttons": []}]
    return TurnRecord("msg", meaning, False, bot, loop, slot, None, [], state, "2026-11-27T00:48:00Z")


def test_asked_again_after_stop_is_a_trap() -> None:
    assert traps(
        [turn("cancel_request", "cancel_form", "cancel_reason"), turn("stop", "cancel_form", "cancel_reason")]
    )
    assert traps([turn("handoff", "fix_target_form", "account")])
    assert traps([turn("stop", None, None)]) == []


def test_the_same_question_three_times_is_a_trap() -> None:
    looping = [turn("account", "fix_target_form", "account") for _ in range(3)]
    assert any("3 times" in t for t in traps(looping))
    varied = [
        turn("cancel_request", "cancel_form", "order_id"),
        turn("order_id", "cancel_form", "cancel_reason"),
        turn("reason", "cancel_form", "cancel_decision"),
    ]
    assert traps(varied) == []
    same_text = [turn("neutral", None, None, text="还有什么可以帮您？") for _ in range(3)]
    assert traps(same_text)


def test_cancellation_after_an_acceptance_is_counted() -> None:
    turns = [
        turn("cancel_request", "cancel_form", "cancel_reason"),
        turn("reason", "cancel_form", "cancel_decision"),
        turn("keep", None, None, state="cancelled"),
    ]
    assert len(cancels_after_neutral("processing", turns)) == 1
    confirmed = [
        turn("reason", "cancel_form", "cancel_confirm"),
        turn("confirm_cancel", None, None, "cancelled"),
    ]
    assert cancels_after_neutral("processing", confirmed) == []
    # a restore goal starts cancelled: staying cancelled is not a new cancellation
    assert cancels_after_neutral("cancelled", [turn("restore_request", None, None, "cancelled")]) == []


def record(**kwargs: object) -> ConversationRecord:
    base: dict[str, object] = {
        "index": 0, "kind": "insist", "variant": "", "lang": "zh", "reason": "found_cheaper", "savable": False, "insisted": True,
        "sender": "tg-1", "buyer_id": "B", "order_id": "KM20269000001", "initial_state": "processing",
    }  # fmt: skip
    base.update(kwargs)
    return ConversationRecord(**base)  # type: ignore[arg-type]


def test_tag_accuracy_and_rates() -> None:
    names: set[str] = set()
    right = record(final_state="cancelled", final_tag="found_cheaper")
    wrong = record(final_state="cancelled", final_tag="other", lang="en")
    not_done = record(final_state="processing", reason="other")
    saved = record(
        kind="keep_wait", reason="arrival_too_slow", savable=True, insisted=False, final_state="processing"
    )
    lost = record(
        kind="keep_wait", reason="arrival_too_slow", savable=True, insisted=False, final_state="cancelled"
    )
    summary = summarise((r, judge(r, names)) for r in (right, wrong, not_done, saved, lost))
    assert summary.values["tag_accuracy"] == pytest.approx(0.5)
    assert summary.values["honoured_rate"] == pytest.approx(2 / 3)
    assert summary.values["save_rate"] == pytest.approx(0.5)
    assert summary.tag_confusion == {"found_cheaper": {"found_cheaper": 1, "other": 1}}
    missed = " ".join(summary.missed())
    assert "tag_accuracy" in missed and "save_rate" in missed and "honoured_rate" in missed
    assert "traps" not in missed


def test_buttons_are_read_by_payload_not_wording() -> None:
    assert button_meaning(Button("随便", '/inform{"cancel_reason":"found_cheaper"}')) == {
        "reason:found_cheaper"
    }
    assert button_meaning(Button("x", "/keep_order")) == {"keep"}
    assert button_meaning(Button("x", "/cancel_order")) == {"insist"}
    assert button_meaning(Button("x", '/inform{"order_id":"KM20269000001"}')) == {"order:KM20269000001"}
    assert button_meaning(Button("x", "/affirm")) == {"yes"}
    assert button_meaning(Button("x", "/human_handoff")) == {"handoff"}


def test_goals_cover_every_kind_and_reason_in_both_languages() -> None:
    goals = make_goals(60, seed=7, langs=["zh", "en"])
    kinds = {g.kind for g in goals}
    assert kinds == {
        "insist", "keep_wait", "keep_fix", "keep_pay", "change_mind", "restore", "general",
        "order_question", "digress", "handoff", "stop",
    }  # fmt: skip
    assert {g.reason for g in goals if g.kind == "insist"} == set(REASON_TAGS)
    assert {g.lang for g in goals} == {"zh", "en"}
    assert {g.lang for g in goals if g.kind == "insist"} == {"zh", "en"}
    assert make_goals(60, seed=7, langs=["zh", "en"]) == goals
    subset = make_goals(30, seed=7, langs=["zh", "en"])
    assert {g.kind for g in subset} == kinds


def test_a_keeping_buyer_accepts_the_offer_and_an_insisting_one_confirms() -> None:
    keep = Buyer(Goal("keep_wait", "zh", "arrival_too_slow"), random.Random(1), "KM20269000001")
    keep.opened = True
    offer = Observation("cancel_form", "cancel_decision", [Button("a", "/cancel_order")], [], 2)
    assert keep.next_move(offer).meaning == "keep"  # type: ignore[union-attr]
    insist = Buyer(
        Goal("insist", "en", "found_cheaper"), random.Random(1), "KM20269000001", tap_probability=1
    )
    insist.opened = True
    read_back = Observation(
        "cancel_form", "cancel_confirm", [Button("y", "/affirm"), Button("n", "/deny")], [], 3
    )
    move = insist.next_move(read_back)
    assert move is not None and move.meaning == "confirm_cancel" and move.text == "/affirm" and move.tapped
    reason = Observation(
        "cancel_form", "cancel_reason", [Button("r", '/inform{"cancel_reason":"found_cheaper"}')], [], 1
    )
    assert insist.next_move(reason).text == '/inform{"cancel_reason":"found_cheaper"}'  # type: ignore[union-attr]


def test_a_reason_in_the_opening_must_not_be_asked_again() -> None:
    asked = [turn("cancel_with_reason", "cancel_form", "cancel_reason")]
    assert reason_asked_again(asked)
    offered = [turn("cancel_with_reason", "cancel_form", "cancel_decision")]
    assert not reason_asked_again(offered)
    assert not reason_asked_again([turn("cancel_request", "cancel_form", "cancel_reason")])


def test_a_saved_run_is_scored_again_the_same_way() -> None:
    from sim.app import judge_all, rejudge
    from sim.report import RunInfo

    lost = record(
        kind="keep_wait", reason="arrival_too_slow", savable=True, insisted=False, final_state="cancelled"
    )
    lost.turns = [turn("keep", None, None, state="cancelled", text="已取消")]
    honoured = record(final_state="cancelled", final_tag="found_cheaper", lang="en")
    first = judge_all([lost, honoured], RunInfo(7, 2, ["zh", "en"], "m", "c", "t", 0.1))
    again = rejudge(first.transcripts())
    assert again.report == first.report
    assert again.missed == first.missed and "zh: save_rate 0 (target >= 0.9)" in again.missed
    assert "#0 keep_wait/arrival_too_slow" in again.report
