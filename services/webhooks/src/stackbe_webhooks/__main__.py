"""``python -m stackbe_webhooks serve|worker|migrate``."""

from pathlib import Path

from stackbe_common.service import ServiceSpec, main

from .config import WebhooksSettings
from .worker import run_worker

SPEC = ServiceSpec(
    name="webhooks",
    settings=WebhooksSettings,
    app_factory="stackbe_webhooks.app:asgi",
    worker=run_worker,
    migrations=Path(__file__).parent / "migrations",
)

if __name__ == "__main__":
    main(SPEC)
