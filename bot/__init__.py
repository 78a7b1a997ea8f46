"""Telegram side of the customer-service bot (aiogram 3)."""
