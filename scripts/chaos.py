"""``make chaos``: the whole stack under load while each process is killed and restarted in turn.

Runs its own Redis (a private ``redis-server`` with AOF, ``appendfsync always``) and its own PostgreSQL
(``initdb``/``pg_ctl`` from the installed PostgreSQL binaries, in a temporary directory) on free ports, so
the machine's services are untouched; then the sandbox, the action server, Rasa (trained model) and the bot,
polling a local Telegram Bot API double (``tests/botapi_double``), later in webhook mode.

For each fault, fresh buyers (linked Telegram users, each with their own delivered orders in the sandbox)
send bounded load on loopback (default 20 buyers × 10 messages, "订单 <id> 到哪了", one every 1.5 s each);
a few seconds in, one process is killed (Rasa, action server, sandbox: SIGKILL; Redis: SIGKILL; PostgreSQL:
``pg_ctl stop -m immediate``; the bot: SIGTERM, as an orchestrator does) and restarted after ``--down``
seconds. Then the buyers' chats are read back:

* answered: a bot message names the order the buyer asked about (or, for the message the sandbox could not
  serve, the honest "order system unreachable" reply — counted separately as "told platform down");
* handed to a person: a handoff notice covers it;
* lost: neither; duplicated: the same reply text for the same order more than once;
* out of order: an order answered before one the buyer asked about earlier.

Writes ``docs/chaos-report.md`` (``--report``) and logs under ``var/chaos/``.

    .venv/bin/python scripts/chaos.py [--buyers 20] [--messages 10] [--faults rasa,redis,...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.botapi_double import BotAPIDouble, FakeUser  # noqa: E402
from tests.support.processes import ManagedProcess, ensure_model, free_port, stack_service  # noqa: E402

FAULTS = ("bot-polling", "redis", "postgres", "actions", "sandbox", "rasa", "bot-webhook")
API_KEY = "chaos-platform-key"
ADMIN_KEY = "chaos-admin-key"
WEBHOOK_SECRET = "chaos-webhook-secret-0123456789"
ORDER_RE = re.compile(r"KM\d{11}")
PLATFORM_DOWN = ("订单系统暂时无法访问", "order system is unreachable")
HANDED = ("转给人工", "人工客服会", "工单", "went to a person")
VAR = ROOT / "var" / "chaos"


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ----------------------------------------------------------------------------- private Redis, PostgreSQL


class PrivateRedis:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.dir = directory / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            shutil.which("redis-server") or "redis-server",
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no",
        ]  # fmt: skip
        out = (VAR / "redis.log").open("ab")
        self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _wait(lambda: _redis_ping(self.port), 20, "redis")

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


def _redis_ping(port: int) -> bool:
    try:
        with socket_to(port) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def socket_to(port: int) -> Any:
    import socket

    sock = socket.create_connection(("127.0.0.1", port), timeout=1)
    return sock


class PrivatePostgres:
    """initdb into a temp dir; run as the ``postgres`` user when this script runs as root."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.dir = directory / "pg"
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        if not bins:
            raise SystemExit("chaos: no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
        self.bin = bins[-1]
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self.as_user, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )

    def init(self) -> None:
        self.dir.mkdir(parents=True)
        if self.as_user:
            shutil.chown(self.dir.parent, "postgres")
            shutil.chown(self.dir, "postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.dir), "-A", "trust", "-U", "postgres", "-E", "UTF8"
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.dir),
            "-o",
            options,
            "-l",
            str(self.dir / "server.log"),
            "-w",
            "start",
        )

    def kill(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir), "-m", "immediate", "stop")

    def stop(self) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.dir), "-m", "fast", "stop"],
            check=False, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self, name: str) -> str:
        import asyncpg

        connection = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database="postgres"
        )
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return self.url(name)


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"chaos: {what} did not come up in {timeout:.0f} s")


# ---------------------------------------------------------------------------------------- buyers, load


