"""``/ops`` on the bot's HTTP server: the page (server-rendered HTML + SVG) and ``/ops/api/...``.

Routes (all behind :class:`bot.ops.auth.OpsAuth`):
- ``GET /ops`` the page; ``POST /ops/login`` / ``POST /ops/logout`` the session cookie;
- ``GET /ops/api/overview`` everything below in one document;
- ``GET /ops/api/funnel``, ``/save-rate``, ``/containment``, ``/csat``, ``/merchants`` one block each;
- ``GET /ops/api/funnel.csv``, ``/save-rate.csv``, ``/merchants.csv``, ``/csat.csv`` CSV exports.
Query parameters everywhere: ``from`` / ``to`` (YYYY-MM-DD, local days, inclusive; default the last 30
days), ``merchant``, ``kind`` (product kind), ``lang`` (buyer language), and ``ui`` (zh | en) for the page.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape
from typing import Any, Protocol
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.ops import charts
from bot.ops.auth import OpsAuth
from bot.ops.texts import KIND_LABELS, UiLanguage, kind_label, t, tag_label
from integrations.storage.analytics import Analytics, Filters

log = logging.getLogger(__name__)

KINDS = tuple(KIND_LABELS)
LANGUAGES = ("zh", "en")
DEFAULT_DAYS = 30
MAX_MERCHANT_ROWS = 50
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadFilter(ValueError):
    """A query parameter the page cannot use; answered with 400 naming it."""


class ScoreSource(Protocol):
    """The platform's merchant fulfilment score (``PlatformClient.get_merchant_score``)."""

    async def get_merchant_score(self, merchant_id: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class Score:
    grade: str | None
    cancel_rate: float | None
    median_arrival_minutes: float | None


class ScoreCache:
    """Fulfilment scores fetched from the platform at most every ``ttl`` s per merchant, with a short
    timeout: the page never waits long on the platform, and a failure shows as "—" (cached too)."""

    def __init__(self, source: ScoreSource, ttl: float = 300.0, timeout: float = 1.0) -> None:
        self._source = source
        self._ttl = ttl
        self._timeout = timeout
        self._cache: dict[str, tuple[float, Score | None]] = {}

    async def scores(self, merchant_ids: list[str]) -> dict[str, Score | None]:
        now = time.monotonic()
        missing = [m for m in merchant_ids if m not in self._cache or self._cache[m][0] < now]
        if missing:
            results = await asyncio.gather(*(self._fetch(m) for m in missing))
            for merchant_id, score in zip(missing, results, strict=True):
                self._cache[merchant_id] = (now + self._ttl, score)
        return {m: self._cache[m][1] for m in merchant_ids}

    async def _fetch(self, merchant_id: str) -> Score | None:
        try:
            score = await asyncio.wait_for(self._source.get_merchant_score(merchant_id), self._timeout)
        except Exception as exc:
            log.info("fulfilment score of %s unavailable: %s", merchant_id, type(exc).__name__)
            return None
        return Score(score.grade, score.cancel_rate, score.median_arrival_minutes)


def parse_filters(query: Any, timezone: str, today: date | None = None) -> Filters:
    zone = ZoneInfo(timezone)
    today = today or datetime.now(zone).date()

    def day(name: str, default: date) -> date:
        raw = query.get(name) or ""
        if not raw:
            return default
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise BadFilter(f"{name}: expected YYYY-MM-DD") from None

    end = day("to", today)
    start = day("from", end - timedelta(days=DEFAULT_DAYS - 1))
    kind = query.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise BadFilter(f"kind: one of {', '.join(KINDS)}")
    language = query.get("lang") or None
    if language is not None and language not in LANGUAGES:
        raise BadFilter("lang: zh or en")
    merchant = (query.get("merchant") or "").strip() or None
    if merchant is not None and len(merchant) > 64:
        raise BadFilter("merchant: too long")
    try:
        return Filters(start, end, merchant, kind, language, timezone)
    except ValueError as exc:
        raise BadFilter(f"from/to: {exc}") from None


def ui_language(request: web.Request) -> UiLanguage:
    ui = request.query.get("ui")
    if ui in ("zh", "en"):
        return "zh" if ui == "zh" else "en"
    accept = request.headers.get("Accept-Language", "")
    return "en" if accept.lower().startswith("en") else "zh"


def _csv(rows: list[dict[str, Any]], name: str) -> web.Response:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return web.Response(
        body=("\ufeff" + buffer.getvalue()).encode(),  # BOM: Excel opens zh text correctly
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


class OpsPage:
    def __init__(
        self,
        auth: OpsAuth,
        analytics: Analytics,
        scores: ScoreCache | None = None,
        timezone: str = "Asia/Shanghai",
    ) -> None:
        self._auth = auth
        self._analytics = analytics
        self._scores = scores
        self._timezone = timezone
        self._merchants_cache: tuple[float, list[str]] | None = None

    def register(self, app: web.Application) -> None:
        router = app.router
        router.add_get("/ops", self._guard(self.page, api=False))
        router.add_post("/ops/login", self.login)
        router.add_post("/ops/logout", self.logout)
        api: dict[str, Handler] = {
            "overview": self.overview,
            "funnel": self.funnel,
            "save-rate": self.save_rate,
            "containment": self.containment,
            "csat": self.csat,
            "merchants": self.merchants,
            "funnel.csv": self.funnel_csv,
            "save-rate.csv": self.save_rate_csv,
            "merchants.csv": self.merchants_csv,
            "csat.csv": self.csat_csv,
        }
        for name, handler in api.items():
            router.add_get(f"/ops/api/{name}", self._guard(handler, api=True))

    # ------------------------------------------------------------------ guard and session

    def _guard(self, handler: Handler, *, api: bool) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not self._auth.allowed(request):
                if api:
                    return web.json_response(
                        {"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"}
                    )
                return self._login_form(ui_language(request), wrong=False)
            try:
                response = await handler(request)
            except BadFilter as exc:
                return web.json_response({"error": str(exc)}, status=400)
            response.headers["Cache-Control"] = "no-store"
            return response

        return guarded

    def _login_form(self, ui: UiLanguage, *, wrong: bool) -> web.Response:
        error = f"<p class='error' role='alert'>{t('login_wrong', ui)}</p>" if wrong else ""
        body = (
            f"<main class='login'><h1>{t('login_title', ui)}</h1><p>{t('login_hint', ui)}</p>{error}"
            f"<form method='post' action='/ops/login'><input type='hidden' name='ui' value='{ui}'>"
            f"<label>{t('token', ui)} <input id='token' name='token' type='password' autocomplete='current-password' "
            f"required></label> <button id='login' type='submit'>{t('login_button', ui)}</button></form></main>"
        )
        return web.Response(
            text=_document(t("login_title", ui), body, ui),
            status=401,
            content_type="text/html",
            headers={"Cache-Control": "no-store"},
        )

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        ui: UiLanguage = "en" if form.get("ui") == "en" else "zh"
        token = form.get("token")
        if not isinstance(token, str) or not self._auth.token_matches(token):
            await asyncio.sleep(0.3)  # slows guessing; the token is long anyway
            return self._login_form(ui, wrong=True)
        response = web.Response(status=303, headers={"Location": f"/ops?ui={ui}"})
        self._auth.sign_in(response, secure=request.secure)
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        response = web.Response(status=303, headers={"Location": "/ops"})
        self._auth.sign_out(response)
        return response

    async def _merchant_choices(self) -> list[str]:
        """The merchant filter's choices, read at most once a minute."""
        now = time.monotonic()
        if self._merchants_cache is None or self._merchants_cache[0] < now:
            self._merchants_cache = (now + 60.0, await self._analytics.merchant_ids())
        return self._merchants_cache[1]

    # ------------------------------------------------------------------ JSON

    def _filters(self, request: web.Request) -> Filters:
        return parse_filters(request.query, self._timezone)

    @staticmethod
    def _json(filters: Filters, payload: dict[str, Any]) -> web.Response:
        period = {
            "from": filters.start.isoformat(),
            "to": filters.end.isoformat(),
            "timezone": filters.timezone,
            "merchant": filters.merchant_id,
            "kind": filters.product_kind,
            "lang": filters.language,
        }
        return web.json_response({"filters": period, **payload})

    async def overview(self, request: web.Request) -> web.Response:
        filters = self._filters(request)
        data = await self._analytics.overview(filters)
        data["merchants"] = await self._with_scores(data["merchants"])
        return self._json(filters, data)

    async def funnel(self, request: web.Request) -> web.Response:
        filters = self._filters(request)
        return self._json(filters, {"funnel": (await self._analytics.funnel(filters)).as_dict()})

    async def save_rate(self, request: web.Request) -> web.Response:
        filters = self._filters(request)
        series = await self._analytics.save_rate_series(filters)
        return self._json(filters, {"save_rate_series": [p.as_dict() for p in series]})

    async def containment(self, request: web.Request) -> web.Response:
        filters = self._filters(request)
        return self._json(filters, {"containment": (await self._analytics.containment(filters)).as_dict()})

    async def csat(self, request: web.Request) -> web.Response:
        filters = self._filters(request)
        return self._json(filters, {"csat": (await self._analytics.csat(filters)).as_dict()})

    async def merchants(self, request: web.Request) -> web.Response:
        filters = self._filters(request)
        rows = [row.as_dict() for row in await self._analytics.merchants(filters)]
        return self._json(filters, {"merchants": await self._with_scores(rows)})

    async def _with_scores(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        shown = rows[:MAX_MERCHANT_ROWS]
        scores = await self._scores.scores([r["merchant_id"] for r in shown]) if self._scores else {}
        for row in shown:
            score = scores.get(row["merchant_id"])
            row["fulfilment"] = (
                None
                if score is None
                else {
                    "grade": score.grade,
                    "cancel_rate": score.cancel_rate,
                    "median_arrival_minutes": score.median_arrival_minutes,
                }
            )
        return shown + rows[MAX_MERCHANT_ROWS:]

    # ------------------------------------------------------------------ CSV

    async def funnel_csv(self, request: web.Request) -> web.Response:
        funnel = await self._analytics.funnel(self._filters(request))
        rows = [row.as_dict() for row in [*funnel.by_tag, funnel.total]]
        return _csv(rows, "cancellation-funnel.csv")

    async def save_rate_csv(self, request: web.Request) -> web.Response:
        series = await self._analytics.save_rate_series(self._filters(request))
        return _csv([p.as_dict() for p in series], "save-rate-by-day.csv")

    async def merchants_csv(self, request: web.Request) -> web.Response:
        rows = await self._with_scores(
            [r.as_dict() for r in await self._analytics.merchants(self._filters(request))]
        )
        flat = []
        for row in rows:
            fulfilment = row.pop("fulfilment", None) or {}
            flat.append(
                {
                    **row,
                    "grade": fulfilment.get("grade"),
                    "platform_cancel_rate": fulfilment.get("cancel_rate"),
                    "median_arrival_minutes": fulfilment.get("median_arrival_minutes"),
                }
            )
        return _csv(flat, "merchants.csv")

    async def csat_csv(self, request: web.Request) -> web.Response:
        csat = await self._analytics.csat(self._filters(request))
        rows = [{"group": "merchant", **g.as_dict()} for g in csat.by_merchant]
        rows += [{"group": "agent", **g.as_dict()} for g in csat.by_agent]
        rows += [
            {"group": "score", "key": str(k), "answers": v, "average": None}
            for k, v in csat.distribution.items()
        ]
        return _csv(rows, "csat.csv")

    # ------------------------------------------------------------------ HTML

    async def page(self, request: web.Request) -> web.Response:
        ui = ui_language(request)
        filters = self._filters(request)
        data, merchant_ids = await asyncio.gather(self._analytics.overview(filters), self._merchant_choices())
        data["merchants"] = await self._with_scores(data["merchants"])
        body = _render(filters, data, merchant_ids, ui, dict(request.query))
        return web.Response(text=_document(t("title", ui), body, ui), content_type="text/html")


# ---------------------------------------------------------------------------------------------- rendering

STYLE = """
*{box-sizing:border-box}body{margin:0;font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;
color:#0f172a;background:#f1f5f9;line-height:1.4}header{background:#0f172a;color:#fff;padding:12px 16px;display:flex;
flex-wrap:wrap;gap:8px;align-items:center;justify-content:space-between}header h1{font-size:18px;margin:0}
header a,header button{color:#e2e8f0;background:none;border:0;font:inherit;cursor:pointer;text-decoration:underline}
main{max-width:1100px;margin:0 auto;padding:12px}section{background:#fff;border-radius:10px;padding:12px 14px;
margin:12px 0;box-shadow:0 1px 2px #0001}h2{font-size:16px;margin:0 0 8px}
form.filters{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:8px;align-items:end}
form.filters label{display:flex;flex-direction:column;font-size:13px;color:#475569}
input,select,button{font:inherit;padding:6px 8px;border:1px solid #cbd5e1;border-radius:6px;min-height:36px}
button.primary,#login{background:#0f172a;color:#fff;border:0}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px}
.tile{background:#f8fafc;border-radius:8px;padding:10px}.tile .label{font-size:13px;color:#475569}
.tile .value{font-size:24px;font-weight:700}.tile .sub{font-size:12px;color:#64748b}
.chart{width:100%;max-width:720px;height:auto;display:block}.spark{width:100%;max-width:220px;height:auto}
.table{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:14px}
th,td{padding:6px 8px;border-bottom:1px solid #e2e8f0;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}.sparks{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:10px}
.spark-cell{font-size:13px}.note{font-size:13px;color:#64748b}.exports a{margin-right:12px}
.login{max-width:420px;margin:10vh auto;background:#fff;padding:20px;border-radius:10px}
.login input{width:100%;margin:6px 0 12px}.error{color:#b91c1c;font-weight:600}
"""


def _document(title: str, body: str, ui: UiLanguage) -> str:
    lang = "zh-CN" if ui == "zh" else "en"
    return (
        f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<meta name='robots' content='noindex'><title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def _average(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _tile(key: str, label: str, value: str, sub: str = "") -> str:
    return (
        f"<div class='tile' data-metric='{key}'><div class='label'>{escape(label)}</div>"
        f"<div class='value'>{escape(value)}</div><div class='sub'>{escape(sub)}</div></div>"
    )


def _options(values: list[tuple[str, str]], selected: str | None, ui: UiLanguage) -> str:
    options = [f"<option value=''>{t('all', ui)}</option>"]
    for value, label in values:
        mark = " selected" if value == selected else ""
        options.append(f"<option value='{escape(value)}'{mark}>{escape(label)}</option>")
    return "".join(options)


def _render(
    filters: Filters, data: dict[str, Any], merchant_ids: list[str], ui: UiLanguage, query: dict[str, str]
) -> str:
    funnel, containment, csat = data["funnel"], data["containment"], data["csat"]
    total = funnel["total"]
    other_ui: UiLanguage = "en" if ui == "zh" else "zh"
    switch = urlencode({**query, "ui": other_ui})
    header = (
        f"<header><h1>{t('title', ui)}</h1><nav><a href='/ops?{escape(switch)}'>"
        f"{'English' if ui == 'zh' else '中文'}</a> "
        f"<form method='post' action='/ops/logout' style='display:inline'><button>{t('logout', ui)}</button></form>"
        "</nav></header>"
    )
    merchant_choices = [(m, m) for m in merchant_ids]
    form = (
        f"<section><form class='filters' method='get' action='/ops'><input type='hidden' name='ui' value='{ui}'>"
        f"<label>{t('from', ui)}<input type='date' name='from' value='{filters.start.isoformat()}'></label>"
        f"<label>{t('to', ui)}<input type='date' name='to' value='{filters.end.isoformat()}'></label>"
        f"<label>{t('merchant', ui)}<select name='merchant'>{_options(merchant_choices, filters.merchant_id, ui)}"
        "</select></label>"
        f"<label>{t('kind', ui)}<select name='kind'>"
        f"{_options([(k, kind_label(k, ui)) for k in KINDS], filters.product_kind, ui)}</select></label>"
        f"<label>{t('lang', ui)}<select name='lang'>"
        f"{_options([('zh', '中文'), ('en', 'English')], filters.language, ui)}</select></label>"
        f"<button class='primary' type='submit'>{t('apply', ui)}</button></form>"
        f"<p class='exports note'>{t('export', ui)}: " + _export_links(query) + "</p></section>"
    )
    stages = [
        charts.Bar("requests", t("requests", ui), total["requests"], charts.COLOURS["requests"]),
        charts.Bar("offers", t("offers", ui), total["offers"], charts.COLOURS["offers"]),
        charts.Bar("saved", t("saved", ui), total["saved"], charts.COLOURS["saved"]),
        charts.Bar("cancelled", t("cancelled", ui), total["cancelled"], charts.COLOURS["cancelled"]),
        charts.Bar("escalated", t("escalated", ui), total["escalated"], charts.COLOURS["escalated"]),
    ]
    kinds = " · ".join(
        f"{t(kind, ui)} {total[kind]}"
        for kind in ("fixed_account", "fixed_region", "kept_waiting", "payment_help", "restored")
    )
    funnel_section = (
        f"<section id='funnel'><h2>{t('funnel', ui)} — {t('save_rate', ui)} "
        f"<span data-metric='funnel_save_rate'>{_pct(total['save_rate'])}</span></h2>"
        f"{charts.funnel(stages)}<p class='note' data-metric='save_kinds'>{t('saved', ui)}: {escape(kinds)}</p>"
    )
    if funnel["by_tag"]:
        legend = {k: t(k, ui) for k in ("saved", "cancelled", "escalated")}
        rows = [
            charts.TagOutcome(
                r["reason_tag"],
                tag_label(r["reason_tag"], ui),
                r["saved"] - r["restored"],
                r["cancelled"],
                r["escalated"],
            )
            for r in funnel["by_tag"]
        ]
        funnel_section += f"<h2>{t('funnel_by_tag', ui)}</h2>{charts.tag_stack(rows, legend)}" + _tag_table(
            funnel["by_tag"], ui
        )
    else:
        funnel_section += f"<p class='note'>{t('no_data', ui)}</p>"
    funnel_section += "</section>"
    sparks = _sparklines(filters, data["save_rate_series"], ui)
    tiles = [
        _tile(
            "containment_rate",
            t("containment_rate", ui),
            _pct(containment["containment_rate"]),
            f"{t('conversations', ui)} {containment['conversations'] if containment['conversations'] is not None else '—'}",
        ),
        _tile(
            "handoff_rate",
            t("handoff_rate", ui),
            _pct(containment["handoff_rate"]),
            f"{t('tickets', ui)} {containment['tickets']}",
        ),
        _tile(
            "first_reply",
            t("first_reply", ui),
            _seconds(containment["first_reply_median_seconds"]),
            f"n={containment['first_reply_count']}",
        ),
        _tile(
            "sla_hit_rate",
            t("sla_hit_rate", ui),
            _pct(containment["merchant_sla_hit_rate"]),
            f"{containment['routed_to_merchant'] - containment['merchant_sla_expired']}/{containment['routed_to_merchant']}",
        ),
        _tile(
            "reopen_rate",
            t("reopen_rate", ui),
            _pct(containment["reopen_rate"]),
            f"{containment['reopened']}/{containment['resolved']}",
        ),
    ]
    note = f"<p class='note'>{t('by_order_note', ui)}</p>" if filters.by_order else ""
    containment_section = f"<section id='containment'><h2>{t('containment', ui)}</h2><div class='tiles'>{''.join(tiles)}</div>{note}</section>"
    csat_tiles = [
        _tile(
            "csat_average",
            t("csat_average", ui),
            _average(csat["average"]),
            f"{t('answers', ui)} {csat['answers']}",
        ),
        _tile(
            "csat_response_rate",
            t("csat_response_rate", ui),
            _pct(csat["response_rate"]),
            f"{csat['answers']}/{csat['resolved']}",
        ),
    ]
    distribution = {int(k): v for k, v in csat["distribution"].items()}
    csat_section = (
        f"<section id='csat'><h2>{t('csat', ui)}</h2><div class='tiles'>{''.join(csat_tiles)}</div>"
        f"{charts.columns(distribution)}" + _group_table(t("agents", ui), csat["by_agent"], ui) + "</section>"
    )
    merchants_section = (
        f"<section id='merchants'><h2>{t('merchants', ui)}</h2>"
        + _merchant_table(data["merchants"], ui)
        + "</section>"
    )
    return (
        header
        + "<main>"
        + form
        + funnel_section
        + sparks
        + containment_section
        + csat_section
        + merchants_section
        + "</main>"
    )


def _export_links(query: dict[str, str]) -> str:
    keep = {k: v for k, v in query.items() if k in ("from", "to", "merchant", "kind", "lang") and v}
    suffix = f"?{urlencode(keep)}" if keep else ""
    names = ("funnel.csv", "save-rate.csv", "merchants.csv", "csat.csv")
    return "".join(f"<a href='/ops/api/{name}{escape(suffix)}'>{name}</a>" for name in names)


def _tag_table(rows: list[dict[str, Any]], ui: UiLanguage) -> str:
    head = "".join(
        f"<th>{t(k, ui)}</th>" for k in ("requests", "offers", "saved", "cancelled", "escalated", "save_rate")
    )
    body = "".join(
        f"<tr data-tag='{escape(r['reason_tag'])}'><td>{escape(tag_label(r['reason_tag'], ui))}</td>"
        f"<td>{r['requests']}</td><td>{r['offers']}</td><td>{r['saved']}</td><td>{r['cancelled']}</td>"
        f"<td>{r['escalated']}</td><td>{_pct(r['save_rate'])}</td></tr>"
        for r in rows
    )
    return f"<div class='table'><table><thead><tr><th>{t('reason', ui)}</th>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _sparklines(filters: Filters, series: list[dict[str, Any]], ui: UiLanguage) -> str:
    days = filters.days()
    by_tag: dict[str, dict[date, float | None]] = {}
    totals: dict[str, list[int]] = {}
    for point in series:
        day = date.fromisoformat(point["day"])
        by_tag.setdefault(point["reason_tag"], {})[day] = point["save_rate"]
        total = totals.setdefault(point["reason_tag"], [0, 0])
        total[0] += point["saved"]
        total[1] += point["requests"]
    if not by_tag:
        return ""
    cells = "".join(
        f"<div class='spark-cell' data-tag='{escape(tag)}'><b>{escape(tag_label(tag, ui))}</b> "
        f"{totals[tag][0]}/{totals[tag][1]}{charts.sparkline(days, rates)}</div>"
        for tag, rates in sorted(by_tag.items(), key=lambda item: -totals[item[0]][1])
    )
    return f"<section id='save-rate'><h2>{t('save_rate_over_time', ui)}</h2><div class='sparks'>{cells}</div></section>"


def _group_table(title: str, groups: list[dict[str, Any]], ui: UiLanguage) -> str:
    if not groups:
        return ""
    body = "".join(
        f"<tr><td>{escape(g['key'])}</td><td>{g['answers']}</td><td>{_average(g['average'])}</td></tr>"
        for g in groups
    )
    return (
        f"<div class='table'><table><thead><tr><th>{escape(title)}</th><th>{t('answers', ui)}</th>"
        f"<th>{t('csat_average', ui)}</th></tr></thead><tbody>{body}</tbody></table></div>"
    )


def _merchant_table(rows: list[dict[str, Any]], ui: UiLanguage) -> str:
    if not rows:
        return f"<p class='note'>{t('no_data', ui)}</p>"
    heads = (
        "requests",
        "saved",
        "cancelled",
        "save_rate",
        "cancel_share",
        "tickets",
        "csat_average",
        "platform_cancel_rate",
        "grade",
        "median_arrival",
    )
    body = []
    for r in rows[:MAX_MERCHANT_ROWS]:
        f = r.get("fulfilment") or {}
        avg = _average(r["csat_average"])
        arrival = f.get("median_arrival_minutes")
        body.append(
            f"<tr data-merchant='{escape(r['merchant_id'])}'><td>{escape(r['merchant_id'])}</td>"
            f"<td>{r['requests']}</td><td>{r['saved']}</td><td>{r['cancelled']}</td><td>{_pct(r['save_rate'])}</td>"
            f"<td>{_pct(r['cancel_share'])}</td><td>{r['tickets']}</td><td>{avg}</td>"
            f"<td>{_pct(f.get('cancel_rate'))}</td><td>{escape(str(f.get('grade') or '—'))}</td>"
            f"<td>{'—' if arrival is None else f'{arrival:.0f}'}</td></tr>"
        )
    head = "".join(f"<th>{t(k, ui)}</th>" for k in heads)
    return (
        f"<div class='table'><table><thead><tr><th>{t('merchant', ui)}</th>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )
