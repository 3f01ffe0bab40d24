"""``python -m stackbe_entitlements serve|worker|migrate``."""

from pathlib import Path

from stackbe_common.service import ServiceSpec, main

from .config import EntitlementsSettings
from .worker import run_worker

SPEC = ServiceSpec(
    name="entitlements",
    settings=EntitlementsSettings,
    app_factory="stackbe_entitlements.app:asgi",
    worker=run_worker,
    migrations=Path(__file__).parent / "migrations",
)

if __name__ == "__main__":
    main(SPEC)
