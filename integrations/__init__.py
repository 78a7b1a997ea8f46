"""Adapters to everything outside our own code: the platform API, Rasa, storage."""
