"""The platform webhook receiver: signature, freshness, shape, dedupe, retries, and what buyers are told.

HTTP goes through aiohttp's real test server on loopback; dedupe runs on the in-process store and on the
real Redis (db 10); the last test subscribes the receiver at the real sandbox and lets it deliver.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram.methods import SendMessage, TelegramMethod
from aiogram.types import InlineKeyboardMarkup
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from actions.texts import KIND_LABELS as ACTION_KIND_LABELS
from bot.i18n import Language
from bot.kv import MemoryKeyValueStore, RedisKeyValueStore
from bot.payloads import PayloadCodec
from bot.platform_events import (
    KIND_LABELS,
    AtomicStore,
    OutboxNotifier,
    PlatformEventsReceiver,
    callback_data,
    compose_notice,
    languages_from_conversation_log,
    mask_card_secret,
    mask_personal,
)
from bot.services.preferences import LanguagePreferences
from integrations.platform import EVENT_TYPES, PlatformClient, PlatformEvent
from integrations.platform.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from integrations.storage.db import make_engine, make_sessionmaker, upgrade_to_head
from integrations.storage.repositories import ConversationLog, LoggedMessage
from sandbox.settings import SandboxSettings
from sandbox.testing import LiveSandbox, SandboxAdmin

SECRET = "test-platform-webhook-secret"
NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
"""12:00 in Shanghai."""
NOW_TS = int(NOW.timestamp())
REDIS_URL = "redis://127.0.0.1:6379/10"
CARD_SECRET = "ABCD-EFGH-JKLM-NPQR"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def order_json(**overrides: Any) -> dict[str, Any]:
    """An order as the API shows it (docs/platform-api.md), paid at 11:58 and promised by 12:05."""
    order: dict[str, Any] = {
        "order_id": "KM20261127001",
        "buyer_id": "B1001",
        "state": "paid",
        "product": {"kind": "game_card", "name": "王者荣耀 点券 60", "sku": "WZRY-60", "carrier": None},
        "amount": "6.00",
        "currency": "CNY",
        "created_at": iso(NOW - timedelta(minutes=3)),
        "payment_submitted_at": None,
        "paid_at": iso(NOW - timedelta(minutes=2)),
        "delivered_at": None,
        "promised_minutes": 5,
        "promised_by": iso(NOW + timedelta(minutes=5)),
        "overdue_minutes": 0,
        "progress": {"step": "paid", "note": "已付款，等待商户接单"},
        "recharge_target": {"account": "2876543210", "region": "安卓QQ区"},
        "refund_guarantee": {
            "applies": True,
            "overdue": False,
            "status": "none",
            "refund_amount": "6.00",
            "refund_eta": None,
            "refunded_at": None,
            "terms": "未在承诺时间内到账，全额自动退款，原路返回",
        },
        "cancel": None,
        "merchant": {"merchant_id": "M01", "name": "星辰游戏点卡"},
        "card_secret": None,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(order.get(key), dict):
            order[key] = {**order[key], **value}
        else:
            order[key] = value
    return order


def escalation_json(state: str = "agent_assigned", **overrides: Any) -> dict[str, Any]:
    return {
        "escalation_id": "ESC1001",
        "order_id": "KM20261127001",
        "buyer_id": "B1001",
        "merchant_id": "M01",
        "reason": "human_request",
        "summary": "buyer asked for a person",
        "state": state,
        "created_at": iso(NOW - timedelta(minutes=10)),
        "updated_at": iso(NOW),
        "csat": None,
        **overrides,
    }


def event_body(
    type_: str = "order.paid",
    *,
    order: dict[str, Any] | None = None,
    escalation: dict[str, Any] | None = None,
    ids: list[int] | None = None,
    event_id: str = "evt_0001",
    occurred_at: datetime = NOW,
) -> bytes:
    """Encoded exactly like the sandbox does (sandbox.services.events.encode_body)."""
    recipients = [10001] if ids is None else ids
    if type_ == "escalation.updated":
        esc = escalation or escalation_json()
        data: dict[str, Any] = {
            "escalation_id": esc["escalation_id"],
            "state": esc["state"],
            "telegram_user_ids": recipients,
            "escalation": esc,
        }
    else:
        body_order = order or order_json()
        data = {
            "order_id": body_order["order_id"],
            "buyer_id": body_order["buyer_id"],
            "state": body_order["state"],
            "telegram_user_ids": recipients,
            "order": body_order,
        }
    payload = {"event_id": event_id, "type": type_, "occurred_at": iso(occurred_at), "data": data}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def signed(
    body: bytes, *, secret: str = SECRET, timestamp: int = NOW_TS, event_id: str | None = None
) -> dict[str, str]:
    if event_id is None:
        event_id = json.loads(body)["event_id"]
    return {
        "Content-Type": "application/json",
        EVENT_ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


class RecordingNotifier:
    """Records every delivered notification; can fail the first calls or wait on a gate."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str, InlineKeyboardMarkup | None]] = []
        self.fail_next = 0
        self.fail_for: set[int] = set()
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def notify(self, telegram_user_id: int, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ConnectionError("outbox unavailable")
        if telegram_user_id in self.fail_for:
            self.fail_for.discard(telegram_user_id)
            raise ConnectionError(f"cannot reach {telegram_user_id}")
        self.sent.append((telegram_user_id, text, keyboard))

    def texts(self) -> list[str]:
        return [text for _, text, _ in self.sent]


def english_for(*users: int) -> Any:
    async def language_of(telegram_user_id: int) -> Language:
        return "en" if telegram_user_id in users else "zh"

    return language_of


@pytest.fixture
async def redis_store() -> AsyncIterator[RedisKeyValueStore]:
    client = Redis.from_url(REDIS_URL)
    await client.flushdb()
    try:
        yield RedisKeyValueStore(client, prefix="kmbot-test:")
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> AtomicStore:
    if request.param == "memory":
        return MemoryKeyValueStore()
    value: AtomicStore = request.getfixturevalue("redis_store")
    return value


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


def make_receiver(store: AtomicStore, notifier: RecordingNotifier, **options: Any) -> PlatformEventsReceiver:
    options.setdefault("clock", lambda: float(NOW_TS))
    return PlatformEventsReceiver(SECRET, store, notifier, **options)


async def serve(receiver: PlatformEventsReceiver) -> TestClient[web.Request, web.Application]:
    app = web.Application()
    receiver.register(app)
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def client(notifier: RecordingNotifier) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    http = await serve(make_receiver(MemoryKeyValueStore(), notifier))
    try:
        yield http
    finally:
        await http.close()


async def post(
    http: TestClient[web.Request, web.Application], body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    response = await http.post(
        "/platform/events", data=body, headers=signed(body) if headers is None else headers
    )
    assert response.content_type == "application/json"
    return response.status, await response.json()


# ------------------------------------------------------------------------------------- authentication


async def test_signed_event_is_accepted_and_the_buyer_told_in_chinese(
    client: TestClient[web.Request, web.Application], notifier: RecordingNotifier
) -> None:
    status, answer = await post(client, event_body("order.paid"))
    assert (status, answer) == (200, {"status": "processed", "event_id": "evt_0001"})
    [(user, text, keyboard)] = notifier.sent
    assert user == 10001
    assert text.startswith("✅ 已收到付款：订单 KM20261127001（王者荣耀 点券 60，¥6.00）")
    assert "承诺 12:05 前到账（游戏点卡 5 分钟内）" in text
    assert keyboard is not None
    assert keyboard.inline_keyboard[0][0].callback_data == 'p:/order_status{"order_id":"KM20261127001"}'


async def test_buyer_who_speaks_english_is_told_in_english(notifier: RecordingNotifier) -> None:
    http = await serve(make_receiver(MemoryKeyValueStore(), notifier, language_of=english_for(10002)))
    try:
        status, _ = await post(http, event_body("order.paid", ids=[10001, 10002]))
    finally:
        await http.close()
    assert status == 200
    by_user = {user: text for user, text, _ in notifier.sent}
    assert by_user[10001].startswith("✅ 已收到付款")
    assert by_user[10002].startswith("✅ Payment received: order KM20261127001 (王者荣耀 点券 60, ¥6.00).")
    assert "Promised by 12:05 (game card: within 5 min)" in by_user[10002]


async def test_a_failing_language_lookup_falls_back_to_chinese(notifier: RecordingNotifier) -> None:
    async def broken(telegram_user_id: int) -> Language:
        raise ConnectionError("preference store down")

    http = await serve(make_receiver(MemoryKeyValueStore(), notifier, language_of=broken))
    try:
        status, _ = await post(http, event_body("order.paid"))
    finally:
        await http.close()
    assert status == 200
    assert notifier.texts()[0].startswith("✅ 已收到付款")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda body: signed(body, secret="another-secret-of-the-platform"), id="wrong-secret"),
        pytest.param(lambda body: {**signed(body), SIGNATURE_HEADER: "sha256=" + "0" * 64}, id="forged"),
        pytest.param(
            lambda body: {k: v for k, v in signed(body).items() if k != SIGNATURE_HEADER}, id="unsigned"
        ),
        pytest.param(
            lambda body: {k: v for k, v in signed(body).items() if k != TIMESTAMP_HEADER}, id="no-time"
        ),
        pytest.param(lambda body: {**signed(body), TIMESTAMP_HEADER: "12:00"}, id="bad-time"),
        pytest.param(lambda body: signed(body + b" "), id="body-changed"),
    ],
)
async def test_bad_or_missing_signature_is_401_and_nothing_is_processed(
    client: TestClient[web.Request, web.Application], notifier: RecordingNotifier, headers: Any
) -> None:
    body = event_body("order.paid")
    status, answer = await post(client, body, headers(body))
    assert status == 401
    assert answer["error"]["code"] == "unauthorized"
    assert notifier.sent == []
    # nothing was recorded either: the genuine delivery is still processed
    assert (await post(client, body))[0] == 200
    assert len(notifier.sent) == 1


