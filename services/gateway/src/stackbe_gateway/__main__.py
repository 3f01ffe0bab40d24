"""``python -m stackbe_gateway serve [--host --port --workers]``: the gateway on granian."""

from __future__ import annotations

import argparse
import os

from stackbe_common.config import load_or_exit
from stackbe_common.logging import configure_logging, get_logger

from .config import GatewaySettings

log = get_logger(__name__)

DEFAULT_PORT = 8080


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stackbe_gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the public API")
    serve.add_argument("--host", default=os.environ.get("STACKBE_GATEWAY_HOST", "127.0.0.1"))
    serve.add_argument(
        "--port", type=int, default=int(os.environ.get("STACKBE_GATEWAY_PORT", DEFAULT_PORT))
    )
    serve.add_argument("--workers", type=int, default=1)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    # Checked here so a missing variable stops the process with one line before granian
    # starts; each worker loads the settings again in ``app.asgi``.
    settings = load_or_exit(GatewaySettings)
    configure_logging("gateway", json=settings.log_json, level=settings.log_level)
    from granian import Granian
    from granian.constants import Interfaces

    log.info("service.starting", host=args.host, port=args.port, workers=args.workers)
    Granian(
        "stackbe_gateway.app:asgi",
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        workers=args.workers,
        factory=True,
        log_access=False,
    ).serve()


if __name__ == "__main__":
    main()
