"""aiogram routers: buyers (private chats); agents and merchants come with the handoff."""