@pytest.mark.parametrize("skew", [-301, 301, -3600])
async def test_stale_or_future_timestamp_is_401(
    client: TestClient[web.Request, web.Application], notifier: RecordingNotifier, skew: int
) -> None:
    body = event_body("order.paid")
    status, answer = await post(client, body, signed(body, timestamp=NOW_TS + skew))
    assert status == 401
    assert "tolerance" in answer["error"]["message"]
    assert notifier.sent == []


async def test_timestamp_within_tolerance_is_accepted(
    client: TestClient[web.Request, web.Application], notifier: RecordingNotifier
) -> None:
    body = event_body("order.paid")
    assert (await post(client, body, signed(body, timestamp=NOW_TS - 299)))[0] == 200
    assert len(notifier.sent) == 1


# ------------------------------------------------------------------------------------------- shape


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b"{not json", "not valid JSON", id="not-json"),
        pytest.param(b"\xff\xfe\x00", "not valid JSON", id="not-utf8"),
        pytest.param(b"[" * 30_000 + b"]" * 30_000, "not valid JSON", id="too-deep"),
        pytest.param(b'["order.paid"]', "JSON object", id="array"),
        pytest.param(
            b'{"event_id":"evt_1","type":"order.shipped","data":{}}', "unknown event type", id="type"
        ),
        pytest.param(b'{"event_id":"evt_1","type":"order.paid","data":{}}', "occurred_at", id="no-time"),
        pytest.param(
            b'{"event_id":"evt 1","type":"order.paid","occurred_at":"2026-11-27T04:00:00Z","data":{}}',
            "event_id",
            id="bad-id",
        ),
        pytest.param(
            b'{"event_id":"evt_1","type":"order.paid","occurred_at":"2026-11-27T04:00:00Z","data":{}}',
            "data.order",
            id="no-order",
        ),
        pytest.param(
            event_body("order.paid", order=order_json(amount="six"), event_id="evt_1"),
            "data.order.amount",
            id="bad-order",
        ),
        pytest.param(
            event_body("escalation.updated", escalation=escalation_json(state="lost"), event_id="evt_1"),
            "data.escalation.state",
            id="bad-escalation",
        ),
    ],
)
async def test_malformed_body_is_400_with_a_reason(
    client: TestClient[web.Request, web.Application],
    notifier: RecordingNotifier,
    body: bytes,
    reason: str,
) -> None:
    status, answer = await post(client, body, signed(body, event_id="evt_1"))
    assert status == 400
    assert answer["error"]["code"] == "bad_request"
    assert reason in answer["error"]["message"]
    assert "Traceback" not in json.dumps(answer)
    assert notifier.sent == []


