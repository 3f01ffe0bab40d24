"""``python -m stackbe_catalog serve|worker|migrate``."""

from pathlib import Path

from stackbe_common.service import ServiceSettings, ServiceSpec, main

from .worker import run_worker

SPEC = ServiceSpec(
    name="catalog",
    settings=ServiceSettings,
    app_factory="stackbe_catalog.app:asgi",
    worker=run_worker,
    migrations=Path(__file__).parent / "migrations",
)

if __name__ == "__main__":
    main(SPEC)
