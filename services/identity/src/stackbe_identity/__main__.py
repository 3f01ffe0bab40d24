"""``python -m stackbe_identity serve|worker|migrate``."""

from pathlib import Path

from stackbe_common.service import ServiceSpec, main

from .config import IdentitySettings
from .worker import run_worker

SPEC = ServiceSpec(
    name="identity",
    settings=IdentitySettings,
    app_factory="stackbe_identity.app:asgi",
    worker=run_worker,
    migrations=Path(__file__).parent / "migrations",
)

if __name__ == "__main__":
    main(SPEC)
