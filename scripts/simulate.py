"""Simulated buyers against the real dialogue: ``make simulate`` → nlu/reports/simulation.md.

    python scripts/simulate.py                      # 300 conversations, zh and en, seed 7, own private stack
    python scripts/simulate.py --count 60 --lang zh
    python scripts/simulate.py --rasa-url http://127.0.0.1:5005 --sandbox-url http://127.0.0.1:8000
    python scripts/simulate.py --check              # exit 1 when a target of issue 10 is missed
    python scripts/simulate.py --rejudge var/simulation/transcripts.json   # score a saved run again

Without ``--rasa-url`` it starts its own sandbox (fresh SQLite DB), action server and Rasa with the current
model on free ports and stops them afterwards. With ``--rasa-url`` it reuses a running stack (the sandbox
must be reachable at ``--sandbox-url`` with its admin key); every buyer and order it creates is new.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT)]

from sim.app import Result, rejudge, run  # noqa: E402
from sim.stack import private_stack  # noqa: E402

REPORT = ROOT / "nlu" / "reports" / "simulation.md"
TRANSCRIPTS = ROOT / "var" / "simulation" / "transcripts.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=300, help="conversations (default 300)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--lang", choices=["zh", "en", "both"], default="both")
    parser.add_argument("--concurrency", type=int, default=4, help="conversations at once (default 4)")
    parser.add_argument("--rasa-url", help="reuse a running Rasa server (and the stack behind it)")
    parser.add_argument("--rasa-token", help="Rasa's --auth-token, if it has one")
    parser.add_argument(
        "--metadata-secret",
        default=os.environ.get("METADATA_SECRET"),
        help="the bot's METADATA_SECRET of the reused stack (signs the Telegram identity; default from env)",
    )
    parser.add_argument("--sandbox-url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", default="sandbox-key", help="platform API key of the reused sandbox")
    parser.add_argument("--admin-key", default="sandbox-admin", help="admin key of the reused sandbox")
    parser.add_argument("--report", type=Path, default=REPORT, help=f"markdown report (default {REPORT})")
    parser.add_argument("--transcripts", type=Path, default=TRANSCRIPTS, help="every conversation as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target of issue 10 is missed")
    parser.add_argument(
        "--rejudge",
        type=Path,
        metavar="TRANSCRIPTS",
        help="no conversations: score a saved transcripts file again with the current metrics",
    )
    args = parser.parse_args(argv)
    langs = ["zh", "en"] if args.lang == "both" else [args.lang]
    common = {
        "count": args.count,
        "seed": args.seed,
        "langs": langs,
        "concurrency": args.concurrency,
        "rasa_token": args.rasa_token,
    }
    result: Result
    if args.rejudge:
        result = rejudge(json.loads(args.rejudge.read_text(encoding="utf-8")))
    elif args.rasa_url:
        result = run(
            rasa_url=args.rasa_url,
            sandbox_url=args.sandbox_url,
            api_key=args.api_key,
            admin_key=args.admin_key,
            metadata_secret=args.metadata_secret,
            **common,  # type: ignore[arg-type]
        )
    else:
        print("starting a private stack (sandbox on a fresh DB, action server, Rasa) …", flush=True)
        with private_stack() as stack:
            print(f"running {args.count} conversations …", flush=True)
            result = run(
                rasa_url=stack.rasa_url,
                sandbox_url=stack.sandbox_url,
                api_key=stack.api_key,
                admin_key=stack.admin_key,
                metadata_secret=stack.metadata_secret,
                **{**common, "rasa_token": stack.rasa_token},  # type: ignore[arg-type]
            )
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(result.report, encoding="utf-8")
    args.transcripts.parent.mkdir(parents=True, exist_ok=True)
    args.transcripts.write_text(
        json.dumps(result.transcripts(), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    print(result.report)
    print(f"report: {args.report}" + ("" if args.rejudge else f"\ntranscripts: {args.transcripts}"))
    if result.missed:
        print("targets missed:\n  " + "\n  ".join(result.missed), file=sys.stderr)
        if args.check:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
