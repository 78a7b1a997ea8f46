"""Start, watch and stop the demo stack: platform sandbox, action server, Rasa server and the bot.

    python scripts/stack.py up        # everything in the background, waits on health checks, logs in var/log
    python scripts/stack.py demo      # the same, then the bot in the foreground (terminal chat without a token)
    python scripts/stack.py down      # stops what 'up' started
    python scripts/stack.py status

Ports and URLs come from the environment (SANDBOX_PORT, ACTION_SERVER_PORT, RASA_PORT, BOT_HTTP_PORT),
so the tests can run a second stack beside a running demo.

The inside of the stack is authenticated: Rasa's HTTP API by RASA_AUTH_TOKEN, the action server by
ACTION_SERVER_TOKEN (Rasa sends it), the Telegram identity in Rasa's metadata by METADATA_SECRET (the bot
signs, the action server verifies). Unset ones are made random once and kept in var/run/inside-secrets.json
(mode 0600), so a later 'demo' or 'status' talks to an already running stack with the same values.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("STACK_VAR_DIR", str(ROOT / "var")))
MAIN_PY = ROOT / ".venv" / "bin" / "python"
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"

sys.path.insert(0, str(ROOT / "scripts"))
import train  # noqa: E402
from train import ensure_model  # noqa: E402


@dataclass
class Service:
    name: str
    command: list[str]
    health_url: str
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    start_timeout: float = 60.0
    doing: str = ""
    """What starting it does, for the progress line."""
    usually: str = "a few seconds"


def ports(env: dict[str, str]) -> dict[str, int]:
    return {
        "sandbox": int(env.get("SANDBOX_PORT", "8000")),
        "actions": int(env.get("ACTION_SERVER_PORT", "5055")),
        "rasa": int(env.get("RASA_PORT", "5005")),
        "bot": int(env.get("BOT_HTTP_PORT", "8080")),
    }


INSIDE_SECRETS = ("RASA_AUTH_TOKEN", "ACTION_SERVER_TOKEN", "METADATA_SECRET")


def inside_secrets(env: dict[str, str]) -> dict[str, str]:
    """The stack's shared tokens: from the environment, else the demo's kept ones, else new random ones."""
    missing = [name for name in INSIDE_SECRETS if not env.get(name)]
    chosen = {name: env[name] for name in INSIDE_SECRETS if env.get(name)}
    if not missing:
        return chosen
    path = VAR / "run" / "inside-secrets.json"
    kept: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    made = {name: kept.get(name) or secrets.token_urlsafe(32) for name in missing}
    if any(kept.get(name) != value for name, value in made.items()):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.write_text(json.dumps({**kept, **made}))
    return {**chosen, **made}


def services(env: dict[str, str], model: Path | None) -> dict[str, Service]:
    """The four processes of DESIGN.md, wired to each other on loopback."""
    port = ports(env)
    inside = inside_secrets(env)
    sandbox_url = env.get("PLATFORM_API_URL", f"http://127.0.0.1:{port['sandbox']}")
    action_url = env.get("ACTION_SERVER_URL", f"http://127.0.0.1:{port['actions']}/webhook")
    rasa_url = env.get("RASA_URL", f"http://127.0.0.1:{port['rasa']}")
    common = {"PLATFORM_API_URL": sandbox_url, "RASA_URL": rasa_url, "ACTION_SERVER_URL": action_url}
    rasa_command = [
        str(RASA),
        "run",
        "--enable-api",
        "-i",
        "127.0.0.1",
        "-p",
        str(port["rasa"]),
        "--endpoints",
        str(ROOT / "nlu" / "endpoints.yml"),
        "--credentials",
        str(ROOT / "nlu" / "credentials.yml"),
        "--model",
        str(model or ""),
        "--auth-token",
        inside["RASA_AUTH_TOKEN"],
    ]
    return {
        "sandbox": Service(
            "sandbox",
            [str(MAIN_PY), "-m", "sandbox"],
            f"http://127.0.0.1:{port['sandbox']}/health",
            {**common, "SANDBOX_HOST": "127.0.0.1", "SANDBOX_PORT": str(port["sandbox"])},
            doing="platform sandbox (demo orders, SQLite)",
            usually="~5 s",
        ),
        "actions": Service(
            "actions",
            [str(MAIN_PY), "-m", "actions"],
            f"http://127.0.0.1:{port['actions']}/health",
            {
                **common,
                "ACTION_SERVER_HOST": "127.0.0.1",
                "ACTION_SERVER_PORT": str(port["actions"]),
                "ACTION_SERVER_TOKEN": inside["ACTION_SERVER_TOKEN"],
                "METADATA_SECRET": inside["METADATA_SECRET"],
            },
            doing="Rasa action server (custom actions)",
            usually="~10 s",
        ),
        "rasa": Service(
            "rasa",
            rasa_command,
            f"{rasa_url}/status?token={inside['RASA_AUTH_TOKEN']}",
            {**common, "SANIC_WORKERS": "1", "ACTION_SERVER_TOKEN": inside["ACTION_SERVER_TOKEN"]},
            cwd=ROOT / "nlu",
            start_timeout=900.0,  # loading the model takes many minutes on a busy machine
            doing="Rasa server: loading the trained model",
            usually="30-80 s",
        ),
        "bot": Service(
            "bot",
            [str(MAIN_PY), "-m", "bot"],
            f"http://127.0.0.1:{port['bot']}/healthz",
            {
                **common,
                "BOT_HTTP_PORT": str(port["bot"]),
                "RASA_AUTH_TOKEN": inside["RASA_AUTH_TOKEN"],
                "METADATA_SECRET": inside["METADATA_SECRET"],
            },
            doing="the bot (aiogram)",
            usually="~5 s",
        ),
    }


def shown(url: str) -> str:
    """A health URL as printed: without its ?token= query."""
    return url.partition("?")[0]


def pid_file(name: str) -> Path:
    return VAR / "run" / f"{name}.pid"


def log_file(name: str) -> Path:
    return VAR / "log" / f"{name}.log"


def is_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start(service: Service) -> subprocess.Popen[bytes]:
    (VAR / "run").mkdir(parents=True, exist_ok=True)
    (VAR / "log").mkdir(parents=True, exist_ok=True)
    log = log_file(service.name).open("ab")
    process = subprocess.Popen(
        service.command,
        cwd=service.cwd,
        env={**os.environ, **service.env},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    pid_file(service.name).write_text(str(process.pid))
    return process


def wait_healthy(
    service: Service,
    process: subprocess.Popen[bytes],
    started_at: float | None = None,
    budget: float | None = None,
) -> bool:
    """Wait for the health check (the progress line says when it is up, the ticker while it is not); False
    when ``budget`` seconds passed first."""
    started_at = time.monotonic() if started_at is None else started_at
    deadline = started_at + service.start_timeout
    give_up = None if budget is None else started_at + budget
    with PROGRESS.waiting(f"{service.name}: {service.doing or 'starting'}", service.usually, started_at):
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log_file(service.name).read_text(errors="replace")[-2000:]
                raise SystemExit(
                    f"error: {service.name} exited with {process.returncode}; its log ends:\n{tail}"
                )
            if is_healthy(service.health_url):
                PROGRESS.done(f"{service.name} healthy at {shown(service.health_url)}", started_at)
                return True
            if give_up is not None and time.monotonic() > give_up:
                return False
            time.sleep(0.3)
    raise SystemExit(
        f"error: {service.name} not healthy after {service.start_timeout:.0f} s (see {log_file(service.name)})"
    )


def stop(name: str) -> None:
    path = pid_file(name)
    if not path.exists():
        return
    pid = int(path.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
        for _ in range(50):
            time.sleep(0.1)
            os.killpg(pid, 0)
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    path.unlink(missing_ok=True)
    print(f"  {name:8} stopped", file=sys.stderr)


def up(with_bot: bool) -> list[str]:
    """Start what is not already running; return the names started."""
    return start_all(with_bot)[0]


Loading = list[tuple[Service, subprocess.Popen[bytes]]]


def start_all(
    with_bot: bool, budgets: dict[str, float] | None = None, model: Path | None = None
) -> tuple[list[str], Loading]:
    """Start what is not already running, all at once, and wait for each health check. A service named in
    ``budgets`` is waited for only until that many seconds after the start; if it is still loading then,
    it is returned as loading (names started, services still loading)."""
    env = dict(os.environ)
    model = model or model_step()
    wanted = ["sandbox", "actions", "rasa"] + (["bot"] if with_bot else [])
    stack = services(env, model)
    started: list[str] = []
    waiting: list[tuple[Service, subprocess.Popen[bytes], float]] = []
    loading: Loading = []
    try:
        for name in wanted:  # all start at once (Rasa's model load is the long pole); then each is waited for
            service = stack[name]
            if is_healthy(service.health_url):
                PROGRESS.line(f"{name} already running at {shown(service.health_url)}")
                continue
            if name == "sandbox" and "SANDBOX_DATABASE_URL" not in env:
                # the demo platform starts from fresh seed data, so the README's example order is "processing"
                (VAR / "sandbox.db").unlink(missing_ok=True)
            PROGRESS.line(
                f"starting {name}: {service.doing} (usually {service.usually}; log {log_file(name)})"
            )
            waiting.append((service, start(service), time.monotonic()))
            started.append(name)
        for service, process, started_at in waiting:
            budget = (budgets or {}).get(service.name)
            if not wait_healthy(service, process, started_at, budget):
                loading.append((service, process))
    except (SystemExit, KeyboardInterrupt):
        for done in reversed(started):
            stop(done)
        raise
    return started, loading


def down() -> None:
    for name in ("bot", "rasa", "actions", "sandbox"):
        stop(name)


PROMPT_WITHIN = 40.0
"""The demo opens the chat at most this many seconds after the processes start, even if Rasa still loads its
model (messages typed meanwhile are kept and answered when it is ready; the chat says so)."""


def demo() -> int:
    """The stack in the background and the bot in the foreground; what demo started stops with it.

    The bot starts with the others (its imports take a while on a busy machine) and opens the chat once Rasa
    is ready, or ``PROMPT_WITHIN`` seconds after the start at the latest; until then this prints the progress.
    """
    PROGRESS.line(
        "make demo: sets up and starts sandbox, action server, Rasa and the bot (V=1 shows everything)"
    )
    os.environ.update(demo_world_env(dict(os.environ)))
    bot = services(dict(os.environ), None)["bot"]
    mode = "Telegram (polling)" if os.environ.get("TELEGRAM_BOT_TOKEN") else "the terminal chat"
    process: subprocess.Popen[bytes] | None = None
    started: list[str] = []
    try:
        model = model_step()
        open_by = time.time() + PROMPT_WITHIN
        env = {**os.environ, **bot.env, "TERMINAL_OPEN_BY": f"{open_by:.0f}"}
        env.update(ops_access(env))
        PROGRESS.line(f"starting the bot with {mode} (usually ~5 s; Ctrl-D or Ctrl-C quits)")
        process = subprocess.Popen([str(MAIN_PY), "-m", "bot"], cwd=ROOT, env=env)
        budget = max(1.0, open_by - time.time())
        started, loading = start_all(with_bot=False, budgets={"rasa": budget}, model=model)
        for service, _ in loading:
            PROGRESS.line(
                f"{service.name} is still busy ({service.doing}, usually {service.usually}); the chat opens "
                "now and answers as soon as it is ready"
            )
        with PROGRESS.waiting("the bot to open the chat", bot.usually):
            while process.poll() is None and not is_healthy(bot.health_url):
                time.sleep(0.3)
        PROGRESS.close()
        watchers = [_watch(service, child) for service, child in loading]
        code = process.wait()
        for watcher in watchers:
            watcher.set()
        return code
    except KeyboardInterrupt:
        return 0
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        for name in reversed(started):
            stop(name)


def ops_access(env: dict[str, str]) -> dict[str, str]:
    """The operators' page needs OPS_TOKEN: the one set, else one generated once into var/ops-token (0600)."""
    token = env.get("OPS_TOKEN", "")
    where = "OPS_TOKEN"
    if not token:
        path = VAR / "ops-token"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(24))
        token, where = (
            path.read_text().strip(),
            str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
        )
    port = ports(env)["bot"]
    print(
        f"ops page: http://127.0.0.1:{port}/ops (sign in with the token in {where}; "
        f"/ops/api/... takes it as 'Authorization: Bearer <token>'); metrics: http://127.0.0.1:{port}/metrics",
        file=sys.stderr,
    )
    return {"OPS_TOKEN": token}


