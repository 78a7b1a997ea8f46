"""The handoff rig (service with in-memory ports over SQLite) for every handoff test module."""

from tests.bot.handoff.test_service import make_rig

__all__ = ["make_rig"]
