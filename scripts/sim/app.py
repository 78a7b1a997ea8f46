"""One simulation run: goals → conversations through a running stack → verdicts → report."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from sim.goals import REASON_TAGS, SEED_PRODUCTS, make_goals
from sim.metrics import ConversationRecord, TurnRecord, Verdict, judge, summarise
from sim.report import RunInfo, render
from sim.runner import Rasa, RunContext, Sandbox, run_all

ROOT = Path(__file__).resolve().parents[2]


def internal_names(domain_path: Path = ROOT / "nlu" / "domain.yml") -> set[str]:
    """Names a buyer must never see: the domain's slots, forms, actions, intents, entities; reason tags."""
    domain = yaml.safe_load(domain_path.read_text(encoding="utf-8")) or {}
    names: set[str] = set(REASON_TAGS)
    for key in ("slots", "forms"):
        names.update((domain.get(key) or {}).keys())
    for key in ("actions", "intents", "entities"):
        for item in domain.get(key) or []:
            names.update(item.keys() if isinstance(item, dict) else [str(item)])
    names.update({"pending_payment", "requested_slot", "active_loop"})
    return {n for n in names if "_" in n}


@dataclass
class Result:
    judged: list[tuple[ConversationRecord, Verdict]]
    report: str
    missed: list[str]
    info: RunInfo

    def transcripts(self) -> dict[str, Any]:
        """Everything the run saw, for ``--rejudge`` and for reading conversations one by one."""
        return {"info": asdict(self.info), "conversations": [record.to_json() for record, _ in self.judged]}


def judge_all(records: list[ConversationRecord], info: RunInfo) -> Result:
    names = internal_names()
    judged = [(record, judge(record, names)) for record in records]
    missed = [f"overall: {m}" for m in summarise(judged).missed()]
    for lang in info.langs:
        missed += [f"{lang}: {m}" for m in summarise(p for p in judged if p[0].lang == lang).missed()]
    return Result(judged, render(judged, info), missed, info)


def rejudge(transcripts: dict[str, Any] | list[dict[str, Any]]) -> Result:
    """Score a saved run again with the current metrics (no stack needed)."""
    if isinstance(transcripts, list):  # the first format: conversations only
        transcripts = {"info": None, "conversations": transcripts}
    records = []
    for raw in transcripts["conversations"]:
        turns = [TurnRecord(**turn) for turn in raw.get("turns", [])]
        records.append(ConversationRecord(**{**raw, "turns": turns}))
    langs = sorted({r.lang for r in records}, key=lambda lang: ["zh", "en"].index(lang))
    stored = transcripts.get("info")
    info = RunInfo(**stored) if stored else RunInfo(0, len(records), langs, "?", "?", "?", 0.0)
    return judge_all(records, info)


def run(
    *,
    rasa_url: str,
    sandbox_url: str,
    api_key: str,
    admin_key: str,
    count: int,
    seed: int,
    langs: Sequence[str],
    concurrency: int = 3,
    rasa_token: str | None = None,
    metadata_secret: str | None = None,
    progress: bool = True,
) -> Result:
    """Run ``count`` conversations against a running stack and judge them."""
    goals = make_goals(count, seed, langs)
    started = time.monotonic()

    async def go() -> tuple[list[ConversationRecord], str]:
        sandbox, rasa = Sandbox(sandbox_url, api_key, admin_key), Rasa(rasa_url, rasa_token, metadata_secret)
        try:
            await sandbox.stock_up(SEED_PRODUCTS)
            ctx = RunContext(sandbox, rasa, seed, run_tag=int(time.time()) % 1000)
            records = await run_all(ctx, goals, concurrency=concurrency, progress=progress)
            return records, await rasa.model_id()
        finally:
            await sandbox.aclose()
            await rasa.aclose()

    records, model_id = asyncio.run(go())
    info = RunInfo(
        seed=seed,
        count=count,
        langs=list(langs),
        model_id=model_id,
        commit=_commit(),
        started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        minutes=(time.monotonic() - started) / 60,
    )
    return judge_all(records, info)


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