async def test_event_id_header_must_match_the_signed_body(
    client: TestClient[web.Request, web.Application], notifier: RecordingNotifier
) -> None:
    body = event_body("order.paid", event_id="evt_real")
    status, answer = await post(client, body, signed(body, event_id="evt_other"))
    assert status == 400
    assert EVENT_ID_HEADER in answer["error"]["message"]
    assert notifier.sent == []


async def test_oversized_body_is_413_declared_or_streamed(
    client: TestClient[web.Request, web.Application], notifier: RecordingNotifier
) -> None:
    big = event_body("order.paid", order=order_json(merchant={"merchant_id": "M01", "name": "x" * 70_000}))
    assert len(big) > 64 * 1024
    status, answer = await post(client, big)
    assert (status, answer["error"]["code"]) == (413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read with the cap
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    response = await client.post("/platform/events", data=chunks(), headers=signed(big))
    assert response.status == 413
    assert notifier.sent == []


async def test_other_methods_are_not_served(client: TestClient[web.Request, web.Application]) -> None:
    assert (await client.get("/platform/events")).status == 405


# ------------------------------------------------------------------------------------- dedupe, retries


async def test_same_event_delivered_twice_is_processed_once(
    store: AtomicStore, notifier: RecordingNotifier
) -> None:
    http = await serve(make_receiver(store, notifier))
    try:
        body = event_body("order.delivered", order=order_json(state="delivered", delivered_at=iso(NOW)))
        first = await post(http, body)
        second = await post(http, body, signed(body, timestamp=NOW_TS + 2))  # a re-signed retry
        third = await post(http, event_body("order.delivered", event_id="evt_0002"))
    finally:
        await http.close()
    assert first == (200, {"status": "processed", "event_id": "evt_0001"})
    assert second == (200, {"status": "duplicate", "event_id": "evt_0001"})
    assert third[0] == 200
    assert [user for user, _, _ in notifier.sent] == [10001, 10001]


async def test_dedupe_is_shared_between_receivers_on_one_redis(
    redis_store: RedisKeyValueStore, notifier: RecordingNotifier
) -> None:
    """Two bot replicas behind a load balancer: a redelivery reaching the other one is still a duplicate."""
    first, second = (
        await serve(make_receiver(redis_store, notifier)),
        await serve(make_receiver(redis_store, notifier)),
    )
    try:
        body = event_body("order.paid")
        answers = await asyncio.gather(post(first, body), post(second, body))
    finally:
        await first.close()
        await second.close()
    assert len(notifier.sent) == 1
    assert sorted(
        answer["status"] if status == 200 else answer["error"]["code"] for status, answer in answers
    ) in (
        ["duplicate", "processed"],
        ["in_progress", "processed"],
    )


async def test_concurrent_delivery_while_processing_is_told_to_retry(
    store: AtomicStore, notifier: RecordingNotifier
) -> None:
    notifier.gate = asyncio.Event()
    http = await serve(make_receiver(store, notifier))
    try:
        body = event_body("order.paid")
        first = asyncio.create_task(post(http, body))
        await asyncio.wait_for(notifier.entered.wait(), 5)
        status, answer = await post(http, body)
        assert (status, answer["error"]["code"]) == (503, "in_progress")
        notifier.gate.set()
        assert (await first)[0] == 200
        assert (await post(http, body))[1]["status"] == "duplicate"
    finally:
        await http.close()
    assert len(notifier.sent) == 1


async def test_notifier_failure_is_503_and_the_redelivery_is_processed_once(
    store: AtomicStore, notifier: RecordingNotifier, caplog: pytest.LogCaptureFixture
) -> None:
    notifier.fail_next = 1
    http = await serve(make_receiver(store, notifier))
    try:
        body = event_body("order.failed", order=order_json(state="failed"))
        status, answer = await post(http, body)
        assert (status, answer["error"]["code"]) == (503, "notify_failed")
        assert notifier.sent == []
        assert (await post(http, body, signed(body, timestamp=NOW_TS + 4)))[1]["status"] == "processed"
        assert (await post(http, body, signed(body, timestamp=NOW_TS + 8)))[1]["status"] == "duplicate"
    finally:
        await http.close()
    assert len(notifier.sent) == 1
    assert "released for redelivery" in caplog.text


async def test_partial_failure_does_not_tell_anyone_twice(
    store: AtomicStore, notifier: RecordingNotifier
) -> None:
    notifier.fail_for = {10002}
    http = await serve(make_receiver(store, notifier))
    try:
        body = event_body("order.paid", ids=[10001, 10002, 10003])
        assert (await post(http, body))[0] == 503
        assert [user for user, _, _ in notifier.sent] == [10001]
        assert (await post(http, body))[1]["status"] == "processed"
    finally:
        await http.close()
    assert sorted(user for user, _, _ in notifier.sent) == [10001, 10002, 10003]


async def test_slow_notifier_times_out_and_the_event_is_retried(notifier: RecordingNotifier) -> None:
    notifier.gate = asyncio.Event()
    http = await serve(make_receiver(MemoryKeyValueStore(), notifier, processing_timeout_seconds=0.2))
    try:
        body = event_body("order.paid")
        status, answer = await post(http, body)
        assert (status, answer["error"]["code"]) == (503, "timeout")
        notifier.gate.set()
        assert (await post(http, body))[1]["status"] == "processed"
    finally:
        await http.close()
    assert len(notifier.sent) == 1


async def test_dedupe_store_down_is_503_and_nothing_sent(notifier: RecordingNotifier) -> None:
    down = RedisKeyValueStore(Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5))
    http = await serve(make_receiver(down, notifier))
    try:
        status, answer = await post(http, event_body("order.paid"))
    finally:
        await http.close()
    assert (status, answer["error"]["code"]) == (503, "unavailable")
    assert notifier.sent == []


