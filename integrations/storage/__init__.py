"""SQL storage of the bot: conversation log, outcomes, tickets (SQLAlchemy 2 async + Alembic)."""
