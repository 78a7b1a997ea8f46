"""Rasa custom actions (rasa_sdk). They call ``integrations``, never Telegram."""