async def test_no_linked_telegram_user_is_logged_and_200(
    client: TestClient[web.Request, web.Application],
    notifier: RecordingNotifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "bot.platform_events")
    status, answer = await post(client, event_body("order.paid", ids=[]))
    assert (status, answer["status"]) == (200, "no_recipients")
    assert notifier.sent == []
    assert "no linked Telegram user" in caplog.text


async def test_late_progress_note_after_a_later_event_is_not_sent(
    client: TestClient[web.Request, web.Application], notifier: RecordingNotifier
) -> None:
    """Retries can reorder deliveries: "payment received" must not follow "delivered"."""
    delivered = order_json(state="delivered", delivered_at=iso(NOW + timedelta(minutes=3)))
    body = event_body(
        "order.delivered", order=delivered, event_id="evt_b", occurred_at=NOW + timedelta(minutes=3)
    )
    assert (await post(client, body))[0] == 200
    status, answer = await post(client, event_body("order.paid", event_id="evt_a"))
    assert (status, answer["status"]) == (200, "superseded")
    assert len(notifier.sent) == 1 and "到账" in notifier.texts()[0]


# ------------------------------------------------------------------------------------------- messages


def compose(type_: str, language: Language = "zh", **event: Any) -> tuple[str, list[tuple[str, str]]]:
    parsed = PlatformEvent.model_validate_json(event_body(type_, **event))
    notice = compose_notice(parsed, language, now=NOW)
    assert notice is not None
    buttons = [
        (b.text, b.callback_data or "")
        for row in (notice.keyboard.inline_keyboard if notice.keyboard else [])
        for b in row
    ]
    return notice.text, buttons


