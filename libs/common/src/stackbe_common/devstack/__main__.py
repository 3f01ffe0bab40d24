"""``make dev``: find or start Postgres and NATS, then run every service and the gateway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from ..logging import configure_logging, get_logger
from .backends import Backend, find_or_start_nats
from .postgres import find_or_start_postgres
from .processes import StartupError
from .runner import Platform
from .secretfile import load_secrets

log = get_logger("stackbe_common.devstack")

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/stackbe"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Stop on SIGINT and SIGTERM alike (set explicitly: background jobs start ignoring SIGINT)."""
    raise KeyboardInterrupt


def _describe(backend: Backend) -> str:
    if backend.started:
        return f"{backend.url}  (started here, data in {backend.location})"
    return f"{backend.url}  (found running)"


def _banner(
    url: str, postgres: Backend, nats: Backend, secrets_file: Path, webhook_networks: str
) -> str:
    return "\n".join(
        [
            "",
            "StackBE is running.",
            f"  Gateway:   {url}",
            f"  API docs:  {url}/docs",
            f"  Postgres:  {_describe(postgres)}",
            f"  NATS:      {_describe(nats)}",
            f"  Secrets:   {secrets_file}",
            f"  Webhooks:  may reach {webhook_networks} (dev only; production refuses",
            "             private, loopback and link-local targets)",
            "Press Ctrl-C to stop. Delete the data directory above to start afresh.",
            "",
        ]
    )


def _bootstrap(platform: Platform, url: str) -> None:
    """StackBE bills itself: make or update "StackBE Billing" from config/billing-plans.toml."""
    print("stackbe dev: bootstrapping StackBE Billing...", file=sys.stderr, flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "stackbe_identity.bootstrap"],
        env={**platform.env, "STACKBE_GATEWAY_URL": url},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    for line in (done.stdout + done.stderr).splitlines():
        print(f"stackbe dev: {line}", file=sys.stderr, flush=True)
    if done.returncode != 0:
        print(
            "stackbe dev: the bootstrap failed; tenants are not limited until it runs "
            "(uv run python -m stackbe_identity.bootstrap)",
            file=sys.stderr,
            flush=True,
        )


def _watch(platform: Platform) -> int:
    """Block until a child dies on its own (exit 1) or a signal interrupts (exit 0)."""
    while True:
        dead = platform.exited_unexpectedly()
        if dead is not None:
            message = dead.describe_failure(f"exited unexpectedly with code {dead.returncode}")
            print(f"stackbe dev: {message}", file=sys.stderr)
            return 1
        time.sleep(0.5)


def main() -> int:
    configure_logging("devstack", json=False)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    home = Path(os.environ.get("STACKBE_DEV_DIR") or ".stackbe").resolve()
    backends: list[Backend] = []
    platform: Platform | None = None
    try:
        secrets_file = home / "secrets.env"
        secrets = load_secrets(secrets_file)
        postgres = find_or_start_postgres(
            os.environ.get("STACKBE_DATABASE_URL") or DEFAULT_DATABASE_URL, home / "postgres"
        )
        backends.append(postgres)
        nats = find_or_start_nats(
            os.environ.get("STACKBE_NATS_URL") or DEFAULT_NATS_URL, home / "nats"
        )
        backends.append(nats)
        platform = Platform()
        gateway_port = int(os.environ.get("STACKBE_GATEWAY_PORT") or 8080)
        ports = {
            name: int(os.environ[f"STACKBE_{name.upper()}_PORT"])
            for name in platform.services
            if os.environ.get(f"STACKBE_{name.upper()}_PORT")
        }
        url = platform.start(postgres.url, nats.url, gateway_port, env=secrets, ports=ports)
        _bootstrap(platform, url)
        networks = platform.env.get("STACKBE_WEBHOOK_ALLOWED_NETWORKS") or "public addresses only"
        print(_banner(url, postgres, nats, secrets_file, networks), flush=True)
        return _watch(platform)
    except KeyboardInterrupt:
        log.info("devstack.interrupted")
        return 0
    except (StartupError, FileNotFoundError, TimeoutError) as exc:
        print(f"stackbe dev: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if platform is not None:
            platform.stop()
        for backend in reversed(backends):
            backend.stop()
        log.info("devstack.stopped")


if __name__ == "__main__":
    sys.exit(main())
