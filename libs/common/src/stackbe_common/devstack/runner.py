"""The whole platform as child processes: migrate, serve and work each service, then the gateway."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TextIO

from ..infra import free_port
from ..logging import get_logger
from ..service import DEFAULT_PORTS
from .backends import port_is_free
from .processes import Child, ProcessGroup, StartupError, run_to_completion
from .secretfile import generate_secrets

__all__ = ["DEV_WEBHOOK_NETWORKS", "Platform", "installed_services"]

DEV_WEBHOOK_NETWORKS = "127.0.0.0/8,::1/128"

log = get_logger(__name__)

GATEWAY = "gateway"
PREFIX = "stackbe_"


def _runnable(package: str) -> bool:
    """Whether ``package`` is installed and has a ``__main__`` (without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return False
    return any((Path(p) / "__main__.py").exists() for p in spec.submodule_search_locations)


def installed_services(prefix: str = PREFIX) -> list[str]:
    """Every service in ``DEFAULT_PORTS`` (gateway aside) whose package is installed."""
    found = [name for name in DEFAULT_PORTS if name != GATEWAY and _runnable(prefix + name)]
    log.info("services.found", services=found)
    return found


class Platform:
    """Runs the services and the gateway for ``make dev`` and end-to-end tests.

    ``with Platform() as p: url = p.start(database_url, nats_url)``; ``p.process("identity")``
    is the identity HTTP process, ``p.process("identity-worker")`` its worker. ``prefix``
    names the packages (``stackbe_<name>``); tests use it to run stand-in packages.
    """

    def __init__(
        self,
        services: Sequence[str] | None = None,
        *,
        output: TextIO | None = None,
        cwd: Path | None = None,
        python: str = sys.executable,
        health_timeout: float = 60.0,
        prefix: str = PREFIX,
    ) -> None:
        self.prefix = prefix
        self.services = list(services) if services is not None else installed_services(prefix)
        self.cwd, self.python, self.health_timeout = cwd, python, health_timeout
        names = [*self.services, GATEWAY, *(f"{s}-migrate" for s in self.services)]
        self.group = ProcessGroup(output, width=max(map(len, names)))
        self.env: dict[str, str] = {}
        self.url: str | None = None

    def _argv(self, name: str, *args: str) -> list[str]:
        return [self.python, "-m", self.prefix + name, *args]

    def _environment(
        self, database_url: str, nats_url: str, ports: Mapping[str, int], extra: Mapping[str, str]
    ) -> dict[str, str]:
        secrets = {k: v for k, v in generate_secrets().items() if not os.environ.get(k)}
        urls = {f"STACKBE_{n.upper()}_URL": f"http://127.0.0.1:{ports[n]}" for n in self.services}
        return {
            # Webhook receivers on this machine are reachable in dev (production refuses).
            "STACKBE_WEBHOOK_ALLOWED_NETWORKS": DEV_WEBHOOK_NETWORKS,
            **os.environ,
            **secrets,
            "STACKBE_DATABASE_URL": database_url,
            "STACKBE_NATS_URL": nats_url,
            "STACKBE_LOG_JSON": "false",
            "STACKBE_PUBLIC_URL": f"http://127.0.0.1:{ports[GATEWAY]}",
            "STACKBE_DEV": "true",
            "STACKBE_IDENTITY_URL": f"http://127.0.0.1:{ports['identity']}",
            **urls,
            **extra,
        }

    def _serve(self, name: str, port: int) -> Child:
        if not port_is_free(port):
            raise StartupError(f"port {port} for {name} is already in use; stop what holds it")
        log.info("service.starting", service=name, port=port)
        return self.group.start(
            name,
            self._argv(name, "serve", "--port", str(port)),
            self.env,
            cwd=self.cwd,
            health_url=f"http://127.0.0.1:{port}/health",
        )

    def start(
        self,
        database_url: str,
        nats_url: str,
        gateway_port: int | None = None,
        env: Mapping[str, str] | None = None,
        ports: Mapping[str, int] | None = None,
    ) -> str:
        """Migrate and start everything, wait for each ``/health``; return the gateway URL.

        ``gateway_port`` None picks a free port; service ports default to ``DEFAULT_PORTS``
        (override with ``ports``); ``env`` wins over everything else passed to the children.
        """
        if not _runnable(self.prefix + GATEWAY):
            raise StartupError(f"{self.prefix}{GATEWAY} is not installed (or has no __main__)")
        chosen = {**DEFAULT_PORTS, **(ports or {})}
        taken = {chosen[name] for name in self.services}
        if len(taken) < len(self.services):
            given = ", ".join(f"{name}={chosen[name]}" for name in self.services)
            raise StartupError(f"two services were given one port: {given}")
        chosen[GATEWAY] = gateway_port or next(p for p in iter(free_port, 0) if p not in taken)
        self.env = self._environment(database_url, nats_url, chosen, env or {})
        try:
            for name in self.services:
                log.info("service.migrating", service=name)
                run_to_completion(
                    f"{name}-migrate",
                    self._argv(name, "migrate"),
                    self.env,
                    output=self.group.output,
                    lock=self.group.lock,
                    width=self.group.width,
                )
            servers = [self._serve(name, chosen[name]) for name in self.services]
            for name in self.services:
                self.group.start(
                    f"{name}-worker", self._argv(name, "worker"), self.env, cwd=self.cwd
                )
            for server in servers:
                server.wait_healthy(self.health_timeout)
                log.info("service.healthy", service=server.name)
            self._serve(GATEWAY, chosen[GATEWAY]).wait_healthy(self.health_timeout)
            dead = self.group.exited_unexpectedly()
            if dead is not None:
                raise StartupError(dead.describe_failure(f"exited with code {dead.returncode}"))
        except BaseException:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{chosen[GATEWAY]}"
        log.info("platform.started", url=self.url)
        return self.url

    def process(self, name: str) -> Child:
        """A started process by name: ``<service>``, ``<service>-worker`` or ``gateway``."""
        return self.group[name]

    def restart(self, name: str) -> None:
        """Stop one process (SIGTERM, then SIGKILL) and start it again, waiting for health."""
        self.group[name].restart(self.health_timeout)

    def exited_unexpectedly(self) -> Child | None:
        return self.group.exited_unexpectedly()

    def stop(self) -> None:
        """Stop every process this platform started; safe to call twice."""
        running = [child.name for child in self.group.children.values() if child.running()]
        if running:
            log.info("platform.stopping", processes=running)
        self.group.stop()

    def __enter__(self) -> Platform:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
