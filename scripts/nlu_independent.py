"""The independent NLU test set (tests/nlu/independent_set.yml): loading, validation, leakage check, evaluation.

The set is written without reading the training data and is never trained on. This module

- loads and validates it (labels must be the domain's intents and entities and the 12 cancel reason tags),
- compares it with the training data (nlu/data, nlu/reasons) exactly and as near copies (spaces, punctuation
  and order ids removed), reporting only counts and the set's own entry numbers,
- parses every message with the trained Rasa model (in Rasa's venv, ``scripts/rasa_parse_batch.py``) and
  scores intents, entities, reason tags, confidence calibration and latency
  (``nlu_report.py --independent`` renders the result as nlu/reports/independent_set.md).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
NLU = ROOT / "nlu"
SET_PATH = ROOT / "tests" / "nlu" / "independent_set.yml"
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
PARSER = Path(__file__).resolve().parent / "rasa_parse_batch.py"

# DESIGN.md's 12 cancel reason tags (actions/texts.py CANCEL_REASON_LABELS holds their buyer-facing labels)
REASON_TAGS = (
    "user_mistake",
    "demand_changed",
    "found_cheaper",
    "wrong_account",
    "wrong_region",
    "payment_problem",
    "arrival_too_slow",
    "unclear_description",
    "merchant_out_of_stock",
    "merchant_malicious",
    "duplicate_order",
    "other",
)
# entities the set labels; the values of the last three are normalised names
LABELLED_ENTITIES = ("order_id", "account", "region", "product_kind", "carrier", "time_of_day")
ENTITY_VALUES = {
    "product_kind": ("game_card", "phone_topup", "membership"),
    "carrier": ("mobile", "unicom", "telecom"),
    "time_of_day": ("night", "day"),
}
# span entities: a predicted entity nested inside one of these gold values (e.g. 电信 in 上海电信) is not an error
CONTAINER_ENTITIES = ("region", "account")
# DESIGN.md's 19 intents (fixed names); the report also scores them alone, comparable with earlier models
DESIGN_INTENTS = (
    "greet",
    "goodbye",
    "thank",
    "affirm",
    "deny",
    "inform",
    "order_status",
    "arrival_time",
    "refund_guarantee",
    "cancel_order",
    "wrong_account",
    "wrong_region",
    "restore_order",
    "payment_problem",
    "request_refund",
    "merchant_rating",
    "complain",
    "human_handoff",
    "out_of_scope",
)
FALLBACK_INTENT = "nlu_fallback"
FALLBACK_THRESHOLD = 0.45
LONG_MESSAGE = 500
ORDER_ID = re.compile(r"km\s*[0-9０-９lo]{9,16}", re.IGNORECASE)
WELL_FORMED_ORDER_ID = re.compile(r"^KM\d{11,14}$")
CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class Example:
    index: int  # 1-based position in the set
    text: str
    intent: str
    entities: dict[str, tuple[str, ...]] = field(default_factory=dict)
    reason: str | None = None

    @property
    def language(self) -> str:
        return "zh" if CJK.search(self.text) else "en"

    @property
    def emoji_only(self) -> bool:
        return bool(self.text.strip()) and not any(ch.isalnum() for ch in self.text)


class SetError(ValueError):
    """The set file does not parse or holds an unknown label."""


def domain_names(domain: Path = NLU / "domain.yml") -> tuple[set[str], set[str]]:
    """The domain's intents and entities (names only)."""
    document = yaml.safe_load(domain.read_text(encoding="utf-8")) or {}

    def names(items: Iterable[Any] | None) -> set[str]:
        return {next(iter(item)) if isinstance(item, dict) else str(item) for item in items or ()}

    return names(document.get("intents")), names(document.get("entities"))


