"""Human handoff: merchants and platform agents take a buyer's conversation over in Telegram and hand it back.

``service.HandoffService`` holds the logic and knows nothing of Telegram (ports in ``ports``);
``telegram.TelegramMessenger`` is the Telegram adapter; ``routers`` are the thin handlers.
"""