@dataclass
class Buyer:
    user: FakeUser
    orders: list[str]
    sent_at: list[float] = field(default_factory=list)


@dataclass
class FaultResult:
    fault: str
    sent: int = 0
    answered: int = 0
    platform_down: int = 0
    handed: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    notices: int = 0
    seconds_to_all_answered: float | None = None
    note: str = ""


async def seed_buyers(
    client: httpx.AsyncClient, double: BotAPIDouble, round_: int, buyers: int, messages: int
) -> list[Buyer]:
    made: list[Buyer] = []
    product = {
        "sku": "WZRY-60",
        "kind": "game_card",
        "name": "王者荣耀 点券 60",
        "merchant_id": "M01",
        "price": "6.00",
        "stock": 1_000_000,
    }
    (await client.post("/admin/products", json=product)).raise_for_status()  # every fault needs its orders
    for b in range(buyers):
        telegram_id = 7_100_000 + round_ * 1000 + b
        buyer_id = f"CHAOS{round_:02d}{b:02d}"
        response = await client.post(
            "/admin/buyers",
            json={"buyer_id": buyer_id, "name": f"压测买家{b}", "telegram_user_id": telegram_id},
        )
        response.raise_for_status()
        orders = []
        for i in range(messages):
            order_id = f"KM2026{round_ + 60:02d}{b:02d}{i:03d}"
            body = {
                "order_id": order_id,
                "buyer_id": buyer_id,
                "sku": "WZRY-60",
                "account": "2233445566",
                "region": "安卓QQ区",
                "state": "delivered",
            }
            (await client.post("/admin/orders", json=body)).raise_for_status()
            orders.append(order_id)
        user = double.create_user(f"压测买家{b}", user_id=telegram_id, language_code="zh-hans")
        made.append(Buyer(user, orders))
    return made


async def send_load(double: BotAPIDouble, buyers: list[Buyer], interval: float) -> None:
    async def one(index: int, buyer: Buyer) -> None:
        await asyncio.sleep(index * interval / len(buyers))  # spread the buyers over one interval
        for order in buyer.orders:
            double.user_sends_text(buyer.user, f"订单 {order} 到哪了")
            buyer.sent_at.append(time.monotonic())
            await asyncio.sleep(interval)

    await asyncio.gather(*(one(i, b) for i, b in enumerate(buyers)))


def score(double: BotAPIDouble, fault: str, buyers: list[Buyer]) -> FaultResult:
    result = FaultResult(fault)
    for buyer in buyers:
        texts = [m.get("text", "") for m in double.bot_messages(buyer.user.id) if "edit_date" not in m]
        wanted = set(buyer.orders)
        first_seen: list[str] = []
        per_order: dict[str, Counter[str]] = {}
        down = handed = 0
        for text in texts:
            named = [o for o in ORDER_RE.findall(text) if o in wanted]
            for order in dict.fromkeys(named):
                per_order.setdefault(order, Counter())[text] += 1
                if order not in first_seen:
                    first_seen.append(order)
            if not named and any(marker in text for marker in PLATFORM_DOWN):
                down += 1
            elif not named and any(marker in text for marker in HANDED):
                handed += 1
            elif not named:
                result.notices += 1
        sent = len(buyer.sent_at)
        answered = len(first_seen)
        unattributed = sent - answered
        told_down = min(down, unattributed)
        told_handed = min(handed, unattributed - told_down)
        result.sent += sent
        result.answered += answered
        result.platform_down += told_down
        result.handed += told_handed
        result.lost += unattributed - told_down - told_handed
        result.duplicated += sum(count - 1 for texts_ in per_order.values() for count in texts_.values())
        result.duplicated += max(0, down - unattributed)
        position = {order: i for i, order in enumerate(buyer.orders)}
        highest = -1
        for order in first_seen:
            if position[order] < highest:
                result.out_of_order += 1
            highest = max(highest, position[order])
    return result


# ------------------------------------------------------------------------------------------- the stack


