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
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
MAIN_PY = ROOT / ".venv" / "bin" / "python"
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"

sys.path.insert(0, str(ROOT / "scripts"))
from train import ensure_model  # noqa: E402


@dataclass
class Service:
    name: str
    command: list[str]
    health_url: str
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    start_timeout: float = 60.0


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
        ),
        "rasa": Service(
            "rasa",
            rasa_command,
            f"{rasa_url}/status?token={inside['RASA_AUTH_TOKEN']}",
            {**common, "SANIC_WORKERS": "1", "ACTION_SERVER_TOKEN": inside["ACTION_SERVER_TOKEN"]},
            cwd=ROOT / "nlu",
            start_timeout=900.0,  # loading the model takes many minutes on a busy machine
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


def wait_healthy(service: Service, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + service.start_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_file(service.name).read_text(errors="replace")[-2000:]
            raise SystemExit(f"error: {service.name} exited with {process.returncode}; its log ends:\n{tail}")
        if is_healthy(service.health_url):
            print(f"  {service.name:8} up   {shown(service.health_url)}", file=sys.stderr)
            return
        time.sleep(0.5)
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
    env = dict(os.environ)
    model = ensure_model()
    wanted = ["sandbox", "actions", "rasa"] + (["bot"] if with_bot else [])
    stack = services(env, model)
    started: list[str] = []
    for name in wanted:
        service = stack[name]
        if is_healthy(service.health_url):
            print(f"  {name:8} already running at {shown(service.health_url)}", file=sys.stderr)
            continue
        if name == "sandbox" and "SANDBOX_DATABASE_URL" not in env:
            # the demo platform starts from fresh seed data, so the README's example order is "processing"
            (VAR / "sandbox.db").unlink(missing_ok=True)
        process = start(service)
        started.append(name)
        try:
            wait_healthy(service, process)
        except SystemExit:
            for done in reversed(started):
                stop(done)
            raise
    return started


def down() -> None:
    for name in ("bot", "rasa", "actions", "sandbox"):
        stop(name)


def demo() -> int:
    """The stack in the background and the bot in the foreground; what demo started stops with it."""
    started = up(with_bot=False)
    env = {**os.environ, **services(dict(os.environ), None)["bot"].env}
    env.update(ops_access(env))
    print("stack is up; starting the bot (Ctrl-D or Ctrl-C quits)", file=sys.stderr)
    try:
        return subprocess.call([str(MAIN_PY), "-m", "bot"], cwd=ROOT, env=env)
    except KeyboardInterrupt:
        return 0
    finally:
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
        raise SystemExit(demo())
    else:
        status()


if __name__ == "__main__":
    main()
