"""``make demo`` as a newcomer meets it, driven in pseudo-terminals: the set-up's progress lines, a status
question, a handoff taken over from ``make demo-staff`` and handed back (with the buyer's CSAT question), the
live demo world (``/demo``) and ``/lang en``.

It runs ``scripts/stack.py demo`` (what ``make demo`` runs once the venvs exist) on free ports and a throw-away
var directory, with the cached model, so it can run beside a developer's own demo.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.support.processes import ROOT, ensure_model, free_port

PY = str(ROOT / ".venv" / "bin" / "python")
BUYER_PROMPT = "你 / you > "
PROGRESS_LINE = re.compile(r"\[\s*(\d+\.\d)s\]")

pytestmark = pytest.mark.timeout(1500)


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    ensure_model()  # trains once if nlu/ changed (not timed here); the demo then finds it cached
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("TELEGRAM_BOT_TOKEN", "REDIS_URL", "DATABASE_URL", "AGENTS_CHAT_ID", "V")
    }
    env.update(
        {
            "SANDBOX_PORT": str(free_port()),
            "ACTION_SERVER_PORT": str(free_port()),
            "RASA_PORT": str(free_port()),
            "BOT_HTTP_PORT": str(free_port()),
            "STACK_VAR_DIR": str(tmp_path),
            "VAR_DIR": str(tmp_path),
            "SANDBOX_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'sandbox.db'}",
            "TERM": "xterm",
            "COLUMNS": "200",
        }
    )
    return env


@pytest.fixture
def buyer(demo_env: dict[str, str]) -> Iterator[pexpect.spawn]:
    child = pexpect.spawn(
        PY,
        ["scripts/stack.py", "demo"],
        cwd=str(ROOT),
        env=demo_env,
        encoding="utf-8",
        timeout=30,
        dimensions=(50, 200),
    )
    child.logfile_read = sys.stdout
    yield child
    if child.isalive():
        child.sendeof()
        child.expect(pexpect.EOF, timeout=30)
    child.close()


def press(child: pexpect.spawn, title: str) -> None:
    """Press the newest button whose title contains ``title`` (numbers are unique across messages)."""
    numbers = re.findall(rf"\[#(\d+)\] [^\[\r\n]*{re.escape(title)}", child.before + child.after)
    assert numbers, f"no button {title!r} on screen"
    child.sendline(f"#{numbers[-1]}")


def test_terminal_demo_from_set_up_to_handoff_and_back(
    buyer: pexpect.spawn, demo_env: dict[str, str]
) -> None:
    started = time.monotonic()
    buyer.expect("make demo: ", timeout=2)  # the first line within 2 s
    buyer.expect("Rasa model up to date")
    buyer.expect(BUYER_PROMPT, timeout=180)
    to_prompt = time.monotonic() - started
    set_up = buyer.before
    stamps = [float(s) for s in PROGRESS_LINE.findall(set_up)]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    print(
        f"\n[demo test] prompt after {to_prompt:.1f} s; longest gap between progress lines {max(gaps):.1f} s"
    )
    assert max(gaps) <= 15, f"progress lines must come at least every 15 s, got {gaps}"
    assert "sandbox healthy" in set_up and "actions healthy" in set_up

    # the second terminal (make demo-staff) starts now: it waits for what the bot sends to staff chats
    staff = pexpect.spawn(
        PY, ["-m", "bot.staff_console"], cwd=str(ROOT), env=demo_env, encoding="utf-8", timeout=60
    )
    staff.logfile_read = sys.stdout
    try:
        if "rasa healthy" not in set_up:  # the chat opened before Rasa was up: it says when Rasa is ready
            buyer.expect(["已就绪", "rasa healthy"], timeout=900)  # Rasa's model load: ~1 min, more when busy
        staff.expect("staff terminal", timeout=120)
        talk(buyer, staff)
    finally:
        staff.terminate(force=True)
        staff.close()
    print(f"[demo test] whole run {time.monotonic() - started:.1f} s")


def talk(buyer: pexpect.spawn, staff: pexpect.spawn) -> None:
    # a status question, answered by Rasa with the seeded order
    buyer.sendline("我的订单 KM20261127001 到哪了?")
    buyer.expect("王者荣耀 点券 60", timeout=90)
    buyer.expect(BUYER_PROMPT)

    # the buyer asks for a person; the merchant's staff (second terminal) accepts, answers and closes
    buyer.sendline("转人工")
    buyer.expect("已通知商家", timeout=60)
    staff.expect(r"\[#\d+\] [^\r\n]*接单[^\r\n]*\r\n")
    press(staff, "接单")
    buyer.expect("已接入")
    staff.sendline("您好，我是商家，正在为您查看订单")
    buyer.expect("正在为您查看订单")
    buyer.sendline("好的谢谢，请快一点")
    staff.expect("请快一点")
    staff.sendline("/close")
    buyer.expect(r"请为本次人工服务打分[\s\S]*\[#\d+\] 5[^\r\n]*\r\n")
    press(buyer, "5")
    buyer.expect("谢谢您的评价")

    # the live world: the demo buyer's orders with states, and a fresh order
    buyer.sendline("/demo")
    buyer.expect(r"演示世界[\s\S]*KM20261127001[\s\S]*\[#\d+\] [^\r\n]*\r\n")
    press(buyer, "游戏点卡")
    buyer.expect(r"已新建订单 (KM\d+)")

    # /lang answers, in the new language
    buyer.sendline("/lang en")
    buyer.expect("answer in English")
    buyer.sendline("where is my order KM20261127001")
    buyer.expect(r"KM20261127001[\s\S]*(deliver|process|arriv)", timeout=60)
    buyer.expect(BUYER_PROMPT)
    buyer.sendeof()
    buyer.expect(pexpect.EOF, timeout=60)
