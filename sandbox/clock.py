"""The sandbox's controllable clock.

Every business timestamp (orders, SLAs, restore windows, token expiry, simulation) is taken from this clock so
tests and demos can move time: ``POST /admin/clock`` sets or advances it, ``POST /admin/tick`` then runs the
simulation at that instant. Webhook delivery timing and signatures use the real wall clock instead, because the
receiver checks timestamps against its own clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

WallClock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Clock:
    """Real time shifted by an offset and optionally running ``speed`` times faster, or frozen at an instant."""

    def __init__(self, wall: WallClock = utc_now, speed: float = 1.0) -> None:
        self._wall = wall
        self._offset = timedelta(0)
        self._frozen_at: datetime | None = None
        self._speed = speed
        self._anchor = wall()
        """The wall instant from which the speed-up counts."""

    def now(self) -> datetime:
        """The sandbox's current time (UTC)."""
        if self._frozen_at is not None:
            return self._frozen_at
        wall = self._wall()
        return wall + self._offset + (wall - self._anchor) * (self._speed - 1)

    @property
    def speed(self) -> float:
        return self._speed

    def set_speed(self, speed: float) -> None:
        """Run ``speed`` times faster than real time from now on (the demo's fast-forward); 1 is real time."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        if self._frozen_at is None:
            now, self._anchor = self.now(), self._wall()
            self._offset = now - self._anchor
        else:
            self._anchor = self._wall()
        self._speed = speed

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def set(self, instant: datetime, *, frozen: bool = True) -> None:
        """Jump to ``instant``; a frozen clock stays there until advanced, a running one keeps ticking."""
        instant = instant.astimezone(UTC)
        if frozen:
            self._frozen_at = instant
        else:
            self._frozen_at = None
            self._anchor = self._wall()
            self._offset = instant - self._anchor

    def advance(self, seconds: float) -> None:
        """Move the clock forward (or back, for negative ``seconds``)."""
        delta = timedelta(seconds=seconds)
        if self._frozen_at is not None:
            self._frozen_at += delta
        else:
            self._offset += delta

    def unfreeze(self) -> None:
        """Let a frozen clock run on from where it stands."""
        if self._frozen_at is not None:
            self.set(self._frozen_at, frozen=False)

    def reset(self) -> None:
        """Back to real time."""
        self._frozen_at = None
        self._offset = timedelta(0)
        self._speed = 1.0
        self._anchor = self._wall()
