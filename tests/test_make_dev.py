"""What `make dev` runs, as a user runs it: start, follow the README quickstart, Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

import httpx

from stackbe_common.infra import free_port

from .test_readme_quickstart import quickstart_script


async def read_until(
    stream: asyncio.StreamReader, pattern: str, seen: list[str], timeout: float
) -> re.Match[str]:
    async def scan() -> re.Match[str]:
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError("make dev exited early:\n" + "".join(seen[-40:]))
            seen.append(line)
            if match := re.search(pattern, line):
                return match

    return await asyncio.wait_for(scan(), timeout)


async def test_make_dev_runs_the_platform_the_quickstart_works_and_ctrl_c_stops_it(
    own_database_url, own_nats_url, tmp_path
):
    gateway_port, identity_port = free_port(), free_port()
    env = {
        **os.environ,
        "STACKBE_DATABASE_URL": own_database_url,
        "STACKBE_NATS_URL": own_nats_url,
        "STACKBE_GATEWAY_PORT": str(gateway_port),
        "STACKBE_IDENTITY_PORT": str(identity_port),
        "STACKBE_DEV_DIR": str(tmp_path / ".stackbe"),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stackbe_common.devstack",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    seen: list[str] = []
    try:
        match = await read_until(proc.stdout, r"Gateway:\s+(http://\S+)", seen, 90)
        url = match.group(1)
        assert url == f"http://127.0.0.1:{gateway_port}"
        quickstart = await asyncio.create_subprocess_exec(
            "bash",
            "-euo",
            "pipefail",
            "-c",
            quickstart_script(),
            env={**os.environ, "STACKBE": url},
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(quickstart.communicate(), 60)
        if quickstart.returncode != 0:  # what the platform said, to see why
            proc.send_signal(signal.SIGINT)
            rest, _ = await asyncio.wait_for(proc.communicate(), 60)
            said = "".join(seen[-20:]) + "\n".join(rest.decode().splitlines()[-80:])
            raise AssertionError(f"{out.decode()}\n--- make dev said ---\n{said}")
        assert '"code":"UNAUTHORIZED"' in out.decode().strip().splitlines()[-1]
        # The owner's sign-in link is printed by make dev (no SMTP in dev).
        await read_until(proc.stdout, r"/v1/auth/confirm\?token=", seen, 10)
        async with httpx.AsyncClient(timeout=10) as client:
            docs = await client.get(f"{url}/docs")
        assert docs.status_code == 200 and "/v1/apps" in docs.text
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, "".join(seen[-40:]) + rest.decode()
    for port in (gateway_port, identity_port):
        try:
            await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            continue
        raise AssertionError(f"something still listens on {port} after Ctrl-C")