def test_payment_stalled_reassures_and_offers_payment_help_or_a_person() -> None:
    stalled = order_json(
        order_id="KM20261127007",
        state="pending_payment",
        paid_at=None,
        promised_by=None,
        promised_minutes=None,
        payment_submitted_at=iso(NOW - timedelta(minutes=5)),
        product={"kind": "phone_topup", "name": "电信话费 50 元", "sku": "CT-50", "carrier": "中国电信"},
        amount="49.50",
    )
    text, buttons = compose("order.payment_stalled", order=stalled)
    assert "KM20261127007" in text and "¥49.50" in text and "已提交 5 分钟" in text
    assert "请不要重复付款" in text and "转人工" in text
    assert "自动原路退回" not in text  # no rule the platform contract does not state (issue 10)
    assert buttons == [
        ("付款问题", 'p:/payment_problem{"order_id":"KM20261127007"}'),
        ("转人工", 'p:/human_handoff{"order_id":"KM20261127007"}'),
    ]
    text_en, buttons_en = compose("order.payment_stalled", "en", order=stalled)
    assert "please do not pay again" in text_en
    # the wait is the platform's fact (its clock may be moved in demos), not the receiver's clock
    event = PlatformEvent.model_validate_json(event_body("order.payment_stalled", order=stalled))
    far_away = compose_notice(event, "zh", now=NOW + timedelta(days=400))
    assert far_away is not None and "已提交 5 分钟" in far_away.text
    assert [title for title, _ in buttons_en] == ["Payment problem", "Talk to a person"]


async def test_every_button_is_a_payload_the_buyer_router_decodes() -> None:
    codec = PayloadCodec(MemoryKeyValueStore())
    long_id = "KM" + "9" * 30
    assert callback_data("human_handoff", long_id) == 'p:/human_handoff{"order_id":"' + long_id + '"}'
    assert len(callback_data("payment_problem", long_id).encode()) <= 64
    assert callback_data("payment_problem", "X" * 60) == "p:/payment_problem"  # too long: plain intent
    for type_ in ("order.paid", "order.payment_stalled", "order.delivered", "order.failed", "order.refunded"):
        _, buttons = compose(type_)
        assert buttons
        for _, data in buttons:
            assert len(data.encode()) <= 64 and data.startswith("p:/")
            assert await codec.decode(data) == data[2:]


