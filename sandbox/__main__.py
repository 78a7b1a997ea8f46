"""``python -m sandbox [--host H] [--port P]``: serve the sandbox with uvicorn."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from integrations.privacy import install_log_redaction
from sandbox.app import create_app
from sandbox.settings import SandboxSettings


def parse_args(argv: list[str] | None, settings: SandboxSettings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Run the platform API sandbox.")
    parser.add_argument(
        "--host", default=settings.host, help="bind address (SANDBOX_HOST, default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=settings.port, help="port (SANDBOX_PORT, default 8000)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    settings = SandboxSettings()
    args = parse_args(argv, settings)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_log_redaction([settings.api_key, settings.admin_key])
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
