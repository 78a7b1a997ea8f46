"""The client against the real sandbox over HTTP: every operation, ownership, and error mapping end to end."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from integrations.platform import (
    InvalidInput,
    InvalidToken,
    NotAllowed,
    NotFound,
    NotLinked,
    PlatformClient,
    PlatformError,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from sandbox.settings import SandboxSettings
from sandbox.testing import LiveSandbox, SandboxAdmin

pytestmark = pytest.mark.integration

B1, B2 = "B1001", "B1002"
PROCESSING, DELIVERED, CANCELLED, OVERDUE = "KM20261127001", "KM20261127002", "KM20261127003", "KM20261127004"


async def test_every_operation_round_trips(platform: PlatformClient, admin: SandboxAdmin) -> None:
    await platform.health()
    assert (await platform.get_link(10001)).buyer_id == B1
    token = await platform.issue_link_token("B1003")
    assert (await platform.redeem_link_token(token.token, 20001)).buyer_id == "B1003"
    await platform.unlink(20001)
    with pytest.raises(NotLinked):
        await platform.get_link(20001)

    assert [o.order_id for o in await platform.list_orders(B1, limit=2)] == [PROCESSING, "KM20261127005"]
    assert (await platform.get_order(B1, PROCESSING)).state == "processing"
    fixed = await platform.fix_recharge_target(B1, PROCESSING, account="1357924680", region="安卓微信区")
    assert fixed.recharge_target.account == "1357924680"
    assert [c.field for c in await platform.recharge_target_history(B1, PROCESSING)] == ["account", "region"]
    assert (
        await platform.cancel_order(B1, PROCESSING, "duplicate_order", note="重复下单")
    ).state == "cancelled"
    assert (await platform.restore_order(B1, PROCESSING)).state == "paid"
    refund = await platform.request_refund(B1, OVERDUE, "超时未到账")
    assert (refund.state, refund.order.refund_guarantee.status) == ("approved", "issued")

    assert (await platform.get_merchant("M02")).telegram_chat_id == -1002002
    assert (await platform.get_merchant_score("M01")).orders_considered > 10
    assert len(await platform.get_slas()) == 12

    escalation = await platform.create_escalation(B1, "complain", "买家要求人工", order_id=PROCESSING)
    assert (await platform.get_escalation(escalation.escalation_id)).merchant_id == "M01"
    assert [e.escalation_id for e in await platform.list_escalations("open")] == [escalation.escalation_id]
    await platform.update_escalation(escalation.escalation_id, "resolved")
    assert (await platform.submit_csat(escalation.escalation_id, 5)).csat == 5

    subscription = await platform.subscribe_webhook("http://127.0.0.1:9/hook", ["order.paid"], "s" * 32)
    await platform.unsubscribe_webhook(subscription.subscription_id)
    with pytest.raises(NotFound):
        await platform.unsubscribe_webhook(subscription.subscription_id)


OrderCall = Callable[[PlatformClient, str, str], Awaitable[object]]
ORDER_CALLS: dict[str, OrderCall] = {
    "get_order": lambda p, b, o: p.get_order(b, o),
    "fix_recharge_target": lambda p, b, o: p.fix_recharge_target(b, o, account="1234567"),
    "recharge_target_history": lambda p, b, o: p.recharge_target_history(b, o),
    "cancel_order": lambda p, b, o: p.cancel_order(b, o, "other"),
    "restore_order": lambda p, b, o: p.restore_order(b, o),
    "request_refund": lambda p, b, o: p.request_refund(b, o, "退款"),
    "create_escalation": lambda p, b, o: p.create_escalation(b, "complain", "x", order_id=o),
}


@pytest.mark.parametrize("call", ORDER_CALLS.values(), ids=ORDER_CALLS.keys())
@pytest.mark.parametrize("order_id", [PROCESSING, CANCELLED])
async def test_another_buyers_order_is_not_found_everywhere(
    platform: PlatformClient, call: OrderCall, order_id: str
) -> None:
    before = (await platform.get_order(B1, order_id)).model_dump()
    for buyer in (B2, "B9999"):
        with pytest.raises(NotFound) as refused:
            await call(platform, buyer, order_id)
        assert refused.value.code == "not_found"
    assert (await platform.get_order(B1, order_id)).model_dump() == before
    assert await platform.recharge_target_history(B1, order_id) == []


async def test_server_refusals_arrive_as_typed_errors(platform: PlatformClient, admin: SandboxAdmin) -> None:
    cases: list[tuple[Awaitable[object], type[PlatformError], str]] = [
        (platform.get_link(99999), NotLinked, "not_linked"),
        (platform.redeem_link_token("nope", 1), InvalidToken, "token_unknown"),
        (platform.cancel_order(B1, DELIVERED, "other"), NotAllowed, "already_delivered"),
        (platform.restore_order(B1, PROCESSING), NotAllowed, "not_restorable"),
        (platform.fix_recharge_target(B1, CANCELLED, account="12345"), InvalidInput, "invalid_account"),
        (platform.fix_recharge_target(B1, CANCELLED, region="火星移动"), InvalidInput, "unknown_region"),
        (platform.fix_recharge_target(B1, CANCELLED), InvalidInput, "validation_error"),
        (platform.cancel_order(B1, PROCESSING, "bored"), InvalidInput, "invalid_reason_tag"),  # type: ignore[arg-type]
        (platform.submit_csat("ES000000000000", 5), NotFound, "not_found"),
        (platform.get_merchant("M99"), NotFound, "not_found"),
    ]
    for call, expected, code in cases:
        with pytest.raises(expected) as raised:
            await call
        assert raised.value.code == code

    token = await platform.issue_link_token(B2)
    await admin.advance(timedelta(minutes=16).total_seconds())
    with pytest.raises(InvalidToken) as expired:
        await platform.redeem_link_token(token.token, 1)
    assert expired.value.code == "token_expired"


async def test_explicit_key_restores_once(platform: PlatformClient, admin: SandboxAdmin) -> None:
    results = await asyncio.gather(
        *(platform.restore_order(B1, CANCELLED, idempotency_key="tap-tap-tap") for _ in range(5))
    )
    assert len({r.model_dump_json() for r in results}) == 1
    assert results[0].state == "paid"
    await platform.cancel_order(B1, CANCELLED, "user_mistake")
    again = await platform.restore_order(B1, CANCELLED, idempotency_key="tap-tap-tap")
    assert again.state == "paid" and again == results[0], "the stored first response is replayed"
    assert (await platform.get_order(B1, CANCELLED)).state == "cancelled", "…without a second effect"


async def test_wrong_key_and_rate_limit(contract_sandbox: LiveSandbox) -> None:
    async with PlatformClient(contract_sandbox.url, "wrong-key") as client:
        with pytest.raises(Unauthorized):
            await client.get_order(B1, PROCESSING)
    settings = SandboxSettings(
        _env_file=None,
        database_url=contract_sandbox.settings.database_url,
        api_key="limited",
        rate_limit_per_second=0.1,
        rate_limit_burst=1,
        seed=False,
        webhook_delivery=False,
    )
    with LiveSandbox(settings) as limited:
        async with PlatformClient(limited.url, "limited", backoff=0) as client:
            await client.get_slas()
            with pytest.raises(RateLimited) as raised:
                await client.get_slas()
    assert raised.value.retry_after >= 9


async def test_stopped_platform_is_unavailable(contract_sandbox: LiveSandbox) -> None:
    settings = contract_sandbox.settings.model_copy(update={"seed": False})
    with LiveSandbox(settings) as short_lived:
        url = short_lived.url
    async with PlatformClient(url, settings.api_key, retries=1, backoff=0) as client:
        with pytest.raises(Unavailable):
            await client.get_order(B1, PROCESSING)