class StandInRasa:
    """``--stand-in-rasa``: a minimal Rasa REST endpoint in this process that answers "订单 <id> …" at
    once, for measuring the bot's own guarantees when the real Rasa cannot load in time on a busy host."""

    def __init__(self) -> None:
        self.port = free_port()
        self._runner: Any = None

    async def start(self) -> None:
        from aiohttp import web

        async def status(_: web.Request) -> web.Response:
            return web.json_response({"model_file": "stand-in"})

        async def reply(request: web.Request) -> web.Response:
            body = await request.json()
            found = ORDER_RE.findall(str(body.get("message", "")))
            text = f"订单 {found[0]} 状态：已到账（stand-in）" if found else "好的"
            return web.json_response([{"recipient_id": body.get("sender"), "text": text}])

        app = web.Application()
        app.router.add_get("/status", status)
        app.router.add_get("/", status)
        app.router.add_post("/webhooks/rest/webhook", reply)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class Stack:
    def __init__(self, work: Path, model: Path | None, stand_in: StandInRasa | None = None) -> None:
        self.work = work
        self.model = model
        self.stand_in = stand_in
        self.redis = PrivateRedis(work)
        self.pg = PrivatePostgres(work)
        self.env: dict[str, str] = {}
        self.processes: dict[str, ManagedProcess] = {}

    async def start(self) -> None:
        self.redis.start()
        self.pg.init()
        self.pg.start()
        sandbox_url = await self.pg.create_database("chaos_sandbox")
        bot_url = await self.pg.create_database("chaos_bot")
        self.env = {
            **{
                n: str(free_port())
                for n in ("SANDBOX_PORT", "ACTION_SERVER_PORT", "RASA_PORT", "BOT_HTTP_PORT")
            },
            "SANDBOX_DATABASE_URL": sandbox_url,
            "SANDBOX_API_KEY": API_KEY,
            "SANDBOX_ADMIN_KEY": ADMIN_KEY,
            "SANDBOX_SEED": "true",
            "PLATFORM_API_KEY": API_KEY,
            "DATABASE_URL": bot_url,
            "REDIS_URL": self.redis.url,
        }
        names = ("sandbox", "actions") if self.stand_in else ("sandbox", "actions", "rasa")
        if self.stand_in is not None:
            await self.stand_in.start()
            self.env["RASA_URL"] = f"http://127.0.0.1:{self.stand_in.port}"
        for name in names:
            self.processes[name] = self._service(name)
            self.processes[name].start()
        for name in names:
            await asyncio.to_thread(self.processes[name].wait_healthy)

    def _service(self, name: str, extra: dict[str, str] | None = None) -> ManagedProcess:
        env = {**self.env, **(extra or {})}
        process = stack_service(name, env, self.model if name == "rasa" else None)
        process.env.update(extra or {})
        process.log_path = VAR / f"{name}.log"
        process.start_timeout = max(process.start_timeout, 900.0)  # Rasa loads slowly on a busy host
        if name == "bot" and extra and "BOT_HTTP_PORT" in extra:
            process.health_url = f"http://127.0.0.1:{extra['BOT_HTTP_PORT']}/healthz"
        return process

    async def start_bot(self, double: BotAPIDouble, mode: str) -> None:
        extra = {
            "TELEGRAM_BOT_TOKEN": double.token,
            "TELEGRAM_API_BASE": double.base_url,
            "BOT_MODE": mode,
            "SHUTDOWN_TIMEOUT_SECONDS": "8",
        }
        if mode == "webhook":
            port = self.env["BOT_HTTP_PORT"]
            extra |= {
                "WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/webhook",
                "WEBHOOK_SECRET": WEBHOOK_SECRET,
                "BOT_HTTP_PORT": port,
            }
        self.processes["bot"] = self._service("bot", extra)
        self.processes["bot"].start()
        await asyncio.to_thread(self.processes["bot"].wait_healthy)

    def kill(self, fault: str) -> None:
        if fault == "rasa" and self.stand_in is not None:
            return  # stopped in restart_cycle (it lives in this event loop)
        if fault == "redis":
            self.redis.kill()
        elif fault == "postgres":
            self.pg.kill()
        elif fault.startswith("bot"):
            self.processes["bot"].stop()  # SIGTERM, like an orchestrator (SIGKILL after 10 s)
        else:
            process = self.processes[fault].process
            assert process is not None
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    async def restart(self, fault: str, double: BotAPIDouble) -> None:
        if fault == "rasa" and self.stand_in is not None:
            await self.stand_in.start()
        elif fault == "redis":
            self.redis.start()
        elif fault == "postgres":
            self.pg.start()
        elif fault.startswith("bot"):
            await self.start_bot(double, "webhook" if fault == "bot-webhook" else "polling")
        else:
            self.processes[fault].start()
            await asyncio.to_thread(self.processes[fault].wait_healthy)

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()
        self.redis.kill()
        self.pg.stop()


