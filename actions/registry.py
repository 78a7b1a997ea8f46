"""All actions of the assistant, built with their dependencies."""

from __future__ import annotations

from rasa_sdk import Action

from actions.base import ActionDeps
from actions.order_status import ActionAskOrderId, ActionOrderStatus
from actions.slots import ValidateOrderStatusForm, ValidateSlotMappings


def build_actions(deps: ActionDeps) -> list[Action]:
    return [
        ActionOrderStatus(deps),
        ActionAskOrderId(deps),
        ValidateSlotMappings(),
        ValidateOrderStatusForm(),
    ]
