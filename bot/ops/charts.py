"""Server-side SVG charts for the ops page: no script, no CDN, readable offline and on a phone.

Each chart scales to its container (``viewBox`` + ``width: 100%``) and writes its numbers as text, so
what the chart says can be read (and tested) without looking at shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

FONT = "font-family='system-ui,-apple-system,PingFang SC,Microsoft YaHei,sans-serif'"
COLOURS = {
    "requests": "#64748b",
    "offers": "#0ea5e9",
    "saved": "#16a34a",
    "cancelled": "#dc2626",
    "escalated": "#d97706",
}


@dataclass(frozen=True, slots=True)
class Bar:
    key: str
    label: str
    value: int
    colour: str


def funnel(bars: Sequence[Bar], *, width: int = 420) -> str:
    """Horizontal bars, widest first (requests), each labelled with its count and share of the first."""
    row, label_w = 34, 100
    top = max((bar.value for bar in bars), default=0) or 1
    height = row * len(bars) + 8
    parts = [
        f"<svg class='chart funnel' viewBox='0 0 {width} {height}' role='img' "
        f"xmlns='http://www.w3.org/2000/svg' {FONT} font-size='14'>"
    ]
    first = bars[0].value if bars else 0
    for i, bar in enumerate(bars):
        y = 4 + i * row
        span = (width - label_w - 80) * bar.value / top
        share = f" · {bar.value / first:.0%}" if first and i else ""
        parts.append(
            f"<g data-stage='{escape(bar.key)}' data-value='{bar.value}'>"
            f"<text x='0' y='{y + 20}' fill='#334155'>{escape(bar.label)}</text>"
            f"<rect x='{label_w}' y='{y + 4}' width='{max(span, 2):.1f}' height='{row - 10}' rx='4' "
            f"fill='{bar.colour}'/>"
            f"<text class='value' x='{label_w + max(span, 2) + 6:.1f}' y='{y + 20}' fill='#0f172a' "
            f"font-weight='600'>{bar.value}{share}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class TagOutcome:
    tag: str
    label: str
    saved: int
    cancelled: int
    escalated: int


def tag_stack(rows: Sequence[TagOutcome], legend: dict[str, str], *, width: int = 420) -> str:
    """One stacked bar per reason tag: saved / cancelled / escalated."""
    row, label_w = 28, 110
    top = max((r.saved + r.cancelled + r.escalated for r in rows), default=0) or 1
    height = row * len(rows) + 30
    parts = [
        f"<svg class='chart tags' viewBox='0 0 {width} {height}' role='img' "
        f"xmlns='http://www.w3.org/2000/svg' {FONT} font-size='13'>"
    ]
    for i, r in enumerate(rows):
        y = i * row
        x = float(label_w)
        parts.append(
            f"<g data-tag='{escape(r.tag)}'><text x='0' y='{y + 18}' fill='#334155'>{escape(r.label)}</text>"
        )
        for key, value in (("saved", r.saved), ("cancelled", r.cancelled), ("escalated", r.escalated)):
            if value:
                span = (width - label_w - 30) * value / top
                parts.append(
                    f"<rect x='{x:.1f}' y='{y + 5}' width='{span:.1f}' height='{row - 10}' fill='{COLOURS[key]}'>"
                    f"<title>{escape(legend[key])}: {value}</title></rect>"
                )
                x += span
        total = r.saved + r.cancelled + r.escalated
        parts.append(f"<text x='{x + 6:.1f}' y='{y + 18}' fill='#0f172a'>{total}</text></g>")
    y = len(rows) * row + 8
    x = 0
    for key in ("saved", "cancelled", "escalated"):
        parts.append(
            f"<rect x='{x}' y='{y}' width='12' height='12' fill='{COLOURS[key]}'/>"
            f"<text x='{x + 16}' y='{y + 11}' fill='#334155'>{escape(legend[key])}</text>"
        )
        x += 16 + 14 * len(legend[key]) + 20
    parts.append("</svg>")
    return "".join(parts)


def sparkline(
    days: Sequence[date], rates: dict[date, float | None], *, width: int = 220, height: int = 44
) -> str:
    """Save rate (0–100 %) per day as a line; days without requests leave a gap."""
    if not days:
        return ""
    step = (width - 8) / max(len(days) - 1, 1)
    segments: list[list[str]] = [[]]
    dots: list[str] = []
    for i, day in enumerate(days):
        rate = rates.get(day)
        if rate is None:
            if segments[-1]:
                segments.append([])
            continue
        x, y = 4 + i * step, height - 4 - rate * (height - 8)
        segments[-1].append(f"{x:.1f},{y:.1f}")
        dots.append(
            f"<circle cx='{x:.1f}' cy='{y:.1f}' r='2' fill='#16a34a'><title>{day}: {rate:.0%}</title></circle>"
        )
    lines = "".join(
        f"<polyline points='{' '.join(points)}' fill='none' stroke='#16a34a' stroke-width='2'/>"
        for points in segments
        if len(points) > 1
    )
    return (
        f"<svg class='spark' viewBox='0 0 {width} {height}' xmlns='http://www.w3.org/2000/svg'>"
        f"<rect width='{width}' height='{height}' fill='#f8fafc'/>"
        f"<line x1='0' x2='{width}' y1='{height / 2}' y2='{height / 2}' stroke='#e2e8f0'/>"
        f"{lines}{''.join(dots)}</svg>"
    )


def columns(values: dict[int, int], *, width: int = 300, height: int = 120) -> str:
    """CSAT distribution: one column per score, the count above it."""
    top = max(values.values(), default=0) or 1
    n = len(values) or 1
    slot = width / n
    parts = [
        f"<svg class='chart csat' viewBox='0 0 {width} {height + 36}' xmlns='http://www.w3.org/2000/svg' "
        f"{FONT} font-size='13'>"
    ]
    for i, (score, count) in enumerate(sorted(values.items())):
        h = (height - 20) * count / top
        x = i * slot + slot * 0.2
        parts.append(
            f"<g data-score='{score}' data-value='{count}'>"
            f"<rect x='{x:.1f}' y='{height - h:.1f}' width='{slot * 0.6:.1f}' height='{max(h, 1):.1f}' "
            f"fill='{'#16a34a' if score >= 4 else '#d97706' if score == 3 else '#dc2626'}'/>"
            f"<text x='{x + slot * 0.3:.1f}' y='{height - h - 4:.1f}' text-anchor='middle'>{count}</text>"
            f"<text x='{x + slot * 0.3:.1f}' y='{height + 18}' text-anchor='middle'>{score}★</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)