async def run_fault(
    stack: Stack, double: BotAPIDouble, round_: int, fault: str, args: argparse.Namespace
) -> FaultResult:
    base = f"http://127.0.0.1:{stack.env['SANDBOX_PORT']}"
    async with httpx.AsyncClient(base_url=base, headers={"X-Admin-Key": ADMIN_KEY}, timeout=30) as client:
        buyers = await seed_buyers(client, double, round_, args.buyers, args.messages)
    log(f"{fault}: {args.buyers} buyers × {args.messages} messages; killing it after {args.kill_after:.0f} s")
    started = time.monotonic()
    load = asyncio.create_task(send_load(double, buyers, args.interval))
    await asyncio.sleep(args.kill_after)
    if fault == "rasa" and stack.stand_in is not None:
        await stack.stand_in.stop()
    await asyncio.to_thread(stack.kill, fault)
    log(f"{fault}: killed; down for {args.down:.0f} s")
    await asyncio.sleep(args.down)
    await stack.restart(fault, double)
    log(f"{fault}: back after {time.monotonic() - started:.0f} s from the start of the load")
    await load
    deadline = time.monotonic() + args.settle
    result = score(double, fault, buyers)
    while (
        time.monotonic() < deadline and result.answered + result.platform_down + result.handed < result.sent
    ):
        await asyncio.sleep(2)
        result = score(double, fault, buyers)
    all_answered = None
    if result.answered + result.platform_down + result.handed >= result.sent:
        all_answered = time.monotonic() - started
    await asyncio.sleep(5)  # anything sent late would show up as a duplicate
    result = score(double, fault, buyers)
    result.seconds_to_all_answered = all_answered
    log(f"{fault}: {result}")
    return result


async def main_async(args: argparse.Namespace) -> list[FaultResult]:
    VAR.mkdir(parents=True, exist_ok=True)
    for old in VAR.glob("*.log"):
        old.unlink()
    model = None if args.stand_in_rasa else (args.model or ensure_model())
    work = Path(tempfile.mkdtemp(prefix="kmbot-chaos-"))
    stack = Stack(work, model, StandInRasa() if args.stand_in_rasa else None)
    results: list[FaultResult] = []
    try:
        await stack.start()
        log(f"stack up (redis :{stack.redis.port}, postgres :{stack.pg.port})")
        polling_faults = [f for f in args.faults if f != "bot-webhook"]
        if polling_faults:
            async with BotAPIDouble() as double:
                await stack.start_bot(double, "polling")
                await double.wait_for_call("getUpdates", timeout=60)
                for round_, fault in enumerate(polling_faults):
                    results.append(await run_fault(stack, double, round_, fault, args))
                    write_report(results, args)  # a partial run still leaves its figures
                stack.processes["bot"].stop()
        if "bot-webhook" in args.faults:
            async with BotAPIDouble(webhook_retry_scale=0.5) as double:
                await stack.start_bot(double, "webhook")
                await double.wait_for_call("setWebhook", timeout=60)
                results.append(await run_fault(stack, double, len(FAULTS), "bot-webhook", args))
                write_report(results, args)
                stack.processes["bot"].stop()
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)
    return results


