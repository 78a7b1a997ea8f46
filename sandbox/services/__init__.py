"""Business rules of the sandbox platform, one module per resource. Functions take an open session."""
