"""The sandbox clock: offsets, freezing and the demo's fast-forward, on a fake wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sandbox.clock import Clock

START = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


class Wall:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def test_speed_runs_the_clock_faster_from_when_it_is_set() -> None:
    wall = Wall()
    clock = Clock(wall)
    wall.now += timedelta(seconds=10)
    assert clock.now() == START + timedelta(seconds=10)
    clock.set_speed(10)
    wall.now += timedelta(seconds=6)
    assert clock.now() == START + timedelta(seconds=70)  # 10 s real time, then 6 s at ×10
    clock.advance(60)
    assert clock.now() == START + timedelta(seconds=130)
    clock.set_speed(1)
    wall.now += timedelta(seconds=5)
    assert clock.now() == START + timedelta(seconds=135)
    clock.reset()
    assert clock.now() == wall.now and clock.speed == 1


def test_speed_given_at_start_and_a_frozen_clock_ignores_it() -> None:
    wall = Wall()
    clock = Clock(wall, speed=60)
    wall.now += timedelta(seconds=2)
    assert clock.now() == START + timedelta(minutes=2)
    clock.set(START, frozen=True)
    wall.now += timedelta(seconds=30)
    assert clock.now() == START
    clock.unfreeze()
    wall.now += timedelta(seconds=1)
    assert clock.now() == START + timedelta(minutes=1)
    with pytest.raises(ValueError):
        clock.set_speed(0)