def report(results: list[FaultResult], args: argparse.Namespace) -> str:
    engine = (
        "a minimal Rasa stand-in (answers the order id at once; the real Rasa could not load in time on "
        "the busy host); the sandbox and action server are not on this path"
        if args.stand_in_rasa
        else "the real Rasa with the trained model, action server and sandbox"
    )
    lines = [
        f"# Chaos report ({time.strftime('%Y-%m-%d %H:%M')} UTC, 2 shared cores)",
        "",
        f"`make chaos`: {args.buyers} buyers × {args.messages} messages per fault (one every {args.interval:g} s "
        f"per buyer), the process killed {args.kill_after:g} s into the load and restarted after {args.down:g} s; "
        "private Redis (AOF, fsync always) and PostgreSQL on their own ports; the bot polling the Bot API "
        "double, then in webhook mode. Rasa/action server/sandbox and Redis are SIGKILLed, PostgreSQL stopped "
        "with `-m immediate`, the bot gets SIGTERM (as an orchestrator sends).",
        "",
        f"Assistant: {engine}.",
        "",
        "| fault | sent | answered | told platform down | handed to a person | lost | duplicated "
        "| out of order | other notices | all answered after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        after = f"{r.seconds_to_all_answered:.0f} s" if r.seconds_to_all_answered is not None else "—"
        lines.append(
            f"| {r.fault} | {r.sent} | {r.answered} | {r.platform_down} | {r.handed} | {r.lost} | {r.duplicated} "
            f"| {r.out_of_order} | {r.notices} | {after} |"
        )
    lines += [
        "",
        "*answered*: a bot message names the order asked about. *told platform down*: the sandbox was dead "
        "and the bot said so (the honest answer for that message). *other notices*: bot messages naming no "
        'order ("assistant unavailable, your message is kept", flood notices). *lost* = sent − answered − '
        "told platform down − handed. *duplicated*: the same reply text for the same order more than once. "
        "*out of order*: an order answered before one its buyer asked about earlier.",
        "",
        "Logs of the last run: `var/chaos/`.",
    ]
    return "\n".join(lines) + "\n"


def write_report(results: list[FaultResult], args: argparse.Namespace) -> str:
    text = report(results, args)
    VAR.mkdir(parents=True, exist_ok=True)
    (VAR / "chaos-report.md").write_text(text)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--buyers", type=int, default=20)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--interval", type=float, default=1.5)
    parser.add_argument("--kill-after", type=float, default=4.0)
    parser.add_argument("--down", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=300.0, help="max seconds to wait for every answer")
    parser.add_argument("--faults", type=lambda s: [f for f in s.split(",") if f], default=list(FAULTS))
    parser.add_argument(
        "--model", type=Path, default=None, help="a trained model to use (default: train or reuse for nlu/)"
    )
    parser.add_argument(
        "--stand-in-rasa",
        action="store_true",
        help="answer with a minimal in-process Rasa stand-in (the bot's guarantees only, no NLU)",
    )
    parser.add_argument("--report", type=Path, default=ROOT / "docs" / "chaos-report.md")
    args = parser.parse_args()
    unknown = set(args.faults) - set(FAULTS)
    if unknown:
        raise SystemExit(f"chaos: unknown fault(s) {sorted(unknown)}; choose from {', '.join(FAULTS)}")
    results = asyncio.run(main_async(args))
    print(write_report(results, args))
    failed = [r.fault for r in results if r.lost or r.duplicated or r.out_of_order]
    if failed:
        raise SystemExit(f"chaos: lost, duplicated or out-of-order replies under: {', '.join(failed)}")


if __name__ == "__main__":
    main()
