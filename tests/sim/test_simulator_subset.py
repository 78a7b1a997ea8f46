"""A fixed-seed subset of the conversation simulator (issue 10) through the real Rasa server, action server
and platform sandbox: 30 buyers, zh and en, every goal kind, judged against issue 10's targets.

Deselect with ``-m "not sim"``; the full run is ``make simulate``. The zero-tolerance targets (traps,
cancellations after a keep or neutral message, untrue times, leaked internals, every insisted cancel honoured)
must hold on the subset too; the rate targets (save rate, reason-tag accuracy) are judged on the full run's 300
buyers, since with ~7 cancels per language one miss moves a rate by 14 points.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tests.support.processes import ROOT

sys.path.insert(0, str(ROOT / "scripts"))

from sim.app import run
from sim.stack import SimStack, private_stack

SUBSET = 30
SEED = 11
REPORT = ROOT / "var" / "simulation" / "subset.md"


@pytest.fixture(scope="module")
def sim_stack() -> Iterator[SimStack]:
    """Sandbox on a fresh DB, action server, Rasa with the current model (trained first if need be)."""
    with private_stack(quiet=True) as stack:
        yield stack


@pytest.mark.sim
@pytest.mark.timeout(600, func_only=True)  # the conversations only: loading a model is slow on a busy machine
def test_simulated_buyers_meet_issue_10_targets(sim_stack: SimStack) -> None:
    for process in sim_stack.processes:
        process.assert_running()
    result = run(
        rasa_url=sim_stack.rasa_url,
        sandbox_url=sim_stack.sandbox_url,
        api_key=sim_stack.api_key,
        admin_key=sim_stack.admin_key,
        metadata_secret=sim_stack.metadata_secret,
        rasa_token=sim_stack.rasa_token,
        count=SUBSET,
        seed=SEED,
        langs=["zh", "en"],
        concurrency=4,
        progress=False,
    )
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(result.report, encoding="utf-8")
    records = [record for record, _ in result.judged]
    assert len(records) == SUBSET
    assert {r.kind for r in records} >= {"insist", "keep_wait", "keep_fix", "keep_pay", "restore", "stop"}
    assert {r.lang for r in records} == {"zh", "en"}
    errors = [f"#{r.index}: {r.error}" for r in records if r.error]
    assert not errors, f"conversations failed: {errors}"
    assert all(record.turns for record in records), "every conversation got at least one turn"
    zero_tolerance = ("honoured_rate", "traps", "cancels_after_neutral", "untrue_times", "leaks")
    missed = [line for line in result.missed if any(f"{name} " in line for name in zero_tolerance)]
    assert not missed, f"targets missed (see {REPORT}):\n" + "\n".join(missed)