def test_delivered_game_card_shows_only_the_masked_secret() -> None:
    delivered = order_json(
        state="delivered", delivered_at=iso(NOW - timedelta(minutes=1)), card_secret=CARD_SECRET
    )
    text, buttons = compose("order.delivered", order=delivered)
    assert "🎉 订单 KM20261127001（王者荣耀 点券 60）已于 11:59 到账" in text
    assert "2876543210（安卓QQ区）" in text
    assert CARD_SECRET not in text and "ABCD" not in text
    assert "<code>****-****-****-NPQR</code>" in text
    assert "我的订单" in text
    assert buttons == [("没收到？转人工", 'p:/human_handoff{"order_id":"KM20261127001"}')]
    parsed = PlatformEvent.model_validate_json(event_body("order.delivered", order=delivered))
    linked = compose_notice(
        parsed, "en", now=NOW, order_page_url="https://shop.example/orders/{order_id}?a=1&b=2"
    )
    assert linked is not None
    assert '<a href="https://shop.example/orders/KM20261127001?a=1&amp;b=2">the order page</a>' in linked.text


def test_delivered_phone_topup_masks_the_number() -> None:
    topup = order_json(
        state="delivered",
        delivered_at=iso(NOW),
        product={"kind": "phone_topup", "name": "移动话费 100 元", "sku": "CM-100", "carrier": "中国移动"},
        recharge_target={"account": "13800138000", "region": "广东移动"},
    )
    text, _ = compose("order.delivered", order=topup)
    assert "138****8000（广东移动）" in text and "13800138000" not in text


def test_failed_order_says_the_refund_is_automatic() -> None:
    failed = order_json(
        state="failed",
        refund_guarantee={"status": "scheduled", "refund_eta": iso(NOW + timedelta(minutes=5))},
    )
    text, buttons = compose("order.failed", order=failed)
    assert (
        "充值失败" in text
        and "¥6.00 将自动全额退款" in text
        and "预计 12:05 前" in text
        and "无需申请" in text
    )
    text_en, _ = compose("order.failed", "en", order=failed)
    assert "refunded automatically" in text_en and "expected by 12:05" in text_en
    assert buttons[-1][1] == 'p:/human_handoff{"order_id":"KM20261127001"}'


def test_refunded_order_gives_amount_and_when_the_money_arrives() -> None:
    refunded = order_json(
        state="refunded",
        refund_guarantee={"status": "issued", "refunded_at": iso(NOW - timedelta(minutes=1))},
    )
    text, _ = compose("order.refunded", order=refunded)
    assert "已退款：¥6.00 已于 11:59 原路退回" in text
    assert "几分钟内到账" in text and "银行卡 1-3 个工作日" in text
    assert "抱歉" not in text
    text_en, _ = compose("order.refunded", "en", order=refunded)
    assert "¥6.00 went back to your payment method at 11:59" in text_en and "1-3 working days" in text_en


def test_refund_of_an_overdue_order_apologises_and_states_the_guarantee() -> None:
    overdue = order_json(
        order_id="KM20261127004",
        state="refunded",
        amount="49.80",
        promised_by=iso(NOW - timedelta(minutes=3)),
        refund_guarantee={
            "status": "issued",
            "refund_amount": "49.80",
            "refunded_at": iso(NOW - timedelta(minutes=3)),
        },
    )
    text, buttons = compose("order.refunded", order=overdue)
    assert "非常抱歉" in text and "未能在承诺时间 11:57 前到账" in text
    assert "超时全额退款保障" in text and "¥49.80" in text and "无需申请" in text
    assert ("超时退款保障", 'p:/refund_guarantee{"order_id":"KM20261127004"}') in buttons
    text_en, _ = compose("order.refunded", "en", order=overdue)
    assert "very sorry" in text_en and "full-refund guarantee" in text_en and "¥49.80" in text_en


def test_an_overdue_undelivered_order_apologises_whatever_the_event() -> None:
    late = order_json(
        state="processing",
        promised_by=iso(NOW - timedelta(minutes=2)),
        overdue_minutes=2,
        refund_guarantee={
            "overdue": True,
            "status": "scheduled",
            "refund_eta": iso(NOW + timedelta(minutes=3)),
        },
    )
    text, _ = compose("order.paid", order=late)
    assert "非常抱歉" in text and "已超时 2 分钟" in text and "预计 12:03 前" in text and "¥6.00" in text
    text_en, _ = compose("order.paid", "en", order=late)
    assert "2 min late" in text_en and "full-refund guarantee" in text_en


