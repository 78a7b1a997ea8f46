"""HTTP client of the Rasa server (REST channel)."""

from integrations.rasa.client import ActionServerProbe, RasaClient
from integrations.rasa.errors import RasaBadResponse, RasaError, RasaUnavailable
from integrations.rasa.models import BotButton, BotReply

__all__ = [
    "ActionServerProbe",
    "BotButton",
    "BotReply",
    "RasaBadResponse",
    "RasaClient",
    "RasaError",
    "RasaUnavailable",
]
