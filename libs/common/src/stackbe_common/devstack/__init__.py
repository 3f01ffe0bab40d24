"""Running the whole platform locally (``make dev``) and in end-to-end tests."""

from .backends import Backend, find_or_start_nats
from .postgres import ensure_database, find_or_start_postgres
from .processes import Child, ProcessGroup, StartupError
from .runner import Platform, installed_services
from .secretfile import generate_secrets, load_secrets

__all__ = [
    "Backend",
    "Child",
    "Platform",
    "ProcessGroup",
    "StartupError",
    "ensure_database",
    "find_or_start_nats",
    "find_or_start_postgres",
    "generate_secrets",
    "installed_services",
    "load_secrets",
]
