"""Train the Rasa model unless one for the current ``nlu/`` already exists (cached by content hash).

Prints the model's path. The hash covers config, domain and training data (not the test stories) plus the
pinned Rasa requirements, so any change there retrains and nothing else does.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NLU = ROOT / "nlu"
MODELS = NLU / "models"
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
# Trained models are also kept outside the checkout, so a fresh clone on the same machine reuses them.
CACHE = Path(os.environ.get("KMBOT_MODEL_CACHE", Path.home() / ".cache" / "kameng-cs-bot" / "models"))


def model_inputs() -> list[Path]:
    files = [NLU / "config.yml", NLU / "domain.yml", NLU / "requirements-rasa.txt"]
    files += sorted(p for p in (NLU / "data").rglob("*") if p.is_file())
    # the cancel-reason classifier's own training data (nlu/kmbot_nlu/reasons.py)
    files += sorted(p for p in (NLU / "reasons").rglob("*.yml") if p.is_file())
    # the project's own Rasa components (config.yml names them): their code shapes the trained model
    files += sorted((NLU / "kmbot_nlu").rglob("*.py"))
    return files


def nlu_hash() -> str:
    digest = hashlib.sha256()
    for path in model_inputs():
        digest.update(str(path.relative_to(NLU)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def model_path() -> Path:
    return MODELS / f"nlu-{nlu_hash()}.tar.gz"


def ensure_model(quiet: bool = False) -> Path:
    target = model_path()
    if target.exists():
        if not quiet:
            print(f"model cached: {target.relative_to(ROOT)}", file=sys.stderr)
        return target
    cached = CACHE / target.name
    if cached.exists():
        MODELS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, target)
        if not quiet:
            print(f"model restored from cache: {cached}", file=sys.stderr)
        return target
    if not RASA.exists():
        raise SystemExit("error: .venv-rasa is missing; run 'make venv-rasa' first")
    MODELS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    command = [
        str(RASA),
        "train",
        "--config",
        str(NLU / "config.yml"),
        "--domain",
        str(NLU / "domain.yml"),
        "--data",
        str(NLU / "data"),
        "--out",
        str(MODELS),
        "--fixed-model-name",
        target.name.removesuffix(".tar.gz"),
    ]
    print(f"training Rasa model {target.name} …", file=sys.stderr)
    subprocess.run(command, cwd=NLU, check=True, stdout=sys.stderr if quiet else None)
    print(f"trained in {time.monotonic() - started:.0f} s", file=sys.stderr)
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, cached)
    except OSError as exc:  # the cache is an optimisation only
        print(f"note: model not cached: {exc}", file=sys.stderr)
    for old in MODELS.glob("nlu-*.tar.gz"):
        if old != target and old.stat().st_mtime < target.stat().st_mtime - 7 * 86400:
            old.unlink()
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--print-path", action="store_true", help="only print the model path (no training)")
    args = parser.parse_args()
    if args.print_path:
        print(model_path())
        return
    print(ensure_model(quiet=True))


if __name__ == "__main__":
    main()