def test_escalation_updates_are_one_short_line() -> None:
    assigned, _ = compose("escalation.updated", escalation=escalation_json("agent_assigned"))
    assert (
        assigned
        == "👤 工单 ESC1001（订单 KM20261127001）：客服人员已接手您的问题，会在这个对话里直接回复您。"
    )
    resolved, buttons = compose(
        "escalation.updated", "en", escalation=escalation_json("resolved", order_id=None)
    )
    assert resolved == "✅ Ticket ESC1001 is resolved. Anything else? Just reply here."
    assert buttons == []
    rated = PlatformEvent.model_validate_json(
        event_body("escalation.updated", escalation=escalation_json("resolved", csat=5))
    )
    assert compose_notice(rated, "zh", now=NOW) is None


async def test_a_rating_event_tells_the_buyer_nothing(
    client: TestClient[web.Request, web.Application], notifier: RecordingNotifier
) -> None:
    body = event_body("escalation.updated", escalation=escalation_json("resolved", csat=4))
    status, answer = await post(client, body)
    assert (status, answer["status"]) == (200, "nothing_to_send")
    assert notifier.sent == []


def test_dynamic_values_are_html_escaped() -> None:
    hostile = order_json(product={"name": "<b>点券</b> & <a href='x'>"}, order_id="KM20261127001")
    text, _ = compose("order.paid", order=hostile)
    assert "&lt;b&gt;点券&lt;/b&gt; &amp; &lt;a href='x'&gt;" in text
    assert "<b>" not in text and "<a " not in text


def test_times_on_another_day_carry_the_date() -> None:
    tomorrow = order_json(promised_by=iso(NOW + timedelta(days=1)))
    text, _ = compose("order.paid", order=tomorrow)
    assert "承诺 11-28 12:00 前到账" in text


def test_personal_data_is_masked() -> None:
    assert mask_personal("account 13800138000 ok") == "account 138****8000 ok"
    assert mask_personal("+86 138-0013-8000") == "+86 138****8000"
    assert mask_personal("buyer alice.w@example.com") == "buyer a***@example.com"
    assert mask_personal("uid 2876543210, order KM20261127001") == "uid 2876543210, order KM20261127001"
    assert mask_card_secret(CARD_SECRET) == "****-****-****-NPQR"
    assert mask_card_secret("ABC123") == "******"


def test_product_labels_match_the_action_server() -> None:
    assert KIND_LABELS == ACTION_KIND_LABELS


async def test_secrets_and_phone_numbers_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    class Leaky(RecordingNotifier):
        async def notify(
            self, telegram_user_id: int, text: str, keyboard: InlineKeyboardMarkup | None
        ) -> None:
            raise RuntimeError(f"could not send {text!r} for 13800138000 / {CARD_SECRET}")

    http = await serve(make_receiver(MemoryKeyValueStore(), Leaky()))
    try:
        delivered = order_json(
            state="delivered",
            delivered_at=iso(NOW),
            card_secret=CARD_SECRET,
            recharge_target={"account": "13800138000", "region": None},
        )
        assert (await post(http, event_body("order.delivered", order=delivered)))[0] == 503
        bad = event_body("order.paid", order=order_json(recharge_target={"account": 13800138000}))
        assert (await post(http, bad))[0] == 400
    finally:
        await http.close()
    assert caplog.records
    assert CARD_SECRET not in caplog.text and "13800138000" not in caplog.text
    assert "138****8000" in caplog.text


# ---------------------------------------------------------------------------------------- production glue


async def test_outbox_notifier_queues_an_html_send_message() -> None:
    class Queue:
        def __init__(self) -> None:
            self.methods: list[TelegramMethod[Any]] = []

        def submit(self, method: TelegramMethod[Any]) -> None:
            self.methods.append(method)

    queue = Queue()
    keyboard = InlineKeyboardMarkup(inline_keyboard=[])
    await OutboxNotifier(queue).notify(10001, "<b>x</b> &amp;", keyboard)
    [method] = queue.methods
    assert isinstance(method, SendMessage)
    assert (method.chat_id, method.text, method.parse_mode, method.reply_markup) == (
        10001,
        "<b>x</b> &amp;",
        "HTML",
        keyboard,
    )


