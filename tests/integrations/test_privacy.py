"""Personal data masked for human eyes with one shared rule; secrets never reach a log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.handoff.masking import mask_text
from bot.platform_events import mask_personal
from integrations.privacy import (
    MASKED_SECRET,
    REDACTED,
    SecretRedactor,
    install_log_redaction,
    mask_personal_data,
)

BOT_TOKEN = "7012345678:AAHk3bXq9Zr-2mTqLwYp8sVd0cNe4fUi6Jo"
API_KEY = "platform-key-0123456789abcdef"


@pytest.mark.parametrize(
    ("raw", "hidden", "kept"),
    [
        ("卡密：ABCD1234 充值好了吗", ["ABCD1234"], ["卡密："]),
        ("卡密:X7KQ9M2P", ["X7KQ9M2P"], []),
        ("my card code is QWER-TYUI-OPAS-DFGH", ["QWER-TYUI", "DFGH"], ["my card code is"]),
        ("code: 9F3K2L8M1N", ["9F3K2L8M1N"], []),
        ("收到的码 X7KQ9M2PLT4W8ZRB 用不了", ["X7KQ9M2PLT4W8ZRB"], ["用不了"]),
        ("手机13800138000充值", ["13800138000"], ["138****8000"]),
        ("+86 138-0013-8000", ["0013"], ["+86 138****8000"]),
        ("QQ 123456789 区服 国服", ["123456789"], ["123****89", "国服"]),
        ("订单 KM20261127001 工单 ES3F9A0C1B2D4E", [], ["KM20261127001", "ES3F9A0C1B2D4E"]),
        ("mail alice.w@example.com", ["alice.w@"], ["a***@example.com"]),
    ],
)
def test_one_masking_rule(raw: str, hidden: list[str], kept: list[str]) -> None:
    masked = mask_personal_data(raw)
    for value in hidden:
        assert value not in masked
    for value in kept:
        assert value in masked
    assert mask_text(raw) == masked  # the handoff views use the same rule


def test_the_log_rule_masks_contacts_only() -> None:
    assert mask_personal("13800138000 uid 2876543210") == "138****8000 uid 2876543210"
    assert MASKED_SECRET not in mask_personal("卡密：ABCD1234")


@pytest.fixture
def redacted_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    factory = logging.getLogRecordFactory()
    install_log_redaction([BOT_TOKEN, API_KEY, None, "short"])
    caplog.set_level(logging.INFO)
    try:
        yield caplog
    finally:
        logging.setLogRecordFactory(factory)
        for handler in logging.getLogger().handlers:
            for installed in [f for f in handler.filters if isinstance(f, SecretRedactor)]:
                handler.removeFilter(installed)


def test_secrets_are_removed_from_messages_args_and_exceptions(
    redacted_logs: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("tests.privacy")
    log.warning("request to https://api.telegram.org/bot%s/getUpdates failed", BOT_TOKEN)
    log.info("calling platform with key %s", API_KEY)
    log.info(f"f-string with key {API_KEY}")
    try:
        raise ConnectionError(f"Cannot connect to host api.telegram.org url=/bot{BOT_TOKEN}/sendMessage")
    except ConnectionError:
        log.exception("send failed")
    # a token this process was not told about is still recognised by its shape
    log.info("other bot 5550001111:BBHk3bXq9Zr-2mTqLwYp8sVd0cNe4fUi6Jo")
    text = redacted_logs.text
    assert all(record.exc_info is None for record in redacted_logs.records)  # nothing left to re-format
    formatted = "\n".join(logging.Formatter("%(message)s").format(r) for r in redacted_logs.records)
    for output in (text, formatted):
        assert BOT_TOKEN not in output and API_KEY not in output
        assert "BBHk3bXq9Zr" not in output
    assert formatted.count(REDACTED) >= 5
    assert "/bot[redacted]/getUpdates" in formatted
    assert "Cannot connect to host" in formatted  # the traceback is kept, only the secret goes


def test_the_filter_works_on_any_handler() -> None:
    redactor = SecretRedactor([API_KEY])
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key=%s %d", (API_KEY, 3), None)
    assert redactor.filter(record)
    assert record.getMessage() == f"key={REDACTED} 3"


def test_records_without_secrets_keep_their_args() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s"', ("127.0.0.1", "GET"), None
    )
    SecretRedactor([API_KEY]).filter(record)
    assert record.args == ("127.0.0.1", "GET")


async def test_escalations_sent_to_the_platform_carry_masked_summaries() -> None:
    import json

    import httpx

    from integrations.platform.client import PlatformClient

    sent: list[dict[str, object]] = []

    def platform(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append(body)
        return httpx.Response(
            201,
            json={
                "escalation_id": "ES1",
                "buyer_id": "B1",
                "reason": body["reason"],
                "summary": body["summary"],
                "state": "open",
                "created_at": "2026-11-27T04:00:00Z",
                "updated_at": "2026-11-27T04:00:00Z",
            },
        )

    client = PlatformClient("http://platform.test", "key", transport=httpx.MockTransport(platform))
    await client.create_escalation(
        "B1", "other", "卡密：ABCD-EFGH-JKLM-NPQR 没到账，手机 13800138000，订单 KM20261127001"
    )
    await client.aclose()
    assert sent[0]["summary"] == "卡密：•••••• 没到账，手机 138****8000，订单 KM20261127001"
