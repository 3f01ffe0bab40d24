"""``python -m stackbe_subscriptions serve|worker|migrate``."""

from pathlib import Path

from stackbe_common.service import ServiceSpec, main

from .config import SubscriptionsSettings
from .worker import run_worker

SPEC = ServiceSpec(
    name="subscriptions",
    settings=SubscriptionsSettings,
    app_factory="stackbe_subscriptions.app:asgi",
    worker=run_worker,
    migrations=Path(__file__).parent / "migrations",
)

if __name__ == "__main__":
    main(SPEC)
