"""A private stack for a simulation: sandbox on a fresh SQLite DB, action server and Rasa with the current
model, on free ports (the same commands as ``scripts/stack.py``, through ``tests/support/processes.py``)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import ManagedProcess, ensure_model, free_port, stack_service

API_KEY = "sim-platform-key"
ADMIN_KEY = "sim-admin-key"
METADATA_SECRET = "sim-metadata-secret"  # the bot signs the Telegram identity; so does the simulator
RASA_AUTH_TOKEN = "sim-rasa-auth-token"  # Rasa's HTTP API (/status, trackers) wants it


@dataclass
class SimStack:
    sandbox_url: str
    rasa_url: str
    api_key: str
    admin_key: str
    metadata_secret: str
    processes: list[ManagedProcess]
    rasa_token: str = RASA_AUTH_TOKEN


@contextmanager
def private_stack(quiet: bool = False, rasa_timeout: float = 900.0) -> Iterator[SimStack]:
    model = ensure_model()
    work = Path(tempfile.mkdtemp(prefix="kmbot-sim-"))
    ports = {name: free_port() for name in ("SANDBOX_PORT", "ACTION_SERVER_PORT", "RASA_PORT")}
    env = {
        **{name: str(port) for name, port in ports.items()},
        "SANDBOX_DATABASE_URL": f"sqlite+aiosqlite:///{(work / 'sandbox.db').as_posix()}",
        "SANDBOX_API_KEY": API_KEY,
        "SANDBOX_ADMIN_KEY": ADMIN_KEY,
        "SANDBOX_SEED": "true",
        "SANDBOX_SIMULATE": "false",
        "SANDBOX_WEBHOOK_DELIVERY": "false",
        "SANDBOX_RATE_LIMIT_PER_SECOND": "0",
        "PLATFORM_API_KEY": API_KEY,
        "METADATA_SECRET": METADATA_SECRET,
        "RASA_AUTH_TOKEN": RASA_AUTH_TOKEN,
        "VAR_DIR": str(work),
        "DATABASE_URL": f"sqlite+aiosqlite:///{(work / 'bot.db').as_posix()}",
    }
    started: list[ManagedProcess] = []
    try:
        for name in ("sandbox", "actions", "rasa"):
            process = stack_service(name, env, model)
            # loading a model takes minutes on a busy machine; a slow start is not a failure here
            process.start_timeout = max(process.start_timeout, rasa_timeout if name == "rasa" else 120.0)
            started.append(process.start())
        for process in started:
            if not quiet:
                print(f"  waiting for {process.name} …", flush=True)
            process.wait_healthy()
        yield SimStack(
            sandbox_url=f"http://127.0.0.1:{ports['SANDBOX_PORT']}",
            rasa_url=f"http://127.0.0.1:{ports['RASA_PORT']}",
            api_key=API_KEY,
            admin_key=ADMIN_KEY,
            metadata_secret=METADATA_SECRET,
            processes=started,
        )
    finally:
        for process in reversed(started):
            process.stop()
