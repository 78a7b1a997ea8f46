"""NLU cross-validation report: intent and entity quality of the project's pipeline on its own data.

    python scripts/nlu_report.py              # 5-fold CV, writes nlu/reports/cross_validation.md, checks targets
    python scripts/nlu_report.py --no-check   # the same, exit 0 whatever the numbers
    python scripts/nlu_report.py --from-results DIR   # only re-render the report from an earlier run's output
    python scripts/nlu_report.py --reason-accuracy    # CV report plus the reason-tag accuracy line (below)
    python scripts/nlu_report.py --independent        # the trained model on the independent test set
                                                      # → nlu/reports/independent_set.md

Runs ``rasa test nlu --cross-validation`` with nlu/config.yml on nlu/data/nlu (in Rasa's venv, output in a temp
directory), then renders the accumulated test-fold results as Markdown: data size, intent accuracy, macro and
weighted F1, a per-intent table, entity F1 per entity and extractor, and the most frequent confusions.

Targets (exit 1 when missed): intent macro-F1 >= 0.95, and entity F1 >= 0.90 for each of order_id, account and
region (the DIETClassifier, the pipeline's extractor for all three; the regex extractor only covers the
patterns it has and is reported for information).

``--independent`` loads the current trained model (scripts/train.py trains it when nlu/ changed) and parses every
message of tests/nlu/independent_set.yml, a set written without the training data (scripts/nlu_independent.py):
intent accuracy and macro-F1, per-intent scores, confusions with examples, entity scores, reason-tag accuracy,
confidence calibration, parse latency, very long and emoji-only messages. Targets (exit 1 when missed): macro-F1
>= 0.95, every intent F1 >= 0.90, order_id recall 1.0. ``--reason-accuracy`` adds the reason-tag accuracy on
that set (the ``cancel_reason`` entity over the messages that state a reason) to the cross-validation report.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import nlu_independent as independent
import yaml
from train import ensure_model

ROOT = Path(__file__).resolve().parent.parent
NLU = ROOT / "nlu"
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
REPORT = NLU / "reports" / "cross_validation.md"
INDEPENDENT_REPORT = NLU / "reports" / "independent_set.md"
ENTITIES = ("order_id", "account", "region")
GATED_EXTRACTOR = "DIETClassifier"
SUMMARY_KEYS = {"accuracy", "macro avg", "weighted avg", "micro avg"}


@dataclass(frozen=True)
class Targets:
    intent_macro_f1: float
    entity_f1: float


def run_cross_validation(out: Path, folds: int) -> float:
    """Runs Rasa's cross-validation into ``out``; returns the wall time in seconds."""
    if not RASA.exists():
        raise SystemExit("error: .venv-rasa is missing; run 'make venv-rasa' first")
    command = [
        str(RASA),
        "test",
        "nlu",
        "--nlu",
        str(NLU / "data" / "nlu"),
        "--config",
        str(NLU / "config.yml"),
        "--domain",
        str(NLU / "domain.yml"),
        "--cross-validation",
        "--folds",
        str(folds),
        "--out",
        str(out),
        "--no-plot",
    ]
    print(f"running {folds}-fold cross-validation (trains {folds} models) …", file=sys.stderr)
    started = time.monotonic()
    log = out / "rasa.log"
    with log.open("wb") as sink:
        # Rasa caches trained components under .rasa/ in the working directory; keep that out of nlu/
        result = subprocess.run(
            command,
            cwd=out,
            stdout=sink,
            stderr=subprocess.STDOUT,
            # nlu/ on the path: config.yml names the project's own components (nlu/kmbot_nlu)
            env={**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(NLU)},
        )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"error: rasa test nlu exited with {result.returncode}; its log ends:\n{tail}")
    print(f"cross-validation done in {elapsed:.0f} s", file=sys.stderr)
    return elapsed


