"""The command line every service shares: ``python -m stackbe_<name> serve|worker|migrate``.

- ``serve``: the HTTP app on granian (``--host``, ``--port``, ``--workers``).
- ``worker``: background work (outbox relay, consumers, request-reply responders). On
  SIGTERM or SIGINT it is asked to stop: its loops finish what they hold and return, and
  whatever still runs after ``STACKBE_SHUTDOWN_GRACE_SECONDS`` is cancelled. (``serve``'s
  granian stops taking connections and finishes the requests in flight by itself.)
- ``migrate``: apply the service's SQL migrations and exit.

Settings are read from the environment once, here, so a missing variable stops the
process with one line before anything starts.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import msgspec

from .bus import StreamPolicy
from .config import load_or_exit
from .crypto import Keyring
from .logging import configure_logging, get_logger
from .migrations import migrate
from .stopping import Stopping

__all__ = ["DEFAULT_PORTS", "Command", "ServiceSettings", "ServiceSpec", "main"]

log = get_logger(__name__)

S = TypeVar("S", bound="ServiceSettings")

DEFAULT_PORTS = {
    "gateway": 8080,
    "identity": 8101,
    "catalog": 8102,
    "subscriptions": 8103,
    "entitlements": 8104,
    "webhooks": 8105,
}


class BaseSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Settings of every StackBE process, the gateway included."""

    nats_url: str
    internal_secret: str
    log_json: bool = True
    log_level: str = "INFO"

    @property
    def secret(self) -> bytes:
        return self.internal_secret.encode()


class ServiceSettings(BaseSettings, frozen=True, kw_only=True):
    """Settings of a service behind the gateway: it owns a schema and seals secrets."""

    database_url: str
    encryption_key: str
    database_pool_size: int = 10  # Postgres connections per process, at most
    # A worker asked to stop finishes its work in hand within this, or is cancelled.
    shutdown_grace_seconds: float = 25.0
    # How the streams a service creates are made (NATS cluster size; 0: no age limit).
    stream_replicas: int = 1
    stream_max_age_days: float = 0

    @property
    def streams(self) -> StreamPolicy:
        return StreamPolicy(replicas=self.stream_replicas, max_age_days=self.stream_max_age_days)

    @property
    def keyring(self) -> Keyring:
        return Keyring.parse(self.encryption_key)


class Command(msgspec.Struct, frozen=True):
    """A service's own operator command beside serve, worker and migrate."""

    name: str
    help: str
    run: Callable[[ServiceSettings, argparse.Namespace], Coroutine[Any, Any, None]]
    options: tuple[tuple[str, str], ...] = ()  # (--flag, help) of optional text options


class ServiceSpec(msgspec.Struct, frozen=True):
    name: str
    settings: type[ServiceSettings]
    app_factory: str  # "module:function", a granian factory taking no arguments
    worker: Callable[[ServiceSettings, Stopping], Awaitable[None]] | None = None
    migrations: Path | None = None
    commands: tuple[Command, ...] = ()


def add_serve_command(commands: Any, name: str) -> None:
    """``serve [--host] [--port] [--workers]``; defaults from ``STACKBE_<NAME>_HOST/PORT``."""
    serve = commands.add_parser("serve", help="serve the HTTP API")
    prefix = f"STACKBE_{name.upper()}"
    serve.add_argument("--host", default=os.environ.get(f"{prefix}_HOST", "127.0.0.1"))
    serve.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get(f"{prefix}_PORT", DEFAULT_PORTS.get(name, 8000))),
    )
    serve.add_argument("--workers", type=int, default=1)


def serve_http(app_factory: str, args: argparse.Namespace) -> None:
    """Serve ``module:factory`` on granian; each worker builds its app from the environment."""
    from granian import Granian
    from granian.constants import Interfaces

    log.info("service.starting", host=args.host, port=args.port, workers=args.workers)
    Granian(
        app_factory,
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        workers=args.workers,
        factory=True,
        log_access=False,
    ).serve()


def _parser(spec: ServiceSpec) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m stackbe_{spec.name}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_command(sub, spec.name)
    sub.add_parser("worker", help="run the outbox relay, consumers and responders")
    sub.add_parser("migrate", help="apply migrations and exit")
    for command in spec.commands:
        own = sub.add_parser(command.name, help=command.help)
        for flag, text in command.options:
            own.add_argument(flag, help=text)
    return parser


async def run_migrations(settings: ServiceSettings, schema: str, directory: Path | None) -> None:
    conn = await asyncpg.connect(settings.database_url)
    try:
        applied = await migrate(conn, schema, directory)
        log.info("migrations.done", schema=schema, applied=len(applied))
    finally:
        await conn.close()


async def run_until_signal(work: Callable[[Stopping], Awaitable[None]], grace: float) -> None:
    """Run ``work`` until SIGTERM or SIGINT; then ask it to stop, and cancel it if it has
    not returned ``grace`` seconds later (or at a second signal)."""
    loop = asyncio.get_running_loop()
    stopping = Stopping()
    task = asyncio.ensure_future(work(stopping))

    def stop() -> None:
        if stopping.requested:
            task.cancel()
            return
        log.info("worker.stopping", grace_seconds=grace)
        stopping.request()
        loop.call_later(grace, task.cancel)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    try:
        await task
        log.info("worker.stopped", cancelled=False)
    except asyncio.CancelledError:
        log.warning("worker.stopped", cancelled=True)
        raise SystemExit(1) from None  # work in hand was cut short: say so to the orchestrator


def main(spec: ServiceSpec, argv: list[str] | None = None) -> None:
    args = _parser(spec).parse_args(argv)
    settings = load_or_exit(spec.settings)
    configure_logging(spec.name, json=settings.log_json, level=settings.log_level)
    if args.command == "migrate":
        asyncio.run(run_migrations(settings, spec.name, spec.migrations))
    elif args.command == "worker":
        if spec.worker is None:
            raise SystemExit(f"stackbe_{spec.name} has no worker")
        work = functools.partial(spec.worker, settings)
        asyncio.run(run_until_signal(work, settings.shutdown_grace_seconds))
    elif args.command == "serve":
        serve_http(spec.app_factory, args)
    else:
        command = next(c for c in spec.commands if c.name == args.command)
        asyncio.run(command.run(settings, args))
