"""Reference implementation of the platform API (docs/platform-api.md) on a real database.

The sandbox stands in for the marketplace's own system: the bot, the demo and the contract tests talk to it over
HTTP exactly as they would talk to the real platform. Build an app with :func:`sandbox.app.create_app`, or run
``python -m sandbox``.
"""
