"""The local platform runner: embedded NATS, secrets file, process group, output prefixes."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import stat
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stackbe_common.devstack import (
    Platform,
    ProcessGroup,
    StartupError,
    find_or_start_nats,
    load_secrets,
)
from stackbe_common.infra import NatsServer, answers, free_port

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped, as under a container's PID 1, does not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


def _wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _nats_info(url: str) -> dict:
    host_port = url.removeprefix("nats://")
    host, port = host_port.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=2) as conn:
        line = conn.makefile("rb").readline().decode()
    return json.loads(line.removeprefix("INFO "))


def test_embedded_nats_starts_under_the_store_dir_when_nothing_answers(tmp_path):
    closed = f"nats://127.0.0.1:{free_port()}"

    backend = find_or_start_nats(closed, tmp_path / "nats")
    try:
        assert backend.started
        assert backend.location == str(tmp_path / "nats")
        assert _nats_info(backend.url)["jetstream"] is True
        assert (tmp_path / "nats").is_dir()
    finally:
        backend.stop()

    assert not answers(backend.url, 4222)


def test_a_nats_found_running_is_used_and_left_running(tmp_path):
    server = NatsServer(tmp_path / "js").start()
    try:
        backend = find_or_start_nats(server.url, tmp_path / "unused")
        backend.stop()

        assert not backend.started
        assert backend.url == server.url
        assert answers(server.url, 4222)
        assert not (tmp_path / "unused").exists()
    finally:
        server.stop()


def test_secrets_are_generated_once_into_a_private_file_and_reused(tmp_path):
    path = tmp_path / ".stackbe" / "secrets.env"

    first = load_secrets(path, environ={})
    second = load_secrets(path, environ={})

    assert first == second
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(_unb64(first["STACKBE_INTERNAL_SECRET"])) == 32
    kid, _, seed = first["STACKBE_JWT_SIGNING_KEYS"].partition(":")
    assert kid
    Ed25519PrivateKey.from_private_bytes(_unb64(seed))
    kid, _, key = first["STACKBE_ENCRYPTION_KEY"].partition(":")
    assert kid and len(_unb64(key)) == 32


def test_environment_variables_win_over_the_secrets_file(tmp_path):
    path = tmp_path / "secrets.env"
    stored = load_secrets(path, environ={})

    chosen = load_secrets(path, environ={"STACKBE_INTERNAL_SECRET": "from-env"})

    assert chosen["STACKBE_INTERNAL_SECRET"] == "from-env"
    assert chosen["STACKBE_ENCRYPTION_KEY"] == stored["STACKBE_ENCRYPTION_KEY"]
    assert "from-env" not in path.read_text()


def test_a_secrets_file_missing_a_value_gets_it_added(tmp_path):
    path = tmp_path / "secrets.env"
    path.write_text("STACKBE_INTERNAL_SECRET=kept\n")

    secrets = load_secrets(path, environ={})

    assert secrets["STACKBE_INTERNAL_SECRET"] == "kept"
    assert load_secrets(path, environ={}) == secrets
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_output_lines_are_prefixed_with_the_process_name():
    out = io.StringIO()
    group = ProcessGroup(out, width=6)
    code = "import sys; print('hello'); print('oops', file=sys.stderr)"

    child = group.start("web", [sys.executable, "-c", code], os.environ)
    child.wait(10)

    assert sorted(out.getvalue().splitlines()) == ["web    | hello", "web    | oops"]
    assert sorted(child.tail) == ["hello", "oops"]


def test_stopping_the_group_stops_every_child_and_grandchild():
    out = io.StringIO()
    group = ProcessGroup(out)
    spawner = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    stubborn = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    children = [
        group.start("a", SLEEPER, os.environ),
        group.start("b", SLEEPER, os.environ),
        group.start("spawner", [sys.executable, "-c", spawner], os.environ),
        group.start("stubborn", [sys.executable, "-c", stubborn], os.environ),
    ]
    _wait_until(lambda: children[2].tail and children[3].tail)
    grandchild = int(children[2].tail[0])

    started = time.monotonic()
    group.stop(timeout=1.0)

    assert time.monotonic() - started < 5
    assert [child.running() for child in children] == [False] * 4
    assert children[3].returncode == -signal.SIGKILL
    _wait_until(lambda: not _alive(grandchild), timeout=5)
    assert group.exited_unexpectedly() is None


def test_a_child_that_dies_on_its_own_is_reported():
    group = ProcessGroup(io.StringIO())
    calm = group.start("calm", SLEEPER, os.environ)
    crashing = group.start("crashing", [sys.executable, "-c", "raise SystemExit(3)"], os.environ)
    try:
        _wait_until(lambda: not crashing.running())

        assert group.exited_unexpectedly() is crashing
        assert crashing.returncode == 3
        assert calm.running()
    finally:
        group.stop()


FAKE_SERVICE = textwrap.dedent(
    """
    import http.server, json, os, sys, time

    command = sys.argv[1]
    if command == "migrate":
        print("migrated", os.environ["STACKBE_DATABASE_URL"])
    elif command == "worker":
        print("working")
        time.sleep(120)
    else:
        port = int(sys.argv[sys.argv.index("--port") + 1])

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                env = {k: v for k, v in os.environ.items() if k.startswith("STACKBE_")}
                body = json.dumps(env).encode()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        print("serving", port, flush=True)
        http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """
)


@pytest.fixture
def stand_ins(tmp_path, monkeypatch):
    """Stand-in ``fakebe_identity`` and ``fakebe_gateway`` packages speaking the service CLI."""
    for name in ("identity", "gateway"):
        package = tmp_path / f"fakebe_{name}"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "__main__.py").write_text(FAKE_SERVICE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return {"PYTHONPATH": str(tmp_path)}


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_the_platform_migrates_starts_restarts_and_stops_services(stand_ins):
    out = io.StringIO()
    platform = Platform(prefix="fakebe_", output=out)
    identity_port = free_port()

    with platform:
        url = platform.start(
            "postgresql://db.example/stackbe",
            "nats://nats.example:4222",
            env=stand_ins,
            ports={"identity": identity_port},
        )
        seen = _get_json(url + "/health")

        assert platform.services == ["identity"]
        assert seen["STACKBE_IDENTITY_URL"] == f"http://127.0.0.1:{identity_port}"
        assert seen["STACKBE_PUBLIC_URL"] == url
        assert seen["STACKBE_LOG_JSON"] == "false"
        assert seen["STACKBE_DEV"] == "true"
        assert seen["STACKBE_DATABASE_URL"] == "postgresql://db.example/stackbe"
        assert seen["STACKBE_INTERNAL_SECRET"] == platform.env["STACKBE_INTERNAL_SECRET"]
        assert "identity-migrate | migrated postgresql://db.example/stackbe" in out.getvalue()

        worker = platform.process("identity-worker")
        os.kill(worker.pid, signal.SIGKILL)
        _wait_until(lambda: platform.exited_unexpectedly() is worker)

        platform.restart("identity-worker")
        platform.process("identity").kill()
        assert platform.exited_unexpectedly() is None
        platform.restart("identity")
        assert _get_json(f"http://127.0.0.1:{identity_port}/health")

    assert not any(child.running() for child in platform.group.children.values())


def test_the_platform_names_a_service_that_never_answers_health(stand_ins, tmp_path):
    (tmp_path / "fakebe_identity" / "__main__.py").write_text(
        "import sys, time\n"
        "if sys.argv[1] == 'migrate':\n    raise SystemExit(0)\n"
        "print('stuck on', sys.argv[1], flush=True)\n"
        "time.sleep(120)\n"
    )
    platform = Platform(prefix="fakebe_", output=io.StringIO(), health_timeout=2)

    with pytest.raises(StartupError, match="identity did not answer") as raised:
        platform.start(
            "postgresql://x/y", "nats://x:1", env=stand_ins, ports={"identity": free_port()}
        )

    assert "stuck on serve" in str(raised.value)
    assert not any(child.running() for child in platform.group.children.values())
