"""Each recorded cancellation outcome carries what the operators' numbers are cut by: the order's merchant and
product kind, the buyer's language, and whether the one save offer was made; a restore is recorded too."""

from __future__ import annotations

from collections.abc import Callable

from rasa_sdk import Action

from integrations.platform import PlatformClient
from integrations.storage.repositories import CancellationOutcomes
from tests.actions.support import Chat, only
from tests.actions.test_cancel import give_reason, start_cancel
from tests.actions.test_restore import ask_to_restore

Actions = dict[str, Action]
NewChat = Callable[..., Chat]


async def test_an_insisted_cancel_and_a_direct_one_carry_their_dimensions(
    actions_by_name: Actions, new_chat: NewChat, platform: PlatformClient, outcomes: CancellationOutcomes
) -> None:
    chat = new_chat("en")
    ask = await start_cancel(chat, actions_by_name, "KM20261127001")
    assert await give_reason(chat, actions_by_name, ask, "Too slow / may not arrive") is not None
    chat.say("/cancel_order", "cancel_order")
    await chat.run(actions_by_name["validate_cancel_form"])
    only(await chat.run(actions_by_name["action_submit_cancel"]))
    order = await platform.get_order("B1001", "KM20261127001")
    [row] = await outcomes.for_order("KM20261127001")
    assert (row.outcome, row.reason_tag, row.offered) == ("cancelled", "arrival_too_slow", True)
    assert (row.merchant_id, row.product_kind, row.language) == (
        order.merchant.merchant_id,
        order.product.kind,
        "en",
    )


async def test_a_restored_order_is_recorded_as_restored(
    actions_by_name: Actions, new_chat: NewChat, outcomes: CancellationOutcomes
) -> None:
    chat = new_chat("zh")
    await ask_to_restore(chat, actions_by_name)
    chat.say("确认恢复", "affirm")
    await chat.run(actions_by_name["validate_restore_form"])
    await chat.run(actions_by_name["action_submit_restore"])
    rows = await outcomes.for_order("KM20261127003")
    assert [(r.outcome, r.detail, r.product_kind, r.language, r.offered) for r in rows] == [
        ("restored", "restored", "phone_topup", "zh", False)
    ]
    assert rows[0].reason_tag != ""
