"""NLU quality on one stratified held-out split: a quick check while editing the training data.

    python scripts/nlu_holdout.py                    # 80/20 split (seed 42), train on 80 %, score the 20 %
    python scripts/nlu_holdout.py --fraction 0.85 --seed 7 --keep var/holdout

Cross-validation (scripts/nlu_report.py) trains five models and takes over 20 minutes on this machine; this
trains one. The split is Rasa's own (``rasa data split nlu``: stratified by intent, lookup tables, regexes and
synonyms kept on both sides), the model is nlu/config.yml's pipeline, and the figures are Rasa's
``rasa test nlu`` reports: intent accuracy and macro-F1, F1 per intent (weakest first) with its main
confusion, and entity F1 per entity for the DIETClassifier and the RegexEntityExtractor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NLU = ROOT / "nlu"
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
SUMMARY_KEYS = {"accuracy", "macro avg", "weighted avg", "micro avg"}


def rasa(args: list[str], cwd: Path, log: Path) -> None:
    """Runs one Rasa command (nlu/ on the path for the project's components); its output goes to ``log``."""
    with log.open("ab") as sink:
        result = subprocess.run(
            [str(RASA), *args],
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(NLU)},
        )
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(
            f"error: rasa {args[0]} {args[1]} exited with {result.returncode}; its log ends:\n{tail}"
        )


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def main_confusion(row: dict[str, Any]) -> str:
    confused: dict[str, int] = row.get("confused_with") or {}
    if not confused:
        return ""
    name, count = max(confused.items(), key=lambda item: item[1])
    return f"{name} ({count})"


def render(results: Path, seed: int, fraction: float, seconds: float) -> str:
    intents = load(results / "intent_report.json")
    lines = [
        f"held-out split {fraction:.0%}/{1 - fraction:.0%} (seed {seed}), trained and scored in {seconds:.0f} s",
        f"intent accuracy {intents['accuracy']:.3f}   macro-F1 {intents['macro avg']['f1-score']:.3f}",
        "",
        f"{'intent':20} {'prec':>6} {'recall':>6} {'F1':>6} {'n':>5}  main confusion",
    ]
    rows = sorted(
        ((name, row) for name, row in intents.items() if name not in SUMMARY_KEYS),
        key=lambda item: item[1]["f1-score"],
    )
    for name, row in rows:
        lines.append(
            f"{name:20} {row['precision']:6.3f} {row['recall']:6.3f} {row['f1-score']:6.3f} "
            f"{row['support']:5d}  {main_confusion(row)}"
        )
    for extractor in ("DIETClassifier", "RegexEntityExtractor"):
        path = results / f"{extractor}_report.json"
        if not path.exists():
            continue
        lines += [
            "",
            f"entities ({extractor})",
            f"{'entity':20} {'prec':>6} {'recall':>6} {'F1':>6} {'n':>5}",
        ]
        for name, row in sorted(load(path).items()):
            if name in SUMMARY_KEYS or name == "no_entity":
                continue
            lines.append(
                f"{name:20} {row['precision']:6.3f} {row['recall']:6.3f} {row['f1-score']:6.3f} {row['support']:5d}"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fraction", type=float, default=0.8, help="training fraction (default 0.8)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--keep", type=Path, help="keep the split, model and Rasa's results in this directory"
    )
    args = parser.parse_args()
    if not RASA.exists():
        raise SystemExit("error: .venv-rasa is missing; run 'make venv-rasa' first")
    work = Path(tempfile.mkdtemp(prefix="nlu-holdout-"))
    log = work / "rasa.log"
    started = time.monotonic()
    try:
        split = work / "split"
        rasa(
            [
                "data",
                "split",
                "nlu",
                "--nlu",
                str(NLU / "data" / "nlu"),
                "--training-fraction",
                str(args.fraction),
                "--random-seed",
                str(args.seed),
                "--out",
                str(split),
            ],
            work,
            log,
        )
        print("split done; training on the training part …", file=sys.stderr)
        rasa(
            [
                "train",
                "nlu",
                "--config",
                str(NLU / "config.yml"),
                "--nlu",
                str(split / "training_data.yml"),
                "--out",
                str(work / "models"),
                "--fixed-model-name",
                "holdout",
            ],
            work,
            log,
        )
        print("trained; scoring the held-out part …", file=sys.stderr)
        results = work / "results"
        rasa(
            [
                "test",
                "nlu",
                "--model",
                str(work / "models" / "holdout.tar.gz"),
                "--nlu",
                str(split / "test_data.yml"),
                "--out",
                str(results),
                "--no-plot",
            ],
            work,
            log,
        )
        print(render(results, args.seed, args.fraction, time.monotonic() - started))
        if args.keep:
            shutil.copytree(work, args.keep, dirs_exist_ok=True)
            print(f"\nkept in {args.keep}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
