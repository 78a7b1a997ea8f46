"""Webhook signatures: the exact scheme of docs/platform-api.md, constant-time, with replay protection."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from integrations.platform.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify, verify_headers

SECRET = "whsec-test-secret"
BODY = '{"event_id":"evt_1","type":"order.paid","occurred_at":"2026-11-27T04:00:00Z","data":{"note":"到账"}}'
NOW = 1_795_000_000


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.{BODY}".encode(), hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, BODY) == f"sha256={expected}"
    assert sign(SECRET.encode(), str(NOW), BODY.encode()) == sign(SECRET, NOW, BODY)


def test_valid_signature_verifies() -> None:
    signature = sign(SECRET, NOW, BODY)
    assert verify(SECRET, NOW, signature, BODY, now=NOW)
    assert verify(SECRET, str(NOW), signature, BODY.encode(), now=NOW + 299)
    assert verify(SECRET, NOW, signature, BODY, now=NOW - 299), "small clock skew either way is fine"


@pytest.mark.parametrize(
    ("secret", "timestamp", "signature", "body", "now"),
    [
        ("other-secret", NOW, None, BODY, NOW),
        (SECRET, NOW, None, BODY.replace("到账", "退款"), NOW),
        (SECRET, NOW, None, BODY, NOW + 301),
        (SECRET, NOW, None, BODY, NOW - 301),
        (SECRET, NOW + 1, None, BODY, NOW),
        (SECRET, "not-a-number", None, BODY, NOW),
        (SECRET, "-1", None, BODY, NOW),
        (SECRET, None, None, BODY, NOW),
    ],
)
def test_anything_off_fails(
    secret: str, timestamp: int | str | None, signature: str | None, body: str, now: int
) -> None:
    good = sign(SECRET, NOW, BODY)
    assert not verify(secret, timestamp, signature or good, body, now=now)


@pytest.mark.parametrize("signature", ["", "sha256=", "deadbeef", "sha256=" + "0" * 64, "sha256=é", None])
def test_malformed_signatures_fail(signature: str | None) -> None:
    assert not verify(SECRET, NOW, signature, BODY, now=NOW)


def test_verify_headers_reads_any_case() -> None:
    headers = {TIMESTAMP_HEADER.lower(): str(NOW), SIGNATURE_HEADER.upper(): sign(SECRET, NOW, BODY)}
    assert verify_headers(SECRET, headers, BODY, now=NOW)
    assert not verify_headers(SECRET, {}, BODY, now=NOW)
    assert not verify_headers(SECRET, headers, BODY, now=NOW + 10, tolerance=5)
