"""Benchmark the whole stack through the Telegram Bot API protocol (DESIGN.md, "Targets that benchmarks report").

Starts the sandbox, the action server, Rasa (trained model) and the bot polling a local Bot API double, then:
  1. latency: buyer message in → bot reply out, p50/p95, against a bare Rasa REST round trip for the same text;
  2. sustained load: N concurrent buyers, each sending M messages, counting lost and duplicated replies;
  3. memory: RSS of each process at rest and right after the load.
Writes a Markdown report (default var/bench.md) and prints it.

    .venv/bin/python scripts/bench.py [--buyers 20] [--messages 5] [--samples 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from integrations.rasa.identity import sign_metadata  # noqa: E402
from tests.botapi_double import BotAPIDouble  # noqa: E402
from tests.support.pg import create_database, drop_database  # noqa: E402
from tests.support.processes import (  # noqa: E402
    ManagedProcess,
    ensure_model,
    free_port,
    inside_secrets,
    stack_service,
)

QUESTION = "我的订单 KM20261127001 到哪了?"
LOAD_TEXTS = ["你好", "多久能到账", "超时会退款吗", "谢谢", "我的订单 KM20261127001 到哪了?"]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def rss_mb(process: ManagedProcess) -> float:
    """Resident memory of the process and its children (Rasa forks), in MiB."""
    assert process.process is not None
    total = 0
    pids = [process.process.pid]
    children = Path(f"/proc/{process.process.pid}/task/{process.process.pid}/children")
    if children.exists():
        pids += [int(pid) for pid in children.read_text().split()]
    for pid in pids:
        status = Path(f"/proc/{pid}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


async def bare_rasa(rasa_url: str, samples: int) -> list[float]:
    timings = []
    async with httpx.AsyncClient(base_url=rasa_url, timeout=60) as client:
        for index in range(samples):
            sender = f"bench-bare-{index}"
            # signed like the bot signs it, so the action server believes the identity (and calls the platform)
            metadata = sign_metadata(inside_secrets()["METADATA_SECRET"], sender, {"telegram_user_id": 10001})
            body = {"sender": sender, "message": QUESTION, "metadata": metadata}
            started = time.perf_counter()
            response = await client.post("/webhooks/rest/webhook", json=body)
            timings.append(time.perf_counter() - started)
            response.raise_for_status()
    return timings


async def through_bot(double: BotAPIDouble, samples: int) -> list[float]:
    """The linked demo buyer asks, one question every 2 s (a pace flood control leaves alone)."""
    user = double.create_user("基准买家", user_id=10001, language_code="zh-hans")
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        double.user_sends_text(user, QUESTION)
        await double.wait_for_bot_message(user.id, predicate=lambda m: "edit_date" not in m, timeout=60)
        timings.append(time.perf_counter() - started)
        await asyncio.sleep(max(0.0, 2.0 - timings[-1]))
    return timings


async def sustained(double: BotAPIDouble, buyers: int, messages: int) -> dict[str, Any]:
    """Every buyer sends ``messages`` texts one after another (waiting for each reply), all buyers at once."""
    users = [double.create_user(f"买家{i}", language_code="zh-hans") for i in range(buyers)]

    async def conversation(user: Any) -> int:
        answered = 0
        for index in range(messages):
            double.user_sends_text(user, LOAD_TEXTS[index % len(LOAD_TEXTS)])
            await double.wait_for_bot_message(user.id, predicate=lambda m: "edit_date" not in m, timeout=120)
            answered += 1
        return answered

    started = time.perf_counter()
    answered = await asyncio.gather(*(conversation(user) for user in users))
    elapsed = time.perf_counter() - started
    await asyncio.sleep(3)  # anything sent late would be a duplicate
    replies = sum(len([m for m in double.bot_messages(u.id) if "edit_date" not in m]) for u in users)
    sent = buyers * messages
    return {
        "buyers": buyers,
        "messages_sent": sent,
        "answered": sum(answered),
        "bot_messages": replies,
        "elapsed_s": elapsed,
        "messages_per_s": sent / elapsed,
        "lost": sent - sum(answered),
        "extra_messages": replies - sent,
    }


async def run(args: argparse.Namespace) -> str:
    model = ensure_model()
    sandbox_db, sandbox_url = await asyncio.to_thread(create_database, "kmbot_bench_sandbox")
    bot_db, bot_url = await asyncio.to_thread(create_database, "kmbot_bench_bot")
    env = {
        name: str(free_port())
        for name in ("SANDBOX_PORT", "ACTION_SERVER_PORT", "RASA_PORT", "BOT_HTTP_PORT")
    }
    env |= {
        "SANDBOX_DATABASE_URL": sandbox_url,
        "DATABASE_URL": bot_url,
        "REDIS_URL": "redis://127.0.0.1:6379/8",
    }
    processes: dict[str, ManagedProcess] = {}
    try:
        for name in ("sandbox", "actions", "rasa"):
            processes[name] = stack_service(name, env, model).start()
        for process in processes.values():
            await asyncio.to_thread(process.wait_healthy)
        async with BotAPIDouble() as double:
            bot_env = {**env, "TELEGRAM_BOT_TOKEN": double.token, "TELEGRAM_API_BASE": double.base_url}
            processes["bot"] = stack_service("bot", bot_env).start()
            await asyncio.to_thread(processes["bot"].wait_healthy)
            await double.wait_for_call("getUpdates", timeout=30)
            rest = {name: rss_mb(p) for name, p in processes.items()}
            bare = await bare_rasa(f"http://127.0.0.1:{env['RASA_PORT']}", args.samples)
            bot = await through_bot(double, args.samples)
            load = await sustained(double, args.buyers, args.messages)
            loaded = {name: rss_mb(p) for name, p in processes.items()}
    finally:
        for process in reversed(list(processes.values())):
            process.stop()
        await asyncio.to_thread(drop_database, sandbox_db)
        await asyncio.to_thread(drop_database, bot_db)
    return report(bare, bot, load, rest, loaded)


def report(
    bare: list[float],
    bot: list[float],
    load: dict[str, Any],
    rest: dict[str, float],
    loaded: dict[str, float],
) -> str:
    ms = lambda v: f"{v * 1000:.0f} ms"  # noqa: E731
    overhead = statistics.median(bot) - statistics.median(bare)
    lines = [
        f"# Benchmark ({time.strftime('%Y-%m-%d %H:%M')}, 2 cores)",
        "",
        f"Question: `{QUESTION}` (Rasa NLU, order-status form, action server, platform sandbox on PostgreSQL).",
        "",
        "| path | p50 | p95 | samples |",
        "|---|---|---|---|",
        f"| bare Rasa REST round trip | {ms(statistics.median(bare))} | {ms(percentile(bare, 0.95))} | {len(bare)} |",
        f"| buyer → bot → reply (Bot API double) | {ms(statistics.median(bot))} | {ms(percentile(bot, 0.95))} | {len(bot)} |",
        "",
        f"Bot overhead over bare Rasa (median): {ms(overhead)}.",
        "",
        f"Sustained load: {load['buyers']} buyers × {load['messages_sent'] // load['buyers']} messages each, "
        f"{load['messages_sent']} messages in {load['elapsed_s']:.1f} s = {load['messages_per_s']:.1f} msg/s; "
        f"lost replies: {load['lost']}, extra (duplicated) messages: {load['extra_messages']}.",
        "",
        "| process | RSS at rest | RSS after load |",
        "|---|---|---|",
        *[f"| {name} | {rest[name]:.0f} MiB | {loaded[name]:.0f} MiB |" for name in rest],
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--buyers", type=int, default=20)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench.md")
    args = parser.parse_args()
    text = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
