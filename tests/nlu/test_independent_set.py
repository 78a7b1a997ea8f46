"""The independent NLU test set (tests/nlu/independent_set.yml) is well-formed, big enough and never trained on.

Fast (no model): parses the set, checks every label against the domain and the 12 cancel reason tags, the
minimum counts per intent, per reason tag and per language, and that no text of the set (nor a near copy of one:
spaces, punctuation and order ids removed) occurs in the training data (nlu/data, nlu/reasons). Only counts and
the set's own entry numbers are reported, never training texts.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import nlu_independent as indep  # noqa: E402

from actions.texts import CANCEL_REASON_LABELS  # noqa: E402

MIN_MESSAGES = 650
MIN_PER_INTENT = 20
# the intents a flow turns on (typed answers to the bot's questions, cancellation and its exits) need more
FLOW_INTENTS = ("cancel_order", "keep_order", "stop", "inform", "affirm", "deny")
MIN_PER_FLOW_INTENT = 30
MIN_PER_REASON = 12
MIN_VERY_LONG = 3  # 1,000+ characters
MIN_EMOJI_ONLY = 8


@pytest.fixture(scope="module")
def examples() -> list[indep.Example]:
    return indep.load_set()


def test_every_label_is_a_domain_name(examples: list[indep.Example]) -> None:
    intents, entities = indep.domain_names()
    assert {e.intent for e in examples} == intents, "every domain intent has messages, no other intent"
    assert {name for e in examples for name in e.entities} <= entities
    assert set(indep.REASON_TAGS) == set(CANCEL_REASON_LABELS), "the 12 tags of DESIGN.md"


def test_size_and_languages(examples: list[indep.Example]) -> None:
    assert len(examples) >= MIN_MESSAGES
    languages = Counter(e.language for e in examples)
    share = languages["zh"] / len(examples)
    assert 0.60 <= share <= 0.70, f"zh share {share:.2f} (about 65 % zh-CN, 35 % English)"
    assert sum(len(e.text) >= 1000 for e in examples) >= MIN_VERY_LONG
    assert sum(e.emoji_only for e in examples) >= MIN_EMOJI_ONLY


def test_counts_per_intent(examples: list[indep.Example]) -> None:
    counts = Counter(e.intent for e in examples)
    short = {i: n for i, n in counts.items() if n < MIN_PER_INTENT}
    assert not short, f"intents under {MIN_PER_INTENT} messages: {short}"
    thin = {i: counts[i] for i in FLOW_INTENTS if counts[i] < MIN_PER_FLOW_INTENT}
    assert not thin, f"flow intents under {MIN_PER_FLOW_INTENT} messages: {thin}"
    both = {i for i in counts if {e.language for e in examples if e.intent == i} != {"zh", "en"}}
    assert not both, f"intents without messages in both languages: {both}"


def test_counts_per_reason_tag(examples: list[indep.Example]) -> None:
    counts = Counter(e.reason for e in examples if e.reason)
    short = {tag: counts[tag] for tag in indep.REASON_TAGS if counts[tag] < MIN_PER_REASON}
    assert not short, f"reason tags under {MIN_PER_REASON} messages: {short}"
    for tag in indep.REASON_TAGS:
        assert {e.language for e in examples if e.reason == tag} == {"zh", "en"}, tag


def test_entities_are_labelled(examples: list[indep.Example]) -> None:
    counts = Counter(name for e in examples for name in e.entities)
    for name in indep.LABELLED_ENTITIES:
        assert counts[name] >= 10, f"{name}: {counts[name]} messages"
    # every text that holds a well-formed order id labels it (order_id recall is a target on this set)
    for e in examples:
        for match in indep.ORDER_ID.finditer(e.text):
            assert indep.squash(match.group()) in {indep.squash(v) for v in e.entities.get("order_id", ())}, (
                f"entry #{e.index}: order id {match.group()} not labelled"
            )


def test_texts_are_distinct(examples: list[indep.Example]) -> None:
    keys = Counter(indep.near_key(e.text) or indep.normalise(e.text) for e in examples)
    repeated = [e.index for e in examples if keys[indep.near_key(e.text) or indep.normalise(e.text)] > 1]
    assert not repeated, f"near-duplicate entries inside the set: {repeated}"


def test_no_text_of_the_set_is_in_the_training_data(examples: list[indep.Example]) -> None:
    training = indep.training_texts()
    assert len(training) > 1000, "the training data was not found"
    found = indep.leakage(examples, training)
    assert not found.exact and not found.near, (
        f"{len(found.exact)} exact and {len(found.near)} near copies of set entries in the training data"
        f" ({found.training_texts} training texts): set entries {[*found.exact, *found.near]} — remove them"
        " from the training data (the set is never trained on)"
    )


def test_leakage_check_sees_copies_and_near_copies() -> None:
    set_ = [
        indep.Example(1, "KM20261127003 取消吧，别家便宜好几块！", "cancel_order"),
        indep.Example(2, "Where is my ORDER?", "order_status"),
        indep.Example(3, "完全不同的一句话", "out_of_scope"),
    ]
    training = [
        "[KM20261127001](order_id)取消吧 别家便宜好几块",  # near: other id, no punctuation
        "where  is my order?",  # exact after case and spaces
    ]
    found = indep.leakage(set_, [indep.strip_annotations(t) for t in training])
    assert found.exact == (2,)
    assert found.near == (1,)


def test_training_texts_skip_vocabulary_blocks(tmp_path: Path) -> None:
    (tmp_path / "nlu.yml").write_text(
        'version: "3.1"\nnlu:\n  - intent: greet\n    examples: |\n      - 你好呀\n'
        "  - lookup: region\n    examples: |\n      - 安卓QQ区\n"
        "  - regex: order_id\n    examples: |\n      - KM\\d{11}\n"
        "stories:\n  - story: s\n    steps:\n      - user: |\n          [KM20261127001](order_id) 到了吗\n"
        "        intent: order_status\n",
        encoding="utf-8",
    )
    texts = indep.training_texts([tmp_path])
    assert texts == ["你好呀", "KM20261127001 到了吗"]


def test_bad_labels_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "set.yml"
    bad.write_text('messages:\n  - {text: "hi", intent: say_hello}\n', encoding="utf-8")
    with pytest.raises(indep.SetError, match="not in the domain"):
        indep.load_set(bad)
    bad.write_text(
        'messages:\n  - {text: "取消", intent: cancel_order, reason: too_pricey}\n', encoding="utf-8"
    )
    with pytest.raises(indep.SetError, match="12 tags"):
        indep.load_set(bad)
    bad.write_text(
        'messages:\n  - {text: "查 KM20261127001", intent: order_status, entities: {order_id: KM1}}\n',
        encoding="utf-8",
    )
    with pytest.raises(indep.SetError, match="does not occur"):
        indep.load_set(bad)
