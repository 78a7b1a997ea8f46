"""Benchmark of the operators' page: /ops and /ops/api answer in < 300 ms p95 on a production-sized database.

    python scripts/ops_bench.py                 # a throw-away PostgreSQL database on 127.0.0.1 (user postgres)
    OPS_BENCH_DATABASE_URL=postgresql+asyncpg://… python scripts/ops_bench.py --keep

Seeds 100,000 conversations and 20,000 cancellation outcomes over 90 days (with 30 merchants, the three
product kinds, both languages and all twelve reason tags), 6,000 handoff tickets with their audit entries,
relayed replies and ratings; migrates with Alembic (so the indexes are the migration's), VACUUM ANALYZEs (as
autovacuum would), serves the
real /ops routes on loopback and requests each view repeatedly over HTTP. Writes var/ops-bench.md and exits
non-zero when a p95 is 300 ms or more.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
from aiohttp import web  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402

from bot.config import BotSettings  # noqa: E402
from bot.metrics import BotMetrics  # noqa: E402
from bot.ops.setup import build_observability  # noqa: E402
from integrations.storage.db import make_engine, upgrade_to_head  # noqa: E402
from integrations.storage.handoff import HandoffAudit, HandoffRelay, HandoffTicket  # noqa: E402
from integrations.storage.models import CancellationOutcome, Conversation  # noqa: E402

CONVERSATIONS = 100_000
CANCELLATIONS = 20_000
TICKETS = 6_000
DAYS = 90
TARGET_MS = 300.0
TAGS = (
    "user_mistake", "demand_changed", "found_cheaper", "wrong_account", "wrong_region", "payment_problem",
    "arrival_too_slow", "unclear_description", "merchant_out_of_stock", "merchant_malicious",
    "duplicate_order", "other",
)  # fmt: skip
SAVEABLE = {"wrong_account": "fix_account", "wrong_region": "fix_region", "arrival_too_slow": "kept"}
KINDS = ("game_card", "phone_topup", "membership")
MERCHANTS = [f"M{n:02d}" for n in range(1, 31)]
TOKEN = "ops-bench-token-0123456789abcdef"


async def seed(url: str, now: datetime, rng: random.Random) -> None:
    engine = make_engine(url)
    start = now - timedelta(days=DAYS)

    def when() -> datetime:
        return start + timedelta(seconds=rng.uniform(0, DAYS * 86400))

    async with engine.begin() as connection:
        chats: list[tuple[int, datetime]] = []
        rows: list[dict[str, Any]] = []
        for n in range(CONVERSATIONS):
            at = when()
            chat = 10_000_000 + rng.randrange(60_000)
            chats.append((chat, at))
            rows.append(
                {"chat_id": chat, "started_at": at, "last_message_at": at + timedelta(minutes=rng.uniform(0.5, 12)),
                 "language": "zh" if rng.random() < 0.8 else "en", "messages_in": rng.randint(1, 6),
                 "messages_out": rng.randint(1, 8)}
            )  # fmt: skip
            if len(rows) == 10_000 or n == CONVERSATIONS - 1:
                await connection.execute(insert(Conversation), rows)
                rows = []
        for n in range(CANCELLATIONS):
            tag = rng.choice(TAGS)
            offered = tag in SAVEABLE or tag == "payment_problem"
            roll = rng.random()
            if roll < 0.04:
                outcome, detail = "restored", "restored"
            elif roll < 0.12:
                outcome, detail = "escalated", "human"
            elif offered and roll < 0.55:
                outcome, detail = "saved", SAVEABLE.get(tag, "kept")
            else:
                outcome, detail = "cancelled", tag
            rows.append(
                {"conversation_id": str(n), "buyer_id": f"B{n % 9000}", "order_id": f"KM{n:010d}",
                 "reason_tag": tag, "outcome": outcome, "detail": detail, "merchant_id": rng.choice(MERCHANTS),
                 "product_kind": rng.choice(KINDS), "language": "zh" if rng.random() < 0.8 else "en",
                 "offered": offered and outcome != "restored", "created_at": when()}
            )  # fmt: skip
            if len(rows) == 10_000 or n == CANCELLATIONS - 1:
                await connection.execute(insert(CancellationOutcome), rows)
                rows = []
        tickets, audits, relays = [], [], []
        for n in range(TICKETS):
            chat, at = rng.choice(chats)
            at += timedelta(minutes=1)
            ticket_id = f"E{n:07d}"
            merchant = rng.choice(MERCHANTS)
            resolved = at + timedelta(minutes=rng.uniform(3, 90)) if rng.random() < 0.85 else None
            rated = resolved is not None and rng.random() < 0.6
            tickets.append(
                {"ticket_id": ticket_id, "order_id": f"KM{rng.randrange(CANCELLATIONS * 3):010d}",
                 "buyer_id": f"B{chat}", "buyer_user_id": chat, "buyer_chat_id": chat, "language": "zh",
                 "reason": "complain", "summary": "", "merchant_id": merchant, "route": "agents",
                 "state": "closed" if rated else "resolved" if resolved else "queued",
                 "assignee_name": f"agent{rng.randrange(12)}" if resolved else None,
                 "csat": rng.randint(1, 5) if rated else None, "created_at": at, "updated_at": at,
                 "resolved_at": resolved}
            )  # fmt: skip
            audits.append(
                {
                    "ticket_id": ticket_id,
                    "action": "escalated",
                    "actor_name": "",
                    "detail": "",
                    "created_at": at,
                }
            )
            if rng.random() < 0.6:
                audits.append({"ticket_id": ticket_id, "action": "routed_merchant", "actor_name": "", "detail": merchant,
                               "created_at": at})  # fmt: skip
                if rng.random() < 0.3:
                    audits.append({"ticket_id": ticket_id, "action": "routed_agents", "actor_name": "",
                                   "detail": "sla_expired", "created_at": at + timedelta(minutes=10)})  # fmt: skip
            if resolved is not None:
                audits.append(
                    {
                        "ticket_id": ticket_id,
                        "action": "take",
                        "actor_name": "a",
                        "detail": "",
                        "created_at": at,
                    }
                )
                relays.append(
                    {"ticket_id": ticket_id, "direction": "to_buyer", "src_chat_id": -100, "src_message_id": n,
                     "revision": 0, "dst_chat_id": chat, "dst_message_id": n,
                     "created_at": at + timedelta(seconds=rng.uniform(20, 900))}
                )  # fmt: skip
        await connection.execute(insert(HandoffTicket), tickets)
        await connection.execute(insert(HandoffAudit), audits)
        await connection.execute(insert(HandoffRelay), relays)
    async with engine.connect() as connection:  # what autovacuum does to a table in steady state
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE"))
    await engine.dispose()


async def measure(url: str, repeats: int) -> list[tuple[str, list[float]]]:
    engine = make_engine(url)
    observability = build_observability(BotSettings(ops_token=SecretStr(TOKEN)), BotMetrics(), engine, None)
    app = web.Application()
    for add in observability.routes:
        add(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    today = datetime.now(UTC).date()
    views = {
        "GET /ops (page, last 30 days)": "/ops?ui=zh",
        "GET /ops (page, 90 days)": f"/ops?from={today - timedelta(days=89)}&to={today}",
        "GET /ops/api/overview (30 days)": "/ops/api/overview",
        "GET /ops/api/overview (merchant M07, en)": "/ops/api/overview?merchant=M07&lang=en",
        "GET /ops/api/funnel (game_card)": "/ops/api/funnel?kind=game_card",
        "GET /ops/api/save-rate (90 days)": f"/ops/api/save-rate?from={today - timedelta(days=89)}&to={today}",
        "GET /ops/api/merchants.csv (30 days)": "/ops/api/merchants.csv",
    }
    results: list[tuple[str, list[float]]] = []
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", headers=headers) as http:
            for name, path in views.items():
                timings = []
                for attempt in range(repeats + 3):
                    began = time.perf_counter()
                    async with http.get(path) as response:
                        await response.read()
                        assert response.status == 200, (path, response.status)
                    if attempt >= 3:  # the first requests warm the pool and caches
                        timings.append((time.perf_counter() - began) * 1000)
                results.append((name, timings))
    finally:
        await runner.cleanup()
        await engine.dispose()
    return results


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


async def admin(sql: str) -> None:
    connection = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--keep", action="store_true", help="keep the seeded database")
    parser.add_argument("--reuse", action="store_true", help="OPS_BENCH_DATABASE_URL is already seeded")
    args = parser.parse_args()
    url = os.environ.get("OPS_BENCH_DATABASE_URL")
    created = None
    if not url:
        created = f"kmbot_ops_bench_{uuid.uuid4().hex[:8]}"
        await admin(f'CREATE DATABASE "{created}"')
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{created}"
    try:
        began = time.perf_counter()
        await upgrade_to_head(url)
        if not args.reuse:
            await seed(url, datetime.now(UTC), random.Random(13))
            seeded = time.perf_counter() - began
            print(f"seeded {CONVERSATIONS:,} conversations, {CANCELLATIONS:,} cancellations, {TICKETS:,} tickets "
                  f"in {seeded:.0f} s", file=sys.stderr)  # fmt: skip
        results = await measure(url, args.repeats)
    finally:
        if created and not args.keep:
            await admin(f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')
        elif created:
            print(f"kept: OPS_BENCH_DATABASE_URL={url} (add --reuse to measure it again)", file=sys.stderr)
    lines = [
        "# /ops benchmark",
        "",
        f"PostgreSQL, {CONVERSATIONS:,} conversations and {CANCELLATIONS:,} cancellation outcomes over {DAYS} days, "
        f"{TICKETS:,} tickets; {args.repeats} sequential requests per view over HTTP on loopback after 3 warm-ups; "
        f"target p95 < {TARGET_MS:.0f} ms. Machine load average at the end: {os.getloadavg()[0]:.1f}.",
        "",
        "| view | p50 ms | p95 ms | max ms |",
        "| --- | ---: | ---: | ---: |",
    ]
    failed = []
    for name, timings in results:
        worst = p95(timings)
        lines.append(f"| {name} | {statistics.median(timings):.0f} | {worst:.0f} | {max(timings):.0f} |")
        if worst >= TARGET_MS:
            failed.append(name)
    report = "\n".join(lines) + "\n"
    (ROOT / "var").mkdir(exist_ok=True)
    (ROOT / "var" / "ops-bench.md").write_text(report)
    print(report)
    if failed:
        print(f"p95 over {TARGET_MS:.0f} ms: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
