"""Services: the bot's use cases, free of Telegram types."""
