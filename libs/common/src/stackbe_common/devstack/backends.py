"""Finding the NATS (and port) the platform uses, or starting an embedded one."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from ..infra import NatsServer, answers
from ..logging import get_logger

__all__ = ["Backend", "choose_port", "find_or_start_nats", "port_is_free"]

log = get_logger(__name__)


def _nothing() -> None:
    """Stopping a server we found running is not ours to do."""


@dataclass(frozen=True)
class Backend:
    """A Postgres or NATS the platform uses; ``stop`` ends it only if this runner started it."""

    url: str
    started: bool
    location: str
    stop: Callable[[], None] = field(default=_nothing, repr=False)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``port`` (with SO_REUSEADDR, as servers bind)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def choose_port(url: str, default_port: int) -> int:
    """The port the URL names (or the default) when it is free here, else any free port."""
    wanted = urlparse(url.split(",")[0]).port or default_port
    if port_is_free(wanted):
        return wanted
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_or_start_nats(url: str, store_dir: Path) -> Backend:
    """Use the NATS at ``url`` if it answers, else run one with JetStream in ``store_dir``."""
    if answers(url, 4222):
        log.info("nats.found", url=url)
        return Backend(url=url, started=False, location=url)
    server = NatsServer(
        store_dir, port=choose_port(url, 4222), log_file=store_dir.parent / "nats.log"
    )
    log.info("nats.starting", store=str(store_dir), port=server.port)
    server.start()
    log.info("nats.started", url=server.url)

    def stop() -> None:
        server.stop()
        log.info("nats.stopped")

    return Backend(url=server.url, started=True, location=str(store_dir), stop=stop)
