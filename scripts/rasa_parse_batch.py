"""Parse texts with a trained Rasa model; run by Rasa's own venv (Python 3.10) for scripts/nlu_independent.py.

    .venv-rasa/bin/python scripts/rasa_parse_batch.py MODEL.tar.gz IN.json OUT.json [WARMUP]

IN.json is a list of texts; OUT.json gets, per text, Rasa's parse result (intent, top of the ranking, entities)
plus ``latency_ms``, the wall time of ``Agent.parse_message`` for that text. The first WARMUP texts are parsed
once before timing starts (the first parses build TensorFlow's graphs).
"""

import asyncio
import json
import logging
import sys
import time
from typing import Any

RANKING = 5


def _slim(parsed: dict[str, Any], latency_ms: float) -> dict[str, Any]:
    return {
        "text": parsed.get("text"),
        "intent": parsed.get("intent"),
        "intent_ranking": (parsed.get("intent_ranking") or [])[:RANKING],
        "entities": [
            {
                key: entity.get(key)
                for key in ("entity", "value", "start", "end", "extractor", "confidence_entity")
            }
            for entity in parsed.get("entities") or []
        ],
        "cancel_reason": parsed.get("cancel_reason"),  # the reason classifier's own field
        "latency_ms": latency_ms,
    }


async def _parse_all(model: str, texts: list[str], warmup: int) -> list[dict[str, Any]]:
    from rasa.core.agent import Agent

    agent = Agent.load(model)
    for text in texts[:warmup]:
        await agent.parse_message(text)
    results = []
    for text in texts:
        started = time.perf_counter()
        parsed = await agent.parse_message(text)
        results.append(_slim(parsed, (time.perf_counter() - started) * 1000))
    return results


def main() -> int:
    if len(sys.argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    model, source, target = sys.argv[1:4]
    warmup = int(sys.argv[4]) if len(sys.argv) == 5 else 5
    logging.basicConfig(level=logging.ERROR)
    with open(source, encoding="utf-8") as handle:
        texts = json.load(handle)
    results = asyncio.run(_parse_all(model, texts, warmup))
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(results, handle, ensure_ascii=False, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
