"""``python -m stackbe_gateway serve [--host --port --workers]``: the gateway on granian."""

from __future__ import annotations

import argparse

from stackbe_common.config import load_or_exit
from stackbe_common.logging import configure_logging
from stackbe_common.service import add_serve_command, serve_http

from .config import GatewaySettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stackbe_gateway")
    add_serve_command(parser.add_subparsers(dest="command", required=True), "gateway")
    args = parser.parse_args(argv)
    # Checked here so a missing variable stops the process with one line before granian
    # starts; each worker loads the settings again in ``app.asgi``.
    settings = load_or_exit(GatewaySettings)
    configure_logging("gateway", json=settings.log_json, level=settings.log_level)
    serve_http("stackbe_gateway.app:asgi", args)


if __name__ == "__main__":
    main()
