"""Client models: tolerant of new fields, masked secrets, events, and vocabularies in step with the sandbox."""

from __future__ import annotations

import json
from typing import Any

from integrations.platform import CANCEL_REASON_TAGS, EVENT_TYPES, ORDER_STATES, Order, PlatformEvent
from integrations.platform.models import ESCALATION_STATES, PRODUCT_KINDS
from sandbox import domain


def test_vocabularies_match_design_and_sandbox() -> None:
    assert len(CANCEL_REASON_TAGS) == 12 and CANCEL_REASON_TAGS == domain.CANCEL_REASON_TAGS
    assert ORDER_STATES == domain.ORDER_STATES and len(ORDER_STATES) == 7
    assert EVENT_TYPES == domain.EVENT_TYPES
    assert ESCALATION_STATES == domain.ESCALATION_STATES
    assert PRODUCT_KINDS == domain.PRODUCT_KINDS


def test_order_tolerates_new_fields_and_masks_the_card_secret(order_payload: dict[str, Any]) -> None:
    order = Order.model_validate(order_payload)
    assert order.card_secret is not None
    assert order.card_secret.get_secret_value() == "ABCD-EFGH-JKLM-NPQR"
    assert "ABCD" not in repr(order) and "ABCD" not in str(order)
    assert "ABCD" not in order.model_dump_json()
    assert not order.is_open and not order.is_overdue


def test_event_exposes_its_order_and_telegram_users(order_payload: dict[str, Any]) -> None:
    body = {
        "event_id": "evt_1",
        "type": "order.delivered",
        "occurred_at": "2026-11-27T04:00:00Z",
        "data": {"order": order_payload, "telegram_user_ids": [10001, "x"], "buyer_id": "B1001"},
    }
    event = PlatformEvent.model_validate_json(json.dumps(body))
    assert event.order is not None and event.order.order_id == "KM20261127001"
    assert event.escalation is None
    assert event.telegram_user_ids == [10001]
    garbled = PlatformEvent.model_validate(body | {"data": {"order": {"order_id": 1}}})
    assert garbled.order is None and garbled.telegram_user_ids == []
