"""HTTP routes of the sandbox: ``/v1`` (the platform API), ``/admin`` (test controls) and ``/health``."""