async def test_language_comes_from_the_buyers_latest_message(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await upgrade_to_head(url)
    engine = make_engine(url)
    try:
        log = ConversationLog(make_sessionmaker(engine))
        await log.append(LoggedMessage(chat_id=7, direction="in", kind="text", text="你好", language="zh"))
        await log.append(LoggedMessage(chat_id=7, direction="in", kind="text", text="hi", language="en"))
        await log.append(LoggedMessage(chat_id=7, direction="out", kind="text", text="Hello", language=None))
        language_of = languages_from_conversation_log(log)
        assert await language_of(7) == "en"
        assert await language_of(8) == "zh"
        # an explicit /lang choice wins over what the buyer last wrote in
        preferences = LanguagePreferences(MemoryKeyValueStore())
        with_choice = languages_from_conversation_log(log, preferences=preferences)
        assert (await with_choice(7), await with_choice(8)) == ("en", "zh")
        await preferences.choose(7, "zh")
        await preferences.choose(8, "en")
        assert (await with_choice(7), await with_choice(8)) == ("zh", "en")
    finally:
        await engine.dispose()


def test_receiver_refuses_a_short_secret() -> None:
    with pytest.raises(ValueError, match="16"):
        PlatformEventsReceiver("short", MemoryKeyValueStore(), RecordingNotifier())


# ------------------------------------------------------------------------------------------ real sandbox


@pytest.fixture
def sqlite_sandbox(tmp_path: Path) -> Iterator[LiveSandbox]:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'sandbox.db'}",
        "api_key": "test-api-key",
        "admin_key": "test-admin-key",
        "seed": True,
        "simulate": False,
        "rate_limit_per_second": 0,
        "webhook_poll_seconds": 0.05,
        "webhook_retry_base_seconds": 0.1,
        "webhook_retry_max_seconds": 0.5,
        "webhook_allowed_hosts": "127.0.0.1",
    }
    settings = SandboxSettings(_env_file=None, **values)
    with LiveSandbox(settings) as live:
        yield live


async def wait_until(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@pytest.mark.integration
async def test_real_sandbox_delivery_reaches_the_buyer(
    sqlite_sandbox: LiveSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    notifier = RecordingNotifier()
    notifier.fail_next = 1  # the first delivery attempt fails: the sandbox retries it, once processed
    receiver = PlatformEventsReceiver(SECRET, MemoryKeyValueStore(), notifier)  # real clock: real signatures
    app = web.Application()
    receiver.register(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    settings = sqlite_sandbox.settings
    try:
        async with (
            SandboxAdmin(sqlite_sandbox.url, settings.admin_key) as admin,
            PlatformClient(sqlite_sandbox.url, settings.api_key, backoff=0) as platform,
        ):
            await admin.reset(NOW)
            await platform.subscribe_webhook(
                f"http://127.0.0.1:{port}/platform/events",
                list(EVENT_TYPES),
                SECRET,
            )
            await admin.advance(180)  # the seeded KM20261127001 is delivered 2.5 min after seeding
            tick = await admin.tick()
            assert any(
                t["order_id"] == "KM20261127001" and t["to_state"] == "delivered" for t in tick["transitions"]
            )

            def told(order_id: str) -> bool:
                return any(order_id in text for text in notifier.texts())

            await wait_until(lambda: told("KM20261127001") and told("KM20261127004"))
            delivered = await platform.get_order("B1001", "KM20261127001")
            assert delivered.card_secret is not None
            secret = delivered.card_secret.get_secret_value()

            async def settled() -> list[dict[str, Any]]:
                while True:
                    events = await admin.events()
                    if all(d["status"] != "pending" for e in events for d in e["deliveries"]):
                        return events
                    await asyncio.sleep(0.05)

            events = await asyncio.wait_for(settled(), 10)
    finally:
        await runner.cleanup()

    by_order = {text.split("订单 ")[1].split("（")[0]: (user, text) for user, text, _ in notifier.sent}
    user, text = by_order["KM20261127001"]
    assert user == 10001
    assert text.startswith("🎉 订单 KM20261127001（王者荣耀 点券 60）已于 ")
    assert "12:02 到账" in text  # delivered 2.5 min after seeding (dated unless it is 2026-11-27 today)
    assert secret not in text and mask_card_secret(secret) in text
    _, refunded = by_order["KM20261127004"]  # the overdue phone top-up, refunded by the guarantee
    assert "非常抱歉" in refunded and "超时全额退款保障" in refunded
    deliveries = [d for e in events for d in e["deliveries"]]
    assert deliveries and all(d["status"] == "delivered" for d in deliveries)
    assert len(notifier.sent) == len(deliveries), "every event reached its buyer exactly once"
    assert any(d["attempts"] == 2 for d in deliveries), "the failed first attempt was retried"
    assert secret not in caplog.text and "13100001111" not in caplog.text
