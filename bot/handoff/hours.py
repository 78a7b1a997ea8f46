"""Business hours of the platform's agents, in a configured time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

_SPEC = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–~]\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Open every day from ``opens`` to ``closes`` local time; ``closes`` before ``opens`` spans midnight;
    ``00:00-24:00`` is always open."""

    opens: time
    closes: time | None  # None: 24:00
    zone: ZoneInfo

    @classmethod
    def parse(cls, spec: str, zone: str) -> BusinessHours:
        """``"09:00-22:00"`` in ``"Asia/Shanghai"``; raises ValueError on a malformed spec or zone."""
        match = _SPEC.match(spec)
        if match is None:
            raise ValueError(f"business hours must look like 09:00-22:00, got {spec!r}")
        h1, m1, h2, m2 = (int(group) for group in match.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"business hours out of range: {spec!r}")
        try:
            tz = ZoneInfo(zone)
        except Exception as exc:
            raise ValueError(f"unknown time zone {zone!r}") from exc
        return cls(time(h1, m1), None if h2 == 24 else time(h2, m2), tz)

    @property
    def always_open(self) -> bool:
        return self.opens == time(0, 0) and self.closes is None

    def label(self) -> str:
        closes = "24:00" if self.closes is None else self.closes.strftime("%H:%M")
        return f"{self.opens.strftime('%H:%M')}–{closes} ({self.zone.key})"

    def is_open(self, moment: datetime) -> bool:
        if self.always_open:
            return True
        local = moment.astimezone(self.zone).time()
        if self.closes is None:
            return local >= self.opens
        if self.opens <= self.closes:
            return self.opens <= local < self.closes
        return local >= self.opens or local < self.closes

    def next_open(self, moment: datetime) -> datetime:
        """``moment`` itself when open, else the next opening (aware, in the configured zone)."""
        if self.is_open(moment):
            return moment.astimezone(self.zone)
        local = moment.astimezone(self.zone)
        candidate = datetime.combine(local.date(), self.opens, tzinfo=self.zone)
        if candidate <= local:
            candidate += timedelta(days=1)
        return candidate
