"""Run the stack's real processes for tests: same commands as ``scripts/stack.py``, on free ports."""

from __future__ import annotations

import functools
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import stack  # noqa: E402
import train  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass
class ManagedProcess:
    """One process of the stack; failures name it and show the end of its log."""

    name: str
    command: list[str]
    health_url: str
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    start_timeout: float = 60.0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".log")[1]))

    def start(self) -> ManagedProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    def wait_healthy(self) -> ManagedProcess:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            if is_healthy(self.health_url):
                return self
            time.sleep(0.3)
        raise AssertionError(f"{self.name} not healthy after {self.start_timeout:.0f} s:\n{self.log_tail()}")

    def assert_running(self) -> None:
        """Fail with the process's name when it is not up (so an e2e test cannot pass without it)."""
        if self.process is None or self.process.poll() is not None or not is_healthy(self.health_url):
            raise AssertionError(f"process '{self.name}' is not running/healthy at {self.health_url}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


@functools.cache
def inside_secrets() -> dict[str, str]:
    """Random shared tokens for this test session's stack (Rasa API, action server, metadata signature):
    every process of the session gets the same ones, the environment can still override them."""
    return {name: secrets.token_urlsafe(32) for name in stack.INSIDE_SECRETS}


def stack_service(name: str, env: dict[str, str], model: Path | None = None) -> ManagedProcess:
    env = {**inside_secrets(), **env}
    service = stack.services(env, model)[name]
    return ManagedProcess(
        name=name,
        command=service.command,
        health_url=service.health_url,
        env={**env, **service.env},
        cwd=service.cwd,
        start_timeout=service.start_timeout,
    )


def ensure_model() -> Path:
    return train.ensure_model(quiet=True)