def _watch(service: Service, process: subprocess.Popen[bytes]) -> threading.Event:
    """Say so if a service that was still loading when the chat opened dies instead of becoming ready."""
    done = threading.Event()

    def run() -> None:
        while not done.wait(1.0):
            if process.poll() is not None:
                print(
                    f"\nerror: {service.name} exited with {process.returncode} while loading; the chat cannot "
                    f"answer (see {log_file(service.name)}). Ctrl-D, then run make demo again.",
                    file=sys.stderr,
                    flush=True,
                )
                return
            if is_healthy(service.health_url):
                return

    threading.Thread(target=run, daemon=True).start()
    return done


def _stop_on_hangup() -> None:
    """A closed terminal (SIGHUP) or a kill (SIGTERM) stops what the demo started, like Ctrl-C does."""

    def interrupt(signum: int, _: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGHUP, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def demo_world_env(env: dict[str, str]) -> dict[str, str]:
    """A live demo world: the sandbox simulates (payments confirm, orders deliver, late ones are refunded),
    its events reach the bot, and handoffs have an agents' chat. Anything already set in ``env`` wins."""
    port = ports(env)
    wanted = {
        "SANDBOX_SIMULATE": "true",
        "SANDBOX_SIMULATE_INTERVAL_SECONDS": "2",
        "PLATFORM_WEBHOOK_SECRET": secrets.token_hex(16),
        "PLATFORM_EVENTS_URL": f"http://127.0.0.1:{port['bot']}/platform/events",
        "HANDOFF_BUSINESS_HOURS": "00:00-24:00",
    }
    if not env.get("TELEGRAM_BOT_TOKEN"):
        wanted["AGENTS_CHAT_ID"] = "-1009999000001"  # the terminal demo's agents' forum (make demo-staff)
    return {key: value for key, value in wanted.items() if not env.get(key)}


class Progress:
    """Set-up progress on stderr: one line per step saying what it does and how long it usually takes, and a
    ticker line every ``every`` seconds while a step runs, so a newcomer always sees that it moves."""

    def __init__(self, every: float = 10.0) -> None:
        self._every = every
        self._origin = time.monotonic()
        self._lock = threading.Lock()
        self._closed = False

    def line(self, text: str) -> None:
        with self._lock:
            if not self._closed:
                print(f"[{time.monotonic() - self._origin:5.1f}s] {text}", file=sys.stderr, flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self._origin

    def done(self, text: str, since: float) -> None:
        self.line(f"  ✓ {text} ({time.monotonic() - since:.0f} s)")

    def waiting(self, what: str, usually: str, since: float | None = None) -> _Ticker:
        return _Ticker(self, what, usually, time.monotonic() if since is None else since, self._every)

    def close(self) -> None:
        with self._lock:
            self._closed = True


class _Ticker:
    def __init__(self, progress: Progress, what: str, usually: str, since: float, every: float) -> None:
        self._progress, self._what, self._usually, self._since, self._every = (
            progress,
            what,
            usually,
            since,
            every,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            elapsed = time.monotonic() - self._since
            self._progress.line(
                f"  … still waiting for {self._what}: {elapsed:.0f} s (usually {self._usually})"
            )

    def __enter__(self) -> _Ticker:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


PROGRESS = Progress()


def model_step() -> Path:
    """The trained model: a cache hit is instant; training runs quietly with its output in var/log/train.log."""
    started = time.monotonic()
    target = train.model_path()
    if target.exists() or (train.CACHE / target.name).exists():
        model = ensure_model(quiet=True)
        PROGRESS.done(f"Rasa model up to date (cached for this nlu/): {model.name}", started)
        return model
    log = VAR / "log" / "train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    PROGRESS.line(
        f"training the Rasa model on nlu/ (first run or nlu/ changed; usually 3-5 min; log {log}; "
        "cached afterwards)"
    )
    command = [sys.executable, str(ROOT / "scripts" / "train.py")]
    if os.environ.get("V") == "1":
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    else:
        with PROGRESS.waiting("Rasa model training", "3-5 min", started), log.open("ab") as out:
            if subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False).returncode:
                tail = log.read_text(errors="replace")[-2000:]
                raise SystemExit(f"error: training failed; {log} ends:\n{tail}")
    PROGRESS.done(f"Rasa model trained: {target.name}", started)
    return ensure_model(quiet=True)


def status() -> None:
    for name, service in services(dict(os.environ), None).items():
        state = "up" if is_healthy(service.health_url) else "down"
        print(f"{name:8} {state:5} {shown(service.health_url)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "demo", "status"])
    args = parser.parse_args()
    if args.command == "up":
        up(with_bot=bool(os.environ.get("TELEGRAM_BOT_TOKEN")))
        if not os.environ.get("TELEGRAM_BOT_TOKEN"):
            print(
                "no TELEGRAM_BOT_TOKEN: the bot was not started (use 'make demo' for the terminal chat)",
                file=sys.stderr,
            )
    elif args.command == "down":
        down()
    elif args.command == "demo":
        _stop_on_hangup()
        raise SystemExit(demo())
    else:
        status()


if __name__ == "__main__":
    main()
