"""Benchmark the whole stack through the Telegram Bot API protocol (DESIGN.md, "Targets that benchmarks report").

Starts the sandbox, the action server, Rasa (trained model) and the bot polling a local Bot API double, then:
  1. latency: buyer message in → bot reply out, p50/p95, against a bare Rasa REST round trip for the same text;
  2. sustained load: N concurrent buyers, each sending M messages, counting lost and duplicated replies;
  3. memory: RSS of each process at rest and right after the load;
  4. human handoff: escalation → order card in the agents' topic → first human reply at the buyer (an agent
     answering at once, so the figure is the system's share), and the relay latency both ways.
Writes a Markdown report (default var/bench.md) and prints it.

    .venv/bin/python scripts/bench.py [--buyers 20] [--messages 5] [--samples 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
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
AGENTS_CHAT_ID = -1009000000777
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


async def handoffs(double: BotAPIDouble, sandbox_url: str, samples: int) -> dict[str, list[float]]:
    """Fresh linked buyers ask for a person; a scripted agent answers in the ticket's topic at once."""
    agent = double.create_user("基准客服", language_code="zh-hans")
    double.set_member_status(AGENTS_CHAT_ID, agent, "administrator")
    found: dict[str, list[float]] = {"card": [], "first_reply": [], "to_agents": [], "to_buyer": []}

    def new(message: dict[str, Any]) -> bool:
        return "edit_date" not in message

    def text_is(expected: str) -> Callable[[dict[str, Any]], bool]:
        return lambda message: new(message) and message.get("text") == expected

    for n in range(samples):
        user_id = 7_300_000_000 + int(time.time()) % 100_000 * 100 + n
        async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as client:
            response = await client.post(
                "/admin/buyers",
                json={"buyer_id": f"BB{user_id}", "name": f"基准{n}", "telegram_user_id": user_id},
                headers={"X-Admin-Key": "sandbox-admin"},
            )
            response.raise_for_status()
        user = double.create_user(f"基准{n}", user_id=user_id, language_code="zh-hans")
        started = time.perf_counter()
        double.user_sends_text(user, "/human")
        # the ticket's card opens with 🎫 (the previous ticket's "/close" answer names a 工单 too)
        card = await double.wait_for_bot_message(
            AGENTS_CHAT_ID, lambda m: new(m) and str(m.get("text")).startswith("🎫"), timeout=120
        )
        found["card"].append(time.perf_counter() - started)
        thread = int(card["message_thread_id"]) if card.get("is_topic_message") else None
        double.user_sends_text(agent, f"您好，我是客服 {n}", chat=AGENTS_CHAT_ID, message_thread_id=thread)
        await double.wait_for_bot_message(user.id, text_is(f"您好，我是客服 {n}"), timeout=60)
        found["first_reply"].append(time.perf_counter() - started)
        for k in range(3):
            sent = time.perf_counter()
            double.user_sends_text(user, f"买家消息 {n}-{k}")
            await double.wait_for_bot_message(AGENTS_CHAT_ID, text_is(f"买家消息 {n}-{k}"), timeout=60)
            found["to_agents"].append(time.perf_counter() - sent)
            sent = time.perf_counter()
            double.user_sends_text(agent, f"客服回复 {n}-{k}", chat=AGENTS_CHAT_ID, message_thread_id=thread)
            await double.wait_for_bot_message(user.id, text_is(f"客服回复 {n}-{k}"), timeout=60)
            found["to_buyer"].append(time.perf_counter() - sent)
            await asyncio.sleep(0.5)
        double.user_sends_text(agent, "/close", chat=AGENTS_CHAT_ID, message_thread_id=thread)
        await double.wait_for_bot_message(
            user.id, lambda m: new(m) and bool(m.get("reply_markup")), timeout=60
        )
    return found


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
            double.create_supergroup("客服工作台", is_forum=True, chat_id=AGENTS_CHAT_ID)
            bot_env = {
                **env,
                "TELEGRAM_BOT_TOKEN": double.token,
                "TELEGRAM_API_BASE": double.base_url,
                "AGENTS_CHAT_ID": str(AGENTS_CHAT_ID),
                "HANDOFF_BUSINESS_HOURS": "00:00-24:00",
            }
            processes["bot"] = stack_service("bot", bot_env).start()
            await asyncio.to_thread(processes["bot"].wait_healthy)
            await double.wait_for_call("getUpdates", timeout=30)
            rest = {name: rss_mb(p) for name, p in processes.items()}
            bare = await bare_rasa(f"http://127.0.0.1:{env['RASA_PORT']}", args.samples)
            bot = await through_bot(double, args.samples)
            load = await sustained(double, args.buyers, args.messages)
            loaded = {name: rss_mb(p) for name, p in processes.items()}
            handoff = await handoffs(double, f"http://127.0.0.1:{env['SANDBOX_PORT']}", args.handoffs)
    finally:
        for process in reversed(list(processes.values())):
            process.stop()
        await asyncio.to_thread(drop_database, sandbox_db)
        await asyncio.to_thread(drop_database, bot_db)
    return report(bare, bot, load, rest, loaded, handoff)


def report(
    bare: list[float],
    bot: list[float],
    load: dict[str, Any],
    rest: dict[str, float],
    loaded: dict[str, float],
    handoff: dict[str, list[float]] | None = None,
) -> str:
    def ms(value: float) -> str:
        return f"{value * 1000:.0f} ms"

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
    if handoff and handoff["card"]:
        labels = {
            "card": "buyer asks for a person → order card in the agents' topic",
            "first_reply": "buyer asks → first human reply at the buyer (agent answers at once)",
            "to_agents": "relay buyer → agents' topic",
            "to_buyer": "relay agent → buyer",
        }
        lines += [
            "",
            "Human handoff (Rasa escalation, platform ticket, forum topic, copyMessage relay):",
            "",
            "| path | p50 | p95 | samples |",
            "|---|---|---|---|",
            *[
                f"| {labels[key]} | {ms(statistics.median(v))} | {ms(percentile(v, 0.95))} | {len(v)} |"
                for key, v in handoff.items()
            ],
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--buyers", type=int, default=20)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument(
        "--handoffs", type=int, default=5, help="handoffs measured (3 relays each way per one)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench.md")
    args = parser.parse_args()
    text = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