def load_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def data_size() -> dict[str, Any]:
    """Examples per intent and language file, entity annotations, regexes, lookups and synonyms."""
    per_file: dict[str, int] = {}
    per_intent: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for path in sorted((NLU / "data" / "nlu").glob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        examples_in_file = 0
        for block in document.get("nlu") or []:
            lines = [line.strip()[2:] for line in str(block.get("examples", "")).splitlines() if line.strip()]
            if "intent" in block:
                per_intent[block["intent"]] += len(lines)
                examples_in_file += len(lines)
                for entity in ENTITIES:
                    counts[entity] += sum(
                        line.count(f"]({entity})") + line.count(f'"entity": "{entity}"') for line in lines
                    )
            for kind in ("regex", "lookup", "synonym"):
                if kind in block:
                    counts[kind] += 1
                    counts[f"{kind}_entries"] += len(lines)
        per_file[path.name] = examples_in_file
    return {"files": per_file, "intents": per_intent, "counts": counts}


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def intent_rows(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return sorted(
        ((name, scores) for name, scores in report.items() if name not in SUMMARY_KEYS),
        key=lambda item: (item[1]["f1-score"], item[0]),
    )


def top_confusions(report: dict[str, Any], limit: int = 15) -> list[tuple[str, str, int]]:
    pairs = [
        (gold, predicted, count)
        for gold, scores in report.items()
        if gold not in SUMMARY_KEYS
        for predicted, count in (scores.get("confused_with") or {}).items()
    ]
    return sorted(pairs, key=lambda pair: (-pair[2], pair[0], pair[1]))[:limit]


def error_examples(results: Path, limit: int = 25) -> list[dict[str, Any]]:
    path = results / "intent_errors.json"
    if not path.exists():
        return []
    errors: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return sorted(errors, key=lambda e: -float(e["intent_prediction"]["confidence"]))[:limit]


def entity_reports(results: Path) -> dict[str, dict[str, Any]]:
    return {
        path.name.removesuffix("_report.json"): load_json(path)
        for path in sorted(results.glob("*_report.json"))
        if path.name not in ("intent_report.json", "response_selection_report.json")
    }


def check(intent_report: dict[str, Any], entities: dict[str, dict[str, Any]], targets: Targets) -> list[str]:
    failures = []
    macro = intent_report["macro avg"]["f1-score"]
    if macro < targets.intent_macro_f1:
        failures.append(f"intent macro-F1 {macro:.3f} < {targets.intent_macro_f1:.2f}")
    gated = entities.get(GATED_EXTRACTOR)
    if gated is None:
        failures.append(f"no entity report for {GATED_EXTRACTOR}")
        return failures
    for entity in ENTITIES:
        scores = gated.get(entity)
        f1 = scores["f1-score"] if scores else 0.0
        if f1 < targets.entity_f1:
            failures.append(f"{entity} entity F1 ({GATED_EXTRACTOR}) {f1:.3f} < {targets.entity_f1:.2f}")
    return failures


def render(
    results: Path,
    folds: int,
    elapsed: float | None,
    targets: Targets,
    failures: list[str],
    extra: list[str] | None = None,
) -> str:
    intent_report = load_json(results / "intent_report.json")
    entities = entity_reports(results)
    size = data_size()
    total = sum(size["intents"].values())
    counts = size["counts"]
    macro, weighted = intent_report["macro avg"], intent_report["weighted avg"]
    lines = [
        "# NLU cross-validation report",
        "",
        f"Generated by `scripts/nlu_report.py` on {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
        f" ({folds}-fold cross-validation of `nlu/config.yml` on `nlu/data/nlu`; every example is scored"
        " once, by the model that did not train on it"
        + (f"; {elapsed / 60:.1f} min" if elapsed is not None else "")
        + ").",
        "",
        "## Summary",
        "",
        "| metric | value | target |",
        "|---|---|---|",
        f"| intent accuracy | {fmt(intent_report['accuracy'])} | |",
        f"| intent macro-F1 | {fmt(macro['f1-score'])} | ≥ {targets.intent_macro_f1:.2f} |",
        f"| intent weighted F1 | {fmt(weighted['f1-score'])} | |",
    ]
    gated = entities.get(GATED_EXTRACTOR, {})
    for entity in ENTITIES:
        scores = gated.get(entity)
        lines.append(
            f"| entity F1 `{entity}` ({GATED_EXTRACTOR}) | {fmt(scores['f1-score'] if scores else None)}"
            f" | ≥ {targets.entity_f1:.2f} |"
        )
    lines += [
        "",
        "**Result: " + ("all targets met.**" if not failures else "targets missed:** " + "; ".join(failures)),
        "",
        "## Data",
        "",
        f"{total} intent examples in {len(size['intents'])} intents ("
        + ", ".join(f"`{name}` {count}" for name, count in size["files"].items() if count)
        + "); entity annotations: "
        + ", ".join(f"`{entity}` {counts[entity]}" for entity in ENTITIES)
        + f". Also {counts['regex']} regexes ({counts['regex_entries']} patterns), {counts['lookup']}"
        f" lookup table(s) ({counts['lookup_entries']} entries) and {counts['synonym']} synonym groups"
        f" ({counts['synonym_entries']} spellings).",
        "",
        "## Intents",
        "",
        "Sorted by F1, weakest first.",
        "",
        "| intent | precision | recall | F1 | support | confused with |",
        "|---|---|---|---|---|---|",
    ]
    for name, scores in intent_rows(intent_report):
        confused = ", ".join(
            f"{other} ({count})" for other, count in (scores.get("confused_with") or {}).items()
        )
        lines.append(
            f"| `{name}` | {fmt(scores['precision'])} | {fmt(scores['recall'])} | {fmt(scores['f1-score'])}"
            f" | {scores['support']} | {confused} |"
        )
    lines += [
        "",
        f"| macro avg | {fmt(macro['precision'])} | {fmt(macro['recall'])} | {fmt(macro['f1-score'])}"
        f" | {macro['support']} | |",
        f"| weighted avg | {fmt(weighted['precision'])} | {fmt(weighted['recall'])}"
        f" | {fmt(weighted['f1-score'])} | {weighted['support']} | |",
        "",
        "## Entities",
        "",
        "Token-level scores per extractor (Rasa's entity evaluation). The RegexEntityExtractor only knows"
        " order-id, phone/e-mail, whole-message-number and region patterns, so its recall is bounded by them;"
        " the targets apply to the DIETClassifier.",
        "",
        "| extractor | entity | precision | recall | F1 | support |",
        "|---|---|---|---|---|---|",
    ]
    for extractor, report in entities.items():
        for entity in (*ENTITIES, "micro avg", "macro avg"):
            scores = report.get(entity)
            if not scores:
                continue
            label = f"`{entity}`" if entity in ENTITIES else entity
            lines.append(
                f"| {extractor} | {label} | {fmt(scores['precision'])} | {fmt(scores['recall'])}"
                f" | {fmt(scores['f1-score'])} | {scores['support']} |"
            )
    confusions = top_confusions(intent_report)
    lines += ["", "## Top confusions", ""]
    if confusions:
        lines += ["| gold intent | predicted | count |", "|---|---|---|"]
        lines += [f"| `{gold}` | `{predicted}` | {count} |" for gold, predicted, count in confusions]
    else:
        lines.append("None.")
    examples = error_examples(results)
    if examples:
        lines += [
            "",
            "### Misclassified examples (most confident first)",
            "",
            "| text | gold | predicted | confidence |",
            "|---|---|---|---|",
        ]
        for error in examples:
            text = str(error["text"]).replace("|", "\\|")
            prediction = error["intent_prediction"]
            lines.append(
                f"| {text} | `{error['intent']}` | `{prediction['name']}` | {float(prediction['confidence']):.2f} |"
            )
    if extra:
        lines += ["", "## Cancel reason tags", "", *extra]
    lines += [
        "",
        "Reproduce with `make nlu-report` (or `.venv/bin/python scripts/nlu_report.py`).",
        "",
    ]
    return "\n".join(lines)


def reason_accuracy_line() -> str:
    """The reason-tag accuracy of the current model on the independent set's messages that state a reason."""
    examples = [e for e in independent.load_set() if e.reason is not None]
    model = ensure_model(quiet=True)
    parsed = independent.parse_with_rasa(model, [e.text for e in examples])
    accuracy = independent.reason_tag_accuracy(examples, independent.evaluate(examples, parsed).predictions)
    return independent.reason_tag_line(accuracy) + f" Model `{model.name}`."


def run_independent(args: argparse.Namespace) -> int:
    examples = independent.load_set()
    started = time.monotonic()
    if args.from_parsed:
        parsed = json.loads(args.from_parsed.read_text(encoding="utf-8"))
        model_name = str(parsed[0].get("model", "?")) if parsed else "?"
        load = parsed[0].get("load") if parsed else None
        elapsed = parsed[0].get("elapsed") if parsed else None
    else:
        model = ensure_model(quiet=True)
        model_name = model.name
        print(f"parsing {len(examples)} messages with {model_name} …", file=sys.stderr)
        load = os.getloadavg()[0]
        parsed = independent.parse_with_rasa(model, [e.text for e in examples])
        elapsed = time.monotonic() - started
        for item in parsed:
            item["model"], item["load"], item["elapsed"] = model_name, load, elapsed
        if args.keep_results:
            args.keep_results.parent.mkdir(parents=True, exist_ok=True)
            args.keep_results.write_text(json.dumps(parsed, ensure_ascii=False), encoding="utf-8")
    evaluation = independent.evaluate(examples, parsed)
    targets = independent.IndependentTargets(
        args.min_intent_f1, args.min_each_intent_f1, args.min_order_id_recall
    )
    failures = independent.check_targets(evaluation, targets)
    generated = f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
    output = args.output if args.output != REPORT else INDEPENDENT_REPORT
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        independent.render_report(evaluation, model_name, targets, failures, generated, elapsed, load),
        encoding="utf-8",
    )
    reasons = independent.reason_tag_accuracy(evaluation.examples, evaluation.predictions)
    print(f"report: {output}", file=sys.stderr)
    print(
        f"independent set: intent macro-F1 {evaluation.macro_f1():.3f}, accuracy {evaluation.accuracy():.3f},"
        f" reason-tag accuracy {reasons.accuracy or 0.0:.3f}",
        file=sys.stderr,
    )
    for failure in failures:
        print(f"target missed: {failure}", file=sys.stderr)
    return 1 if failures and not args.no_check else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--no-check", action="store_true", help="exit 0 even when a target is missed")
    parser.add_argument("--output", type=Path, default=REPORT, help=f"the report (default {REPORT})")
    parser.add_argument(
        "--keep-results",
        type=Path,
        help="also keep Rasa's raw results in this directory (with --independent: the parse results, a JSON file)",
    )
    parser.add_argument(
        "--from-results", type=Path, help="render from an earlier run's results (no training)"
    )
    parser.add_argument("--min-intent-f1", type=float, default=0.95)
    parser.add_argument("--min-entity-f1", type=float, default=0.90)
    parser.add_argument(
        "--reason-accuracy",
        action="store_true",
        help="add the reason-tag accuracy on the independent set to the cross-validation report",
    )
    independent_group = parser.add_argument_group("independent test set")
    independent_group.add_argument(
        "--independent",
        action="store_true",
        help=f"score the trained model on the set → {INDEPENDENT_REPORT}",
    )
    independent_group.add_argument(
        "--from-parsed", type=Path, help="render from an earlier run's parse results (--keep-results file)"
    )
    independent_group.add_argument("--min-each-intent-f1", type=float, default=0.90)
    independent_group.add_argument("--min-order-id-recall", type=float, default=1.0)
    args = parser.parse_args()
    if args.independent:
        return run_independent(args)
    targets = Targets(args.min_intent_f1, args.min_entity_f1)

    with tempfile.TemporaryDirectory(prefix="nlu-cv-") as temp:
        if args.from_results:
            results, elapsed = args.from_results, None
        else:
            results = args.keep_results or Path(temp)
            results.mkdir(parents=True, exist_ok=True)
            elapsed = run_cross_validation(results, args.folds)
        intent_report = load_json(results / "intent_report.json")
        failures = check(intent_report, entity_reports(results), targets)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        extra = [reason_accuracy_line()] if args.reason_accuracy else None
        args.output.write_text(
            render(results, args.folds, elapsed, targets, failures, extra), encoding="utf-8"
        )

    print(f"report: {args.output}", file=sys.stderr)
    print(
        f"intent macro-F1 {intent_report['macro avg']['f1-score']:.3f}, "
        f"accuracy {intent_report['accuracy']:.3f}",
        file=sys.stderr,
    )
    for failure in failures:
        print(f"target missed: {failure}", file=sys.stderr)
    if failures and not args.no_check:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