def load_set(path: Path = SET_PATH, domain: Path = NLU / "domain.yml") -> list[Example]:
    """Parses and validates the set; raises SetError naming the first bad entry."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SetError(f"{path.name} does not parse: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("messages"), list):
        raise SetError(f"{path.name} must be a mapping with a 'messages' list")
    intents, entities = domain_names(domain)
    examples = []
    for number, item in enumerate(document["messages"], start=1):
        where = f"{path.name} entry #{number}"
        if not isinstance(item, dict) or set(item) - {"text", "intent", "entities", "reason"}:
            raise SetError(f"{where}: expected keys text, intent, entities?, reason?")
        text, intent = item.get("text"), item.get("intent")
        if not isinstance(text, str) or not text.strip():
            raise SetError(f"{where}: empty or non-text 'text'")
        if intent not in intents:
            raise SetError(f"{where}: intent {intent!r} is not in the domain")
        labelled: dict[str, tuple[str, ...]] = {}
        for name, value in (item.get("entities") or {}).items():
            if name not in LABELLED_ENTITIES or name not in entities:
                raise SetError(f"{where}: entity {name!r} is not one the set may label")
            values = tuple(str(v) for v in (value if isinstance(value, list) else [value]))
            if not values or any(not v.strip() for v in values):
                raise SetError(f"{where}: empty value for {name}")
            allowed = ENTITY_VALUES.get(name)
            for v in values:
                if allowed is not None and v not in allowed:
                    raise SetError(f"{where}: {name} value {v!r} is not one of {allowed}")
                if allowed is None and squash(v) not in squash(text):
                    raise SetError(f"{where}: {name} value {v!r} does not occur in the text")
            labelled[name] = values
        reason = item.get("reason")
        if reason is not None and reason not in REASON_TAGS:
            raise SetError(f"{where}: reason {reason!r} is not one of the 12 tags")
        examples.append(Example(number, text, str(intent), labelled, reason))
    return examples


# ---------------------------------------------------------------------------------------------------------
# normalisation and leakage


def squash(text: str) -> str:
    """NFKC, case-folded, without whitespace: how entity values and exact texts are compared."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).casefold())


