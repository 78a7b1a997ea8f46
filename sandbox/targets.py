"""Validation and normalisation of recharge targets (account + region) per product kind."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from sandbox.domain import CARRIERS, ProductKind
from sandbox.errors import ApiError

PROVINCES: Final = (
    "北京", "天津", "河北", "山西", "内蒙古", "辽宁", "吉林", "黑龙江", "上海", "江苏", "浙江", "安徽",
    "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "广西", "海南", "重庆", "四川", "贵州",
    "云南", "西藏", "陕西", "甘肃", "青海", "宁夏", "新疆",
)  # fmt: skip
CARRIER_SHORT: Final = {"中国移动": "移动", "中国联通": "联通", "中国电信": "电信"}
PHONE_REGIONS: Final = tuple(f"{p}{CARRIER_SHORT[c]}" for p in PROVINCES for c in CARRIERS)
GAME_REGIONS: Final = (
    "安卓QQ区", "安卓微信区", "iOS QQ区", "iOS微信区", "国服", "台服", "港服", "亚服", "美服", "欧服",
    "日服", "韩服", "东南亚服",
)  # fmt: skip
MEMBERSHIP_REGIONS: Final = ("中国大陆", "港澳台", "海外")
REGIONS_BY_KIND: Final[dict[str, tuple[str, ...]]] = {
    "game_card": GAME_REGIONS,
    "phone_topup": PHONE_REGIONS,
    "membership": MEMBERSHIP_REGIONS,
}

PHONE_RE: Final = re.compile(r"1[3-9]\d{9}")
GAME_UID_RE: Final = re.compile(r"\d{5,12}")
QQ_RE: Final = re.compile(r"[1-9]\d{4,10}")
EMAIL_RE: Final = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+")
_SEPARATORS: Final = re.compile(r"[\s\-]")


@dataclass(frozen=True, slots=True)
class RechargeTarget:
    account: str
    region: str | None


def _region_key(region: str) -> str:
    """Case- and space-insensitive comparison key, so 'ios qq区' matches 'iOS QQ区'."""
    return re.sub(r"\s+", "", region).casefold()


def normalize_phone(raw: str) -> str | None:
    """Strip separators and a +86 prefix; return the 11-digit mainland mobile number or None."""
    digits = _SEPARATORS.sub("", raw)
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
            break
    return digits if PHONE_RE.fullmatch(digits) else None


def normalize_account(kind: ProductKind, raw: str) -> str:
    """The canonical account for ``kind``, or ``invalid_account``.

    phone_topup takes a mainland mobile number; game_card a game UID (5–12 digits) or QQ number; membership a
    mobile number, QQ number or e-mail address.
    """
    value = raw.strip()
    if kind == "phone_topup":
        phone = normalize_phone(value)
        if phone is not None:
            return phone
        raise ApiError(
            "invalid_account", "account must be a mainland China mobile number (11 digits, 1[3-9]…)"
        )
    if kind == "game_card":
        if GAME_UID_RE.fullmatch(value) or QQ_RE.fullmatch(value):
            return value
        raise ApiError("invalid_account", "account must be a game UID (5–12 digits) or a QQ number")
    phone = normalize_phone(value)
    if phone is not None:
        return phone
    if QQ_RE.fullmatch(value) or EMAIL_RE.fullmatch(value):
        return value
    raise ApiError("invalid_account", "account must be a mobile number, QQ number or e-mail address")


def normalize_region(kind: ProductKind, raw: str, carrier: str | None) -> str:
    """The canonical region name for ``kind``, or ``unknown_region``.

    A phone top-up's carrier area must belong to the product's carrier (no prefix check on the number itself:
    numbers keep their prefix when ported to another carrier).
    """
    key = _region_key(raw)
    for region in REGIONS_BY_KIND[kind]:
        if _region_key(region) == key:
            break
    else:
        raise ApiError("unknown_region", f"unknown region for {kind}: {raw.strip()[:40]}")
    if kind == "phone_topup" and carrier is not None and not region.endswith(CARRIER_SHORT[carrier]):
        raise ApiError("unknown_region", f"region {region} does not belong to carrier {carrier}")
    return region


def validate_target(
    kind: ProductKind, account: str, region: str | None, carrier: str | None
) -> RechargeTarget:
    """Validate a complete target; every kind but membership needs a region."""
    if region is None and kind != "membership":
        raise ApiError("unknown_region", f"a region is required for {kind}")
    canonical_region = None if region is None else normalize_region(kind, region, carrier)
    return RechargeTarget(normalize_account(kind, account), canonical_region)
