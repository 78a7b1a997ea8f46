"""Promised arrival times per product kind, carrier and time of day (China time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Final

from sandbox.domain import CARRIERS, PRODUCT_KINDS, ProductKind

CHINA_TZ: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
NIGHT_START: Final = time(23, 0)
NIGHT_END: Final = time(7, 0)


@dataclass(frozen=True, slots=True)
class Sla:
    product_kind: ProductKind
    carrier: str | None
    promised_minutes: int
    night: bool
    note: str


@dataclass(frozen=True, slots=True)
class _Rule:
    day_minutes: int
    night_minutes: int
    day_note: str
    night_note: str


_KIND_RULES: Final[dict[str, _Rule]] = {
    "game_card": _Rule(5, 5, "游戏点卡 5 分钟内到账", "游戏点卡 5 分钟内到账（夜间同样）"),
    "phone_topup": _Rule(10, 30, "话费 10 分钟内到账", "夜间 23:00–07:00 运营商维护，话费 30 分钟内到账"),
    "membership": _Rule(30, 30, "会员 30 分钟内开通", "会员 30 分钟内开通（夜间同样）"),
}
_CARRIER_RULES: Final[dict[str, _Rule]] = {
    "中国移动": _Rule(10, 30, "中国移动话费 10 分钟内到账", "夜间中国移动话费 30 分钟内到账"),
    "中国联通": _Rule(10, 30, "中国联通话费 10 分钟内到账", "夜间中国联通话费 30 分钟内到账"),
    "中国电信": _Rule(15, 45, "中国电信充值通道较慢，15 分钟内到账", "夜间中国电信话费 45 分钟内到账"),
}


def is_night(at: datetime) -> bool:
    """Whether ``at`` falls in 23:00–07:00 China time, when top-up channels are slow."""
    local = at.astimezone(CHINA_TZ).time()
    return local >= NIGHT_START or local < NIGHT_END


def _rule(kind: ProductKind, carrier: str | None) -> _Rule:
    if kind == "phone_topup" and carrier in _CARRIER_RULES:
        return _CARRIER_RULES[carrier]
    return _KIND_RULES[kind]


def _entry(kind: ProductKind, carrier: str | None, night: bool) -> Sla:
    rule = _rule(kind, carrier)
    if night:
        return Sla(kind, carrier, rule.night_minutes, True, rule.night_note)
    return Sla(kind, carrier, rule.day_minutes, False, rule.day_note)


def sla_for(kind: ProductKind, carrier: str | None, at: datetime) -> Sla:
    """The SLA that applies to an order of ``kind`` paid at ``at``."""
    return _entry(kind, carrier, is_night(at))


def _combinations(kind: ProductKind | None, carrier: str | None) -> list[tuple[ProductKind, str | None]]:
    kinds: tuple[ProductKind, ...] = PRODUCT_KINDS if kind is None else (kind,)
    combos: list[tuple[ProductKind, str | None]] = []
    for k in kinds:
        if k == "phone_topup":
            carriers: tuple[str | None, ...] = (None, *CARRIERS) if carrier is None else (carrier,)
            combos.extend((k, c) for c in carriers)
        elif carrier is None:
            combos.append((k, None))
    return combos


def list_slas(kind: ProductKind | None, carrier: str | None, at: datetime | None) -> list[Sla]:
    """SLA table filtered by kind and carrier; with ``at`` only the entries in force at that instant.

    A carrier filter only matches phone top-ups; ``carrier=None`` rows are the default for unknown carriers.
    """
    nights = (False, True) if at is None else (is_night(at),)
    return [_entry(k, c, night) for k, c in _combinations(kind, carrier) for night in nights]
