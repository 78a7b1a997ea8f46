"""Exception tree of the Rasa boundary; httpx errors are mapped here and nowhere else."""

from __future__ import annotations


class RasaError(Exception):
    """Base of every failure talking to the Rasa server."""


class RasaUnavailable(RasaError):
    """Rasa (or the action server behind it) did not answer: connection refused, timeout, 5xx."""


class RasaBadResponse(RasaError):
    """Rasa answered something that is not a list of bot messages."""