def normalise(text: str) -> str:
    """For exact comparison: NFKC, case-folded, whitespace collapsed."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).casefold()).strip()


def near_key(text: str) -> str:
    """For near-copy comparison: also without order ids, whitespace, punctuation and symbols (emoji)."""
    folded = ORDER_ID.sub("", unicodedata.normalize("NFKC", text).casefold())
    return "".join(ch for ch in folded if not ch.isspace() and unicodedata.category(ch)[0] not in "PSZ")


_ANNOTATION = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")


def strip_annotations(example: str) -> str:
    """``[KM2026…](order_id)`` / ``[x]{"entity": …}`` → the annotated text only."""
    return _ANNOTATION.sub(r"\1", example)


def _example_lines(block: str) -> Iterator[str]:
    for line in block.splitlines():
        stripped = line.strip()
        if stripped.startswith("- "):
            yield strip_annotations(stripped[2:].strip())


def _walk(node: Any) -> Iterator[str]:
    """Every buyer text of a Rasa or reasons YAML document: intent/reason examples and story/rule user turns.

    Regex, lookup and synonym blocks hold patterns and vocabulary, not messages, and are skipped.
    """
    if isinstance(node, dict):
        if any(key in node for key in ("regex", "lookup", "synonym")):
            return
        for key, value in node.items():
            if key == "examples" and isinstance(value, str):
                yield from _example_lines(value)
            elif key == "user" and isinstance(value, str):
                yield strip_annotations(value.strip())
            else:
                yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def training_texts(roots: Sequence[Path] = (NLU / "data", NLU / "reasons")) -> list[str]:
    texts: list[str] = []
    for root in roots:
        if not root.exists():
            continue
        for path in sorted(root.rglob("*.yml")) + sorted(root.rglob("*.yaml")):
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
            texts.extend(_walk(document))
    return texts


@dataclass(frozen=True)
class Leakage:
    training_texts: int
    exact: tuple[int, ...]  # entry numbers of the set
    near: tuple[int, ...]  # near copies that are not exact copies


def leakage(examples: Sequence[Example], training: Sequence[str]) -> Leakage:
    exact_keys = {normalise(t) for t in training}
    near_keys = {near_key(t) for t in training} - {""}
    exact = tuple(e.index for e in examples if normalise(e.text) in exact_keys)
    near = tuple(
        e.index
        for e in examples
        if e.index not in exact and near_key(e.text) and near_key(e.text) in near_keys
    )
    return Leakage(len(training), exact, near)


# ---------------------------------------------------------------------------------------------------------
# parsing with the trained model


def parse_with_rasa(model: Path, texts: Sequence[str], warmup: int = 5) -> list[dict[str, Any]]:
    """Parses every text with ``model`` in Rasa's venv; each result carries ``latency_ms``."""
    if not RASA_PYTHON.exists():
        raise SystemExit("error: .venv-rasa is missing; run 'make venv-rasa' first")
    with tempfile.TemporaryDirectory(prefix="nlu-indep-") as temp:
        source, target = Path(temp) / "in.json", Path(temp) / "out.json"
        source.write_text(json.dumps(list(texts), ensure_ascii=False), encoding="utf-8")
        command = [str(RASA_PYTHON), str(PARSER), str(model), str(source), str(target), str(warmup)]
        env = {**os.environ, "PYTHONPATH": str(NLU), "TQDM_DISABLE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
        result = subprocess.run(command, cwd=temp, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(
                f"error: parsing with Rasa failed ({result.returncode}):\n{result.stderr[-3000:]}"
            )
        parsed: list[dict[str, Any]] = json.loads(target.read_text(encoding="utf-8"))
    return parsed


# ---------------------------------------------------------------------------------------------------------
# scoring


@dataclass(frozen=True)
class Prediction:
    intent: str  # as the bot sees it (nlu_fallback when under the threshold)
    confidence: float
    top_intent: str  # best domain intent, ignoring the fallback
    top_confidence: float
    entities: dict[str, tuple[str, ...]]  # labelled entities only, values as predicted
    nested_texts: tuple[tuple[str, str], ...]  # (entity, raw text) of every predicted entity
    cancel_reason: str | None
    latency_ms: float


def prediction_from_parse(parsed: dict[str, Any]) -> Prediction:
    intent = parsed.get("intent") or {}
    ranking = [r for r in parsed.get("intent_ranking") or [] if r.get("name") != FALLBACK_INTENT]
    top = ranking[0] if ranking else intent
    entities: dict[str, list[str]] = defaultdict(list)
    raw: list[tuple[str, str]] = []
    reason = None
    text = str(parsed.get("text", ""))
    for entity in parsed.get("entities") or []:
        name, value = str(entity.get("entity")), entity.get("value")
        if name == "cancel_reason":
            reason = reason or (str(value) if value is not None else None)
            continue
        start, end = entity.get("start"), entity.get("end")
        raw.append((name, text[start:end] if isinstance(start, int) and isinstance(end, int) else str(value)))
        if name in LABELLED_ENTITIES and value is not None and str(value) not in entities[name]:
            entities[name].append(str(value))
    reading = parsed.get("cancel_reason")  # the reason classifier's own field (nlu/kmbot_nlu/reasons.py)
    if isinstance(reading, dict) and reading.get("value") is not None:
        reason = reason or str(reading["value"])
    return Prediction(
        intent=str(intent.get("name")),
        confidence=float(intent.get("confidence") or 0.0),
        top_intent=str(top.get("name")),
        top_confidence=float(top.get("confidence") or 0.0),
        entities={k: tuple(v) for k, v in entities.items()},
        nested_texts=tuple(raw),
        cancel_reason=reason,
        latency_ms=float(parsed.get("latency_ms") or 0.0),
    )


@dataclass
class Scores:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        if self.tp == 0:
            return 0.0 if self.fp + self.fn else None
        p, r = self.tp / (self.tp + self.fp), self.tp / (self.tp + self.fn)
        return 2 * p * r / (p + r)

    @property
    def support(self) -> int:
        return self.tp + self.fn


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _value_key(name: str, value: str) -> str:
    return value if name in ENTITY_VALUES else squash(value)


def entity_scores(examples: Sequence[Example], predictions: Sequence[Prediction]) -> dict[str, Scores]:
    """Per-entity counts over (entity, value) sets per message; nested predictions inside a gold
    region/account value (a carrier inside 上海电信) are neither right nor wrong."""
    scores: dict[str, Scores] = {name: Scores() for name in LABELLED_ENTITIES}
    for example, prediction in zip(examples, predictions, strict=True):
        containers = [squash(v) for n in CONTAINER_ENTITIES for v in example.entities.get(n, ())]
        for name in LABELLED_ENTITIES:
            gold = {_value_key(name, v) for v in example.entities.get(name, ())}
            predicted = {_value_key(name, v) for v in prediction.entities.get(name, ())}
            nested = {
                _value_key(name, v)
                for v in prediction.entities.get(name, ())
                if any(
                    n == name and squash(raw) and any(squash(raw) in c for c in containers)
                    for n, raw in prediction.nested_texts
                )
            }
            predicted -= nested - gold
            scores[name].tp += len(gold & predicted)
            scores[name].fp += len(predicted - gold)
            scores[name].fn += len(gold - predicted)
    return scores


def well_formed_order_id_recall(examples: Sequence[Example], predictions: Sequence[Prediction]) -> Scores:
    scores = Scores()
    for example, prediction in zip(examples, predictions, strict=True):
        gold = {squash(v) for v in example.entities.get("order_id", ()) if WELL_FORMED_ORDER_ID.match(v)}
        predicted = {squash(v) for v in prediction.entities.get("order_id", ())}
        scores.tp += len(gold & predicted)
        scores.fn += len(gold - predicted)
    return scores


@dataclass(frozen=True)
class ReasonAccuracy:
    correct: int
    total: int
    per_tag: dict[str, tuple[int, int]]  # tag -> (correct, total)
    confusions: Counter[tuple[str, str]]  # (gold, predicted or "none")
    tagged_without_reason: int  # messages without a stated reason that got a tag anyway
    without_reason: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.total if self.total else None


def reason_tag_accuracy(examples: Sequence[Example], predictions: Sequence[Prediction]) -> ReasonAccuracy:
    """Accuracy of the ``cancel_reason`` entity over the messages that state a reason."""
    per_tag: dict[str, list[int]] = {tag: [0, 0] for tag in REASON_TAGS}
    confusions: Counter[tuple[str, str]] = Counter()
    correct = total = tagged = without = 0
    for example, prediction in zip(examples, predictions, strict=True):
        if example.reason is None:
            without += 1
            tagged += prediction.cancel_reason not in (None, "none")
            continue
        total += 1
        per_tag[example.reason][1] += 1
        if prediction.cancel_reason == example.reason:
            correct += 1
            per_tag[example.reason][0] += 1
        else:
            confusions[(example.reason, prediction.cancel_reason or "none")] += 1
    return ReasonAccuracy(
        correct, total, {k: (v[0], v[1]) for k, v in per_tag.items()}, confusions, tagged, without
    )


def reason_tag_line(accuracy: ReasonAccuracy) -> str:
    """One Markdown line for another report (the cross-validation report adds it)."""
    if accuracy.accuracy is None:
        return "Reason-tag accuracy (independent set): no messages with a stated reason."
    return (
        f"Reason-tag accuracy (`cancel_reason` over the {accuracy.total} messages of the independent set that"
        f" state a cancel reason, 12 tags): **{accuracy.accuracy:.3f}** ({accuracy.correct}/{accuracy.total})."
    )


@dataclass(frozen=True)
class Evaluation:
    examples: list[Example]
    predictions: list[Prediction]

    def pairs(self) -> Iterator[tuple[Example, Prediction]]:
        return zip(self.examples, self.predictions, strict=True)

    def intent_scores(self, top: bool = False) -> dict[str, Scores]:
        scores: dict[str, Scores] = {e.intent: Scores() for e in self.examples}
        for example, prediction in self.pairs():
            predicted = prediction.top_intent if top else prediction.intent
            if predicted == example.intent:
                scores[example.intent].tp += 1
            else:
                scores[example.intent].fn += 1
                if predicted in scores:
                    scores[predicted].fp += 1
        return scores

    def accuracy(self, top: bool = False, subset: Iterable[int] | None = None) -> float:
        chosen = set(subset) if subset is not None else None
        pairs = [(e, p) for e, p in self.pairs() if chosen is None or e.index in chosen]
        if not pairs:
            return math.nan
        hits = sum((p.top_intent if top else p.intent) == e.intent for e, p in pairs)
        return hits / len(pairs)

    def macro_f1(self, top: bool = False, intents: Iterable[str] | None = None) -> float:
        chosen = set(intents) if intents is not None else None
        values = [s.f1 or 0.0 for i, s in self.intent_scores(top).items() if chosen is None or i in chosen]
        return sum(values) / len(values) if values else math.nan

    def confusions(self) -> list[tuple[str, str, list[Example]]]:
        grouped: dict[tuple[str, str], list[Example]] = defaultdict(list)
        for example, prediction in self.pairs():
            if prediction.intent != example.intent:
                grouped[(example.intent, prediction.intent)].append(example)
        return sorted(
            ((g, p, items) for (g, p), items in grouped.items()), key=lambda x: (-len(x[2]), x[0], x[1])
        )

    def calibration(
        self, edges: Sequence[float] = (0.0, 0.45, 0.6, 0.8, 0.9, 0.95, 1.0001)
    ) -> list[tuple[str, int, float]]:
        """(bucket, messages, accuracy of the best domain intent) by its confidence."""
        rows = []
        for low, high in itertools.pairwise(edges):
            inside = [(e, p) for e, p in self.pairs() if low <= p.top_confidence < high]
            accuracy = sum(p.top_intent == e.intent for e, p in inside) / len(inside) if inside else math.nan
            rows.append((f"{low:.2f}–{min(high, 1.0):.2f}", len(inside), accuracy))
        return rows

    def confident_errors(self, threshold: float = FALLBACK_THRESHOLD) -> list[tuple[Example, Prediction]]:
        return [(e, p) for e, p in self.pairs() if p.top_intent != e.intent and p.top_confidence >= threshold]


def evaluate(examples: Sequence[Example], parsed: Sequence[dict[str, Any]]) -> Evaluation:
    if len(examples) != len(parsed):
        raise ValueError(f"{len(parsed)} parse results for {len(examples)} messages")
    return Evaluation(list(examples), [prediction_from_parse(p) for p in parsed])


def main() -> int:
    """Validates the set and prints its size and the leakage counts (no training text is printed)."""
    examples = load_set()
    found = leakage(examples, training_texts())
    counts = Counter(e.intent for e in examples)
    print(
        f"{len(examples)} messages, {len(counts)} intents, {sum(e.reason is not None for e in examples)} reasons"
    )
    print(
        f"compared with {found.training_texts} training texts: {len(found.exact)} exact, {len(found.near)} near"
    )
    if found.exact or found.near:
        print("set entries: " + ", ".join(f"#{i}" for i in (*found.exact, *found.near)))
    return 1 if found.exact or found.near else 0


if __name__ == "__main__":
    sys.exit(main())


# ---------------------------------------------------------------------------------------------------------
# the report


@dataclass(frozen=True)
class IndependentTargets:
    macro_f1: float = 0.95
    min_intent_f1: float = 0.90
    order_id_recall: float = 1.0


def _fmt(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _cell(text: str, limit: int = 90) -> str:
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return flat.replace("|", "\\|") or "(blank)"


def check_targets(evaluation: Evaluation, targets: IndependentTargets) -> list[str]:
    failures = []
    macro = evaluation.macro_f1()
    if macro < targets.macro_f1:
        failures.append(f"intent macro-F1 {macro:.3f} < {targets.macro_f1:.2f}")
    low = {
        i: s.f1 or 0.0 for i, s in evaluation.intent_scores().items() if (s.f1 or 0.0) < targets.min_intent_f1
    }
    if low:
        failures.append(
            f"{len(low)} intents under F1 {targets.min_intent_f1:.2f} ("
            + ", ".join(f"{i} {f:.2f}" for i, f in sorted(low.items(), key=lambda x: x[1]))
            + ")"
        )
    recall = well_formed_order_id_recall(evaluation.examples, evaluation.predictions).recall
    if recall is not None and recall < targets.order_id_recall:
        failures.append(f"order_id recall {recall:.3f} < {targets.order_id_recall:.2f}")
    return failures


def render_report(
    evaluation: Evaluation,
    model_name: str,
    targets: IndependentTargets,
    failures: Sequence[str],
    generated: str,
    elapsed: float | None = None,
    load: float | None = None,
) -> str:
    examples, predictions = evaluation.examples, evaluation.predictions
    languages = Counter(e.language for e in examples)
    intents = evaluation.intent_scores()
    entities = entity_scores(examples, predictions)
    order_ids = well_formed_order_id_recall(examples, predictions)
    reasons = reason_tag_accuracy(examples, predictions)
    latencies = [p.latency_ms for p in predictions]
    fallback = sum(p.intent == FALLBACK_INTENT for p in predictions)
    confident = evaluation.confident_errors()
    errors = sum(p.intent != e.intent for e, p in evaluation.pairs())
    worst = min(intents.items(), key=lambda item: (item[1].f1 or 0.0, item[0]))
    zh = [e.index for e in examples if e.language == "zh"]
    en = [e.index for e in examples if e.language == "en"]
    lines = [
        "# NLU report: the independent test set",
        "",
        f"Generated by `scripts/nlu_report.py --independent` on {generated}: model `{model_name}` parsed every"
        f" message of `tests/nlu/independent_set.yml` ({len(examples)} messages, {languages['zh']} zh-CN /"
        f" {languages['en']} English, {len(intents)} intents, {reasons.total} with a stated cancel reason),"
        " a set written without reading the training data and never trained on"
        + (f"; {elapsed:.0f} s" if elapsed is not None else "")
        + ". The cross-validation report (`cross_validation.md`) measures the training data against itself;"
        " this one measures how the model generalises to how buyers write.",
        "",
        "## Summary",
        "",
        "| metric | value | target |",
        "|---|---|---|",
        f"| intent accuracy | {_fmt(evaluation.accuracy())} | |",
        f"| intent macro-F1 | {_fmt(evaluation.macro_f1())} | ≥ {targets.macro_f1:.2f} |",
        f"| intent macro-F1 over DESIGN.md's 19 intents | {_fmt(evaluation.macro_f1(intents=DESIGN_INTENTS))} | |",
        f"| weakest intent F1 (`{worst[0]}`) | {_fmt(worst[1].f1)} | ≥ {targets.min_intent_f1:.2f} |",
        f"| accuracy zh-CN / English | {_fmt(evaluation.accuracy(subset=zh))} /"
        f" {_fmt(evaluation.accuracy(subset=en))} | |",
        f"| accuracy of the best intent, fallback ignored | {_fmt(evaluation.accuracy(top=True))} | |",
        f"| under the fallback threshold ({FALLBACK_THRESHOLD}) | {fallback} ({fallback / len(examples):.1%}) | |",
        f"| wrong and still ≥ {FALLBACK_THRESHOLD} confident | {len(confident)} of {errors} errors | |",
        f"| `order_id` recall (well-formed KM ids) | {_fmt(order_ids.recall)} ({order_ids.tp}/{order_ids.support})"
        f" | ≥ {targets.order_id_recall:.2f} |",
        f"| `order_id` recall (all, incl. mistyped/spaced) | {_fmt(entities['order_id'].recall)} | |",
        f"| reason-tag accuracy (`cancel_reason`) | {_fmt(reasons.accuracy)} ({reasons.correct}/{reasons.total}) | |",
        f"| parse latency p50 / p95 | {percentile(latencies, 0.5):.1f} ms / {percentile(latencies, 0.95):.1f} ms"
        " | p50 ≤ 20 ms |",
        "",
        "**Result: " + ("all targets met.**" if not failures else "targets missed:** " + "; ".join(failures)),
        "",
        "Scoring: the intent is the one the bot acts on (`nlu_fallback` under the threshold counts as a miss);"
        " macro-F1 averages the F1 of the set's intents.",
        "",
        "## Intents",
        "",
        "Sorted by F1, weakest first.",
        "",
        "| intent | precision | recall | F1 | support | most often read as |",
        "|---|---|---|---|---|---|",
    ]
    confusions = evaluation.confusions()
    for name, scores in sorted(intents.items(), key=lambda item: (item[1].f1 or 0.0, item[0])):
        read_as = ", ".join([f"`{p}` ({len(items)})" for g, p, items in confusions if g == name][:3])
        lines.append(
            f"| `{name}` | {_fmt(scores.precision)} | {_fmt(scores.recall)} | {_fmt(scores.f1)}"
            f" | {scores.support} | {read_as} |"
        )
    lines += ["", "## Top confusions", ""]
    if confusions:
        lines += ["| gold | predicted | count | examples |", "|---|---|---|---|"]
        for gold, predicted, items in confusions[:20]:
            shown = " · ".join(f"«{_cell(e.text, 70)}»" for e in items[:2])
            lines.append(f"| `{gold}` | `{predicted}` | {len(items)} | {shown} |")
    else:
        lines.append("None.")
    lines += [
        "",
        "## Entities",
        "",
        "Per message, the set of (entity, value) pairs: values of `order_id`, `account` and `region` compared"
        " case- and width-insensitively without spaces, `product_kind`, `carrier` and `time_of_day` by their"
        " normalised values. A predicted entity nested inside a labelled region or account (电信 in 上海电信)"
        " is not counted as an error.",
        "",
        "| entity | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name in LABELLED_ENTITIES:
        s = entities[name]
        lines.append(f"| `{name}` | {_fmt(s.precision)} | {_fmt(s.recall)} | {_fmt(s.f1)} | {s.support} |")
    lines.append(f"| `order_id`, well-formed ids only | | {_fmt(order_ids.recall)} | | {order_ids.support} |")
    missed = [
        e
        for e, p in evaluation.pairs()
        for v in e.entities.get("order_id", ())
        if squash(v) not in {squash(x) for x in p.entities.get("order_id", ())}
    ]
    if missed:
        lines += ["", "Missed order ids: " + ", ".join(f"«{_cell(e.text, 50)}»" for e in missed[:10]) + "."]
    lines += ["", "## Cancel reason tags", "", reason_tag_line(reasons), ""]
    lines += ["| tag | correct | messages | accuracy |", "|---|---|---|---|"]
    for tag in REASON_TAGS:
        right, total = reasons.per_tag[tag]
        lines.append(f"| `{tag}` | {right} | {total} | {_fmt(right / total if total else None)} |")
    if reasons.confusions:
        lines += [
            "",
            "Most frequent mistakes: "
            + ", ".join(f"`{g}` → `{p}` ({n})" for (g, p), n in reasons.confusions.most_common(8))
            + ".",
        ]
    lines += [
        "",
        f"Messages without a stated reason that got a tag anyway: {reasons.tagged_without_reason} of"
        f" {reasons.without_reason}.",
        "",
        "## Confidence and calibration",
        "",
        "Accuracy of the best domain intent by its confidence. A well calibrated model is right almost always"
        f" above the fallback threshold ({FALLBACK_THRESHOLD}) and puts what it cannot place below it.",
        "",
        "| confidence | messages | accuracy |",
        "|---|---|---|",
    ]
    for bucket, count, accuracy in evaluation.calibration():
        lines.append(f"| {bucket} | {count} | {_fmt(accuracy if count else None)} |")
    lines += [
        "",
        f"{len(confident)} of the {errors} wrong predictions were at or above the fallback threshold, so the"
        " bot would have acted on them. The most confident ones:",
        "",
        "| text | gold | predicted | confidence |",
        "|---|---|---|---|",
    ]
    for example, prediction in sorted(confident, key=lambda pair: -pair[1].top_confidence)[:12]:
        lines.append(
            f"| {_cell(example.text, 70)} | `{example.intent}` | `{prediction.top_intent}`"
            f" | {prediction.top_confidence:.2f} |"
        )
    by_length = [
        ("≤ 20 characters", [p.latency_ms for e, p in evaluation.pairs() if len(e.text) <= 20]),
        (
            "21–499 characters",
            [p.latency_ms for e, p in evaluation.pairs() if 20 < len(e.text) < LONG_MESSAGE],
        ),
        (
            f"≥ {LONG_MESSAGE} characters",
            [p.latency_ms for e, p in evaluation.pairs() if len(e.text) >= LONG_MESSAGE],
        ),
    ]
    lines += [
        "",
        "## Parse latency",
        "",
        "Wall time of `Agent.parse_message` per message, one process, model loaded and warmed up, on this"
        " shared 2-core machine"
        + (f" (1-minute load average {load:.1f} when parsing started)" if load is not None else "")
        + ".",
        "",
        "| messages | count | p50 | p95 | max |",
        "|---|---|---|---|---|",
    ]
    for label, values in [("all", latencies), *by_length]:
        if values:
            lines.append(
                f"| {label} | {len(values)} | {percentile(values, 0.5):.1f} ms | {percentile(values, 0.95):.1f} ms"
                f" | {max(values):.1f} ms |"
            )
    long_pairs = [(e, p) for e, p in evaluation.pairs() if len(e.text) >= LONG_MESSAGE]
    emoji_pairs = [(e, p) for e, p in evaluation.pairs() if e.emoji_only]
    destructive = [(e, p) for e, p in emoji_pairs if p.intent in ("cancel_order", "request_refund")]
    lines += [
        "",
        "## Very long and emoji-only messages",
        "",
        f"{len(long_pairs)} messages of {LONG_MESSAGE}+ characters: accuracy"
        f" {_fmt(evaluation.accuracy(subset=[e.index for e, _ in long_pairs]))}.",
        "",
        "| characters | start of the text | gold | predicted | confidence |",
        "|---|---|---|---|---|",
    ]
    for example, prediction in long_pairs:
        lines.append(
            f"| {len(example.text)} | {_cell(example.text, 40)} | `{example.intent}` | `{prediction.intent}`"
            f" | {prediction.confidence:.2f} |"
        )
    lines += [
        "",
        f"{len(emoji_pairs)} emoji-only messages: accuracy"
        f" {_fmt(evaluation.accuracy(subset=[e.index for e, _ in emoji_pairs]))};"
        f" read as a cancellation or refund: {len(destructive)} (must be 0).",
        "",
        "| text | gold | predicted | confidence |",
        "|---|---|---|---|",
    ]
    for example, prediction in emoji_pairs:
        lines.append(
            f"| {example.text} | `{example.intent}` | `{prediction.intent}` | {prediction.confidence:.2f} |"
        )
    lines += [
        "",
        "Reproduce with `make nlu-independent` (or `.venv/bin/python scripts/nlu_report.py --independent`).",
        "",
    ]
    return "\n".join(lines)
